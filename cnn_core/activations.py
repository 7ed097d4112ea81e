"""Capturing what layers really output, without the notebook's in-place trap.

The notebook stores ``output.detach()`` in forward hooks. ``detach`` shares memory, so when
the next module is ``ReLU(inplace=True)`` the stored "conv output" is silently overwritten
with the post-ReLU values. :func:`capture` keeps each output as it was produced: it watches
each stored tensor's version counter, and a tensor that a later in-place operation touched is
captured again as a copy. It copies only where that happens, learns which layers need it,
stops the forward pass right after the deepest requested layer, and always removes its hooks.
"""
from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable

import torch
from torch import nn

from .errors import AmbiguousLayer, InputError
from .hooks import forward_hooks
from .layer_index import LayerRef, call_counts, resolve
from .models import input_size_of
from .tracing import truncate

# Per model: how often each module runs in one forward pass (from a meta-device pass).
_CALLS: weakref.WeakKeyDictionary[nn.Module, dict[nn.Module, int]] = weakref.WeakKeyDictionary()
# Per model: modules whose outputs a later in-place operation overwrites.
_OVERWRITTEN: weakref.WeakKeyDictionary[nn.Module, set[nn.Module]] = weakref.WeakKeyDictionary()


class _StopForward(Exception):
    """Raised from a hook once every requested output is in hand."""


def check_input(x: object, model: nn.Module | None = None) -> torch.Tensor:
    """``x`` must be a finite floating ``[N, C, H, W]`` tensor on the model's device."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"input must be a torch.Tensor of shape [N, C, H, W], got {type(x).__name__}")
    if x.dim() != 4:
        hint = " (add the batch dimension with x.unsqueeze(0))" if x.dim() == 3 else ""
        raise InputError(f"input must have shape [N, C, H, W], got {list(x.shape)}{hint}")
    if not x.is_floating_point():
        raise InputError(f"input must be a floating-point tensor, got {x.dtype}; use images.preprocess or x.float()")
    if not torch.isfinite(x).all():
        raise InputError("input contains NaN or infinite values")
    if model is not None:
        parameter = next(model.parameters(), None)
        if parameter is not None and parameter.device != x.device:
            raise InputError(f"input is on {x.device} but the model is on {parameter.device}; move one of them")
        if parameter is not None and parameter.dtype != x.dtype:
            raise InputError(f"input is {x.dtype} but the model is {parameter.dtype}; convert one of them")
    return x


def capture(model: nn.Module, x: torch.Tensor, layers: str | Iterable[str]) -> dict[str, torch.Tensor]:
    """The output of each requested layer, keyed by the name it was asked for.

    Pre-activation layers stay pre-activation (``features.28`` of VGG16 is conv5_3 before its
    ReLU); a ReLU layer gives post-activation values. Runs under ``torch.no_grad``.
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise InputError("capture needs at least one layer name")
    check_input(x, model)
    refs = {name: resolve(model, name) for name in names}
    modules = {name: model.get_submodule(ref.path) for name, ref in refs.items()}
    counts = _CALLS.get(model)
    if counts is None or any(module not in counts for module in modules.values()):
        # At the size the model was built for: a smaller input (an early layer's 64-px view) may not
        # get through the whole model (Inception v3), and how often a module runs does not depend on it.
        counts = _CALLS[model] = call_counts(model, (1, x.shape[1], *input_size_of(model)))
    for name, ref in refs.items():
        calls = counts.get(modules[name], 0)
        if ref.call is None and calls > 1:
            raise AmbiguousLayer(ref.path, calls)
        if calls <= (ref.call or 0):
            raise InputError(f"layer {name!r} does not run {'at all' if calls == 0 else f'{ref.call + 1} times'} in a forward pass")
    overwritten = _OVERWRITTEN.setdefault(model, set())
    outputs = _run(model, x, refs, modules, copy=overwritten)
    stale = {name for name, (tensor, version) in outputs.items() if tensor._version != version}
    if stale:
        overwritten.update(modules[name] for name in stale)
        outputs = _run(model, x, refs, modules, copy=overwritten)
    return {name: tensor for name, (tensor, _) in outputs.items()}


def copied_layers(model: nn.Module) -> set[str]:
    """Paths of the layers that capture keeps as copies, because an in-place op overwrites them."""
    paths = {module: path for path, module in model.named_modules()}
    return {paths[module] for module in _OVERWRITTEN.get(model, set()) if module in paths}


def _run(model, x, refs: dict[str, LayerRef], modules: dict[str, nn.Module], copy: set[nn.Module]):
    wanted: dict[nn.Module, dict[int, list[str]]] = {}
    for name, ref in refs.items():
        wanted.setdefault(modules[name], {}).setdefault(ref.call or 0, []).append(name)
    outputs: dict[str, tuple[torch.Tensor, int]] = {}
    calls: dict[nn.Module, int] = {}

    def hook(module, _inputs, output):
        index = calls.get(module, 0)
        calls[module] = index + 1
        for name in wanted[module].get(index, []):
            if not isinstance(output, torch.Tensor):
                raise InputError(f"layer {name!r} outputs a {type(output).__name__}, not a tensor")
            kept = output.detach().clone() if module in copy else output.detach()
            outputs[name] = (kept, kept._version)
        if len(outputs) == len(refs):
            raise _StopForward

    # Version counters are what reveal in-place overwrites; inference mode has none, so leave it.
    with forward_hooks(wanted, hook), torch.inference_mode(False), torch.no_grad():
        try:
            with contextlib.suppress(_StopForward):
                model(x)
        except (AssertionError, RuntimeError):
            if tuple(x.shape[-2:]) == input_size_of(model):
                raise
            # A view other than the model's own size may not get through the whole model (a ViT
            # asserts its image size before its first conv): the model cut after each layer runs it.
            for name in refs:
                if name not in outputs:
                    with contextlib.suppress(_StopForward):
                        truncate(model, name)(x)
    missing = [name for name in refs if name not in outputs]
    if missing:
        raise InputError(f"layers {missing} did not run in the forward pass")
    return outputs
