"""Receptive fields, computed analytically (the empirical twin is :mod:`.empirical_field`).

The model is traced with ``torch.fx`` and every node's field is propagated through
Conv2d, MaxPool2d, AvgPool2d and adaptive pools (kernel, stride, padding, dilation; ceil mode
does not move fields). Where branches meet (ResNet's residual add) the field is the union of
the branches' fields. An operation that mixes all positions (flatten, attention, broadcasting
a 1x1 map) makes the field global. Each tensor's spatial dimensions are followed through
permutes, so that a LayerNorm or Linear over channels-last channels (ConvNeXt) stays per
position, while one over a spatial dimension is global. Shapes come from a pass on the meta device.

"""
from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .errors import InputError, LayerNotFound, ReceptiveFieldError
from .geometry import Box, as_pair
from .layer_index import meta_pass, resolve
from .layer_kinds import (
    PER_SAMPLE_FUNCTIONS,
    POINTWISE_FUNCTIONS,
    POINTWISE_METHODS,
    POINTWISE_MODULES,
)
from .models import input_size_of
from .padding import leading_padding
from .structure import cached
from .tracing import node_names, trace, truncate

CHANNELS_FIRST = (2, 3)  # where an NCHW tensor keeps its rows and columns
ADAPTIVE_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
# F.max_pool2d(x, kernel_size, stride, padding, dilation, ...), F.avg_pool2d(x, kernel_size, stride, padding, ...)
POOL_FUNCTIONS = {F.max_pool2d: ("kernel_size", "stride", "padding", "dilation"),
                  F.avg_pool2d: ("kernel_size", "stride", "padding")}
SPLITS = {torch.split, torch.chunk, torch.tensor_split}  # and the methods of the same names
RESHAPE_METHODS = {"view", "reshape", "transpose"}
RESHAPE_FUNCTIONS = {torch.reshape, torch.transpose}
ADAPTIVE_FUNCTIONS = {F.adaptive_avg_pool2d, F.adaptive_max_pool2d}


@dataclass(frozen=True)
class _Axis:
    """One axis of a layer's fields: the ideal grid, and each unit's exact span of real pixels."""

    first: int  # input pixel index where unit 0's field begins (negative inside the padding)
    size: int
    jump: int
    spans: tuple[tuple[int, int], ...]  # per unit: the pixels [begin, end) that can change it


@dataclass(frozen=True)
class ReceptiveField:
    """The input region seen by each unit of one layer, per axis (rows, columns).

    ``size``: field width in input pixels; ``jump``: input pixels between neighbouring units
    (the effective stride); ``start``: the centre of unit 0's field in input pixels, which
    can fall on a half pixel (pool1 of VGG: 0.5). Global layers see the whole input.
    """

    layer: str
    size: tuple[int, int]
    jump: tuple[int, int]
    first: tuple[int, int]
    input_size: tuple[int, int]
    output_size: tuple[int, int] | None
    is_global: bool = False
    # The field size of the tensor this layer consumed (its first input): growth is measured against it.
    input_field_size: tuple[int, int] | None = None
    # Per unit, the real pixels [begin, end) that can change it, per axis. They differ from the
    # ideal grid at the borders (padding, ceil mode, dilated taps, rows a floor-mode window skipped)
    # and after adaptive pools with uneven bins.
    row_spans: tuple[tuple[int, int], ...] = ()
    col_spans: tuple[tuple[int, int], ...] = ()
    # Which dimensions of the layer's output hold rows and columns: (2, 3) for [N, C, H, W], (1, 2)
    # for a channels-last [N, H, W, C] (ConvNeXt's LayerNorm and Linear layers).
    spatial_dims: tuple[int, int] = CHANNELS_FIRST

    @property
    def start(self) -> tuple[float, float]:
        return tuple(f + (s - 1) / 2 for f, s in zip(self.first, self.size))

    def box(self, row: int, col: int, clip: bool = True) -> Box | None:
        """The input pixels unit ``(row, col)`` sees.

        Clipped (the default): the bounding box of the real pixels that can change the unit.
        ``clip=False``: the ideal field on the grid, padding included.
        """
        if self.is_global:
            return Box(0, 0, *self.input_size)
        if clip:
            (top, bottom), (left, right) = self.row_spans[row], self.col_spans[col]
            return Box(top, left, bottom, right) if bottom > top and right > left else None
        top = self.first[0] + row * self.jump[0]
        left = self.first[1] + col * self.jump[1]
        return Box(top, left, top + self.size[0], left + self.size[1])

    def unit_centres(self, axis: int, count: int | None = None) -> torch.Tensor:
        """Each unit's field centre along ``axis`` (0 rows, 1 columns) in input pixels, float64,
        for ``count`` units (default: the layer's output size)."""
        count = self.output_size[axis] if count is None else count
        if self.is_global:
            # A global field (a squeeze-and-excitation gate, attention) has no grid of its own: the
            # units sit evenly over the input, as the map they gate does.
            step = self.input_size[axis] / count
            return step * torch.arange(count, dtype=torch.float64) + (step - 1) / 2
        return self.start[axis] + self.jump[axis] * torch.arange(count, dtype=torch.float64)

    def interior_units(self, axis: int) -> range:
        """The units along ``axis`` whose whole field lies inside the input: they never see padding."""
        first, span, jump = self.first[axis], self.size[axis], self.jump[axis]
        begin = -(first // jump) if first < 0 else 0
        end = (self.input_size[axis] - span - first) // jump + 1
        return range(begin, min(max(begin, end), self.output_size[axis]))

    def units_touching(self, box: Box) -> tuple[slice, slice]:
        """Rows and columns of the units whose field overlaps ``box`` (possibly empty slices)."""
        if self.is_global:
            return slice(None), slice(None)
        return _overlapping(self.row_spans, box.top, box.bottom), _overlapping(self.col_spans, box.left, box.right)


def _overlapping(spans, low: int, high: int) -> slice:
    hits = [unit for unit, (begin, end) in enumerate(spans) if begin < high and low < end]
    return slice(hits[0], hits[-1] + 1) if hits else slice(0, 0)


def receptive_fields(model: nn.Module, input_size: tuple[int, int] | None = None) -> dict[str, ReceptiveField]:
    """The receptive field of every layer (module paths, ``path@k`` and containers), in execution order.

    ``input_size`` defaults to the size the model was built for (224 for torchvision's models).
    """
    input_size = tuple(input_size) if input_size is not None else input_size_of(model)
    # The propagation rules are part of the question: a deliberate break may replace one.
    rules = (_through, _conv_padding)
    return dict(cached(model, ("receptive_fields", input_size, rules), lambda: _field_table(model, input_size)))


def _field_table(model: nn.Module, input_size: tuple[int, int]) -> dict[str, ReceptiveField]:
    graph_module = trace(model)
    propagator = _propagate(graph_module, input_size)
    fields = propagator.fields
    named = node_names(graph_module)
    order = {node: index for index, node in enumerate(graph_module.graph.nodes)}
    table = {}
    for name, node in sorted(named.items(), key=lambda item: order[item[1]]):
        sources = [n for n in node.all_input_nodes if fields.get(n) is not None]
        consumed = _describe(name, fields[sources[0]], propagator.hw(sources[0]), input_size) if sources else None
        field = _describe(name, fields.get(node), propagator.hw(node), input_size)
        table[name] = dataclasses.replace(field, input_field_size=consumed.size if consumed else None,
                                          spatial_dims=propagator.spatial_dims.get(node, CHANNELS_FIRST))
    return table


def receptive_field(model: nn.Module, layer: str, input_size: tuple[int, int] | None = None) -> ReceptiveField:
    """The receptive field of ``layer`` (a path, alias or ``path@k``)."""
    ref = resolve(model, layer)
    try:
        table = receptive_fields(model, input_size)
    except ReceptiveFieldError:
        if input_size is None:
            raise
        # Only the layers up to ``layer`` need to fit the size: Inception v3 cannot run whole on 64 px.
        table = receptive_fields(truncate(model, ref.name), input_size)
    if ref.name not in table:
        raise LayerNotFound(layer, table, hint="that module does not take part in the traced forward pass")
    return dataclasses.replace(table[ref.name], layer=layer)


# --- analytic propagation ------------------------------------------------------------------

_GLOBAL = "global"


class _Propagator(fx.Interpreter):
    def __init__(self, graph_module: fx.GraphModule):
        super().__init__(graph_module)
        self.fields: dict[fx.Node, object] = {}
        self.shapes: dict[fx.Node, tuple[int, ...]] = {}
        self.spatial_dims: dict[fx.Node, tuple[int, int]] = {}  # where a tensor keeps rows and columns
        self.regrouping: set[fx.Node] = set()  # reshapes that only regroup channels

    def run_node(self, node: fx.Node):
        result = super().run_node(node)
        # A split along channels gives parts that each carry the input's field: the node stands for its first.
        tensor = result[0] if channel_split(node) and isinstance(result, (tuple, list)) else result
        if isinstance(tensor, torch.Tensor):
            self.shapes[node] = tuple(tensor.shape)
            if self._regroups_channels(node, tensor):
                self.regrouping.add(node)  # before _spatial_dims, which reads it
            dims = self._spatial_dims(node, tensor)
            if dims is not None:
                self.spatial_dims[node] = dims
        self.fields[node] = self._field(node, tensor)
        return result

    def hw(self, node: fx.Node) -> tuple[int, int] | None:
        """The node's rows and columns, wherever its layout keeps them (None: no spatial layout)."""
        dims = self.spatial_dims.get(node)
        return None if dims is None else tuple(self.shapes[node][d] for d in dims)

    def _spatial_dims(self, node: fx.Node, result: torch.Tensor) -> tuple[int, int] | None:
        if node.op == "placeholder":
            return CHANNELS_FIRST
        if node in self.regrouping:
            return (result.dim() - 2, result.dim() - 1)
        sources = [n for n in node.all_input_nodes if n in self.spatial_dims]
        if not sources or result.dim() != len(self.shapes[sources[0]]):
            # Any other 4-d tensor is taken as [N, C, H, W]; a change of rank loses the layout.
            return CHANNELS_FIRST if result.dim() == 4 else None
        order = _permutation(node, result.dim())
        if order is not None:
            return tuple(order.index(d) for d in self.spatial_dims[sources[0]])
        return self.spatial_dims[sources[0]]

    def _regroups_channels(self, node: fx.Node, result: torch.Tensor) -> bool:
        """A view, reshape or transpose that keeps the batch and the last two (spatial) dimensions and
        only regroups channels (ShuffleNet's channel shuffle: [N, C, H, W] -> [N, g, C/g, H, W] and back)."""
        is_reshape = (node.op == "call_method" and node.target in RESHAPE_METHODS) or (
            node.op == "call_function" and node.target in RESHAPE_FUNCTIONS)
        source = node.all_input_nodes[0] if node.all_input_nodes else None
        if not is_reshape or source not in self.shapes or source not in self.spatial_dims:
            return False
        shape, rank = self.shapes[source], len(self.shapes[source])
        if self.spatial_dims[source] != (rank - 2, rank - 1) or result.dim() < 4 or result.shape[0] != shape[0] \
                or tuple(result.shape[-2:]) != shape[-2:]:
            return False
        if node.target in ("transpose", torch.transpose):
            swapped = {d % rank for d in node.args[1:3]}
            return 0 not in swapped and not swapped & {rank - 2, rank - 1}
        return True

    def _field(self, node: fx.Node, result):
        if node.op == "placeholder":
            return tuple(_Axis(0, 1, 1, tuple((p, p + 1) for p in range(size))) for size in result.shape[-2:])
        if node.op in ("get_attr", "output") or not isinstance(result, torch.Tensor):
            return None
        incoming = [self.fields[n] for n in node.all_input_nodes if self.fields.get(n) is not None]
        if not incoming:
            return None
        if _GLOBAL in incoming:
            return _GLOBAL
        kind, params = self._kind(node)
        if kind == "global" or node not in self.spatial_dims:
            return _GLOBAL
        if kind == "adaptive":
            source = node.all_input_nodes[0]
            return _adaptive(self.fields[source], self.hw(source), self.hw(node))
        if kind == "pointwise":
            return self._union(node, incoming)
        if self.spatial_dims[node.all_input_nodes[0]] != CHANNELS_FIRST:
            raise ReceptiveFieldError(f"{node.name} slides its window over dimensions 2 and 3 of a tensor whose rows "
                                      f"and columns are dimensions {self.spatial_dims[node.all_input_nodes[0]]}")
        return tuple(
            _through(axis, *axis_params, units) for axis, axis_params, units in zip(incoming[0], params, self.hw(node))
        )

    def _kind(self, node: fx.Node):
        if node.op == "call_module":
            module = self.module.get_submodule(node.target)
            input_hw = self.hw(node.all_input_nodes[0]) if node.all_input_nodes else None
            if isinstance(module, nn.Conv2d):
                if module.padding_mode == "circular":
                    return "global", None
                padding = _conv_padding(module, input_hw)
                return "spatial", tuple(zip(module.kernel_size, module.stride, padding, module.dilation))
            if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
                kernel, stride = (as_pair(getattr(module, a)) for a in ("kernel_size", "stride"))
                dilation = as_pair(getattr(module, "dilation", 1))
                return "spatial", tuple(zip(kernel, stride, leading_padding(module, input_hw), dilation))
            if isinstance(module, ADAPTIVE_POOLS):
                return "adaptive", None
            if isinstance(module, POINTWISE_MODULES):
                return "pointwise", None
            if isinstance(module, nn.LayerNorm):
                return self._over_last_dims(node, len(module.normalized_shape))
            if isinstance(module, nn.Linear):
                return self._over_last_dims(node, 1)
            return "global", None
        if node.op == "call_function":
            if node.target in ADAPTIVE_FUNCTIONS:
                return "adaptive", None
            if node.target in POINTWISE_FUNCTIONS or node.target in PER_SAMPLE_FUNCTIONS or node in self.regrouping \
                    or node.target in (getattr, operator.getitem) or channel_split(node):
                return "pointwise", None
            if node.target in POOL_FUNCTIONS:
                return "spatial", _pool_arguments(node)
            if node.target is F.layer_norm:
                shape = node.kwargs.get("normalized_shape", node.args[1] if len(node.args) > 1 else None)
                return self._over_last_dims(node, 1 if isinstance(shape, int) else len(shape))
            if node.target is F.linear:
                return self._over_last_dims(node, 1)
            if node.target is torch.cat:
                dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
                return ("pointwise", None) if dim in (1, -3) else ("global", None)
            if _permutation(node, len(self.shapes[node])) is not None:
                return "pointwise", None
            return "global", None
        if node.op == "call_method" and (node.target in POINTWISE_METHODS or node in self.regrouping
                                         or _permutation(node, len(self.shapes[node])) is not None
                                         or channel_split(node)):
            return "pointwise", None
        return "global", None

    def _over_last_dims(self, node: fx.Node, count: int):
        """A normalisation or linear map over the input's last ``count`` dimensions: per position
        unless one of them is a spatial dimension."""
        dims = self.spatial_dims.get(node.all_input_nodes[0])
        rank = len(self.shapes.get(node.all_input_nodes[0], ()))
        spatial = dims is not None and any(d >= rank - count for d in dims)
        return ("global", None) if dims is None or spatial else ("pointwise", None)

    def _union(self, node: fx.Node, incoming):
        spatial = [n for n in node.all_input_nodes if self.fields.get(n) is not None and n in self.shapes]
        if any(self.hw(n) != self.hw(node) for n in spatial):
            return _GLOBAL  # a 1x1 map broadcast over every position carries global context
        merged = incoming[0]
        for other in incoming[1:]:
            merged = tuple(_union_axis(a, b, node) for a, b in zip(merged, other))
        return merged


def channel_split(node: fx.Node) -> bool:
    """``torch.split(x, sizes, dim=1)``, ``x.chunk(n, 1)`` and the like: parts of the channels, per position."""
    is_split = (node.op == "call_function" and node.target in SPLITS) or (
        node.op == "call_method" and node.target in ("split", "chunk", "tensor_split"))
    if not is_split:
        return False
    dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
    return dim in (1, -3)


def _pool_arguments(node: fx.Node) -> tuple:
    """Kernel, stride, padding and dilation per axis of a functional pool (``F.max_pool2d(x, 3, 2)``)."""
    names = POOL_FUNCTIONS[node.target]
    given = dict(zip(names, node.args[1:]), **{k: v for k, v in node.kwargs.items() if k in names})
    kernel = as_pair(given["kernel_size"])
    stride = as_pair(given.get("stride") or kernel)
    padding, dilation = as_pair(given.get("padding", 0)), as_pair(given.get("dilation", 1))
    return tuple(zip(kernel, stride, padding, dilation))


def _permutation(node: fx.Node, rank: int) -> tuple[int, ...] | None:
    """The dimension order of a ``permute`` node (``x.permute(0, 2, 3, 1)`` or ``torch.permute(x, [...])``)
    or of a transpose of two dimensions (``x.transpose(1, 2)``, ``x.swapaxes(-2, -3)``), on a tensor of ``rank``."""
    if (node.op == "call_method" and node.target in ("transpose", "swapaxes")) or (
            node.op == "call_function" and node.target in (torch.transpose, torch.swapaxes)):
        first, second = (d % rank for d in node.args[1:3])
        order = list(range(rank))
        order[first], order[second] = second, first
        return tuple(order)
    is_permute = (node.op == "call_method" and node.target == "permute") or (
        node.op == "call_function" and node.target is torch.permute)
    if not is_permute:
        return None
    order = node.kwargs.get("dims", node.args[1:] if node.op == "call_method" else node.args[1])
    if len(order) == 1 and isinstance(order[0], (list, tuple)):
        order = order[0]
    return tuple(d % rank for d in order)


def _union_axis(a: _Axis, b: _Axis, node: fx.Node) -> _Axis:
    if a.jump != b.jump:
        raise ReceptiveFieldError(f"branches meeting at {node.name} have different strides ({a.jump} vs {b.jump})")
    first = min(a.first, b.first)
    last = max(a.first + a.size, b.first + b.size)
    spans = tuple(_hull(x, y) for x, y in zip(a.spans, b.spans))
    return _Axis(first, last - first, a.jump, spans)


def _hull(*spans: tuple[int, int]) -> tuple[int, int]:
    real = [span for span in spans if span[1] > span[0]]
    return (min(b for b, _ in real), max(e for _, e in real)) if real else (0, 0)


def _through(axis: _Axis, kernel: int, stride: int, padding: int, dilation: int, units: int) -> _Axis:
    """The fields after ``units`` windows of ``kernel`` input units (``dilation`` apart), ``stride`` apart."""
    span = dilation * (kernel - 1) + 1
    spans = []
    for unit in range(units):
        start = unit * stride - padding
        taps = [t for t in range(start, start + span, dilation) if 0 <= t < len(axis.spans)]
        spans.append(_hull(*(axis.spans[t] for t in taps)))
    return _Axis(axis.first - padding * axis.jump, axis.size + (span - 1) * axis.jump, axis.jump * stride, tuple(spans))


def _adaptive(field, in_hw, out_hw):
    if field is None or field is _GLOBAL:
        return field
    axes = []
    for axis, size_in, size_out in zip(field, in_hw, out_hw):
        # A single bin is one window over the whole map: it sees every pixel the map sees, which is
        # not every pixel when a strided layer before it skipped the last rows (SqueezeNet 1.1).
        if size_in % size_out == 0:
            step = size_in // size_out
            axes.append(_through(axis, step, step, 0, 1, size_out))
            continue
        # Uneven bins (torch's rule: floor(i*n/m) to ceil((i+1)*n/m)): exact spans, and the widest
        # bin for the grid, whose jump is then only the average spacing.
        bins = [(i * size_in // size_out, -(-(i + 1) * size_in // size_out)) for i in range(size_out)]
        widest = max(end - begin for begin, end in bins)
        spans = tuple(_hull(*axis.spans[begin:end]) for begin, end in bins)
        grid = _through(axis, widest, round(size_in / size_out), 0, 1, 0)
        axes.append(_Axis(grid.first, grid.size, grid.jump, spans))
    return tuple(axes)


def _conv_padding(module: nn.Conv2d, input_hw: tuple[int, int]) -> tuple[int, int]:
    """The conv's padding before the first row and column (a deliberate break replaces it)."""
    return leading_padding(module, input_hw)


def _propagate(graph_module: fx.GraphModule, input_size: tuple[int, int]):
    if len(input_size) != 2 or any(not isinstance(s, int) or s < 1 for s in input_size):
        raise InputError(f"input_size must be two positive integers (height, width), got {input_size!r}")
    propagator = _Propagator(graph_module)
    channels = _input_channels(graph_module)
    try:
        meta_pass(graph_module, (1, channels, *input_size), run=propagator.run)
    except ReceptiveFieldError:
        raise
    except Exception as error:
        raise ReceptiveFieldError(f"shape propagation at input size {input_size} failed: {error}") from None
    return propagator


def _input_channels(graph_module: fx.GraphModule) -> int:
    for module in graph_module.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 3


def _describe(name: str, field, output_size, input_size) -> ReceptiveField:
    if field is None or field is _GLOBAL or output_size is None:
        return ReceptiveField(name, tuple(input_size), tuple(input_size), (0, 0), tuple(input_size), output_size, True)
    rows, cols = field
    return ReceptiveField(
        name, (rows.size, cols.size), (rows.jump, cols.jump), (rows.first, cols.first), tuple(input_size), output_size,
        row_spans=rows.spans, col_spans=cols.spans,
    )
