"""Grad-CAM (Selvaraju et al., ICCV 2017): where a layer's evidence for a class lies, the method the notebook names.

For a layer's output ``A`` (``k`` channels) and the score ``y`` of a class: each channel's weight is the mean over
positions of ``dy / dA_k``, and the map is ``ReLU(sum_k weight_k * A_k)`` at the layer's resolution
(:meth:`GradCam.upsampled` brings it to the input's). By default the layer is the network's last spatial
output, where its conv stages end (:func:`last_conv_stage`), and the class is the model's own top class per image.
The hook that reads the layer is always removed, and returns a copy of the output, so that an in-place operation
after the layer (VGG's ``ReLU(inplace=True)``) cannot change the activations the map is made of.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .activations import check_input
from .errors import InputError, LayerNotFound
from .hooks import forward_hooks
from .layer_index import layers, resolve


@dataclass(frozen=True)
class GradCam:
    """Grad-CAM maps of a batch: ``maps`` ``[N, h, w]`` at the layer's resolution (non-negative), the class each
    image's map is for, and the layer."""

    maps: torch.Tensor
    targets: tuple[int, ...]
    layer: str

    def upsampled(self, size: tuple[int, int]) -> torch.Tensor:
        """The maps bilinearly resized to ``size`` (the input's height and width): ``[N, H, W]``."""
        return F.interpolate(self.maps.unsqueeze(1), size=tuple(size), mode="bilinear", align_corners=False).squeeze(1)


def last_conv_stage(model: nn.Module, input_size: tuple[int, int] | None = None) -> str:
    """The layer Grad-CAM reads by default: the last output of the network that is still a map (``[N, C, H, W]``
    with more than one position) from a module that runs once, i.e. where its conv stages end: ``layer4`` of a
    ResNet, ``features`` of a MobileNet, ``avgpool`` (pool5's 7 x 7) of a VGG."""
    spatial = [layer.path for layer in layers(model, input_size)
               if layer.output_shape is not None and len(layer.output_shape) == 4
               and layer.output_shape[2] * layer.output_shape[3] > 1 and "@" not in layer.path]
    if not spatial:
        raise LayerNotFound("a spatial layer", [], hint=f"{type(model).__name__} has no layer with a [N, C, H, W] output")
    return spatial[-1]


def _targets(target: int | Sequence[int] | torch.Tensor | None, scores: torch.Tensor) -> torch.Tensor:
    count, classes = scores.shape
    if target is None:
        return scores.argmax(dim=1)
    chosen = torch.as_tensor(target, device=scores.device).long().reshape(-1)
    if chosen.numel() == 1:
        chosen = chosen.expand(count)
    if chosen.numel() != count:
        raise InputError(f"target: {chosen.numel()} classes for {count} images; give one class, or one per image")
    if (chosen < 0).any() or (chosen >= classes).any():
        raise InputError(f"target: class {int(chosen[(chosen < 0) | (chosen >= classes)][0])} is outside the model's "
                         f"{classes} classes")
    return chosen


def grad_cam(model: nn.Module, x: torch.Tensor, layer: str | None = None,
             target: int | Sequence[int] | torch.Tensor | None = None) -> GradCam:
    """Grad-CAM of ``model`` at ``layer`` (default :func:`last_conv_stage`) for ``target`` (a class for every image,
    one per image, or None: each image's top class) on the batch ``x``. The model is used as it is (eval mode is the
    caller's choice); gradients are computed even inside ``torch.no_grad``."""
    check_input(x, model)
    name = layer if layer is not None else last_conv_stage(model, tuple(x.shape[-2:]))
    ref = resolve(model, name)
    module = model.get_submodule(ref.path)
    seen: list[torch.Tensor] = []
    calls = [0]

    def keep(_module, _inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise InputError(f"layer {name!r}: Grad-CAM needs a [N, C, H, W] output, got "
                             f"{type(output).__name__ if not isinstance(output, torch.Tensor) else list(output.shape)}")
        call, calls[0] = calls[0], calls[0] + 1
        if ref.call is None or call == ref.call:
            seen.append(output)
            return output.clone()  # what runs on; ``output`` keeps the layer's values whatever runs in place later
        return None

    with torch.enable_grad():
        with forward_hooks([module], keep):
            scores = model(x)
        if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
            raise InputError(f"Grad-CAM needs class scores [N, classes] from the model, got "
                             f"{list(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__}")
        if not seen:
            raise InputError(f"layer {name!r} did not run in the forward pass")
        chosen = _targets(target, scores)
        gradients, = torch.autograd.grad(scores.gather(1, chosen[:, None]).sum(), seen[0])
    maps = (gradients.mean(dim=(2, 3), keepdim=True) * seen[0].detach()).sum(dim=1).relu()
    return GradCam(maps, tuple(int(c) for c in chosen), ref.name)
