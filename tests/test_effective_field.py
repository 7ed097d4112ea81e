"""The effective field's spread (Luo et al., 2016): by hand, and the same on the field's cut-out."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import cnn_core
from cnn_core import empirical_field


def test_a_uniform_3x3_kernel_spreads_by_the_hand_computed_radius():
    """One 3x3 conv of ones: the centre unit's gradient is 1 on a 3x3 square, so its RMS distance
    from the centre is sqrt(mean(dr^2 + dc^2)) = sqrt(2 * 2/3)."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    nn.init.ones_(conv.weight)
    model = nn.Sequential(conv).eval()
    spread = cnn_core.effective_field_spreads(model, "0", torch.rand(2, 1, 9, 9, dtype=torch.float64))
    torch.testing.assert_close(spread, torch.full((2,), math.sqrt(4 / 3), dtype=torch.float64), rtol=1e-12, atol=0)


@pytest.mark.parametrize(("name", "layer"), [("vgg11", "features.10"), ("resnet18", "layer2.1.relu@1"),
                                             ("mobilenet_v2", "features.6.conv.1.2")])
def test_the_cut_out_gives_the_whole_images_spreads(name, layer, monkeypatch):
    """Only the centre unit's field is run when it lies inside the image: in float64 the spreads
    equal those of the whole image to rounding (1e-9 relative), and the cut-out is smaller."""
    model = cnn_core.load_model(name, "none").double().eval()
    x = torch.randn(3, 3, 224, 224, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rows, cols, _unit = empirical_field._field_window(model, layer, (224, 224))
    assert rows.stop - rows.start < 224 and cols.stop - cols.start < 224
    cut_out = cnn_core.effective_field_spreads(model, layer, x)
    monkeypatch.setattr(empirical_field, "_field_window", lambda *_args: None)
    whole = cnn_core.effective_field_spreads(model, layer, x)
    torch.testing.assert_close(cut_out, whole, rtol=1e-9, atol=0)


def test_a_field_cut_by_the_border_runs_the_whole_image():
    """The centre unit of VGG11's features.10 (a 30 px field, 8 px apart) reaches into the padding of
    a 32 px image: no cut-out; on 48 px its field lies inside."""
    model = cnn_core.load_model("vgg11", "none").eval()
    assert cnn_core.receptive_field(model, "features.10").size == (30, 30)
    assert empirical_field._field_window(model, "features.10", (32, 32)) is None
    assert empirical_field._field_window(model, "features.10", (48, 48)) is not None
