"""Small models whose every output can be written down by hand, for the library's unit tests."""
from __future__ import annotations

import torch
from torch import nn


def box_sum_conv(in_channels: int = 3) -> nn.Conv2d:
    """A 3x3 convolution, padding 1, no bias, every weight 1: each output is the sum of the
    3x3 neighbourhood over all input channels (zeros outside the image)."""
    conv = nn.Conv2d(in_channels, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    return conv


def box_sum_net() -> nn.Sequential:
    """``box_sum_conv`` alone, in float64: fields of 3 pixels, jump 1, unit (r, c) centred on pixel (r, c)."""
    return nn.Sequential(box_sum_conv()).double().eval()


def conv_pool_conv() -> nn.Sequential:
    """3x3 conv (pad 1) -> 2x2 max pool (stride 2) -> 3x3 conv (pad 1), all weights 1, float64.

    Fields by hand: conv 3 px (jump 1, first pixel -1), pool 3 + 1 = 4 px (jump 2, first -1),
    conv 4 + 2 * 2 = 8 px (jump 2, first -1 - 2 = -3); unit k of the last layer is centred on
    pixel -3 + 3.5 + 2k = 0.5 + 2k.
    """
    second = box_sum_conv(1)
    return nn.Sequential(box_sum_conv(), nn.MaxPool2d(2), second).double().eval()
