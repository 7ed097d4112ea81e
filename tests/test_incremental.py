"""Incremental occlusion computes exactly what whole forward passes compute, for less work."""
from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import cnn_core
from claims.session.options import DEFAULT_MODELS
from cnn_core import incremental
from cnn_core.incremental import Geometry, incremental_plan, occlusion_cost

MODELS = (*DEFAULT_MODELS, "vgg11_bn")  # and batch norm inside the incremental part


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


def occluded_outputs(model, x, window, stride) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model's outputs for every window painted true black, incrementally and by whole forward
    passes, and its clean output."""
    height, width = x.shape[-2:]
    boxes = [cnn_core.Box(top, left, top + window, left + window)
             for top in range(0, height - window + 1, stride) for left in range(0, width - window + 1, stride)]
    with torch.no_grad():
        paint = cnn_core.images.fill_value("black", x)
        clean, ours = incremental.incremental_outputs(incremental_plan(model), x, boxes, paint, batch_size=7)
        reference = torch.cat([model(cnn_core.occlude(x, box, "black")) for box in boxes])
        torch.testing.assert_close(clean, model(x), rtol=0, atol=1e-12)  # float64: only the order of additions differs
        return ours, reference, clean


@given(sweep=sweeps())
def test_incremental_outputs_equal_whole_forward_passes_in_float64(model64, sweep):
    """Every model of the default matrix, residual ones too: the outputs equal to 1e-9 of what the
    occlusion changes in them, in float64, where only the order of additions differs. (Measured
    against the change: a random MobileNetV2's outputs move by 1e-10 only.)"""
    _, model = model64
    height, width, window, stride = sweep
    x = torch.randn(1, 3, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(height * width))
    ours, reference, clean = occluded_outputs(model, x, window, stride)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-9 * float((reference - clean).abs().max()))


@pytest.mark.parametrize(("name", "weights"), [("vgg11", "none"), ("resnet18", "none"), ("mobilenet_v2", "auto")])
def test_float32_incremental_maps_agree_within_rounding(name, weights):
    """float32: blocked convolutions round differently on a cut-out block; 1e-4 of the largest drop.
    (MobileNetV2 with its ImageNet weights: a random one's drops are as small as float32's rounding.)"""
    model = cnn_core.load_model(name, weights)
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


def test_a_merge_that_drops_a_branch_breaks_equality(monkeypatch):
    """Break: after a residual addition, only the first input's changed region is recomputed (the
    other branch's changes are read as clean values)."""
    model = cnn_core.load_model("resnet18", "none").double()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    real = incremental._merged

    def first_branch_only(step, clean, inputs):
        stale = [incremental._Blocks(incremental._gather(clean[name], b.rows, b.cols, b.size), b.rows, b.cols)
                 for name, b in zip(step.inputs[1:], inputs[1:])]
        return real(step, clean, [inputs[0], *stale])

    monkeypatch.setattr(incremental, "_merged", first_branch_only)
    ours, reference, clean = occluded_outputs(model, x, 16, 16)
    assert not torch.allclose(ours, reference, rtol=0, atol=1e-3 * float((reference - clean).abs().max()))


def test_a_gated_model_falls_back_with_a_warning_naming_the_layer():
    """EfficientNet's squeeze-and-excitation gates multiply by a global average: not local, not incremental."""
    model = cnn_core.load_model("efficientnet_b0", "none")
    x = torch.randn(1, 3, 64, 64)
    with pytest.warns(UserWarning, match=r"stops at features.1.0.block.1.avgpool \(AdaptiveAvgPool2d\)"):
        cnn_core.occlusion_map(model, x, 32, 32, target=0, method="incremental")


def test_every_model_of_the_default_matrix_is_incremental():
    assert [name for name in MODELS if not incremental_plan(cnn_core.build_architecture(name).eval()).supported] == []


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


class TwoExits(nn.Module):
    """A head that reads two layers: the incremental part cannot end at one node."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        early = self.first(x)
        return self.second(early).mean((2, 3)) + early.mean((2, 3))


def test_a_head_that_reads_two_layers_is_refused():
    plan = incremental_plan(TwoExits())
    assert not plan.supported and "reads first besides second" in plan.blocker


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_residual_networks_need_part_of_the_work(name):
    """At 224, window 32, stride 16, their fields cover the image by the third stage: a limit
    between 1.5x and 3x (VGG16's is 7x)."""
    assert 1 / 3 < occlusion_cost(cnn_core.build_architecture(name).eval(), 32, 16, (224, 224)) < 2 / 3


def test_the_incremental_part_is_the_graph_up_to_global_pooling():
    plan = incremental_plan(cnn_core.build_architecture("resnet18").eval())
    assert plan.steps[-1].name == "layer4_1_relu_1" and sum(step.merge == "add" for step in plan.steps) == 8
    assert incremental.incremental_plan(cnn_core.build_architecture("vgg16")).head is not None
