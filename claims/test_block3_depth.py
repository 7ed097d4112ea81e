"""Code Block 3 — Depth = abstraction.

"As we go deeper into the network: Early layers → edges, colors, simple textures ... Deep layers
→ abstract, class-relevant, sparse activations." The structural half of that: channels grow and
resolution falls with depth, and the notebook's three probes have the shapes it prints.
"""
from __future__ import annotations

import pytest
from torch import nn

import cnn_core

pytestmark = pytest.mark.structural

ALEXNET_NARROWS = "AlexNet narrows from 384 to 256 channels in conv4 and conv5: the notebook's rule is VGG's, not every CNN's"


def check_channels_grow_resolution_falls(model: nn.Module) -> int:
    spatial = [layer for layer in cnn_core.layers(model)
               if not layer.container and layer.output_shape is not None and len(layer.output_shape) == 4]
    for before, after in zip(spatial, spatial[1:]):
        (_, c0, h0, w0), (_, c1, h1, w1) = before.output_shape, after.output_shape
        assert c1 >= c0, f"channels fall from {c0} ({before.path}) to {c1} ({after.path})"
        assert h1 <= h0 and w1 <= w0, f"resolution grows from {h0}x{w0} ({before.path}) to {h1}x{w1} ({after.path})"
    return len(spatial)


@pytest.mark.models("*", xfail={"alexnet": ALEXNET_NARROWS})
def test_channels_never_decrease_and_resolution_never_increases(model):
    """"EARLY: High resolution ... MIDDLE: Lower resolution ... DEEP: Very low resolution" and
    "64 channels ... 256 channels ... 512 channels": along the network, every layer has at least
    as many channels and at most as many rows and columns as the one before."""
    assert check_channels_grow_resolution_falls(model) > 1


def test_depth_claim_fails_when_a_layer_upsamples(zoo, monkeypatch):
    """Break: a conv padded by 5 grows 56x56 maps to 64x64, and the claim must fail."""
    model = zoo.get("vgg16")
    monkeypatch.setattr(model.features[10], "padding", (5, 5))
    with pytest.raises(AssertionError, match="resolution grows"):
        check_channels_grow_resolution_falls(model)


NOTEBOOK_PROBES = {
    # notebook comment                                      layer          shape it prints
    "Early (layer 2): 64 channels, high resolution": ("features.2", (1, 64, 224, 224)),
    "Middle (layer 16): 256 channels, medium resolution": ("features.16", (1, 256, 28, 28)),
    "Deep (layer 28): 512 channels, low resolution": ("features.28", (1, 512, 14, 14)),
}


def check_probe_shapes(model: nn.Module, x) -> None:
    maps = cnn_core.capture(model, x, [layer for layer, _ in NOTEBOOK_PROBES.values()])
    for claim, (layer, shape) in NOTEBOOK_PROBES.items():
        assert tuple(maps[layer].shape) == shape, f"{claim!r}: {layer} gives {list(maps[layer].shape)}"


@pytest.mark.models("vgg16")
def test_notebook_probes_have_the_shapes_it_prints(model, image_tensor):
    """"Early (layer 2): [1, 64, 224, 224] # 64 channels, high resolution; Middle (layer 16):
    [1, 256, 28, 28] # 256 channels, medium resolution; Deep (layer 28): [1, 512, 14, 14]"
    (features.16 is pool3: "medium" is 28x28, an eighth of the input)."""
    check_probe_shapes(model, image_tensor)


def test_probe_claim_fails_when_a_pool_stops_downsampling(zoo, image_tensor, monkeypatch):
    """Break: pool1 with stride 1 keeps 223x223 maps, and the printed shapes must no longer hold."""
    model = zoo.get("vgg16")
    monkeypatch.setattr(model.features[4], "stride", 1)
    with pytest.raises(AssertionError, match="Middle"):
        check_probe_shapes(model, image_tensor)
