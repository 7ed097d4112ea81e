"""Code Block 4 — Spatial locality and receptive fields.

"Each neuron in a deep layer only "sees" a portion of the original image — its receptive field.
Deeper neurons have larger receptive fields but still maintain spatial correspondence."
"""
from __future__ import annotations

import copy
import functools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import cnn_core
from cnn_core import Box
from claims.breaks import global_context, mirrored
from claims.matrix import record
from claims.probes import probe_layers
from claims.rules import RULES
from claims.strategies import boxes, few_examples

pytestmark = pytest.mark.structural

NOTEBOOK_BOX = cnn_core.Box(50, 60, 150, 160)  # perturbed_tensor[:, :, 50:150, 60:160] = 0


# --- receptive fields grow ------------------------------------------------------------------

def check_fields_grow(model: nn.Module) -> int:
    checked = 0
    for name, field in cnn_core.receptive_fields(model).items():
        if field.is_global or field.input_field_size is None:
            continue
        module = model.get_submodule(name.partition("@")[0])
        assert field.size >= field.input_field_size, f"{name}: field shrinks from {field.input_field_size} to {field.size}"
        kernel = getattr(module, "kernel_size", 1)
        kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) and min(kernel) > 1:
            assert all(a > b for a, b in zip(field.size, field.input_field_size)), (
                f"{name} ({type(module).__name__}, kernel {kernel}) does not grow the field beyond {field.input_field_size}"
            )
        checked += 1
    return checked


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


# Published values for VGG16 at 224x224 (Araujo, Norris & Sim, "Computing Receptive Fields of
# Convolutional Neural Networks", Distill 2019; also the classic receptive-field tables):
# layer alias -> (receptive field size, effective stride).
VGG16_TEXTBOOK = {
    "conv1_1": (3, 1), "conv1_2": (5, 1), "pool1": (6, 2),
    "conv2_1": (10, 2), "conv2_2": (14, 2), "pool2": (16, 4),
    "conv3_1": (24, 4), "conv3_2": (32, 4), "conv3_3": (40, 4), "pool3": (44, 8),
    "conv4_1": (60, 8), "conv4_2": (76, 8), "conv4_3": (92, 8), "pool4": (100, 16),
    "conv5_1": (132, 16), "conv5_2": (164, 16), "conv5_3": (196, 16), "pool5": (212, 32),
}


def check_textbook_fields(model: nn.Module) -> None:
    for alias, (size, jump) in VGG16_TEXTBOOK.items():
        field = cnn_core.receptive_field(model, alias)
        assert (field.size, field.jump) == ((size, size), (jump, jump)), (
            f"{alias}: field {field.size} with jump {field.jump}, the textbook says {size} with jump {jump}"
        )


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


# The size the notebook feeds. Fields wider than it (ResNet-18's layer4: 435 pixels) are compared
# clipped to the image, which also checks how padding cuts the corner unit's field.
EMPIRICAL_CANVAS = (224, 224)


@functools.lru_cache(maxsize=16)
def analytic_table(model: nn.Module) -> dict[str, cnn_core.ReceptiveField]:
    return cnn_core.receptive_fields(model, EMPIRICAL_CANVAS)


def check_empirical_matches_analytic(model: nn.Module, layer: str, table) -> None:
    field = table[layer]
    for unit in ((field.output_size[0] // 2, field.output_size[1] // 2), (0, 0)):
        measured = cnn_core.empirical_receptive_field(model, layer, EMPIRICAL_CANVAS, unit=unit)
        assert measured == field.box(*unit), f"{layer} unit {unit}: gradient support {measured}, analytic {field.box(*unit)}"


@pytest.mark.probes("spatial")
def test_empirical_receptive_field_equals_analytic(model, layer):
    """"Each neuron ... only 'sees' a portion of the original image": the pixels whose gradient
    reaches a unit (on a positive, linear twin, so none cancels) are exactly its analytic field,
    for the centre unit and for the corner unit, whose field is cut by the border."""
    check_empirical_matches_analytic(model, layer, analytic_table(model))


def test_field_agreement_fails_when_the_analytic_ignores_padding(zoo, monkeypatch):
    """Break: an analytic computation that forgets padding must disagree with the measurement."""
    model = zoo.get("vgg16")
    monkeypatch.setattr(cnn_core.receptive, "_conv_padding", lambda module: (0, 0))
    table = cnn_core.receptive_fields(model, EMPIRICAL_CANVAS)
    with pytest.raises(AssertionError, match="gradient support"):
        check_empirical_matches_analytic(model, "features.2", table)


# --- occlusion is local ---------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def float64_copy(model: nn.Module, layer: str) -> nn.Module:
    """The model cut after ``layer``, in float64 (the copy holds only what that layer needs)."""
    return copy.deepcopy(cnn_core.tracing.truncate(model, layer)).double()


def units_outside(field: cnn_core.ReceptiveField, box: cnn_core.Box, difference: torch.Tensor) -> torch.Tensor:
    """The difference map with every unit whose field overlaps ``box`` set to zero."""
    rows, cols = field.units_touching(box)
    outside = difference.clone()
    outside[rows, cols] = 0
    return outside


def check_locality(field, box, difference: torch.Tensor, atol: float) -> None:
    leak = float(units_outside(field, box, difference).abs().max())
    assert leak <= atol, f"occluding {box} changes units whose fields miss it, by up to {leak:.3g}"


def locality_view(model, layer: str, image) -> tuple[torch.Tensor, cnn_core.ReceptiveField]:
    """The photo at the smallest size (64 to 224 px) where some units' fields can miss a box:
    twice the layer's field. Early layers need only 64 px, which keeps float64 cheap."""
    size = min(224, max(64, 2 * cnn_core.receptive_field(model, layer).size[0]))
    x = cnn_core.preprocess(image, size=size).to(next(model.parameters()).device)
    return x, cnn_core.receptive_field(model, layer, input_size=(size, size))


@few_examples()
@given(data=st.data())
def test_occlusion_changes_only_units_whose_field_overlaps_the_box(model, layer, image, data):
    """"Perturbations affect corresponding spatial locations in activations": blanking a box
    leaves every unit whose receptive field misses the box exactly unchanged (float64), and
    unchanged to within float32 rounding in the float32 model."""
    x, field = locality_view(model, layer, image)
    box = data.draw(boxes(x.shape[-1]), label="box")
    exact = cnn_core.occlusion_diff(float64_copy(model, layer), x.double(), box, layer)[layer][0]
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
def test_early_change_is_the_box_grown_by_the_field_radius(model, layer, image, data):
    """"Early: localized change": at the second conv the changed units are exactly those whose
    field overlaps the box — the box grown by the field's radius, no more, no less (float64)."""
    x, field = locality_view(model, layer, image)
    box = data.draw(boxes(x.shape[-1]), label="box")
    difference = cnn_core.occlusion_diff(float64_copy(model, layer), x.double(), box, layer)[layer][0]
    rows, cols = field.units_touching(box)
    expected = cnn_core.Box(rows.start, cols.start, rows.stop, cols.stop)
    assert cnn_core.changed_region(difference) == expected


def deep_change_summary(model, early: str, deep: str, x, box) -> dict:
    differences = cnn_core.occlusion_diff(model, x, box, [early, deep])
    summary = {}
    for name in (early, deep):
        field = cnn_core.receptive_field(model, name)
        difference = differences[name][0]
        rows = field.start[0] + field.jump[0] * torch.arange(difference.shape[0], dtype=torch.float64)
        cols = field.start[1] + field.jump[1] * torch.arange(difference.shape[1], dtype=torch.float64)
        region = cnn_core.changed_region(difference)
        covered = [field.box(r, c) for r in (region.top, region.bottom - 1) for c in (region.left, region.right - 1)]
        inside = ((rows >= box.top - 0.5) & (rows <= box.bottom - 0.5)).view(-1, 1) & (
            (cols >= box.left - 0.5) & (cols <= box.right - 0.5)).view(1, -1)
        difference = difference.double().cpu()
        summary[name] = {
            "jump": field.jump[0],
            "area": (max(b.bottom for b in covered) - min(b.top for b in covered))
                    * (max(b.right for b in covered) - min(b.left for b in covered)),
            "centre": cnn_core.centre_of_mass(difference, rows, cols),
            "contrast": float(difference[inside].mean() / difference[~inside].mean())
                        if inside.any() and (~inside).any() else float("inf"),
        }
    return summary


# "Still spatially structured": units over the box change more than the rest, no more is claimed.
# Measured on the cat over 12 random 64-128 px boxes: VGG16 ImageNet features 2.5-6.3, MobileNetV2
# ImageNet 1.5-3.0 (hypothesis found a box at 1.50), random MobileNetV2 2.5-4.8, random ResNet18 1.9-2.9.
STRUCTURE_CONTRAST = 1.0


def check_deep_structure(summary: dict, early: str, deep: str, box) -> None:
    assert summary[deep]["area"] > summary[early]["area"], "the deep change is not broader than the early one"
    # The deep map samples the image every `jump` pixels: its centre of mass is located to within
    # half a jump, so the box is widened by that much.
    slack = summary[deep]["jump"] // 2
    widened = Box(box.top - slack, box.left - slack, box.bottom + slack, box.right + slack)
    assert widened.contains_point(*summary[deep]["centre"]), (
        f"the deep change is centred at {summary[deep]['centre']}, outside {box} widened by {slack}"
    )
    assert summary[deep]["contrast"] > STRUCTURE_CONTRAST, (
        f"units over the box change only {summary[deep]['contrast']:.2f}x more than the others"
    )


def deep_probes(model_name: str) -> tuple[str, str]:
    return probe_layers(model_name, "early")[0], probe_layers(model_name, "deep")[0]


@few_examples()
@given(box=boxes(224, min_side=64, max_side=128))
def test_deep_change_is_broader_but_still_centred_on_the_box(model, model_name, image_tensor, box):
    """"Early: localized change • Deep: broader but still spatially structured": the deep layer's
    change covers more of the image than the early one's, its centre of mass lies inside the box
    (to within half the deep layer's unit spacing), and units over the box change more than
    STRUCTURE_CONTRAST times as much as the rest."""
    early, deep = deep_probes(model_name)
    check_deep_structure(deep_change_summary(model, early, deep, image_tensor, box), early, deep, box)


def test_structure_claim_fails_when_the_deep_maps_are_mirrored(zoo, image_tensor):
    """Break: mirrored deep maps keep every value but lose the correspondence with the image."""
    model = zoo.get("vgg16")
    box = cnn_core.Box(20, 20, 90, 90)
    with mirrored(model.features[28]):
        summary = deep_change_summary(model, "features.2", "features.28", image_tensor, box)
    with pytest.raises(AssertionError, match="centred at"):
        check_deep_structure(summary, "features.2", "features.28", box)


# --- the claims matrix: locality and gradual growth, which a transformer must fail -----------

TRANSFORMER = "vit_b_16"  # the deliberate break of both claims: attention mixes every patch
TRANSFORMER_PROBE = "encoder.layers.encoder_layer_0"


def unit_grid(model: nn.Module, layer: str, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A layer's output as [N, C, H, W] maps, with each unit's centre in input pixels (rows, columns).

    Conv maps use their receptive fields; transformer tokens [N, 1 + g*g, D] are laid back on their
    g x g patch grid (the class token dropped).
    """
    size = output.shape
    if len(size) == 4:
        field = cnn_core.receptive_field(model, layer)
        rows = field.start[0] + field.jump[0] * torch.arange(size[2], dtype=torch.float64)
        cols = field.start[1] + field.jump[1] * torch.arange(size[3], dtype=torch.float64)
        return output, rows, cols
    grid = int(round((size[1] - 1) ** 0.5))
    patch = cnn_core.models.input_size_of(model)[0] / grid
    centres = patch * torch.arange(grid, dtype=torch.float64) + (patch - 1) / 2
    return output[:, 1:].reshape(size[0], grid, grid, size[2]).permute(0, 3, 1, 2), centres, centres


def far_units_changed(model: nn.Module, probe: str, x: torch.Tensor) -> tuple[float, int]:
    """Blank a corner box (an eighth of the side); the fraction of far units (centre at least 0.6 of
    the side away, along rows or columns) whose activation changed at all, in float64."""
    size = x.shape[-1]
    box = Box(0, 0, size // 8, size // 8)
    model64 = float64_copy(model, probe)
    x = x[:1].double()
    both = torch.cat([x, cnn_core.occlude(x, box, "mean", cnn_core.models.normalization_of(model))])
    output = cnn_core.capture(model64, both, probe)[probe]
    grid, rows, cols = unit_grid(model, probe, output)
    changed = (grid[0] != grid[1]).any(dim=0)
    far = (rows.view(-1, 1) >= 0.6 * size) | (cols.view(1, -1) >= 0.6 * size)
    return float(changed[far].double().mean()), int(far.sum())


def locality_verdict(model: nn.Module, probe: str, x: torch.Tensor):
    fraction, far = far_units_changed(model, probe, x)
    return RULES["S-occlusion-stays-local"].judge(cnn_core.model_card(model).label, fraction,
                                                  detail=f"{far} far units at {probe}")


def test_occlusion_stays_local_in_deep_layers(model, model_name, image_tensor, request):
    """"Even deep layers maintain spatial correspondence with the input image!": blanking a corner
    leaves every far unit of the last conv exactly unchanged."""
    record(request, locality_verdict(model, deep_probes(model_name)[1], image_tensor))


def largest_field_jump(model: nn.Module, probe: str) -> tuple[float, str]:
    """The largest factor by which one layer widens the receptive field beyond the widest so far."""
    widest, largest, where = None, 1.0, ""
    for name, field in cnn_core.receptive_fields(model).items():
        if field.output_size is None and not field.is_global:
            continue
        if widest is not None and field.size[0] / widest > largest:
            largest, where = field.size[0] / widest, name
        widest = max(widest or 0, field.size[0])
        if name == probe:
            break
    return largest, where


def gradual_verdict(model: nn.Module, probe: str):
    factor, where = largest_field_jump(model, probe)
    return RULES["S-fields-grow-gradually"].judge(cnn_core.model_card(model).label, factor,
                                                  detail=f"largest jump at {where}")


def test_receptive_fields_grow_gradually(model, model_name, request):
    """"CNNs trade spatial precision for semantic meaning gradually, not all at once": up to the
    last conv, no layer widens the receptive field by more than the rule's factor beyond the
    widest field before it (a 3x3 conv at least doubles only a field narrower than 3 jumps)."""
    record(request, gradual_verdict(model, deep_probes(model_name)[1]))


def test_a_vision_transformer_fails_locality_and_gradual_growth(zoo, image_tensor):
    """Break of both claims: after one attention block every token has seen every patch, and the
    field jumps from one 16-pixel patch to the whole image."""
    transformer = zoo.get(TRANSFORMER)
    assert locality_verdict(transformer, TRANSFORMER_PROBE, image_tensor).status == "REFUTED"
    assert gradual_verdict(transformer, TRANSFORMER_PROBE).status == "REFUTED"


# --- learned: class relevance under occlusion (Zeiler & Fergus) -------------------------------

@pytest.mark.learned
def test_occluding_the_object_lowers_its_class(subject, request):
    """"This is why Grad-CAM and similar methods work" (Zeiler & Fergus's occlusion test): the drop
    of the model's top class under a sliding grey window falls on the object (rocket, cup, cat's
    face) more than chance, and more than in random initialisations of the architecture."""
    record(request, *subject.verdicts("L5-occluding-the-object-matters"))
