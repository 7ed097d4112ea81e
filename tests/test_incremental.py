"""Incremental occlusion computes exactly what whole forward passes compute, for less work."""
from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import cnn_core
from claims.options import DEFAULT_MODELS
from cnn_core import incremental
from cnn_core.incremental import Geometry, incremental_plan, occlusion_cost

MODELS = (*DEFAULT_MODELS, "vgg11_bn")  # and batch norm inside the incremental chain
INCREMENTAL_MODELS = [name for name in MODELS if incremental_plan(cnn_core.build_architecture(name).eval()).supported]


@pytest.fixture(scope="module", params=MODELS)
def model64(request) -> tuple[str, nn.Module]:
    """Each model of the default matrix, and vgg11_bn, in float64, random weights (exactness holds for any)."""
    return request.param, cnn_core.load_model(request.param, "none").double()


@st.composite
def sweeps(draw):
    """An image of 64-80 px a side (odd sizes too), a window that may touch the borders, a stride
    that need not divide the image (at most 25 windows: each is a float64 forward pass)."""
    height, width = draw(st.integers(64, 80)), draw(st.integers(64, 80))
    window = draw(st.integers(1, 40))
    stride = draw(st.integers(16, 40))
    return height, width, window, stride


def both_ways(model, x, window, stride):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the fallback's warning is tested on its own
        incremental_map = cnn_core.occlusion_map(model, x, window, stride, target=3, method="auto")
    batched_map = cnn_core.occlusion_map(model, x, window, stride, target=3, method="batched")
    return incremental_map.drop, batched_map.drop


@given(sweep=sweeps())
def test_incremental_maps_equal_batched_maps_in_float64(model64, sweep):
    """Every model of the default matrix (ResNet18 and MobileNetV2 fall back to batched): equal to
    1e-12 of the largest drop in float64, where only the order of additions differs."""
    _, model = model64
    height, width, window, stride = sweep
    x = torch.randn(1, 3, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(height * width))
    ours, reference = both_ways(model, x, window, stride)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12 * max(1.0, float(reference.abs().max())))


def test_float32_incremental_maps_agree_within_rounding():
    """float32: blocked convolutions round differently on a cut-out block; 1e-4 of the largest drop."""
    model = cnn_core.load_model("vgg11", "none")
    x = cnn_core.preprocess("sample:cat", 96)
    ours, reference = both_ways(model, x, 24, 12)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-4 * float(reference.abs().max()))


def test_a_halo_one_unit_too_small_breaks_equality(monkeypatch):
    """Break: recomputing one unit too few on each side leaves stale clean values in the map."""
    model = cnn_core.load_model("vgg11", "none").double()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    real = Geometry.affected

    def too_small(self, axis, start, stop, out_size):
        lo, hi = real(self, axis, start, stop, out_size)
        return (lo + 1, hi - 1) if hi - lo > 2 else (lo, hi)

    monkeypatch.setattr(Geometry, "affected", too_small)
    ours, reference = both_ways(model, x, 16, 16)
    assert not torch.allclose(ours, reference, rtol=0, atol=1e-9)


def test_residual_models_fall_back_with_a_warning_naming_the_layer():
    model = cnn_core.load_model("resnet18", "none")
    x = torch.randn(1, 3, 64, 64)
    with pytest.warns(UserWarning, match=r"chain of supported layers stops at layer1.0.conv1"):
        cnn_core.occlusion_map(model, x, 32, 32, target=0, method="incremental")


def test_the_default_matrix_splits_as_documented():
    assert INCREMENTAL_MODELS == ["vgg11", "vgg16", "vgg19", "alexnet", "vgg11_bn"]


def test_occlusion_cost_matches_a_hand_count():
    """Two 3x3 convs (padding 1, one channel) on 8x8, one 2x2 window in the corner: the first conv
    recomputes rows and columns 0-2 (9 units), the second 0-3 (16 units), 9 MACs each, against
    2 x 64 units: (9 + 16) / 128."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1))
    assert occlusion_cost(model, window=2, stride=8, input_size=(8, 8)) == pytest.approx(25 / 128)


def test_vgg16_needs_a_fraction_of_the_work():
    """VGG16 at 224, window 32, stride 16 (169 windows): well under a fifth of the conv work."""
    cost = occlusion_cost(cnn_core.build_architecture("vgg16"), 32, 16, (224, 224))
    assert 0.05 < cost < 0.2


def test_an_unknown_method_is_refused():
    with pytest.raises(cnn_core.InputError, match="method 'fast'"):
        cnn_core.occlusion_map(cnn_core.load_model("vgg11"), torch.zeros(1, 3, 32, 32), 8, 8, 0, method="fast")


def test_the_chain_stops_at_the_first_branch():
    plan = incremental_plan(cnn_core.build_architecture("mobilenet_v2").eval())
    assert not plan.supported and plan.blocker.startswith("features.3.conv.0.0")
    assert incremental.incremental_plan(cnn_core.build_architecture("vgg16")).head is not None
