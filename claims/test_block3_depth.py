"""Code Block 3 — Depth = abstraction.

"As we go deeper into the network: Early layers → edges, colors, simple textures ... Deep layers
→ abstract, class-relevant, sparse activations." The structural half of that: channels grow and
resolution falls with depth, and the notebook's three probes have the shapes it prints. The learned
half (sparsity and abstraction grow with depth) is measured against random twins, in the claims matrix.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnn_core
from claims.matrix import Verdict, record

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


# --- learned: sparsity and abstraction grow with depth (claims matrix) -----------------------

SPARSITY_TREND = 0.05  # five points more zeros in the last block than the first; random twins move ±3


def spatial_relus(model: nn.Module, size: int) -> list[tuple[int, cnn_core.Layer]]:
    """The ReLUs with spatial output, each with its block: how many pooling layers ran before it."""
    relus, pools = [], 0
    for layer in cnn_core.layers(model, (size, size)):
        if "Pool" in layer.type and not layer.container:
            pools += 1
        elif layer.type == "ReLU" and layer.output_shape is not None and len(layer.output_shape) == 4:
            relus.append((pools, layer))
    return relus


def sparsity_by_block(model: nn.Module, images) -> list[float]:
    """Mean fraction of exact zeros after the ReLUs of each block, first block first."""
    relus = spatial_relus(model, images.shape[-1])
    maps = cnn_core.capture(model, images, [layer.path for _, layer in relus])
    blocks: dict[int, list[float]] = {}
    for block, layer in relus:
        blocks.setdefault(block, []).append(cnn_core.sparsity(maps[layer.path]))
    return [sum(values) / len(values) for _, values in sorted(blocks.items())]


@pytest.mark.learned
def test_activations_get_sparser_with_depth(subject, request):
    """"DEEP: Very low resolution, sparse activations": on natural images, the last block's ReLUs
    output at least SPARSITY_TREND more exact zeros than the first block's (blocks end at pools)."""
    blocks = sparsity_by_block(subject.model, subject.images)
    trend = blocks[-1] - blocks[0]
    record(request, Verdict("L3-sparser-with-depth", subject.key, trend >= SPARSITY_TREND, trend,
                                   f">= {SPARSITY_TREND}", "zeros per block: " + ", ".join(f"{b:.2f}" for b in blocks),
                                   series=tuple(blocks)))


INVARIANCE_GAIN = 0.05


def invariance_growth(model: nn.Module, images, sources) -> tuple[float, float]:
    """Invariance of globally pooled features to a small shift and a brightness change, at the
    first and at the last spatial ReLU."""
    size = images.shape[-1]
    shift = max(1, size // 16)
    normalization = cnn_core.models.normalization_of(model)
    wider = torch.cat([cnn_core.preprocess(s, size + shift, normalization) for s in sources]).to(images.device)
    original, shifted = wider[..., :size, :size], wider[..., shift:, shift:]
    brighter = cnn_core.normalize((cnn_core.denormalize(original, normalization) * 1.15).clamp(0, 1), normalization)
    relus = [layer.path for _, layer in spatial_relus(model, size)]
    ends = [relus[0], relus[-1]]
    maps = cnn_core.capture(model, torch.cat([original, shifted, brighter]), ends)
    count = len(original)
    scores = []
    for layer in ends:
        pooled = maps[layer].mean(dim=(2, 3))
        scores.append(cnn_core.invariance(pooled[:count], pooled[count:2 * count], pooled[2 * count:]))
    return scores[0], scores[1]


@pytest.mark.learned
def test_deeper_features_are_more_abstract(subject, request):
    """"Deep layers → abstract, class-relevant" and "Depth = Abstraction": pooled features ignore a
    small shift and a brightness change more at the last ReLU than at the first, and that gain
    exceeds the random twin's by INVARIANCE_GAIN."""
    first, last = invariance_growth(subject.model, subject.images, subject.sources)
    twin_first, twin_last = invariance_growth(subject.twin, subject.images, subject.sources)
    margin = (last - first) - (twin_last - twin_first)
    record(request, Verdict("L4-abstraction-grows-with-depth", subject.key, margin >= INVARIANCE_GAIN, margin,
                                   f">= {INVARIANCE_GAIN}",
                                   f"invariance {first:.3f} -> {last:.3f}; random twin {twin_first:.3f} -> {twin_last:.3f}"))
