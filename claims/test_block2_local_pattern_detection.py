"""Code Block 2 — Convolution as local pattern detection.

"Each filter is a small `3×3` (or `5×5`) pattern that slides across the image. When the filter
encounters a matching pattern, it produces a high activation. Same filter, different
locations → weight sharing (efficiency)."

The learned claims below are measured on trained models and their random twins, and checked
against the claims matrix (claims/expectations.toml).
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cnn_core
from claims.judging.expectations import record
from claims.judging.probes import depth_probes
from claims.judging.structural import (
    SHIFT_UNITS,
    check_equivariance,
    check_multiple_locations,
    check_weight_sharing,
    plant_and_find,
    plantable_units,
)
from claims.tools.breaks import position_dependent, position_scaled, single_window
from claims.tools.strategies import few_examples

pytestmark = [pytest.mark.structural, pytest.mark.block("2")]


@pytest.mark.probes("early", "deep-unpadded")
@few_examples()
@given(shift=st.tuples(st.integers(-SHIFT_UNITS, SHIFT_UNITS), st.integers(-SHIFT_UNITS, SHIFT_UNITS)))
def test_shifting_the_input_shifts_the_maps(model, layer, image, shift):
    """"Same filter, different locations → weight sharing": moving the image by whole units of a
    layer's stride moves that layer's maps by the same number of units, away from the borders —
    at the second conv and at the deepest conv whose field fits in the model's input."""
    check_equivariance(model, layer, image, shift, rtol=1e-4, atol=1e-5)


def test_equivariance_claim_fails_without_weight_sharing(zoo, image):
    """Break: a position-dependent term (unshared weights) must make the claim fail."""
    model = zoo.get("vgg16")
    with position_dependent(model.features[2], strength=1.0), pytest.raises(AssertionError):
        check_equivariance(model, "features.2", image, (1, 2), rtol=1e-4, atol=1e-5)


@given(data=st.data())
def test_planted_filter_is_found_where_it_was_planted(model, data):
    """"When the filter encounters a matching pattern, it produces a high activation": a copy of
    a first-layer filter planted anywhere in faint noise is the peak of that filter's map."""
    rows, cols = plantable_units(model)
    channel = data.draw(st.integers(0, model.get_submodule(cnn_core.first_conv(model)).out_channels - 1), label="channel")
    unit = (data.draw(st.sampled_from(rows), label="row"), data.draw(st.sampled_from(cols), label="col"))
    assert plant_and_find(model, channel, unit) == unit


def test_pattern_claim_fails_without_weight_sharing(zoo):
    """Break: with a position-dependent term the peak drifts away from the planted pattern."""
    model = zoo.get("vgg16")
    # The ramp is measured in units of the planted filter's own peak response (its norm), so that
    # it outweighs the pattern whatever the weights' scale (ImageNet's conv1_1 norms reach ~100).
    peak = float(model.features[0].weight[0].detach().norm())
    with position_dependent(model.features[0], strength=10.0 * peak):
        assert plant_and_find(model, channel=0, unit=(10, 10)) != (10, 10)


def test_one_filter_is_shared_by_every_position(model):
    """"Same filter, different locations → weight sharing (efficiency)": the first conv's map from
    input to output, over 8x8 positions, uses no more distinct numbers than the conv has weights
    (an unshared layer would need a set per position: 50,176 sets at 224x224). Exact in float64."""
    path = cnn_core.first_conv(model)
    check_weight_sharing(model.get_submodule(path), model.get_submodule(path).in_channels)


def test_sharing_claim_fails_for_a_locally_connected_layer(zoo):
    """Break: a gain that changes with position makes every position use its own copy of the filter."""
    conv = zoo.get("vgg16").features[0]
    with position_scaled(conv, strength=0.5), pytest.raises(AssertionError, match="do not share one filter"):
        check_weight_sharing(conv, 3)


def test_the_same_filter_fires_in_multiple_places(model, image_tensor):
    """"Same filter activates in MULTIPLE locations": at the early probe (VGG16's conv1_2, the
    notebook's ``features[2]``), most channels exceed half their maximum in two or more separate
    regions of the photo."""
    early = depth_probes(model)["early"]
    check_multiple_locations(cnn_core.capture(model, image_tensor, early)[early][0])


def test_multiple_places_claim_fails_when_a_filter_may_fire_once(zoo, image_tensor):
    """Break: maps zeroed outside one 2x2 window can fire in one place only."""
    model = zoo.get("vgg16")
    with single_window(model.features[2], box_side=2), pytest.raises(AssertionError, match="two or more separate"):
        check_multiple_locations(cnn_core.capture(model, image_tensor, "features.2")["features.2"][0])


# --- learned: what training puts into the filters (claims matrix, against random inits) -------

@pytest.mark.learned
@pytest.mark.claim("L1-filters-detect-edges")
def test_first_layer_filters_detect_edges(subject, claim, request):
    """"Each 3×3 filter detects a specific pattern (edge direction, color gradient, etc.)" — edges:
    the median first-layer filter puts more of its energy into oriented first-derivative (edge)
    structure than random initialisations of the architecture do, beyond their spread."""
    record(request, *subject.verdicts(claim))


@pytest.mark.learned
@pytest.mark.claim("L1-filters-detect-colours")
def test_first_layer_filters_detect_colours(subject, claim, request):
    """"... color gradient, etc.": the most colour-selective tenth of the first-layer filters put
    more of their energy into colour contrast than random initialisations' do, beyond their spread."""
    record(request, *subject.verdicts(claim))


@pytest.mark.learned
@pytest.mark.claim("L2-maps-show-where-edges-are")
def test_activation_maps_show_where_edges_are(subject, claim, request):
    """"The activation map shows WHERE that pattern appears in the image": the edge-like filters'
    response strength follows the photos' edge strength more closely than random initialisations'."""
    record(request, *subject.verdicts(claim))


@pytest.mark.learned
@pytest.mark.claim("L1-early-probe-detects-edges")
def test_early_probe_filters_detect_edges(subject, claim, request):
    """"Each 3×3 filter detects a specific pattern (edge direction, ...)" one conv deeper, at the
    notebook's early probe (VGG16's conv1_2): its median filter puts more of its energy into edge
    structure than random initialisations' do, beyond their spread."""
    record(request, *subject.verdicts(claim))
