"""Code Block 3 — Depth = abstraction.

"As we go deeper into the network: Early layers → edges, colors, simple textures ... Deep layers
→ abstract, class-relevant, sparse activations." The structural half of that: channels grow and
resolution falls with depth, and the notebook's three probes have the shapes it prints. The learned
half (sparsity and abstraction grow with depth) is measured against random twins, in the claims matrix.
"""
from __future__ import annotations

import pytest

from claims.judging.expectations import record
from claims.judging.structural import check_probe_shapes, depth_verdict, depth_violations

pytestmark = [pytest.mark.structural, pytest.mark.block("3")]


@pytest.mark.claim("S-channels-grow-resolution-falls")
def test_channels_never_decrease_and_resolution_never_increases(model, request):
    """"EARLY: High resolution ... MIDDLE: Lower resolution ... DEEP: Very low resolution" and
    "64 channels ... 256 channels ... 512 channels": along the network, every layer has at least
    as many channels and at most as many rows and columns as the one before. VGG's rule: AlexNet
    narrows 384 -> 256 and MobileNetV2's bottlenecks narrow after every expansion (REFUTED there)."""
    record(request, depth_verdict(model))


@pytest.mark.breaks("S-channels-grow-resolution-falls")
def test_depth_claim_fails_when_a_layer_upsamples(zoo, monkeypatch):
    """Break: a conv padded by 5 grows 56x56 maps to 64x64, and the claim must fail."""
    model = zoo.get("vgg16")
    monkeypatch.setattr(model.features[10], "padding", (5, 5))
    assert any("resolution grows" in v for v in depth_violations(model))
    assert depth_verdict(model).status == "REFUTED"


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
@pytest.mark.claim("L3-sparser-with-depth")
def test_activations_get_sparser_with_depth(subject, claim, request):
    """"DEEP: Very low resolution, sparse activations": on natural images, the last stage's
    activations are inactive (<= 0) more often than the first stage's, by more than in random
    initialisations of the architecture (stages: stretches of equal resolution)."""
    record(request, *subject.verdicts(claim))


@pytest.mark.learned
@pytest.mark.claim("L4-class-structure-grows-with-depth")
def test_deeper_features_are_more_class_relevant(subject, claim, request):
    """"Deep layers → abstract, class-relevant": pooled features of the last stage group the labelled
    photos by class group better than the first stage's do (same-group photos nearer), by more than in random inits."""
    record(request, *subject.verdicts(claim))


@pytest.mark.learned
@pytest.mark.claim("L4-linear-probe-grows-with-depth")
def test_a_linear_probe_reads_the_class_better_from_deeper_features(subject, claim, request):
    """"Deep layers → abstract, class-relevant", with the field's instrument (a linear classifier probe,
    Alain & Bengio 2016): its cross-validated accuracy on the photos' class groups is higher from the last
    stage's pooled features than from the first stage's, by more than in random initialisations.
    A second opinion on L4-class-structure-grows-with-depth: the matrix says whether the two agree."""
    record(request, *subject.verdicts(claim))


@pytest.mark.learned
@pytest.mark.claim("L3-middle-layers-see-larger-patterns")
def test_middle_layers_see_larger_patterns(subject, claim, request):
    """"Early layers → edges, colors, simple textures; Middle layers → patterns, motifs, object
    parts": a middle probe unit's effective receptive field (where 90% of its gradient on the photo
    lies) is larger, relative to an early probe unit's, than in random initialisations, beyond their spread."""
    record(request, *subject.verdicts(claim))

