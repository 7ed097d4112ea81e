"""The layer vocabulary the listing, the tracer and both receptive-field computations share: which
modules, functions and methods act per position, per sample or along the last dimension, and which
modules a trace keeps whole. It imports nothing of the package, so every module can build on it."""
from __future__ import annotations

import operator
import sys

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth, stochastic_depth

POINTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid,
    nn.Sigmoid, nn.Tanh, nn.Mish, nn.PReLU, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d, nn.Identity,
    nn.LocalResponseNorm, StochasticDepth,  # which scales whole samples, and is the identity in eval mode
)
POINTWISE_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.imul,
    torch.add, torch.sub, torch.mul, torch.relu, torch.sigmoid, F.relu, F.relu6, F.hardswish,
    F.hardsigmoid, F.silu, F.gelu, F.dropout,
}
POINTWISE_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "add", "add_", "mul", "mul_", "contiguous", "clone", "detach"}
# Stochastic depth scales whole samples (or the whole batch) and is the identity in eval mode.
PER_SAMPLE_FUNCTIONS = {stochastic_depth}
# Operations on a tensor's last dimension: per position when that dimension holds channels.
LAST_DIM_MODULES = (nn.LayerNorm, nn.Linear)
LAST_DIM_FUNCTIONS = {F.layer_norm, F.linear}


def kept_whole(module: nn.Module) -> bool:
    """Whether ``module`` is in timm's no-trace registry (layers that pad from the input's size, or
    branch on data): the traced graph keeps it as one node, so the listing lists it as one layer."""
    timm_layers = sys.modules.get("timm.layers")
    return timm_layers is not None and timm_layers.is_notrace_module(type(module))
