"""Code Block 2 — Convolution as local pattern detection.

"Each filter is a small `3×3` (or `5×5`) pattern that slides across the image. When the filter
encounters a matching pattern, it produces a high activation. Same filter, different
locations → weight sharing (efficiency)."

The learned claims below are measured on trained models and their random twins, and checked
against the claims matrix (claims/expectations.toml).
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import cnn_core
from claims.breaks import position_dependent
from claims.matrix import record
from claims.strategies import few_examples

pytestmark = pytest.mark.structural

SHIFT_UNITS = 2  # shifts of up to 2 units of the probed layer, in each direction


def interior_units(field: cnn_core.ReceptiveField, axis: int) -> range:
    """Units whose whole field lies inside the image: they never see the zero padding."""
    first, span, jump = field.first[axis], field.size[axis], field.jump[axis]
    begin = -(first // jump) if first < 0 else 0
    end = (field.input_size[axis] - span - first) // jump + 1
    return range(begin, min(max(begin, end), field.output_size[axis]))


def shifted_pair(image: torch.Tensor, dy: int, dx: int, crop: int) -> torch.Tensor:
    """Two ``crop``-pixel views of one larger image: the second is the first moved by (dy, dx) pixels."""
    margin = (image.shape[-1] - crop) // 2
    first = image[..., margin:margin + crop, margin:margin + crop]
    second = image[..., margin + dy:margin + dy + crop, margin + dx:margin + dx + crop]
    return torch.cat([first, second])


def check_equivariance(model, layer, image, unit_shift, rtol, atol) -> None:
    # The smallest view in which the layer has units that never see padding, whatever the shift.
    natural = cnn_core.receptive_field(model, layer)
    jump, size = natural.jump[0], natural.size[0]
    crop = max(64, size + (2 * SHIFT_UNITS + 1) * jump)
    field = cnn_core.receptive_field(model, layer, input_size=(crop, crop))
    photo = cnn_core.preprocess(image, size=crop + 2 * SHIFT_UNITS * jump).to(next(model.parameters()).device)
    (uy, ux), (jy, jx) = unit_shift, field.jump
    maps = cnn_core.capture(model, shifted_pair(photo, uy * jy, ux * jx, crop), layer)[layer]
    rows = [r for r in interior_units(field, 0) if r + uy in interior_units(field, 0)]
    cols = [c for c in interior_units(field, 1) if c + ux in interior_units(field, 1)]
    assert rows and cols, f"{layer} has no interior units in a {crop}px view: its field is {field.size}"
    moved = maps[1][:, rows][:, :, cols]
    original = maps[0][:, [r + uy for r in rows]][:, :, [c + ux for c in cols]]
    # Same filters on the same pixels: equal up to float32 summation order (the conv kernels
    # tile positions differently), so the tolerance is a few ulps of the activations' scale.
    torch.testing.assert_close(moved, original, rtol=rtol, atol=atol * float(original.abs().max()))


@few_examples()
@given(shift=st.tuples(st.integers(-SHIFT_UNITS, SHIFT_UNITS), st.integers(-SHIFT_UNITS, SHIFT_UNITS)))
def test_shifting_the_input_shifts_the_maps(model, layer, image, shift):
    """"Same filter, different locations → weight sharing": moving the image by whole units of a
    layer's stride moves that layer's maps by the same number of units, away from the borders."""
    check_equivariance(model, layer, image, shift, rtol=1e-4, atol=1e-5)


def test_equivariance_claim_fails_without_weight_sharing(zoo, image):
    """Break: a position-dependent term (unshared weights) must make the claim fail."""
    model = zoo.get("vgg16")
    with position_dependent(model.features[2], strength=1.0), pytest.raises(AssertionError):
        check_equivariance(model, "features.2", image, (1, 2), rtol=1e-4, atol=1e-5)


def plant_and_find(model, channel: int, unit: tuple[int, int], size: int = 96) -> tuple[int, int]:
    """Plant filter ``channel`` of the first conv in faint noise; return where its map peaks."""
    path = cnn_core.first_conv(model)
    field = cnn_core.receptive_field(model, path, input_size=(size, size))
    weight = model.get_submodule(path).weight[channel].detach()
    generator = torch.Generator().manual_seed(channel)
    noise = 1e-3 * torch.randn(1, weight.shape[0], size, size, generator=generator).to(weight)
    box = field.box(*unit, clip=False)
    noise[0, :, box.slices[0], box.slices[1]] += weight / weight.norm()
    response = cnn_core.capture(model, noise, path)[path][0, channel]
    return divmod(int(torch.argmax(response)), response.shape[1])


def plantable_units(model, size: int = 96) -> tuple[range, range]:
    path = cnn_core.first_conv(model)
    field = cnn_core.receptive_field(model, path, input_size=(size, size))
    return interior_units(field, 0), interior_units(field, 1)


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


# --- learned: what training puts into the filters (claims matrix, against random inits) -------

@pytest.mark.learned
def test_first_layer_filters_detect_edges(subject, request):
    """"Each 3×3 filter detects a specific pattern (edge direction, color gradient, etc.)" — edges:
    the median first-layer filter puts more of its energy into oriented first-derivative (edge)
    structure than random initialisations of the architecture do, beyond their spread."""
    record(request, *subject.verdicts("L1-filters-detect-edges"))


@pytest.mark.learned
def test_first_layer_filters_detect_colours(subject, request):
    """"... color gradient, etc.": the most colour-selective tenth of the first-layer filters put
    more of their energy into colour contrast than random initialisations' do, beyond their spread."""
    record(request, *subject.verdicts("L1-filters-detect-colours"))


@pytest.mark.learned
def test_activation_maps_show_where_edges_are(subject, request):
    """"The activation map shows WHERE that pattern appears in the image": the edge-like filters'
    response strength follows the photos' edge strength more closely than random initialisations'."""
    record(request, *subject.verdicts("L2-maps-show-where-edges-are"))
