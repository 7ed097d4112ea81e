"""The measurements and checks behind the structural claims, one section per notebook block.

Each ``check_*`` asserts one claim on one model (its message says what failed); the other
functions measure what a claim or its deliberate break needs. The test modules state the claims.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from types import MappingProxyType

import numpy as np
import skimage.measure
import torch
from PIL import Image
from torch import nn

import cnn_core
from claims.judging import measures
from claims.judging.notebook import NOTEBOOK_PROBES, resize_and_crop_corner
from claims.judging.probes import spatial_leaves
from claims.judging.rules import RULES, SubjectId, Verdict
from cnn_core import Box
from cnn_core.geometry import as_pair

# === block1_image_to_activations ============================================================

IMAGE_MODES = ("RGB", "L", "1", "P", "RGBA", "LA", "CMYK", "I;16", "I", "F")


def random_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode in ("I;16", "I"):
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16)).convert(mode)
    if mode == "F":
        return Image.fromarray(rng.random((height, width), dtype=np.float32) * 255)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)


def check_image_tensor(x: torch.Tensor) -> None:
    assert tuple(x.shape) == (1, 3, 224, 224), f"preprocessed image has shape {list(x.shape)}, not [1, 3, 224, 224]"
    assert x.dtype == torch.float32
    assert torch.isfinite(x).all()


def check_first_conv_maps(model: nn.Module, x: torch.Tensor) -> None:
    path = cnn_core.first_conv(model)
    maps = cnn_core.capture(model, x, path)[path]
    weight = model.get_submodule(path).weight
    assert tuple(weight.shape) == (64, 3, 3, 3), f"{path} has filters of shape {list(weight.shape)}, not [64, 3, 3, 3]"
    assert tuple(maps.shape) == (x.shape[0], 64, *x.shape[2:]), (
        f"{path} turns {list(x.shape)} into {list(maps.shape)}, not 64 maps of the input's size"
    )


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """The convolution arithmetic (Dumoulin & Visin, 2016), written out independently of torch."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_conv_arithmetic(model: nn.Module) -> int:
    checked = 0
    for layer in cnn_core.layers(model):
        module = model.get_submodule(layer.path.partition("@")[0])
        if not isinstance(module, nn.Conv2d) or isinstance(module.padding, str):
            continue
        if cnn_core.padding.pads_from_input(module):
            # TensorFlow's "SAME" (timm's Conv2dSame): ceil(n / stride) units, whatever the kernel.
            expected = tuple(-(-size // stride) for size, stride in zip(layer.input_shape[2:], module.stride))
        else:
            expected = tuple(
                conv_output_size(size, *params) for size, params in
                zip(layer.input_shape[2:], zip(module.kernel_size, module.stride, module.padding, module.dilation))
            )
        assert layer.output_shape[2:] == expected, (
            f"{layer.path}: {layer.input_shape[2:]} -> {layer.output_shape[2:]}, the arithmetic says {expected}"
        )
        checked += 1
    return checked


def notebook_transform_by_hand(image: Image.Image, size: int = 224) -> torch.Tensor:
    """The notebook's ``Resize(224), CenterCrop(224), ToTensor(), Normalize(ImageNet)`` computed with
    PIL and numpy alone, in float64, from torchvision's documented arithmetic: the shorter side to
    ``size`` (the longer truncated), PIL's bilinear resize, the crop's corner at round((side - size) / 2),
    RGB bytes / 255 in channel order R, G, B, then (x - mean) / std per channel."""
    rgb = image.convert("RGB")
    resized, left, top = resize_and_crop_corner(rgb.size, size)
    rgb = rgb.resize(resized, Image.BILINEAR)
    pixels = np.asarray(rgb.crop((left, top, left + size, top + size)), dtype=np.float64) / 255.0
    normalised = (pixels - np.array(cnn_core.IMAGENET_MEAN)) / np.array(cnn_core.IMAGENET_STD)
    return torch.from_numpy(normalised.transpose(2, 0, 1).copy()).unsqueeze(0)


def check_top1(model: nn.Module, photos: torch.Tensor, labels: torch.Tensor) -> None:
    """The model classifies the sample's photos at least as well as its published ImageNet-val top-1.

    The bound is the published figure itself: the sample's photos are easier than ImageNet's
    validation set (one clear photo per class: MobileNetV2 scores 82.3% on all 1000 against its
    published 71.9%), and a binomial sd over 200 photos is under 3 points, so a correctly loaded
    and preprocessed model clears it by far, while BGR order (MobileNetV2: 67.6% on 250 photos) and
    no normalisation (56.0%) fall below it."""
    card = cnn_core.model_card(model)
    accuracy = measures.top1_accuracy(model, photos, labels)
    assert accuracy >= card.published_top1, (
        f"{card.label} classifies {accuracy:.1%} of {len(photos)} sample photos correctly, below its published "
        f"ImageNet top-1 {card.published_top1:.1%}: its weights or preprocessing are not what they were trained with")


def check_notebook_transform(x: torch.Tensor, image: Image.Image) -> None:
    expected = notebook_transform_by_hand(image)
    assert tuple(x.shape) == tuple(expected.shape), f"tensor {list(x.shape)}, the notebook's {list(expected.shape)}"
    # float32 ToTensor and Normalize against float64 by hand: values up to 2.7, float32 spacing 2.4e-7.
    error = (x.double().cpu() - expected).abs().amax(dim=(0, 2, 3))
    assert float(error.max()) <= 1e-5, f"per channel (R, G, B) the tensor differs from the notebook's transform by up to {error.tolist()}"


# === block2_local_pattern_detection ============================================================

SHIFT_UNITS = 2  # shifts of up to 2 units of the probed layer, in each direction


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
    crop = aligned_view(model, layer, max(64, size + (2 * SHIFT_UNITS + 1) * jump))
    field = cnn_core.receptive_field(model, layer, input_size=(crop, crop))
    photo = cnn_core.preprocess(image, size=crop + 2 * SHIFT_UNITS * jump).to(next(model.parameters()).device)
    (uy, ux), (jy, jx) = unit_shift, field.jump
    maps = cnn_core.capture(model, shifted_pair(photo, uy * jy, ux * jx, crop), layer)[layer]
    rows = [r for r in field.interior_units(0) if r + uy in field.interior_units(0)]
    cols = [c for c in field.interior_units(1) if c + ux in field.interior_units(1)]
    assert rows and cols, f"{layer} has no interior units in a {crop}px view: its field is {field.size}"
    moved = maps[1][:, rows][:, :, cols]
    original = maps[0][:, [r + uy for r in rows]][:, :, [c + ux for c in cols]]
    # Same filters on the same pixels: equal up to float32 summation order (the conv kernels
    # tile positions differently), so the tolerance is a few ulps of the activations' scale.
    torch.testing.assert_close(moved, original, rtol=rtol, atol=atol * float(original.abs().max()))


def aligned_view(model, layer: str, side: int) -> int:
    """``side`` rounded up to a multiple of the largest stride up to ``layer``: a model that adds
    maps of several resolutions (HRNet's fuse layers) can only run sizes that divide evenly."""
    stride = 1
    for name, field in cnn_core.receptive_fields(model).items():
        if not field.is_global:
            stride = max(stride, field.jump[0])
        if name == layer:
            break
    return -(-side // stride) * stride


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
    return field.interior_units(0), field.interior_units(1)


def jacobian_side(layer: nn.Module) -> int:
    """8 pixels, or two kernels where a kernel is larger (a ViT's 16x16 patch embedding)."""
    return max(8, 2 * max(as_pair(layer.kernel_size)))


def jacobian_values(layer: nn.Module, in_channels: int, side: int = 8) -> tuple[int, int]:
    """(distinct non-zero entries of the layer's input-to-output Jacobian on a ``side`` x ``side``
    input, the layer's weight count), in float64. A conv uses its own weights at every position,
    so the Jacobian holds no more distinct values than it has weights; an unshared (locally
    connected) layer would hold a set of them per position."""
    twin = copy.deepcopy(layer).double()
    x = torch.rand(1, in_channels, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    jacobian = torch.autograd.functional.jacobian(twin, x, vectorize=True)
    return int(jacobian[jacobian != 0].unique().numel()), twin.weight.numel()


def check_weight_sharing(layer: nn.Module, in_channels: int) -> None:
    side = jacobian_side(layer)
    distinct, weights = jacobian_values(layer, in_channels, side)
    assert distinct <= weights, (f"the layer uses {distinct} distinct weights over {side}x{side} pixels, more than its "
                                 f"{weights}: its positions do not share one filter")


def firing_regions(maps: torch.Tensor, level: float = 0.5) -> list[int]:
    """Per channel of ``[C, H, W]`` maps whose maximum is positive: the number of separate
    (8-connected) regions where it exceeds ``level`` times that maximum."""
    counts = []
    for channel in maps.double().cpu():
        peak = float(channel.max())
        if peak > 0:
            counts.append(int(skimage.measure.label((channel > level * peak).numpy(), connectivity=2).max()))
    return counts


def check_multiple_locations(maps: torch.Tensor) -> None:
    counts = firing_regions(maps)
    several = sum(count >= 2 for count in counts)
    # "The same filter activates in MULTIPLE locations": most filters, not every one, fire in two or more
    # places. Share measured on the cat: VGG16 ImageNet conv1_2 0.953, MobileNetV2 ImageNet 0.778,
    # random VGG16, MobileNetV2 and ResNet18 1.0, random AlexNet 0.973.
    assert several > len(counts) / 2, (f"only {several} of {len(counts)} channels fire in two or more separate "
                                       f"places (above half their maximum)")


# === block3_depth ============================================================


def channels_first_shape(model: nn.Module, layer: cnn_core.Layer) -> tuple[int, int, int, int]:
    """``layer``'s output shape as [N, C, H, W], also where it keeps channels last (ConvNeXt's and
    Swin's LayerNorm and MLP layers: [N, H, W, C])."""
    field = cnn_core.receptive_fields(model).get(layer.path)
    if field is None or field.spatial_dims == (2, 3):
        return layer.output_shape
    n, *rest = layer.output_shape
    (channel,) = {1, 2, 3} - set(field.spatial_dims)
    return (n, rest[channel - 1], *(rest[d - 1] for d in field.spatial_dims))


def depth_violations(model: nn.Module) -> list[str]:
    """Every step along the network where channels fall or resolution grows."""
    spatial = spatial_leaves(cnn_core.layers(model))
    if len(spatial) < 2:  # a ViT: its patch embedding, then tokens; no maps to follow with depth
        raise measures.NotMeasurable(f"{spatial[0].path if spatial else 'no layer'} is the model's only layer with "
                                     "a spatial map: no depth along which channels or resolution could change")
    shapes = [channels_first_shape(model, layer) for layer in spatial]
    violations = []
    for before, after, (_, c0, h0, w0), (_, c1, h1, w1) in zip(spatial, spatial[1:], shapes, shapes[1:]):
        if c1 < c0:
            violations.append(f"channels fall from {c0} ({before.path}) to {c1} ({after.path})")
        if h1 > h0 or w1 > w0:
            violations.append(f"resolution grows from {h0}x{w0} ({before.path}) to {h1}x{w1} ({after.path})")
    return violations


def check_probe_shapes(model: nn.Module, x) -> None:
    maps = cnn_core.capture(model, x, [probe.layer for probe in NOTEBOOK_PROBES])
    for probe in NOTEBOOK_PROBES:
        shape = list(maps[probe.layer].shape)
        assert tuple(shape) == probe.printed_shape, f"{probe.comment!r}: {probe.layer} gives {shape}"


# === block4_spatial_locality ============================================================


# --- receptive fields grow ------------------------------------------------------------------

def check_fields_grow(model: nn.Module) -> int:
    checked = 0
    for name, field in cnn_core.receptive_fields(model).items():
        if field.is_global or field.input_field_size is None:
            continue
        module = model.get_submodule(name.partition("@")[0])
        assert field.size >= field.input_field_size, f"{name}: field shrinks from {field.input_field_size} to {field.size}"
        kernel = as_pair(getattr(module, "kernel_size", 1))
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) and min(kernel) > 1:
            assert all(a > b for a, b in zip(field.size, field.input_field_size)), (
                f"{name} ({type(module).__name__}, kernel {kernel}) does not grow the field beyond {field.input_field_size}"
            )
        checked += 1
    return checked


# Published values for VGG16 at 224x224 (Araujo, Norris & Sim, "Computing Receptive Fields of
# Convolutional Neural Networks", Distill 2019; also the classic receptive-field tables):
# layer alias -> (receptive field size, effective stride).
VGG16_TEXTBOOK = MappingProxyType({
    "conv1_1": (3, 1), "conv1_2": (5, 1), "pool1": (6, 2),
    "conv2_1": (10, 2), "conv2_2": (14, 2), "pool2": (16, 4),
    "conv3_1": (24, 4), "conv3_2": (32, 4), "conv3_3": (40, 4), "pool3": (44, 8),
    "conv4_1": (60, 8), "conv4_2": (76, 8), "conv4_3": (92, 8), "pool4": (100, 16),
    "conv5_1": (132, 16), "conv5_2": (164, 16), "conv5_3": (196, 16), "pool5": (212, 32),
})


def check_textbook_fields(model: nn.Module) -> None:
    for alias, (size, jump) in VGG16_TEXTBOOK.items():
        field = cnn_core.receptive_field(model, alias)
        assert (field.size, field.jump) == ((size, size), (jump, jump)), (
            f"{alias}: field {field.size} with jump {field.jump}, the textbook says {size} with jump {jump}"
        )


# The size the notebook feeds. Fields wider than it (ResNet-18's layer4: 435 pixels) are compared
# clipped to the image, which also checks how padding cuts the corner unit's field.
EMPIRICAL_CANVAS = (224, 224)


def analytic_table(model: nn.Module) -> dict[str, cnn_core.ReceptiveField]:
    return cnn_core.receptive_fields(model, EMPIRICAL_CANVAS)


def check_empirical_matches_analytic(model: nn.Module, layer: str, table) -> None:
    """Raises NotMeasurable where the model holds a layer the support twin cannot stand in for."""
    field = table[layer]
    units = [(field.output_size[0] // 2, field.output_size[1] // 2), (0, 0)]
    try:
        supports = cnn_core.empirical_receptive_fields(model, layer, EMPIRICAL_CANVAS, units, field.spatial_dims)
    except cnn_core.NoSupportTwin as error:
        raise measures.NotMeasurable(f"{layer}'s gradient support: {error}") from None
    for unit, measured in zip(units, supports):
        assert measured == field.box(*unit), f"{layer} unit {unit}: gradient support {measured}, analytic {field.box(*unit)}"
        # Where the whole field lies inside the image, its unclipped position must match too: a
        # start or jump that is off (padding not scaled by the jump) moves it without resizing it.
        if unit[0] in field.interior_units(0) and unit[1] in field.interior_units(1):
            ideal = field.box(*unit, clip=False)
            assert measured == ideal, f"{layer} unit {unit}: gradient support {measured}, analytic unclipped {ideal}"


# --- occlusion is local ---------------------------------------------------------------------

def float64_copy(model: nn.Module, layer: str) -> nn.Module:
    """The model cut after ``layer``, in float64 (the copy holds only what that layer needs)."""
    return copy.deepcopy(cnn_core.tracing.truncate(model, layer)).double()


def units_outside(field: cnn_core.ReceptiveField, box: cnn_core.Box, difference: torch.Tensor) -> torch.Tensor:
    """The difference map with every unit whose field overlaps ``box`` set to zero."""
    rows, cols = field.units_touching(box)
    outside = difference.clone()
    outside[rows, cols] = 0
    return outside


def units_touching_region(field, box) -> Box | None:
    """The units whose field overlaps ``box``, as a box on the layer's map; None when no unit's
    does (a 1x1 stride-2 projection samples every other pixel: a 1-px box can fall between them)."""
    rows, cols = (range(size)[span] for span, size in zip(field.units_touching(box), field.output_size))
    return Box(rows.start, cols.start, rows.stop, cols.stop) if rows and cols else None


def check_locality(field, box, difference: torch.Tensor, atol: float) -> None:
    leak = float(units_outside(field, box, difference).abs().max())
    assert leak <= atol, f"occluding {box} changes units whose fields miss it, by up to {leak:.3g}"


def locality_view(model, layer: str, image) -> tuple[torch.Tensor, cnn_core.ReceptiveField]:
    """The photo at the smallest size (64 to 224 px) where some units' fields can miss a box:
    twice the layer's field. Early layers need only 64 px, which keeps float64 cheap."""
    size = min(224, max(64, 2 * cnn_core.receptive_field(model, layer).size[0]))
    x = cnn_core.preprocess(image, size=size).to(next(model.parameters()).device)
    return x, cnn_core.receptive_field(model, layer, input_size=(size, size))


def deep_change_summaries(model, early: str, deep: str, x, boxes) -> list[dict]:
    require_deep_conv(model, deep)
    return [deep_change_summary(model, early, deep, x, box, differences)
            for box, differences in zip(boxes, cnn_core.occlusion.occlusion_diffs(model, x, boxes, [early, deep]))]


def deep_change_summary(model, early: str, deep: str, x, box, differences) -> dict:
    summary = {}
    for name in (early, deep):
        field = cnn_core.receptive_field(model, name, input_size=tuple(x.shape[-2:]))
        difference = differences[name][0]
        rows, cols = field.unit_centres(0, difference.shape[0]), field.unit_centres(1, difference.shape[1])
        region = cnn_core.changed_region(difference)
        covered = [field.box(r, c) for r in (region.top, region.bottom - 1) for c in (region.left, region.right - 1)]
        inside = ((rows >= box.top - 0.5) & (rows <= box.bottom - 0.5)).view(-1, 1) & (
            (cols >= box.left - 0.5) & (cols <= box.right - 0.5)).view(1, -1)
        difference = difference.double().cpu()
        summary[name] = {
            "jump": float(rows[1] - rows[0]) if len(rows) > 1 else float(field.input_size[0]),
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
    slack = int(summary[deep]["jump"] // 2)
    widened = Box(box.top - slack, box.left - slack, box.bottom + slack, box.right + slack)
    assert widened.contains_point(*summary[deep]["centre"]), (
        f"the deep change is centred at {summary[deep]['centre']}, outside {box} widened by {slack}"
    )
    assert summary[deep]["contrast"] > STRUCTURE_CONTRAST, (
        f"units over the box change only {summary[deep]['contrast']:.2f}x more than the others"
    )


# Boxes of 96 px on the notebook's 224: the four corners and the centre.
STRUCTURE_BOXES = (Box(0, 0, 96, 96), Box(0, 128, 96, 224), Box(128, 0, 224, 96), Box(128, 128, 224, 224),
                   Box(64, 64, 160, 160))


def deep_structure_verdict(model: nn.Module, early: str, deep: str, x: torch.Tensor) -> Verdict:
    """How many of STRUCTURE_BOXES the deep change fails on (not broader than the early one, not
    centred on the box, or no stronger over it): a verdict, because some architectures do not bear
    the sentence out (random Inception v3 at 224 px spreads a corner box's change over its whole map)."""
    def measure():
        failures = []
        for box, summary in zip(STRUCTURE_BOXES, deep_change_summaries(model, early, deep, x, STRUCTURE_BOXES)):
            try:
                check_deep_structure(summary, early, deep, box)
            except AssertionError as failure:
                failures.append(f"{box}: {failure}")
        return len(failures), (failures[0] if failures else f"{len(STRUCTURE_BOXES)} boxes at {deep}")

    return judged("S-deep-change-centred", model, measure)


# --- the claims matrix: locality and gradual growth, which a transformer must fail -----------

TRANSFORMER = "vit_b_16"  # the deliberate break of both claims: attention mixes every patch
TRANSFORMER_PROBE = "encoder.layers.encoder_layer_0"


def unit_grid(model: nn.Module, layer: str, output: torch.Tensor, input_size: tuple[int, int]):
    """A layer's output as [N, C, H, W] maps, with each unit's centre in input pixels (rows, columns),
    for an input of ``input_size`` (which may differ from the size the model was built for:
    EfficientNet-B3 is built for 300 px and fed the notebook's 224).

    Conv maps use their receptive fields; transformer tokens [N, 1 + g*g, D] are laid back on their
    g x g patch grid (the class token dropped).
    """
    size = output.shape
    if len(size) == 4:
        field = cnn_core.receptive_field(model, layer, input_size=input_size)
        rows, cols = field.unit_centres(0, size[2]), field.unit_centres(1, size[3])
        return output, rows, cols
    grid = int(round((size[1] - 1) ** 0.5))
    patch = input_size[0] / grid
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
    grid, rows, cols = unit_grid(model, probe, output, (size, size))
    changed = (grid[0] != grid[1]).any(dim=0)
    far = (rows.view(-1, 1) >= 0.6 * size) | (cols.view(1, -1) >= 0.6 * size)
    if not far.any():
        raise measures.NotMeasurable(f"no unit of {probe} is centred 0.6 of the side away from the box")
    return float(changed[far].double().mean()), int(far.sum())


def judged(claim: str, model: nn.Module, measure: Callable[[], tuple[float, str]]) -> Verdict:
    """``claim``'s verdict on ``model`` from ``measure()`` (the value and a detail), or NOT MEASURED
    with the reason when the model cannot be measured (untraceable, say): never an error that
    sinks the model's other claims."""
    subject = SubjectId.of(cnn_core.model_card(model))
    try:
        value, detail = measure()
    except measures.MEASUREMENT_ERRORS as error:
        return RULES[claim].not_measured(subject, measures.reason(error))
    return RULES[claim].judge(subject, value, detail=detail)


def require_deep_conv(model: nn.Module, probe: str) -> None:
    """A claim about deep layers probed at the last conv says nothing when that conv is the model's
    only one (a transformer's patch embedding): NOT MEASURED, not a verdict on the embedding."""
    convs = [layer.path for layer in cnn_core.layers(model) if layer.conv and not layer.container]
    if convs == [probe]:
        raise measures.NotMeasurable(f"{probe} is the model's only convolution (a patch embedding): no deep "
                                     "convolution to probe")


def depth_verdict(model: nn.Module) -> Verdict:
    def measure():
        violations = depth_violations(model)
        return len(violations), "; ".join(violations[:2])

    return judged("S-channels-grow-resolution-falls", model, measure)


def locality_verdict(model: nn.Module, probe: str, x: torch.Tensor) -> Verdict:
    def measure():
        require_deep_conv(model, probe)
        fraction, far = far_units_changed(model, probe, x)
        return fraction, f"{far} far units at {probe}"

    return judged("S-occlusion-stays-local", model, measure)


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


def gradual_verdict(model: nn.Module, probe: str) -> Verdict:
    def measure():
        require_deep_conv(model, probe)
        factor, where = largest_field_jump(model, probe)
        return factor, f"largest jump at {where}"

    return judged("S-fields-grow-gradually", model, measure)


# === notebook_erratum ============================================================


def painted_colour(normalization: cnn_core.Normalization) -> torch.Tensor:
    """The pixel colour (R, G, B in [0, 1]) that ``fill="mean"`` paints under ``normalization``."""
    x = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    painted = cnn_core.occlude(x, Box(0, 0, 2, 2), "mean", normalization)
    return cnn_core.denormalize(painted, normalization)[0, :, 0, 0]


def check_painted_grey(normalization: cnn_core.Normalization, label: str) -> None:
    colour = painted_colour(normalization)
    expected = torch.tensor(cnn_core.IMAGENET_MEAN, dtype=torch.float64)
    # float64 round trip through (x - mean) / std and back: exact to 1e-12.
    assert torch.allclose(colour, expected, atol=1e-12), (
        f"{label}: occlusion paints {colour.tolist()}, not the ImageNet mean grey {list(expected.tolist())}")

