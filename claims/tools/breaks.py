"""Deliberate breaks: each claim is shown to fail when the property it checks is broken."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from cnn_core.hooks import forward_hooks


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

    with forward_hooks([module], add_ramp):
        yield module


@contextmanager
def global_context(module: nn.Module):
    """Adds every position's mean to ``module``'s output: each unit now sees the whole image."""
    def add_mean(_module, _inputs, output):
        return output + output.mean(dim=(2, 3), keepdim=True)

    with forward_hooks([module], add_mean):
        yield module


@contextmanager
def mirrored(module: nn.Module):
    """Turns ``module``'s maps upside down and left to right: what it computes is no longer where it was."""
    with forward_hooks([module], lambda _module, _inputs, output: output.flip(-2, -1)):
        yield module


@contextmanager
def position_scaled(module: nn.Module, strength: float):
    """Multiplies ``module``'s output by a gain that grows towards the bottom-right corner: each
    position then applies its own copy of the filter (a locally connected layer), not a shared one."""
    def scale(_module, _inputs, output):
        height, width = output.shape[-2:]
        rows = torch.arange(height, dtype=output.dtype, device=output.device).view(-1, 1) / height
        cols = torch.arange(width, dtype=output.dtype, device=output.device).view(1, -1) / width
        return output * (1 + strength * (rows + cols))

    with forward_hooks([module], scale):
        yield module


@contextmanager
def single_window(module: nn.Module, box_side: int):
    """Zeroes ``module``'s output outside one ``box_side`` square at its centre: a filter that may fire in one place only."""
    def keep_centre(_module, _inputs, output):
        height, width = output.shape[-2:]
        top, left = (height - box_side) // 2, (width - box_side) // 2
        mask = torch.zeros_like(output)
        mask[..., top:top + box_side, left:left + box_side] = 1
        return output * mask

    with forward_hooks([module], keep_centre):
        yield module
