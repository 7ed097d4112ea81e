"""Code Block 4 — Spatial locality and receptive fields.

"Each neuron in a deep layer only "sees" a portion of the original image — its receptive field.
Deeper neurons have larger receptive fields but still maintain spatial correspondence."
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cnn_core
from claims.judging.expectations import not_measured_skips, record
from claims.judging.probes import depth_probes
from claims.judging.structural import (
    EMPIRICAL_CANVAS,
    TRANSFORMER,
    TRANSFORMER_PROBE,
    analytic_table,
    check_deep_structure,
    check_empirical_matches_analytic,
    check_fields_grow,
    check_locality,
    check_painted_grey,
    check_textbook_fields,
    deep_change_summaries,
    deep_structure_verdict,
    float64_copy,
    gradual_verdict,
    locality_verdict,
    locality_view,
    units_touching_region,
)
from claims.session.options import RUN_OPTIONS
from claims.tools.breaks import global_context, mirrored
from claims.tools.strategies import boxes, few_examples

pytestmark = [pytest.mark.structural, pytest.mark.block("4")]


@pytest.fixture(scope="module")
def fields(model) -> dict[str, cnn_core.ReceptiveField]:
    """The model's analytic fields on the empirical canvas, once per model."""
    return analytic_table(model)


@pytest.fixture(scope="module")
def probes(model) -> dict[str, str]:
    """The model's early, middle and deep probe layers, once per model."""
    return depth_probes(model)


@pytest.fixture(scope="module")
def model64(model, layer):
    """The model cut after ``layer``, in float64, once per layer."""
    return float64_copy(model, layer)


def test_receptive_fields_grow_with_depth(model):
    """"Deeper neurons have larger receptive fields": no layer shrinks the field it receives, and
    every conv with a kernel larger than 1 and every pool strictly grows it."""
    assert check_fields_grow(model) > 0


def test_growth_claim_fails_when_layers_only_subsample(zoo, monkeypatch):
    """Break: if convs and pools only subsampled (no kernel footprint), fields would not grow."""
    real_through = cnn_core.receptive._through

    def subsample(axis, kernel, stride, padding, dilation, units):
        return real_through(axis, 1, stride, 0, 1, units)

    monkeypatch.setattr(cnn_core.receptive, "_through", subsample)
    with pytest.raises(AssertionError, match="does not grow the field"):
        check_fields_grow(zoo.get("vgg16"))


@pytest.mark.models("vgg16", "vgg16_bn")
def test_vgg16_receptive_fields_are_the_textbook_values(model):
    """"Each neuron in a deep layer only 'sees' a portion of the original image": VGG16's conv5_3
    sees 196x196 pixels and pool5 212x212, as published."""
    check_textbook_fields(model)


def test_textbook_claim_fails_when_a_pool_stride_changes(zoo, monkeypatch):
    """Break: pool1 with stride 1 halves every later jump, and the published values must not match."""
    model = zoo.get("vgg16")
    monkeypatch.setattr(model.features[4], "stride", 1)
    with pytest.raises(AssertionError, match="pool1"):
        check_textbook_fields(model)


@pytest.mark.probes("spatial")
def test_empirical_receptive_field_equals_analytic(model, layer, fields):
    """"Each neuron ... only 'sees' a portion of the original image": the pixels whose gradient
    reaches a unit (on a positive, linear twin, so none cancels) are exactly its analytic field,
    for the centre unit and for the corner unit, whose field is cut by the border; at every layer
    that can move a field (pointwise ones pass their input's on)."""
    with not_measured_skips():
        check_empirical_matches_analytic(model, layer, fields)


def test_field_agreement_fails_when_the_analytic_ignores_padding(zoo, monkeypatch):
    """Break: an analytic computation that forgets padding must disagree with the measurement."""
    model = zoo.get("vgg16")
    monkeypatch.setattr(cnn_core.receptive, "_conv_padding", lambda module, input_hw: (0, 0))
    table = cnn_core.receptive_fields(model, EMPIRICAL_CANVAS)
    with pytest.raises(AssertionError, match="gradient support"):
        check_empirical_matches_analytic(model, "features.2", table)


@few_examples()
@given(data=st.data())
def test_occlusion_changes_only_units_whose_field_overlaps_the_box(model, model64, layer, image, data):
    """"Perturbations affect corresponding spatial locations in activations": blanking a box
    leaves every unit whose receptive field misses the box exactly unchanged (float64), and
    unchanged to within float32 rounding in the float32 model."""
    x, field = locality_view(model, layer, image)
    box = data.draw(boxes(x.shape[-1]), label="box")
    exact = cnn_core.occlusion_diff(model64, x.double(), box, layer)[layer][0]
    check_locality(field, box, exact, atol=0.0)
    rounded = cnn_core.occlusion_diff(model, x, box, layer)[layer][0]
    # float32 convolutions may compute a tile of outputs together (Winograd, blocked GEMM), so a
    # change can leak into neighbours at rounding level: allow 1e-5 of the largest change.
    check_locality(field, box, rounded, atol=1e-5 * float(rounded.abs().max()))


def test_locality_claim_fails_when_a_layer_sees_the_whole_image(zoo, image_tensor):
    """Break: a layer that adds the image-wide mean lets a small box change every unit."""
    model = zoo.get("vgg16")
    field = cnn_core.receptive_field(model, "features.2")
    box = cnn_core.Box(10, 10, 30, 30)
    with global_context(model.features[2]):
        difference = cnn_core.occlusion_diff(model, image_tensor, box, "features.2")["features.2"][0]
    with pytest.raises(AssertionError, match="changes units whose fields miss it"):
        check_locality(field, box, difference, atol=0.0)


@pytest.mark.probes("early")
@given(data=st.data())
def test_early_change_is_the_box_grown_by_the_field_radius(model, model64, layer, image, data):
    """"Early: localized change": at the second conv the changed units are exactly those whose
    field overlaps the box — the box grown by the field's radius, no more, no less (float64)."""
    x, field = locality_view(model, layer, image)
    box = data.draw(boxes(x.shape[-1]), label="box")
    difference = cnn_core.occlusion_diff(model64, x.double(), box, layer)[layer][0]
    assert cnn_core.changed_region(difference) == units_touching_region(field, box)


@pytest.mark.claim("S-deep-change-centred")
def test_deep_change_is_broader_but_still_centred_on_the_box(model, probes, image_tensor, request):
    """"Early: localized change • Deep: broader but still spatially structured": for each of five
    96-px boxes (corners and centre), the deep layer's change covers more of the image than the
    early one's, its centre of mass lies inside the box (to within half the deep layer's unit
    spacing), and units over the box change more than STRUCTURE_CONTRAST times as much as the rest."""
    record(request, deep_structure_verdict(model, probes["early"], probes["deep"], image_tensor))


@pytest.mark.breaks("S-deep-change-centred")
def test_structure_claim_fails_when_the_deep_maps_are_mirrored(zoo, image_tensor):
    """Break: mirrored deep maps keep every value but lose the correspondence with the image."""
    model = zoo.get("vgg16")
    box = cnn_core.Box(20, 20, 90, 90)
    with mirrored(model.features[28]):
        (summary,) = deep_change_summaries(model, "features.2", "features.28", image_tensor, [box])
    with pytest.raises(AssertionError, match="centred at"):
        check_deep_structure(summary, "features.2", "features.28", box)


@pytest.mark.claim("S-occlusion-stays-local")
def test_occlusion_stays_local_in_deep_layers(model, probes, image_tensor, request):
    """"Even deep layers maintain spatial correspondence with the input image!": blanking a corner
    leaves every far unit of the last conv exactly unchanged."""
    record(request, locality_verdict(model, probes["deep"], image_tensor))


@pytest.mark.claim("S-fields-grow-gradually")
def test_receptive_fields_grow_gradually(model, probes, request):
    """"CNNs trade spatial precision for semantic meaning gradually, not all at once": up to the
    last conv, no layer widens the receptive field by more than the rule's factor beyond the
    widest field before it (a 3x3 conv at least doubles only a field narrower than 3 jumps)."""
    record(request, gradual_verdict(model, probes["deep"]))


@pytest.mark.breaks("S-occlusion-stays-local", "S-fields-grow-gradually")
def test_a_vision_transformer_fails_locality_and_gradual_growth(zoo, image_tensor):
    """Break of both claims: after one attention block every token has seen every patch, and the
    field jumps from one 16-pixel patch to the whole image."""
    transformer = zoo.get(TRANSFORMER)
    assert locality_verdict(transformer, TRANSFORMER_PROBE, image_tensor).status == "REFUTED"
    assert gradual_verdict(transformer, TRANSFORMER_PROBE).status == "REFUTED"


# --- learned: class relevance under occlusion (Zeiler & Fergus) -------------------------------

@pytest.mark.learned
@pytest.mark.claim("L5-occluding-the-object-matters")
def test_occluding_the_object_lowers_its_class(subject, claim, request):
    """"This is why Grad-CAM and similar methods work" (Zeiler & Fergus's occlusion test): the drop
    of the model's top class under a sliding grey window falls on the object (rocket, cup, cat's
    face) more than chance, and more than in random initialisations of the architecture."""
    record(request, *subject.verdicts(claim))


@pytest.mark.learned
@pytest.mark.claim("L4-class-structure-grows-gradually")
def test_class_structure_grows_gradually(subject, claim, request):
    """"CNNs trade spatial precision for semantic meaning gradually, not all at once" — the semantic
    half: of the class structure gained from the first stage to the last (same-class images nearer
    in pooled features), the stage steps other than the largest add more than random
    initialisations' do, beyond their spread. The spatial half is S-fields-grow-gradually."""
    record(request, *subject.verdicts(claim))


def test_occlusion_paints_the_mean_grey_for_every_preprocessing(pytestconfig, zoo):
    """"perturbed_tensor[:, :, 50:150, 60:160] = 0  # Black out a region" paints the ImageNet mean
    grey under ImageNet normalisation, and the suite's ``fill="mean"`` paints that same grey for
    every selected model, whatever its own normalisation, and for raw pixels (Tiny VGG's input). A model whose
    files are not fetched is left out: its learned claims say NOT MEASURED, naming the fetch."""
    for name in pytestconfig.stash[RUN_OPTIONS].learned_models:
        if zoo.unavailable(name) is not None:
            continue
        card = cnn_core.model_card(zoo.get(name))
        check_painted_grey(card.normalization, card.label)
    check_painted_grey(cnn_core.UNIT, "raw pixels")


def test_grey_claim_fails_when_the_fill_ignores_the_normalisation(monkeypatch):
    """Break: the fill computed for ImageNet normalisation whatever the model's: in raw pixels it is black."""
    imagenet_fill = cnn_core.images.fill_value
    monkeypatch.setattr(cnn_core.occlusion, "fill_value", lambda fill, like, _normalization: imagenet_fill(fill, like))
    with pytest.raises(AssertionError, match="not the ImageNet mean grey"):
        check_painted_grey(cnn_core.UNIT, "raw pixels")


@pytest.mark.learned
@pytest.mark.claim("L4-neighbour-stages-most-similar")
def test_neighbouring_stages_are_most_similar(subject, claim, request):
    """"CNNs trade spatial precision for semantic meaning gradually, not all at once", with the field's
    instrument (linear CKA, Kornblith et al. 2019): over the photos, each stage's pooled features resemble
    the next stage's more than the first stage's resemble the last's, by more than in random initialisations.
    A second opinion on L4-class-structure-grows-gradually: the matrix says whether the two agree."""
    record(request, *subject.verdicts(claim))
