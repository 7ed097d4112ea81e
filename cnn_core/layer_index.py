"""Naming the layers of a model: dotted paths, readable aliases, call indices.

A layer is addressed by its dotted module path (``features.28``), by an alias where the
architecture has conventional names (VGG: ``conv5_3``, ``relu5_3``, ``pool5``, ``fc6``),
or, for a module that runs more than once per forward pass (torchvision's ResNet blocks
call one ``relu`` twice), by ``path@k`` with ``k`` the 0-based call.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from .errors import InputError, LayerNotFound
from .hooks import forward_hooks
from .layer_kinds import POINTWISE_MODULES, kept_whole
from .models import input_size_of
from .structure import cached


@dataclass(frozen=True)
class LayerRef:
    """A resolved layer: the module's path and, for a module run several times, which call."""

    path: str
    call: int | None = None

    @property
    def name(self) -> str:
        return self.path if self.call is None else f"{self.path}@{self.call}"


@dataclass(frozen=True)
class Layer:
    """One addressable layer, in the order its output is produced."""

    path: str
    alias: str | None
    type: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    container: bool
    conv: bool = False  # an nn.Conv2d, or a subclass (timm's Conv2dSame)
    pointwise: bool = False  # acts on each position alone (activations, batch norm, dropout): fields pass through


def vgg_aliases(model: nn.Module) -> dict[str, str]:
    """VGG's conventional names: ``conv{block}_{i}``, ``bn``, ``relu``, ``pool{block}``, ``fc6..fc8``."""
    if not isinstance(model, torchvision.models.VGG):
        return {}
    aliases: dict[str, str] = {}
    block, index = 1, 0
    for position, module in enumerate(model.features):
        if isinstance(module, nn.Conv2d):
            index += 1
            kind = "conv"
        elif isinstance(module, nn.BatchNorm2d):
            kind = "bn"
        elif isinstance(module, nn.ReLU):
            kind = "relu"
        elif isinstance(module, nn.MaxPool2d):
            aliases[f"pool{block}"] = f"features.{position}"
            block, index = block + 1, 0
            continue
        else:
            continue
        aliases[f"{kind}{block}_{index}"] = f"features.{position}"
    fc = 5
    for position, module in enumerate(model.classifier):
        if isinstance(module, nn.Linear):
            fc += 1
            aliases[f"fc{fc}"] = f"classifier.{position}"
        elif isinstance(module, nn.ReLU):
            aliases[f"relu{fc}"] = f"classifier.{position}"
        elif isinstance(module, nn.Dropout):
            aliases[f"drop{fc}"] = f"classifier.{position}"
    return aliases


def alias_of(model: nn.Module, path: str) -> str | None:
    return {p: a for a, p in vgg_aliases(model).items()}.get(path)


def resolve(model: nn.Module, name: str) -> LayerRef:
    """The module path (and call index) that ``name`` means; raises LayerNotFound with suggestions."""
    if not isinstance(name, str) or not name:
        raise InputError(f"a layer name must be a non-empty string, got {name!r}")
    path, call = name, None
    if "@" in name:
        path, _, index = name.rpartition("@")
        if not index.isdigit():
            raise InputError(f"layer {name!r}: the part after '@' must be a call index such as @0 or @1")
        call = int(index)
    aliases = vgg_aliases(model)
    path = aliases.get(path, path)
    modules = dict(model.named_modules())
    if path not in modules or path == "":
        known = [p for p in modules if p] + list(aliases)
        raise LayerNotFound(name, known, hint="cnn_core.layers(model) lists every layer")
    return LayerRef(path, call)


def first_conv(model: nn.Module) -> str:
    """The path of the model's first convolution: where the notebook's "filters" live."""
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return path
    raise LayerNotFound("first Conv2d", [], hint=f"{type(model).__name__} has no Conv2d layer")


def layers(model: nn.Module, input_size: tuple[int, int] | None = None, in_channels: int = 3) -> list[Layer]:
    """Every named module, in the order its output is produced, with that output's shape.

    ``input_size`` defaults to the size the model was built for (224 for torchvision's models).

    Shapes come from a pass on the meta device (see ``_record_calls``). A module that runs
    more than once appears once per call as ``path@k``.
    """
    input_size = tuple(input_size) if input_size is not None else input_size_of(model)
    return list(cached(model, ("layers", input_size, in_channels), lambda: _listing(model, input_size, in_channels)))


def _listing(model: nn.Module, input_size: tuple[int, int], in_channels: int) -> list[Layer]:
    names = {module: path for path, module in model.named_modules() if path}
    whole = tuple(f"{path}." for path, module in model.named_modules() if path and kept_whole(module))
    records = [(names[module], module, *shapes) for module, *shapes in _record_calls(model, (1, in_channels, *input_size))
               if module in names and not names[module].startswith(whole)]

    names = call_names([path for path, *_ in records])
    listing = []
    for name, (path, module, input_shape, output_shape) in zip(names, records):
        listing.append(Layer(
            path=name,
            alias=alias_of(model, path),
            type=type(module).__name__,
            input_shape=input_shape,
            output_shape=output_shape,
            container=any(True for _ in module.children()) and not kept_whole(module),
            conv=isinstance(module, nn.Conv2d),
            pointwise=isinstance(module, POINTWISE_MODULES) or _empty_sequential(module),
        ))
    return listing


def _empty_sequential(module: nn.Module) -> bool:
    """An empty nn.Sequential returns its input (GhostNet's shortcut where shapes match): the
    traced graph has no node for it, and its field is its input's."""
    return isinstance(module, nn.Sequential) and len(module) == 0


def call_names(paths: Sequence[str]) -> list[str]:
    """The layer name of each call, given the module path of each call in order: the path itself,
    or ``path@k`` for the k-th call (from 0) of a module that runs more than once."""
    calls, seen, names = Counter(paths), Counter(), []
    for path in paths:
        names.append(path if calls[path] == 1 else f"{path}@{seen[path]}")
        seen[path] += 1
    return names


def call_counts(model: nn.Module, input_shape: tuple[int, ...]) -> dict[nn.Module, int]:
    """How many times each module runs in one forward pass (read off a meta-device pass)."""
    return dict(Counter(module for module, *_ in _record_calls(model, input_shape)))


def _record_calls(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[nn.Module, tuple | None, tuple | None]]:
    """Every module call of one forward pass, in the order outputs appear, with input and output shapes.

    The pass runs on the meta device (no arithmetic, no memory); operations without meta support
    fall back to a real pass on zeros.
    """
    records = []

    def shape_of(value):
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None

    def record(module, inputs, output):
        records.append((module, shape_of(inputs[0]) if inputs else None, shape_of(output)))

    with forward_hooks(model.modules(), record):
        try:
            meta_pass(model, input_shape)
        except (NotImplementedError, RuntimeError):
            records.clear()
            with torch.no_grad():
                model(_zeros_like_input(model, input_shape))
    return records


class _Call(nn.Module):
    """``run(x)`` as a module owning ``model``, so that functional_call can swap ``model``'s state."""

    def __init__(self, model: nn.Module, run: Callable | None):
        super().__init__()
        self.model = model
        self._run = run  # a bound method or function, never a second registration of ``model``

    def forward(self, x):
        return self._run(x) if self._run is not None else self.model(x)


def meta_pass(model: nn.Module, shape: tuple[int, ...], run: Callable | None = None):
    """Run ``model`` (or ``run(x)``, which calls it) on a meta input of ``shape`` with every
    parameter and buffer swapped for a meta tensor: shapes only, no arithmetic, no memory."""
    state = {f"model.{name}": torch.empty_like(t, device="meta")
             for name, t in [*model.named_parameters(), *model.named_buffers()]}
    with torch.no_grad():
        return torch.func.functional_call(_Call(model, run), state,
                                          (torch.zeros(shape, device="meta", dtype=_dtype(model)),))


def _zeros_like_input(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    parameter = next(model.parameters(), None)
    return torch.zeros(shape, device=parameter.device if parameter is not None else "cpu", dtype=_dtype(model))


def _dtype(model: nn.Module) -> torch.dtype:
    parameter = next(model.parameters(), None)
    return parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
