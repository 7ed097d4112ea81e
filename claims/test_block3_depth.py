"""Code Block 3 — Depth = abstraction.

"As we go deeper into the network: Early layers → edges, colors, simple textures ... Deep layers
→ abstract, class-relevant, sparse activations." The structural half of that: channels grow and
resolution falls with depth, and the notebook's three probes have the shapes it prints. The learned
half (sparsity and abstraction grow with depth) is measured against random twins, in the claims matrix.
"""
from __future__ import annotations

import pytest
from torch import nn

import cnn_core
from claims.matrix import record
from claims.probes import spatial_leaves
from claims.rules import RULES

pytestmark = pytest.mark.structural


def depth_violations(model: nn.Module) -> list[str]:
    """Every step along the network where channels fall or resolution grows."""
    spatial = spatial_leaves(cnn_core.layers(model))
    violations = []
    for before, after in zip(spatial, spatial[1:]):
        (_, c0, h0, w0), (_, c1, h1, w1) = before.output_shape, after.output_shape
        if c1 < c0:
            violations.append(f"channels fall from {c0} ({before.path}) to {c1} ({after.path})")
        if h1 > h0 or w1 > w0:
            violations.append(f"resolution grows from {h0}x{w0} ({before.path}) to {h1}x{w1} ({after.path})")
    return violations


def test_channels_never_decrease_and_resolution_never_increases(model, request):
    """"EARLY: High resolution ... MIDDLE: Lower resolution ... DEEP: Very low resolution" and
    "64 channels ... 256 channels ... 512 channels": along the network, every layer has at least
    as many channels and at most as many rows and columns as the one before. VGG's rule: AlexNet
    narrows 384 -> 256 and MobileNetV2's bottlenecks narrow after every expansion (REFUTED there)."""
    violations = depth_violations(model)
    record(request, RULES["S-channels-grow-resolution-falls"].judge(
        cnn_core.model_card(model).label, len(violations), detail="; ".join(violations[:2])))


def test_depth_claim_fails_when_a_layer_upsamples(zoo, monkeypatch):
    """Break: a conv padded by 5 grows 56x56 maps to 64x64, and the claim must fail."""
    model = zoo.get("vgg16")
    monkeypatch.setattr(model.features[10], "padding", (5, 5))
    assert any("resolution grows" in v for v in depth_violations(model))
    assert RULES["S-channels-grow-resolution-falls"].judge("vgg16", len(depth_violations(model))).status == "REFUTED"


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


# --- learned: sparsity and abstraction grow with depth (claims matrix, against random inits) ---

@pytest.mark.learned
def test_activations_get_sparser_with_depth(subject, request):
    """"DEEP: Very low resolution, sparse activations": on natural images, the last stage's
    activations are inactive (<= 0) more often than the first stage's, by more than in random
    initialisations of the architecture (stages: stretches of equal resolution)."""
    record(request, *subject.verdicts("L3-sparser-with-depth"))


@pytest.mark.learned
def test_deeper_features_are_more_class_relevant(subject, request):
    """"Deep layers → abstract, class-relevant": pooled features of the last stage group 20 labelled
    ImageNet-class photos by class better than the first stage's do, by more than in random inits."""
    record(request, *subject.verdicts("L4-class-structure-grows-with-depth"))
