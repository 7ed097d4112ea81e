"""The notebook's constants and code, each written once: where the suite measures or corrects it."""
from __future__ import annotations

from typing import NamedTuple

import torch

from cnn_core import Box, resolve
from cnn_core.hooks import forward_hooks

NOTEBOOK_SIZE = 224  # transforms.CenterCrop(224)
# Block 4: perturbed_tensor[:, :, 50:150, 60:160] = 0
NOTEBOOK_BOX = Box(50, 60, 150, 160)


class NotebookProbe(NamedTuple):
    depth: str
    layer: str
    printed_shape: tuple[int, ...]
    comment: str


# Block 3's hooks on VGG16's model.features[2] / [16] / [28], with the shapes and comments it prints.
NOTEBOOK_PROBES = (
    NotebookProbe("early", "features.2", (1, 64, 224, 224), "Early (layer 2): 64 channels, high resolution"),
    NotebookProbe("middle", "features.16", (1, 256, 28, 28), "Middle (layer 16): 256 channels, medium resolution"),
    NotebookProbe("deep", "features.28", (1, 512, 14, 14), "Deep (layer 28): 512 channels, low resolution"),
)


def detach_hooks(model, x, names) -> dict[str, torch.Tensor]:
    """Block 3's way: hooks storing ``output.detach()`` on the layers ``names``, then a full forward.
    A module hook cannot tell a module's calls apart: for ``path@k`` it keeps the last call's output."""
    stored, name_of = {}, {model.get_submodule(resolve(model, name).path): name for name in names}
    with forward_hooks(name_of, lambda module, _inputs, output: stored.__setitem__(name_of[module], output.detach())), \
            torch.no_grad():
        model(x)
    return stored


# --- the notebook's plotting and hooking code, reproduced where it misleads ------------------

# Block 1, under "# Visualize: original image vs first 8 feature maps": the loop's panels.
BLOCK1_MAP_PANELS = tuple(((i + 1) // 5, (i + 1) % 5) for i in range(9))  # for i in range(9): row, col = ...


def resize_and_crop_corner(image_size: tuple[int, int], size: int = NOTEBOOK_SIZE) -> tuple[tuple[int, int], int, int]:
    """torchvision's documented arithmetic for Resize(size) then CenterCrop(size): the resized
    (width, height), the shorter side to ``size`` and the longer truncated, and the crop's corner
    (left, top) in resized pixels, at round((side - size) / 2)."""
    width, height = image_size
    resized = (size, int(size * height / width)) if width <= height else (int(size * width / height), size)
    return resized, int(round((resized[0] - size) / 2.0)), int(round((resized[1] - size) / 2.0))


def crop_geometry(image_size: tuple[int, int], size: int = NOTEBOOK_SIZE) -> tuple[float, float, float]:
    """Resize(size) then CenterCrop(size) in the original's pixels: (scale, left, top), where one
    tensor pixel spans ``scale`` original pixels and the crop starts at (left, top)."""
    scale = min(image_size) / size
    _, left, top = resize_and_crop_corner(image_size, size)
    return scale, left * scale, top * scale


def overlay_misalignment(image_size: tuple[int, int], size: int = NOTEBOOK_SIZE) -> float:
    """Block 2's overlay, ``Image.fromarray(activation).resize(img.size)`` drawn over ``img``: the
    largest distance, in original pixels, between where a map unit is drawn and where it is."""
    width, height = image_size
    scale, left, top = crop_geometry(image_size, size)
    units = torch.arange(size, dtype=torch.float64) + 0.5
    drawn_x, true_x = units * width / size, left + units * scale
    drawn_y, true_y = units * height / size, top + units * scale
    return float(max((drawn_x - true_x).abs().max(), (drawn_y - true_y).abs().max()))


def hidden_share(image_size: tuple[int, int], size: int = NOTEBOOK_SIZE) -> float:
    """Block 4's ``axes[0, 0].imshow(img)`` beside the perturbed tensor: the share of the shown
    original that the tensor (and so the perturbation and the difference maps) never contains."""
    width, height = image_size
    scale = min(width, height) / size
    return 1 - (size * scale) ** 2 / (width * height)


def permuted_entries(kernel: torch.Tensor) -> int:
    """Block 2's ``filters[i].permute(1, 2, 0)  # [3, 3, 3] -> [3, 3, 3]``: how many of the
    kernel's values sit at a different place in memory order after the permute."""
    return int((kernel.flatten() != kernel.permute(1, 2, 0).flatten()).sum())


def shown_channels(activation: torch.Tensor) -> torch.Tensor:
    """Block 3's "4 random feature maps": ``torch.argsort(variances, descending=True)[:4]``."""
    return torch.argsort(activation[0].var(dim=[1, 2]), descending=True)[:4]


def block3_cell(model, x) -> dict[str, torch.Tensor]:
    """Block 3's cell as written: three hooks registered, never removed, then a forward pass."""
    activations = {}

    def get_activation(name):
        def hook(_model, _input, output):
            activations[name] = output.detach()
        return hook

    model.features[2].register_forward_hook(get_activation("early"))
    model.features[16].register_forward_hook(get_activation("middle"))
    model.features[28].register_forward_hook(get_activation("deep"))
    with torch.no_grad():
        model(x)
    return activations
