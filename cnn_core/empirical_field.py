"""Receptive fields measured: what a unit's gradient reaches in the input.

Empirical: the support of d(unit)/d(input) on a twin of the model whose every weight is
positive, activations are identities and max pools are average pools, so that no gradient
can vanish or cancel: the support is then exactly the receptive field (clipped to the image).
Effective: how the gradient's mass is spread on the real model and input (Luo et al., 2016).
"""
from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .errors import InputError, NoSupportTwin, ReceptiveFieldError
from .geometry import Box, as_pair
from .layer_index import resolve
from .layer_kinds import (
    LAST_DIM_FUNCTIONS,
    LAST_DIM_MODULES,
    PER_SAMPLE_FUNCTIONS,
    POINTWISE_FUNCTIONS,
    POINTWISE_METHODS,
    POINTWISE_MODULES,
)
from .metrics import centre_of_mass, changed_region
from .models import input_size_of
from .padding import pads_from_input, window
from .receptive import ADAPTIVE_POOLS, channel_split, receptive_field
from .structure import cached
from .tracing import copy_nodes, layer_node, trace, truncate


def empirical_receptive_field(
    model: nn.Module, layer: str, input_size: tuple[int, int] | None = None, unit: tuple[int, int] | None = None
) -> Box:
    """The input pixels whose change can reach one unit of ``layer`` (default: the centre unit).

    Measured as the non-zero support of d(unit)/d(input) on the positive, linear twin.
    """
    return empirical_receptive_fields(model, layer, input_size, [unit])[0]


def empirical_receptive_fields(
    model: nn.Module, layer: str, input_size: tuple[int, int] | None, units: list[tuple[int, int] | None],
    spatial_dims: tuple[int, int] = (2, 3),
) -> list[Box]:
    """:func:`empirical_receptive_field` for several units of one layer (``None``: the centre
    unit). ``spatial_dims``: where the layer's output keeps its rows and columns ((1, 2) for a
    channels-last layer). One forward pass of the twin serves every layer of the model (it is
    kept per model, structure and input size); each unit costs one backward pass."""
    input_size = tuple(input_size) if input_size is not None else input_size_of(model)
    run = cached(model, ("support twin run", input_size), lambda: _SupportRun(model, input_size))
    out = run.output(layer_node(model, trace(model), layer), layer)
    if out.dim() != 4:
        raise ReceptiveFieldError(f"layer {layer!r} has no spatial output (shape {list(out.shape)})")
    channel = next(d for d in (1, 2, 3) if d not in spatial_dims)
    out = out.permute(0, channel, *spatial_dims)
    boxes = []
    for unit in units:
        row, col = unit if unit is not None else (out.shape[2] // 2, out.shape[3] // 2)
        if not (0 <= row < out.shape[2] and 0 <= col < out.shape[3]):
            raise InputError(f"unit {(row, col)} is outside layer {layer!r}'s {out.shape[2]}x{out.shape[3]} map")
        (gradient,) = torch.autograd.grad(out[0, :, row, col].sum(), run.pixels, retain_graph=True)
        boxes.append(changed_region(gradient[0, 0] > 0))
    return boxes


class _SupportRun:
    """The support twin of the whole model run once on a canvas of ones: every node's value, with
    its autograd graph kept, up to the first node the twin cannot stand in for (or cannot run);
    the nodes from there on have no value, and asking for one raises NoSupportTwin with the reason."""

    def __init__(self, model: nn.Module, input_size: tuple[int, int]):
        copy = copy_nodes(trace(model), replace=_support_twin_node, stop_on=(NoSupportTwin,))
        self.stop = str(copy.stopped) if copy.stopped else None  # why the twin ends before the model does
        self.copies = copy.copies
        self.pixels = torch.ones(1, 1, *input_size, dtype=torch.float64, requires_grad=True)
        recorder = _Recorder(copy.module(tuple(copy.copies.values())))
        try:
            recorder.run(self.pixels)
        except _TwinFailed as failed:
            self.stop = str(failed)
        self.values = recorder.env

    def output(self, node: fx.Node, layer: str) -> torch.Tensor:
        if self.copies.get(node) not in self.values:
            raise NoSupportTwin(f"the twin ends before {layer}: {self.stop}")
        value = self.values[self.copies[node]]
        if not isinstance(value, torch.Tensor):
            raise ReceptiveFieldError(f"layer {layer!r} outputs a {type(value).__name__}, not a tensor")
        return value


class _TwinFailed(Exception):
    """A node of the twin could not run: its value and every later one are missing."""


class _Recorder(fx.Interpreter):
    """Runs the twin node by node, keeping every value; stops at the first node that fails to run."""

    def __init__(self, twin: fx.GraphModule):
        super().__init__(twin, garbage_collect_values=False)

    def run_node(self, node: fx.Node):
        try:
            return super().run_node(node)
        except NoSupportTwin as error:  # a LayerNorm over a spatial dimension, found as it runs
            raise _TwinFailed(f"{node.name}: {error}") from None
        except RuntimeError as error:  # a reshape sized for the original's channels (ShuffleNet's shuffle)
            raise _TwinFailed(f"the one-channel twin cannot run {node.name}: {error}") from None


def _centre_unit_gradients(model: nn.Module, layer: str, x: torch.Tensor, unit: tuple[int, int] | None = None):
    """Per image of ``x``: |d(unit of ``layer``)/d(input)| summed over colour channels, float64
    ``[N, H, W]``, with each row's and column's coordinate; ``unit`` defaults to the centre one.
    The images are independent (the model is in eval mode), so one backward pass of the units'
    sum gives every image's own."""
    cut = truncate(model, resolve(model, layer).name)
    pixels = x.detach().clone().requires_grad_(True)
    out = cut(pixels)
    if out.dim() != 4:
        raise ReceptiveFieldError(f"layer {layer!r} has no spatial output (shape {list(out.shape)})")
    row, col = unit if unit is not None else (out.shape[2] // 2, out.shape[3] // 2)
    (gradient,) = torch.autograd.grad(out[:, :, row, col].sum(), pixels)
    weight = gradient.abs().sum(dim=1).double()
    rows = torch.arange(weight.shape[1], dtype=weight.dtype, device=weight.device)
    cols = torch.arange(weight.shape[2], dtype=weight.dtype, device=weight.device)
    return weight, rows, cols


def _centre_unit_gradient(model: nn.Module, layer: str, x: torch.Tensor):
    """:func:`_centre_unit_gradients` of one image, with the map's centre of mass (None when the
    gradient is all zero)."""
    weights, rows, cols = _centre_unit_gradients(model, layer, x[:1])
    weight = weights[0]
    centre = centre_of_mass(weight, rows, cols) if weight.sum() > 0 else None
    return weight, rows, cols, centre


def effective_receptive_field(model: nn.Module, layer: str, x: torch.Tensor, mass: float = 0.9) -> float:
    """The side, in pixels, of the centred square holding ``mass`` of |d(centre unit)/d(input)|
    on the real model and input (Luo et al., 2016): usually much smaller than the theoretical field."""
    weight, rows, cols, centre = _centre_unit_gradient(model, layer, x)
    if centre is None:
        return 0.0
    distance = torch.maximum((rows - centre[0]).abs().view(-1, 1), (cols - centre[1]).abs().view(1, -1))
    order = torch.argsort(distance.flatten())
    inside = torch.cumsum(weight.flatten()[order], dim=0) / weight.sum()
    radius = float(distance.flatten()[order][int(torch.searchsorted(inside, torch.tensor(mass, dtype=inside.dtype, device=inside.device)))])
    return 2 * radius + 1


def effective_field_spread(model: nn.Module, layer: str, x: torch.Tensor) -> float:
    """The gradient-weighted root-mean-square distance, in pixels, of the input from the centre of
    |d(centre unit)/d(input)|: the effective field's radius as a continuous number (the mass-based
    side of :func:`effective_receptive_field` moves in whole pixels)."""
    return float(effective_field_spreads(model, layer, x[:1])[0])


def _field_window(model: nn.Module, layer: str, input_size: tuple[int, int]):
    """The input rows and columns that hold the whole field of ``layer``'s centre unit, and that
    unit's position on them, when the field lies inside the input: the unit's value and gradient
    on that cut-out are its value and gradient on the whole input. None when the field is cut by
    the border or global."""
    whole = receptive_field(model, layer, input_size)
    if whole.is_global or whole.output_size is None:
        return None
    centre = (whole.output_size[0] // 2, whole.output_size[1] // 2)
    box = whole.box(*centre, clip=False)
    if whole.box(*centre) != box:
        return None
    # Start on the layer's grid, so that the cut-out's units are the whole input's units shifted.
    top, left = box.top - box.top % whole.jump[0], box.left - box.left % whole.jump[1]
    unit = (centre[0] - top // whole.jump[0], centre[1] - left // whole.jump[1])
    # Only the layers up to ``layer`` run on the cut-out, which later ones might find too small.
    cut = receptive_field(truncate(model, resolve(model, layer).name), layer, (box.bottom - top, box.right - left))
    if cut.is_global or cut.output_size is None or not all(0 <= u < n for u, n in zip(unit, cut.output_size)) \
            or cut.box(*unit) != Box(box.top - top, box.left - left, box.bottom - top, box.right - left):
        return None
    return slice(top, box.bottom), slice(left, box.right), unit


def effective_field_spreads(model: nn.Module, layer: str, x: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """:func:`effective_field_spread` of every image of ``x`` (float64 ``[N]``; 0 where the
    gradient is all zero), ``chunk`` images per backward pass. When the centre unit's field lies
    inside the image, only the pixels of its field are run (the spread does not depend on where
    the field sits): the same numbers, up to float32 rounding, for a fraction of the work."""
    window = _field_window(model, layer, tuple(x.shape[-2:]))
    rows_cut, cols_cut, unit = window if window is not None else (slice(None), slice(None), None)
    spreads = []
    for start in range(0, len(x), chunk):
        weights, rows, cols = _centre_unit_gradients(model, layer, x[start:start + chunk, :, rows_cut, cols_cut], unit)
        mass = weights.sum(dim=(1, 2))
        safe = mass.clamp_min(torch.finfo(mass.dtype).tiny)
        row = (weights.sum(dim=2) * rows).sum(dim=1) / safe
        col = (weights.sum(dim=1) * cols).sum(dim=1) / safe
        squared = (rows.view(1, -1, 1) - row.view(-1, 1, 1)).pow(2) + (cols.view(1, 1, -1) - col.view(-1, 1, 1)).pow(2)
        spreads.append(torch.where(mass > 0, ((weights * squared).sum(dim=(1, 2)) / safe).sqrt(), torch.zeros_like(mass)))
    return torch.cat(spreads)


# --- the support twin ------------------------------------------------------------------------

class _SupportConv(nn.Module):
    """Averages all channels, then a positive kernel with the original geometry."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.geometry = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
        self.padding_mode = conv.padding_mode
        self.pad = conv._reversed_padding_repeated_twice
        self.same = _same_padder(conv)
        kh, kw = conv.kernel_size
        self.register_buffer("weight", torch.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=torch.float64))

    def forward(self, x):
        x = self.same(x.mean(dim=1, keepdim=True))
        if self.padding_mode != "zeros":
            return F.conv2d(F.pad(x, self.pad, mode=self.padding_mode), self.weight,
                            stride=self.geometry["stride"], dilation=self.geometry["dilation"])
        return F.conv2d(x, self.weight, **self.geometry)


class _SupportPool(nn.Module):
    """Average pooling with the geometry of a max or average pool: every input counts."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        if as_pair(getattr(pool, "dilation", 1)) != (1, 1):
            raise NoSupportTwin("empirical receptive fields do not support dilated pooling")
        self.args = dict(kernel_size=pool.kernel_size, stride=pool.stride, padding=pool.padding, ceil_mode=pool.ceil_mode)
        self.same = _same_padder(pool)

    def forward(self, x):
        return F.avg_pool2d(self.same(x), count_include_pad=True, **self.args)


def _same_padder(module: nn.Module):
    """The padding a TensorFlow-"SAME" layer (timm's) adds in its forward, by timm's own function;
    the identity for every other layer, whose padding is an argument of the conv or pool."""
    if not pads_from_input(module):
        return _identity
    from timm.layers import pad_same  # loaded: the layer is timm's

    kernel, stride, dilation = window(module)
    return lambda x: pad_same(x, kernel, stride, dilation)


def _identity(x, *_args, **_kwargs):
    return x


def _channels_identity(x, *_args, **_kwargs):
    """The twin of a LayerNorm or Linear over the last dimension. The twin carries one channel
    (its convs average them), so that dimension must have size 1; anything else means the
    original mixes a spatial dimension, which an identity would hide."""
    if x.shape[-1] != 1:
        raise NoSupportTwin(f"a LayerNorm or Linear over a dimension of size {x.shape[-1]} mixes positions, "
                            "not channels: its empirical field has no twin")
    return x


def _max_as_average(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """``F.max_pool2d``'s twin: an average over the same windows, where every input counts."""
    if as_pair(dilation) != (1, 1) or return_indices:
        raise NoSupportTwin("empirical receptive fields do not support dilated pooling or pooling indices")
    return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad=True)


class _EveryPart:
    """A channel split's twin (called as the split is): the twin's single channel stands for every part."""

    def __init__(self, x, *_args, **_kwargs):
        self.x = x

    def __getitem__(self, _index):
        return self.x


class _ChannelsIdentity(nn.Module):
    def forward(self, x):
        return _channels_identity(x)


def _constant_one(*_args, **_kwargs):
    return 1.0


ARITHMETIC = {operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.imul,
              torch.add, torch.sub, torch.mul}
ARITHMETIC_METHODS = {"add", "add_", "mul", "mul_", "sub", "div"}


def _only_scales_or_shifts(node: fx.Node) -> bool:
    """Every use of a learned tensor is arithmetic with the activations (a layer scale, a bias) or
    a LayerNorm's affine weight: a constant that moves no gradient to new pixels."""
    return all(
        (user.op == "call_function" and user.target in ARITHMETIC)
        or (user.op == "call_method" and user.target in ARITHMETIC_METHODS)
        or (user.target in LAST_DIM_FUNCTIONS and node not in user.args[:1])
        for user in node.users
    )


def _support_twin_node(node: fx.Node, copied: fx.Node) -> nn.Module | None:
    """Rewrite one node of the twin: positive linear modules, identities for activations."""
    if node.op == "call_module":
        return _twin_module(node.graph.owning_module.get_submodule(node.target), node)
    if node.op == "call_function" and (node.target in POINTWISE_FUNCTIONS - ARITHMETIC or node.target in PER_SAMPLE_FUNCTIONS):
        # An activation as the identity, as its module is: a sigmoid's slope underflows where the
        # twin's sums grow large (ReXNet's gates, called as x.sigmoid()).
        copied.target = _identity
    elif node.op == "call_function" and node.target in LAST_DIM_FUNCTIONS:
        copied.target = _channels_identity
    elif node.op == "call_function" and node.target is F.max_pool2d:
        copied.target = _max_as_average
    elif channel_split(node):
        copied.op, copied.target = "call_function", _EveryPart
    elif node.op == "call_method" and node.target in POINTWISE_METHODS - ARITHMETIC_METHODS:
        copied.op, copied.target = "call_function", _identity
    elif (node.op == "call_function" and node.target in (operator.mul, torch.mul)) or (
            node.op == "call_method" and node.target in ("mul", "mul_")):
        # A gate (squeeze-and-excitation, x * sigmoid(...)): with both factors positive, d(ab) =
        # b da + a db reaches exactly the pixels that d(a + b) reaches, and a sum cannot underflow
        # where a stack of products of values below 1 does (efficientnet_b0's gradient was all zero).
        copied.op, copied.target = "call_function", operator.add
    elif node.op == "get_attr":
        if not _only_scales_or_shifts(node):
            raise NoSupportTwin(f"empirical receptive fields cannot handle learned tensors used directly ({node.target})")
        # As the number 1 the constant neither broadcasts the twin's single channel to many nor
        # (added, where the twin turned a product into a sum) moves any gradient.
        copied.op, copied.target, copied.args, copied.kwargs = "call_function", _constant_one, (), {}
    return None


def _twin_module(module: nn.Module, node: fx.Node) -> nn.Module:
    if isinstance(module, nn.Conv2d):
        return _SupportConv(module)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return _SupportPool(module)
    if isinstance(module, ADAPTIVE_POOLS):
        return nn.AdaptiveAvgPool2d(module.output_size)
    if isinstance(module, POINTWISE_MODULES):
        return nn.Identity()
    if isinstance(module, LAST_DIM_MODULES):
        return _ChannelsIdentity()
    raise NoSupportTwin(
        f"empirical receptive fields have no support-preserving twin for {type(module).__name__} ({node.target})"
    )
