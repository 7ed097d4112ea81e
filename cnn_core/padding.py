"""Padding computed from the input's size: TensorFlow's "SAME", as timm's ``tf_`` models port it.

timm's ``Conv2dSame``, ``MaxPool2dSame`` and ``AvgPool2dSame`` hold ``padding=0`` and pad in
``forward``: along an axis of ``n`` pixels, a total of max((ceil(n/s) - 1)·s + (k - 1)·d + 1 - n, 0),
the smaller half before the first pixel (TensorFlow's convention), so the output has ceil(n/s)
units. What a layer's geometry needs is the leading half: the trailing one only decides how many
units there are, which the output's shape already says.
"""
from __future__ import annotations

import math

from torch import nn

from .geometry import as_pair


def pads_from_input(module: nn.Module) -> bool:
    """Whether ``module`` is one of timm's TensorFlow-"SAME" layers: by timm's naming, a class of
    timm's whose name ends in "Same" (Conv2dSame, StdConv2dSame, ScaledStdConv2dSame, MaxPool2dSame,
    AvgPool2dSame), each padding with ``timm.layers.pad_same`` in its forward."""
    return any(cls.__module__.startswith("timm.") and cls.__name__.endswith("Same") for cls in type(module).__mro__)


def same_total(size: int, kernel: int, stride: int, dilation: int) -> int:
    """TensorFlow's "SAME" padding along one axis of ``size`` pixels, both sides together."""
    return max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


def window(module: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """A conv's or pool's kernel, stride and dilation, as pairs (a pool's stride defaults to its kernel)."""
    kernel = as_pair(module.kernel_size)
    return kernel, as_pair(module.stride or kernel), as_pair(getattr(module, "dilation", 1))


def leading_padding(module: nn.Module, input_hw: tuple[int, int]) -> tuple[int, int]:
    """The rows above and the columns left of the input that ``module`` pads, for an input of
    ``input_hw``: TensorFlow's "SAME" for timm's layers, else the module's own (symmetric) padding."""
    kernel, stride, dilation = window(module)
    if pads_from_input(module):
        return tuple(same_total(n, k, s, d) // 2 for n, k, s, d in zip(input_hw, kernel, stride, dilation))
    if module.padding == "valid":
        return (0, 0)
    if module.padding == "same":  # torch's: stride 1, the smaller half first as well
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return as_pair(module.padding)
