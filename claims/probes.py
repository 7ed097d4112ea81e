"""What the learned claims are measured on: photos with their objects marked, and labelled images.

Photos are scikit-image's (offline); each object box is given as fractions of the original
photo (top, left, bottom, right) and mapped through each model's own resize and centre crop.
The labelled images are CNN Explainer's 20 Tiny ImageNet demo images (two of each of ten
ImageNet classes), found beside Tiny VGG in the fixtures folder.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

import cnn_core
from claims.notebook import NOTEBOOK_PROBES
from cnn_core import Box
from cnn_core.models import ModelCard


def spatial_leaves(layers) -> list[cnn_core.Layer]:
    """The leaf layers with a spatial [N, C, H, W] output, in the order they run."""
    return [layer for layer in layers
            if not layer.container and layer.output_shape is not None and len(layer.output_shape) == 4]


def depth_probes(model: torch.nn.Module) -> dict[str, str]:
    """Early, middle and deep layers of any CNN: the notebook's own for VGG16; otherwise the second
    conv, the middle spatial layer and the last conv (in the order they run)."""
    if cnn_core.model_card(model).name == "vgg16":
        return {probe.depth: probe.layer for probe in NOTEBOOK_PROBES}
    size = cnn_core.model_card(model).input_size
    listing = cnn_core.layers(model, (size, size))
    spatial = spatial_leaves(listing)
    return {"early": probe_layers(listing, "early")[0], "middle": spatial[len(spatial) // 2].path,
            "deep": probe_layers(listing, "deep")[0]}


def architecture_layers(name: str) -> tuple[cnn_core.Layer, ...]:
    """The layers of ``name``, read off its architecture on the meta device (no weights, no arithmetic).

    A few architectures (RegNet) cannot be built on meta, and a few (Inception v3) need more than
    224 pixels: those are built on the CPU and listed at the size their weights were trained at.
    """
    try:
        return tuple(cnn_core.layers(cnn_core.build_architecture(name)))
    except (NotImplementedError, RuntimeError):
        crop = torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size[0]
        return tuple(cnn_core.layers(cnn_core.build_architecture(name, device="cpu").eval(), (crop, crop)))


def probe_layers(listing: Sequence[cnn_core.Layer], kind: str) -> list[str]:
    """Layers of a model (its ``cnn_core.layers`` listing) to check a claim at.

    ``early``: the second convolution (the notebook's conv1_2, ``features.2`` in VGG16);
    ``deep``: the last convolution (the notebook's conv5_3, ``features.28``);
    ``spatial``: every leaf layer with a spatial [N, C, H, W] output.
    """
    spatial = spatial_leaves(listing)
    convs = [layer.path for layer in spatial if layer.type == "Conv2d"]
    if kind == "early":
        return convs[1:2] or convs[:1]
    if kind == "deep":
        return convs[-1:]
    if kind == "spatial":
        return [layer.path for layer in spatial]
    raise ValueError(f"unknown probe kind {kind!r}")


@dataclass(frozen=True)
class Photo:
    source: str
    object_fractions: tuple[float, float, float, float]  # top, left, bottom, right of the original


# Objects that leave most of the crop to background, so that chance (a window centred on the
# object by luck) stays well below one half.
PHOTOS = (
    Photo("sample:rocket", (0.30, 0.43, 0.97, 0.57)),  # the rocket on its launch pad
    Photo("sample:coffee", (0.02, 0.33, 0.45, 0.70)),  # the cup of coffee, seen from above
    Photo("sample:cat", (0.28, 0.30, 0.88, 0.72)),  # Chelsea's eyes, nose and mouth
)


def object_box(photo: Photo, card: ModelCard) -> Box:
    """The photo's object box in the pixels of ``card``'s preprocessed crop (torchvision's geometry)."""
    width, height = cnn_core.load_image(photo.source).size
    resized = (int(card.resize * height / width), card.resize) if width < height else (card.resize, int(card.resize * width / height))
    offset = (int(round((resized[0] - card.input_size) / 2.0)), int(round((resized[1] - card.input_size) / 2.0)))
    top, left, bottom, right = photo.object_fractions

    def clip(value: float, axis: int) -> int:
        return min(card.input_size, max(0, int(round(value * resized[axis])) - offset[axis]))

    return Box(clip(top, 0), clip(left, 1), clip(bottom, 0), clip(right, 1))


@dataclass(frozen=True)
class ProbeImages:
    """One model's view of the probe images, preprocessed its own way."""

    photos: torch.Tensor  # [P, 3, S, S]
    object_boxes: tuple[Box, ...]
    labelled: torch.Tensor | None  # [20, 3, S, S], or None without the fixtures
    labels: tuple[int, ...]


def probe_images(card: ModelCard, fixtures_dir: Path | None, device: torch.device) -> ProbeImages:
    demos = cnn_core.models.tiny_vgg_demo_images(fixtures_dir)
    labelled = torch.cat([card.preprocess(path) for path, _ in demos]).to(device) if demos else None
    return ProbeImages(torch.cat([card.preprocess(p.source) for p in PHOTOS]).to(device),
                       tuple(object_box(p, card) for p in PHOTOS), labelled,
                       tuple(label for _, label in demos))
