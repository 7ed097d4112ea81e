"""Occlusion: painting a box over the input and watching what changes.

``occlusion_diff`` is the notebook's Block 4 (which layers change when a region is blanked);
``occlusion_map`` is Zeiler and Fergus's sensitivity map (how much a class score drops as a
grey window slides over the image), computed in batches rather than one window at a time.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .activations import capture, check_input
from .errors import InputError
from .geometry import Box
from .images import IMAGENET, Normalization, fill_value
from .incremental import incremental_outputs, incremental_plan
from .layer_index import layers
from .models import normalization_of


def occlude(x: torch.Tensor, box: Box, fill="mean", normalization: Normalization = IMAGENET) -> torch.Tensor:
    """A copy of ``x`` with ``box`` painted (see :func:`cnn_core.images.fill_value` for fills)."""
    check_input(x)
    box.require_inside(x.shape[2], x.shape[3])
    occluded = x.clone()
    occluded[:, :, box.slices[0], box.slices[1]] = fill_value(fill, x, normalization)
    return occluded


def occlusion_diff(
    model: nn.Module, x: torch.Tensor, box: Box, layers: str | Iterable[str], fill="mean"
) -> dict[str, torch.Tensor]:
    """Per layer, ``|a(x) - a(occluded x)|`` averaged over channels: ``[N, H, W]`` maps.

    Both images go through the model in one batch. A unit whose field misses the box gives
    exactly zero in float64.
    """
    return occlusion_diffs(model, x, [box], layers, fill)[0]


def occlusion_diffs(
    model: nn.Module, x: torch.Tensor, boxes: Sequence[Box], layers: str | Iterable[str], fill="mean"
) -> list[dict[str, torch.Tensor]]:
    """:func:`occlusion_diff` for each of ``boxes``: the clean images and every occluded copy go
    through the model in one batch, so the clean pass is run once."""
    names = [layers] if isinstance(layers, str) else list(layers)
    normalization = normalization_of(model)
    batch = torch.cat([x, *(occlude(x, box, fill, normalization) for box in boxes)])
    activations = capture(model, batch, names)
    size = x.shape[0]
    return [{name: (a[:size] - a[size * i:size * (i + 1)]).abs().mean(dim=1) for name, a in activations.items()}
            for i in range(1, len(boxes) + 1)]


@dataclass(frozen=True)
class OcclusionMap:
    """Drop of the target score with the window at each grid position (row, column).

    ``drop[i, j]`` belongs to the window ``Box(i*stride, j*stride, i*stride+window, j*stride+window)``.
    """

    drop: torch.Tensor
    window: int
    stride: int
    base_score: float

    def window_box(self, row: int, col: int) -> Box:
        top, left = row * self.stride, col * self.stride
        return Box(top, left, top + self.window, left + self.window)

    def pixel_map(self, height: int, width: int) -> torch.Tensor:
        """Per pixel, the mean drop over the windows that cover it (0 where none does): the
        attribution captum's ``Occlusion`` computes for the same windows."""
        total = torch.zeros(height, width, dtype=self.drop.dtype, device=self.drop.device)
        count = torch.zeros_like(total)
        for row in range(self.drop.shape[0]):
            for col in range(self.drop.shape[1]):
                rows, cols = self.window_box(row, col).slices
                total[rows, cols] += self.drop[row, col]
                count[rows, cols] += 1
        return torch.where(count > 0, total / count.clamp_min(1), total)

    def peak(self) -> Box:
        """The window whose occlusion lowers the score most."""
        index = int(torch.argmax(self.drop))
        return self.window_box(*divmod(index, self.drop.shape[1]))


def class_score(logits: torch.Tensor, target: int | Sequence[int]) -> torch.Tensor:
    """Softmax probability of ``target`` (summed over several classes when a list is given)."""
    classes = [target] if isinstance(target, int) else list(target)
    if not classes or any(not 0 <= c < logits.shape[1] for c in classes):
        raise InputError(f"target {target!r} is not among the model's {logits.shape[1]} classes")
    return logits.softmax(dim=1)[:, classes].sum(dim=1)


CPU_MEMORY_BUDGET_BYTES = 1 << 30  # activations of one batch on the CPU; the batch shrinks to fit
FREE_MEMORY_SHARE = 0.5  # of what a GPU reports free: the rest for weights, workspaces and the allocator's slack


def memory_budget(device: torch.device) -> int:
    """Bytes one batch's activations may take on ``device``: a share of the free memory a GPU
    reports (``torch.cuda.mem_get_info``), a fixed budget on the CPU (which reports none)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(1, int(free * FREE_MEMORY_SHARE))
    return CPU_MEMORY_BUDGET_BYTES


def occlusion_map(
    model: nn.Module,
    x: torch.Tensor,
    window: int,
    stride: int,
    target: int | Sequence[int] | None,
    batch_size: int = 64,
    fill="mean",
    memory_budget_bytes: int | None = None,
    method: str = "auto",
) -> OcclusionMap:
    """Zeiler and Fergus's occlusion sensitivity of ``target`` for a single image ``x``; ``target=None``
    is the model's own top class for ``x``, taken from the sweep's clean pass.

    ``method="incremental"`` recomputes, per window, only the units the window changes
    (:mod:`cnn_core.incremental`: exact, several times less work); ``"batched"`` runs whole
    forward passes; ``"auto"`` (default) is incremental where the model allows it (residual
    additions and concatenations included). A model that does not (a squeeze-and-excitation gate,
    say) falls back to batched with a warning naming the node.
    Windows are evaluated ``batch_size`` at a time, fewer if a batch's largest activations would
    exceed ``memory_budget_bytes`` (by default :func:`memory_budget` of ``x``'s device); a batched
    sweep that runs out of memory anyway is halved (with a warning) and goes on.
    """
    check_input(x, model)
    if x.shape[0] != 1:
        raise InputError(f"occlusion_map takes one image ([1, C, H, W]), got a batch of {x.shape[0]}")
    height, width = x.shape[2:]
    budget = memory_budget(x.device) if memory_budget_bytes is None else memory_budget_bytes
    for name, value in (("window", window), ("stride", stride), ("batch_size", batch_size), ("memory_budget_bytes", budget)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if window > min(height, width):
        raise InputError(f"window {window} is larger than the {height}x{width} image")
    if method not in ("auto", "incremental", "batched"):
        raise InputError(f"method {method!r} is not 'auto', 'incremental' or 'batched'")
    rows, cols = (height - window) // stride + 1, (width - window) // stride + 1
    paint = fill_value(fill, x, normalization_of(model))
    batch_size = min(batch_size, _images_within(budget, model, x))
    if method != "batched":
        plan = incremental_plan(model)
        if plan.supported:
            boxes = [Box(r * stride, c * stride, r * stride + window, c * stride + window)
                     for r in range(rows) for c in range(cols)]
            with torch.no_grad():
                clean, occluded = incremental_outputs(plan, x, boxes, paint, batch_size)
                target = _top_class(clean) if target is None else target
                base = class_score(clean, target)
                drops = base - class_score(occluded, target)
            return OcclusionMap(drops.view(rows, cols), window, stride, float(base))
        warnings.warn(f"occlusion_map: {type(model).__name__} is not incremental (its supported part "
                      f"stops at {plan.blocker}); running whole forward passes", UserWarning, stacklevel=2)

    def occluded(first: int, count: int) -> torch.Tensor:
        batch = x.repeat(count, 1, 1, 1)
        for slot, position in enumerate(range(first, first + count)):
            top, left = (position // cols) * stride, (position % cols) * stride
            batch[slot, :, top:top + window, left:left + window] = paint[0]
        return batch

    with torch.no_grad():
        clean = model(x)
        target = _top_class(clean) if target is None else target
        base = class_score(clean, target)
        drops, position = [], 0
        while position < rows * cols:
            count = min(batch_size, rows * cols - position)
            try:
                drops.append(base - class_score(model(occluded(position, count)), target))
            except (torch.cuda.OutOfMemoryError, RuntimeError) as error:
                if count == 1 or not _out_of_memory(error):
                    raise
                batch_size = count // 2
                warnings.warn(f"occlusion_map: out of memory with {count} images per batch; going on with {batch_size}",
                              ResourceWarning, stacklevel=2)
                if x.is_cuda:
                    torch.cuda.empty_cache()
                continue
            position += count
    return OcclusionMap(torch.cat(drops).view(rows, cols), window, stride, float(base))


def _top_class(logits: torch.Tensor) -> int:
    return int(logits.argmax(dim=1)[0])


def _out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error) \
        or "can't allocate memory" in str(error)


def _images_within(budget: int, model: nn.Module, x: torch.Tensor) -> int:
    """How many images fit the budget, counting three of the largest layer outputs per image
    (a layer's input, its output and the next one's, alive together)."""
    largest = max((math.prod(layer.output_shape[1:]) for layer in layers(model, tuple(x.shape[2:]), x.shape[1])
                   if layer.output_shape is not None), default=x[0].numel())
    return max(1, budget // (3 * largest * x.element_size()))
