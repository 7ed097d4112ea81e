"""The notebook's constants and code, each written once: where the suite measures or corrects it."""
from __future__ import annotations

from typing import NamedTuple

import torch

from cnn_core import Box
from cnn_core.hooks import forward_hooks

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
    """Block 3's way: hooks storing ``output.detach()`` on the layers ``names``, then a full forward."""
    stored, name_of = {}, {model.get_submodule(name): name for name in names}
    with forward_hooks(name_of, lambda module, _inputs, output: stored.__setitem__(name_of[module], output.detach())), \
            torch.no_grad():
        model(x)
    return stored
