"""Exact incremental occlusion: recompute, layer by layer, only what a window changes.

Occlusion is local: a unit changes only if its receptive field overlaps the painted window. So
after one clean forward pass, each window needs, at each layer, only the units whose inputs
changed, computed from the changed inputs and the clean ones around them (the halo a kernel or
pool needs). Where branches merge by addition or concatenation (ResNet's residual blocks,
MobileNetV2's inverted residuals), the changed region after the merge is the union of its inputs'
regions, each input read there from its changed block pasted into its clean map. This is
Nakandala, Kumar and Papakonstantinou's exact incremental inference (Krypton, SIGMOD 2019). The
recomputed blocks are pasted into the clean final map and the rest of the network (global
pooling, classifier) runs on that.

The incremental part is the model's leading part of its torch.fx graph made of supported nodes:
Conv2d (any kernel, stride, padding, dilation, groups; zero padding), MaxPool2d, AvgPool2d
(padding counted), BatchNorm2d in eval mode, Dropout in eval mode, pointwise activations,
additions of two maps and concatenations along channels. It must hold every convolution of the
model, and what follows may read only its last node; otherwise :func:`incremental_plan` names
the first node that stops it (a squeeze-and-excitation gate's global pooling, say).
"""
from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .geometry import Box, as_pair
from .padding import pads_from_input
from .tracing import trace

POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardtanh, nn.Sigmoid,
             nn.Tanh, nn.Identity, nn.Dropout, nn.BatchNorm2d)
WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
ADDITIONS = (operator.add, torch.add)
CONCATENATIONS = (torch.cat, torch.concat)
CHANNELS = 1  # the dimension a concatenation must join along


@dataclass(frozen=True)
class Geometry:
    """A windowed layer's arithmetic along both axes."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    @classmethod
    def of(cls, module: nn.Module) -> Geometry:
        dilation = getattr(module, "dilation", 1)
        return cls(as_pair(module.kernel_size), as_pair(module.stride or module.kernel_size), as_pair(module.padding),
                   as_pair(dilation))

    def affected(self, axis: int, start: int, stop: int, out_size: int) -> tuple[int, int]:
        """Output units ``[lo, hi)`` whose window reads any input in ``[start, stop)``."""
        k, s, p, d = self.kernel[axis], self.stride[axis], self.padding[axis], self.dilation[axis]
        lo = max(0, math.ceil((start + p - (k - 1) * d) / s))
        hi = min(out_size, (stop - 1 + p) // s + 1)
        return lo, hi

    def needed(self, axis: int, lo: int, hi: int) -> tuple[int, int]:
        """Input positions ``[start, stop)`` that output units ``[lo, hi)`` read (may overhang the input)."""
        k, s, p, d = self.kernel[axis], self.stride[axis], self.padding[axis], self.dilation[axis]
        return lo * s - p, (hi - 1) * s - p + (k - 1) * d + 1


@dataclass(frozen=True)
class Step:
    """One node of the incremental part: a layer, an addition or a concatenation of earlier nodes."""

    name: str  # the torch.fx node's name
    inputs: tuple[str, ...]  # the nodes it reads
    module: nn.Module | None = None  # a layer's module; None for a merge
    merge: str | None = None  # "add" or "cat"


@dataclass(frozen=True)
class Plan:
    """How a model splits into an incremental part and a head, or why it cannot."""

    source: str  # the input's node
    steps: tuple[Step, ...]
    head: fx.GraphModule | None
    blocker: str | None  # the first node that stops the incremental part before the last conv

    @property
    def supported(self) -> bool:
        return self.blocker is None


def incremental_plan(model: nn.Module) -> Plan:
    """The model's leading part of supported nodes and the graph of everything after its last one."""
    try:
        graph_module = trace(model)
    except Exception as error:  # noqa: BLE001 - any tracing failure means: not incremental
        return Plan("", (), None, f"{type(model).__name__} (cannot be traced: {error})")
    nodes = list(graph_module.graph.nodes)
    inside = {nodes[0]}  # the placeholder
    steps: list[Step] = []
    blocker = None
    for node in nodes[1:]:
        step = _step_of(graph_module, node, inside)
        if step is None:
            module = graph_module.get_submodule(node.target) if node.op == "call_module" else None
            blocker = f"{node.target if module is not None else node.name} ({type(module).__name__ if module else node.op})"
            break
        steps.append(step)
        inside.add(node)
    rest = nodes[len(steps) + 1:]
    convs_left = [n for n in rest if n.op == "call_module" and isinstance(graph_module.get_submodule(n.target), nn.Conv2d)]
    split = nodes[len(steps)]
    reads_inside = {n.name for node in rest for n in node.all_input_nodes if n in inside and n is not split}
    if reads_inside and not convs_left:
        blocker = f"{rest[0].name} (the rest of the network reads {', '.join(sorted(reads_inside))} besides {split.name})"
    if convs_left or reads_inside or not steps:
        return Plan(nodes[0].name, tuple(steps), None, blocker or "no layer")
    return Plan(nodes[0].name, tuple(steps), _head(graph_module, split), None)


def _step_of(graph_module: fx.GraphModule, node: fx.Node, inside: set[fx.Node]) -> Step | None:
    """``node`` as a step when it is supported and reads only nodes of the incremental part."""
    inputs = node.all_input_nodes
    if not inputs or any(n not in inside for n in inputs):
        return None
    names = tuple(n.name for n in inputs)
    if node.op == "call_module":
        module = graph_module.get_submodule(node.target)
        single = len(inputs) == 1 and node.args[0] is inputs[0] and len(node.args) == 1 and not node.kwargs
        if single and isinstance(module, POINTWISE + WINDOWED) and _exact(module):
            return Step(node.name, names, module)
        return None
    if node.op != "call_function":
        return None
    if node.target in ADDITIONS and len(node.args) == 2 and all(isinstance(a, fx.Node) for a in node.args) \
            and not node.kwargs:
        return Step(node.name, tuple(a.name for a in node.args), merge="add")
    if node.target in CONCATENATIONS and isinstance(node.args[0], (list, tuple)):
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if dim == CHANNELS and all(isinstance(a, fx.Node) for a in node.args[0]):
            return Step(node.name, tuple(a.name for a in node.args[0]), merge="cat")
    return None


def _exact(module: nn.Module) -> bool:
    """Layers whose output on a cut-out block equals the full output's block."""
    if pads_from_input(module):
        return False  # its padding depends on the input's size, which a cut-out block changes
    if isinstance(module, nn.Conv2d):
        return module.padding_mode == "zeros" and not isinstance(module.padding, str)
    if isinstance(module, nn.AvgPool2d):
        return (module.count_include_pad or module.padding == 0) and not module.ceil_mode \
            and module.divisor_override is None
    if isinstance(module, nn.MaxPool2d):
        return not module.return_indices
    if isinstance(module, (nn.BatchNorm2d, nn.Dropout)):
        return not module.training
    return True


def _head(graph_module: fx.GraphModule, split: fx.Node) -> fx.GraphModule:
    """The graph after ``split``, taking ``split``'s value as its input."""
    graph = fx.Graph()
    env = {split: graph.placeholder("features")}
    after = False
    for node in graph_module.graph.nodes:
        if node is split:
            after = True
            continue
        if after:
            env[node] = graph.node_copy(node, lambda n: env[n])
    head = fx.GraphModule(graph_module, graph)
    head.graph.eliminate_dead_code()
    head.recompile()
    return head


def _run(step: Step, inputs: list[torch.Tensor]) -> torch.Tensor:
    """A step on whole maps (the clean pass)."""
    if step.merge == "add":
        return inputs[0] + inputs[1]
    if step.merge == "cat":
        return torch.cat(inputs, CHANNELS)
    # An in-place activation would overwrite its input, which another node may still read.
    return step.module(inputs[0].clone() if getattr(step.module, "inplace", False) else inputs[0])


def _clean_pass(plan: Plan, x: torch.Tensor) -> dict[str, torch.Tensor]:
    clean = {plan.source: x}
    for step in plan.steps:
        clean[step.name] = _run(step, [clean[name] for name in step.inputs])
    return clean


@dataclass
class _Blocks:
    """The changed blocks of a batch of windows at one node, all of one size: window i's block,
    ``values[i]``, starts at row ``rows[i]`` and column ``cols[i]`` of the node's map. A block may
    hold unchanged units too (regions are widened to one size, inside the map): recomputed from
    correct inputs, they come out as their clean values."""

    values: torch.Tensor  # [n, C, h, w]
    rows: list[int]
    cols: list[int]

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.values.shape[-2:])

    def covers(self, size: tuple[int, int]) -> bool:
        """Whether every window's block is the whole ``size`` map."""
        return self.size == size and not any(self.rows) and not any(self.cols)


def _common(spans: list[tuple[int, int]], extent: int) -> tuple[list[int], int]:
    """Regions ``[lo, hi)`` along one axis widened to their largest length and kept inside
    ``[0, extent)``: each region's new start, and the length."""
    length = max(hi - lo for lo, hi in spans)
    return [min(lo, extent - length) for lo, _ in spans], length


def _gather(source: torch.Tensor, rows: list[int], cols: list[int], size: tuple[int, int]) -> torch.Tensor:
    """``source[0, :, r:r+h, c:c+w]`` for each window, stacked: ``[n, C, h, w]``."""
    h, w = size
    return torch.stack([source[0, :, r:r + h, c:c + w] for r, c in zip(rows, cols)])


def _paste(blocks: torch.Tensor, rows: list[int], cols: list[int], changed: _Blocks) -> None:
    """Each window's changed values into its block (which starts at ``rows[i], cols[i]``), where they overlap."""
    h, w = blocks.shape[-2:]
    ch, cw = changed.size
    for i, (r, c, cr, cc) in enumerate(zip(rows, cols, changed.rows, changed.cols)):
        r0, r1, c0, c1 = max(r, cr), min(r + h, cr + ch), max(c, cc), min(c + w, cc + cw)
        if r0 < r1 and c0 < c1:  # a changed input that no output reads (past the last stride) is left out
            blocks[i, :, r0 - r:r1 - r, c0 - c:c1 - c] = changed.values[i, :, r0 - cr:r1 - cr, c0 - cc:c1 - cc]


def _padded(module: nn.Module, clean_in: torch.Tensor, out_size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """``clean_in`` with the border every output unit's window reads (zeros; -inf for max pooling),
    and the offset of pixel (0, 0) in it."""
    geometry = Geometry.of(module)
    near = geometry.padding
    far = [max(0, geometry.needed(axis, out_size[axis] - 1, out_size[axis])[1] - clean_in.shape[-2 + axis])
           for axis in (0, 1)]
    outside = float("-inf") if isinstance(module, nn.MaxPool2d) else 0.0
    return F.pad(clean_in, (near[1], far[1], near[0], far[0]), value=outside), near


def _layer(module: nn.Module, padded: Callable[[], tuple[torch.Tensor, tuple[int, int]]], in_size: tuple[int, int],
           out_size: tuple[int, int], changed: _Blocks, shared: bool) -> _Blocks:
    """A layer's changed blocks from its input's; ``padded()``: its clean input with its border
    (made once, when first needed); ``shared``: the input's blocks are read by another step too."""
    if isinstance(module, POINTWISE):
        # An in-place activation would overwrite blocks that another step still reads.
        values = changed.values.clone() if shared and getattr(module, "inplace", False) else changed.values
        return _Blocks(module(values), changed.rows, changed.cols)
    if changed.covers(in_size):
        # Every unit changed (deep layers, whose fields span the image): the layer as it is, no block to cut.
        return _Blocks(module(changed.values), [0] * len(changed.rows), [0] * len(changed.cols))
    geometry = Geometry.of(module)
    (h, w), (source, offset) = changed.size, padded()
    rows, height = _common([geometry.affected(0, r, r + h, out_size[0]) for r in changed.rows], out_size[0])
    cols, width = _common([geometry.affected(1, c, c + w, out_size[1]) for c in changed.cols], out_size[1])
    need_rows = [geometry.needed(0, r, r + height)[0] for r in rows]
    need_cols = [geometry.needed(1, c, c + width)[0] for c in cols]
    size = tuple(stop - start for start, stop in (geometry.needed(0, 0, height), geometry.needed(1, 0, width)))
    blocks = _gather(source, [r + offset[0] for r in need_rows], [c + offset[1] for c in need_cols], size)
    _paste(blocks, need_rows, need_cols, changed)
    return _Blocks(_windowed(module, geometry, blocks), rows, cols)


def _merged(step: Step, clean: dict[str, torch.Tensor], inputs: list[_Blocks]) -> _Blocks:
    """The changed blocks after a merge: over the union of its inputs' changed regions, each input
    read from its clean map with its changed blocks pasted in."""
    extent = clean[step.inputs[0]].shape[-2:]
    count = len(inputs[0].rows)
    rows, height = _common([(min(b.rows[i] for b in inputs), max(b.rows[i] + b.size[0] for b in inputs))
                            for i in range(count)], extent[0])
    cols, width = _common([(min(b.cols[i] for b in inputs), max(b.cols[i] + b.size[1] for b in inputs))
                           for i in range(count)], extent[1])
    parts = []
    for name, changed in zip(step.inputs, inputs):
        if changed.rows == rows and changed.cols == cols and changed.size == (height, width):
            parts.append(changed.values)
        else:
            block = _gather(clean[name], rows, cols, (height, width))
            _paste(block, rows, cols, changed)
            parts.append(block)
    return _Blocks(parts[0] + parts[1] if step.merge == "add" else torch.cat(parts, CHANNELS), rows, cols)


def _windowed(module: nn.Module, geometry: Geometry, blocks: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.Conv2d):
        return F.conv2d(blocks, module.weight, module.bias, geometry.stride, 0, geometry.dilation, module.groups)
    if isinstance(module, nn.MaxPool2d):
        return F.max_pool2d(blocks, geometry.kernel, geometry.stride, 0, geometry.dilation)
    return F.avg_pool2d(blocks, geometry.kernel, geometry.stride, 0)


def incremental_outputs(plan: Plan, x: torch.Tensor, boxes: list[Box], paint: torch.Tensor,
                        batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's output for ``x`` as it is, and its outputs with each box (all of one size) painted,
    recomputing only the changed blocks. The clean output comes from the pass the boxes are patched into."""
    if len({(b.height, b.width) for b in boxes}) > 1:
        raise ValueError("incremental_outputs takes boxes of one size")
    readers: dict[str, list[int]] = {}
    for index, step in enumerate(plan.steps):
        for name in step.inputs:
            readers.setdefault(name, []).append(index)
    with torch.no_grad():
        clean = _clean_pass(plan, x)
        sizes = {name: tuple(value.shape[-2:]) for name, value in clean.items()}

        @functools.cache
        def padded(index: int) -> tuple[torch.Tensor, tuple[int, int]]:
            step = plan.steps[index]
            return _padded(step.module, clean[step.inputs[0]], sizes[step.name])

        split = plan.steps[-1].name
        outputs = []
        for first in range(0, len(boxes), batch_size):
            group = boxes[first:first + batch_size]
            changed = {plan.source: _Blocks(paint.expand(len(group), x.shape[1], group[0].height, group[0].width),
                                            [b.top for b in group], [b.left for b in group])}
            for index, step in enumerate(plan.steps):
                if step.merge is not None:
                    changed[step.name] = _merged(step, clean, [changed[name] for name in step.inputs])
                else:
                    source = step.inputs[0]
                    changed[step.name] = _layer(step.module, functools.partial(padded, index), sizes[source],
                                                sizes[step.name], changed[source], shared=len(readers[source]) > 1)
                for name in step.inputs:  # what no later step reads
                    if readers[name][-1] == index:
                        del changed[name]
            final = clean[split].repeat(len(group), 1, 1, 1)
            _paste(final, [0] * len(group), [0] * len(group), changed[split])
            outputs.append(plan.head(final))
        return plan.head(clean[split]), torch.cat(outputs)


def occlusion_cost(model: nn.Module, window: int, stride: int, input_size: tuple[int, int]) -> float:
    """The share of the model's conv multiply-adds an exact incremental sweep needs (the inverse of
    its best speed-up): per window, each conv of the incremental part computed over its changed
    units only, averaged over the sweep's windows, against a full forward pass per window."""
    plan = incremental_plan(model)
    if not plan.supported:
        raise ValueError(f"{type(model).__name__} is not incremental: its supported part stops at {plan.blocker}")
    height, width = input_size
    first = next(step.module for step in plan.steps if isinstance(step.module, nn.Conv2d))
    with torch.no_grad():
        shapes = {name: tuple(value.shape[-2:]) for name, value in _clean_pass(
            plan, torch.zeros(1, first.in_channels, height, width, dtype=first.weight.dtype, device=first.weight.device)).items()}
    convs = [step for step in plan.steps if isinstance(step.module, nn.Conv2d)]
    full = sum(_macs(step.module, shapes[step.name]) for step in convs)
    tops, lefts = range(0, height - window + 1, stride), range(0, width - window + 1, stride)
    needed = 0
    for top in tops:
        for left in lefts:
            regions = {plan.source: ((top, top + window), (left, left + window))}
            for step in plan.steps:
                inputs = [regions[name] for name in step.inputs]
                if step.merge is not None:
                    regions[step.name] = tuple((min(r[axis][0] for r in inputs), max(r[axis][1] for r in inputs))
                                               for axis in (0, 1))
                elif isinstance(step.module, WINDOWED):
                    geometry = Geometry.of(step.module)
                    regions[step.name] = tuple(geometry.affected(axis, *inputs[0][axis], shapes[step.name][axis])
                                               for axis in (0, 1))
                else:
                    regions[step.name] = inputs[0]
                if isinstance(step.module, nn.Conv2d):
                    (r0, r1), (c0, c1) = regions[step.name]
                    needed += _macs(step.module, (r1 - r0, c1 - c0))
    return needed / (full * len(tops) * len(lefts))


def _macs(conv: nn.Conv2d, shape: tuple[int, int]) -> int:
    out_h, out_w = shape
    return out_h * out_w * conv.out_channels * (conv.in_channels // conv.groups) * math.prod(as_pair(conv.kernel_size))
