"""What the learned claims are measured on: photos with their objects marked, and labelled images.

Photos are scikit-image's (offline); each object box is given as fractions of the original
photo (top, left, bottom, right) and mapped through each model's own resize and centre crop.
The labelled images are CNN Explainer's 20 Tiny ImageNet demo images (two of each of ten
ImageNet classes), found beside Tiny VGG in the fixtures folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

import cnn_core
from cnn_core import Box
from cnn_core.models import ModelCard

# The notebook's Block 3 hooks: model.features[2] / [16] / [28] of VGG16.
NOTEBOOK_PROBES = {"early": "features.2", "middle": "features.16", "deep": "features.28"}


def depth_probes(model: torch.nn.Module) -> dict[str, str]:
    """Early, middle and deep layers of any CNN: the notebook's own for VGG16; otherwise the second
    conv, the middle spatial layer and the last conv (in the order they run)."""
    if cnn_core.model_card(model).name == "vgg16":
        return dict(NOTEBOOK_PROBES)
    size = cnn_core.model_card(model).input_size
    spatial = [layer for layer in cnn_core.layers(model, (size, size))
               if not layer.container and layer.output_shape is not None and len(layer.output_shape) == 4]
    convs = [layer.path for layer in spatial if layer.type == "Conv2d"]
    return {"early": convs[min(1, len(convs) - 1)], "middle": spatial[len(spatial) // 2].path, "deep": convs[-1]}


@dataclass(frozen=True)
class Photo:
    source: str
    object_fractions: tuple[float, float, float, float]  # top, left, bottom, right of the original
    what: str


# Objects that leave most of the crop to background, so that chance (a window centred on the
# object by luck) stays well below one half.
PHOTOS = (
    Photo("sample:rocket", (0.30, 0.43, 0.97, 0.57), "the rocket on its launch pad"),
    Photo("sample:coffee", (0.02, 0.33, 0.45, 0.70), "the cup of coffee, seen from above"),
    Photo("sample:cat", (0.28, 0.30, 0.88, 0.72), "Chelsea's eyes, nose and mouth"),
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


def demo_images(fixtures_dir: Path | None) -> list[tuple[Path, str]]:
    """CNN Explainer's demo images with their class (the file name's prefix), or [] without fixtures."""
    if fixtures_dir is None or not (fixtures_dir / "tiny-vgg" / "images").is_dir():
        return []
    return [(path, path.name.split("_")[0]) for path in sorted((fixtures_dir / "tiny-vgg" / "images").glob("*.jpeg"))]


def probe_images(card: ModelCard, fixtures_dir: Path | None, device: torch.device) -> ProbeImages:
    def prepared(source) -> torch.Tensor:
        return cnn_core.preprocess(source, card.input_size, card.normalization, card.resize, card.interpolation)

    demos = demo_images(fixtures_dir)
    classes = sorted({label for _, label in demos})
    labelled = torch.cat([prepared(path) for path, _ in demos]).to(device) if demos else None
    return ProbeImages(torch.cat([prepared(p.source) for p in PHOTOS]).to(device),
                       tuple(object_box(p, card) for p in PHOTOS), labelled,
                       tuple(classes.index(label) for _, label in demos))
