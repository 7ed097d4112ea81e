"""Deliberate breaks: each claim is shown to fail when the property it checks is broken."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def position_dependent(module: nn.Module, strength: float):
    """Adds a ramp that grows towards the bottom-right corner to ``module``'s output.

    The response to a pattern then depends on where it is: weights are no longer shared
    across positions, the property behind translation equivariance and pattern matching.
    """
    def add_ramp(_module, _inputs, output):
        height, width = output.shape[-2:]
        rows = torch.arange(height, dtype=output.dtype, device=output.device).view(-1, 1) / height
        cols = torch.arange(width, dtype=output.dtype, device=output.device).view(1, -1) / width
        return output + strength * (rows + cols)

    handle = module.register_forward_hook(add_ramp)
    try:
        yield module
    finally:
        handle.remove()


@contextmanager
def global_context(module: nn.Module):
    """Adds every position's mean to ``module``'s output: each unit now sees the whole image."""
    def add_mean(_module, _inputs, output):
        return output + output.mean(dim=(2, 3), keepdim=True)

    handle = module.register_forward_hook(add_mean)
    try:
        yield module
    finally:
        handle.remove()


@contextmanager
def mirrored(module: nn.Module):
    """Turns ``module``'s maps upside down and left to right: what it computes is no longer where it was."""
    handle = module.register_forward_hook(lambda _module, _inputs, output: output.flip(-2, -1))
    try:
        yield module
    finally:
        handle.remove()
