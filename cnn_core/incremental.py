"""Exact incremental occlusion: recompute, layer by layer, only what a window changes.

Occlusion is local: a unit changes only if its receptive field overlaps the painted window. So
after one clean forward pass, each window needs, at each layer, only the units whose inputs
changed, computed from the changed inputs and the clean ones around them (the halo a kernel or
pool needs). This is Nakandala, Kumar and Papakonstantinou's exact incremental inference
(Krypton, SIGMOD 2019). The recomputed blocks are pasted into the clean final map and the rest
of the network (pooling, classifier) runs on that.

The incremental part is the model's leading chain of supported layers, read off its torch.fx
graph: Conv2d (any kernel, stride, padding, dilation, groups; zero padding), MaxPool2d,
AvgPool2d (padding counted), BatchNorm2d in eval mode, Dropout in eval mode and pointwise
activations. It must hold every convolution of the model; a model with residual additions or
other branches (ResNet, MobileNetV2) is reported by :func:`incremental_plan` with the first
layer that stops the chain.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .geometry import Box, as_pair
from .tracing import trace

POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardtanh, nn.Sigmoid,
             nn.Tanh, nn.Identity, nn.Dropout, nn.BatchNorm2d)
WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


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
class Plan:
    """How a model splits into an incremental chain and a head, or why it cannot."""

    chain: tuple[nn.Module, ...]
    head: fx.GraphModule | None
    blocker: str | None  # the first layer that stops the chain, when it stops before the last conv

    @property
    def supported(self) -> bool:
        return self.blocker is None


def incremental_plan(model: nn.Module) -> Plan:
    """The model's leading chain of supported layers and the graph of everything after it."""
    try:
        graph_module = trace(model)
    except Exception as error:  # noqa: BLE001 - any tracing failure means: not incremental
        return Plan((), None, f"{type(model).__name__} (cannot be traced: {error})")
    nodes = list(graph_module.graph.nodes)
    chain: list[nn.Module] = []
    split = nodes[0]  # the placeholder
    blocker = None
    for node in nodes[1:]:
        module = graph_module.get_submodule(node.target) if node.op == "call_module" else None
        single = len(split.users) == 1 and node.args and node.args[0] is split and len(node.all_input_nodes) == 1
        if module is not None and single and isinstance(module, POINTWISE + WINDOWED) and _exact(module):
            chain.append(module)
            split = node
            continue
        blocker = f"{node.target if node.op == 'call_module' else node.name} ({type(module).__name__ if module else node.op})"
        break
    convs_left = [n for n in nodes[len(chain) + 1:] if n.op == "call_module"
                  and isinstance(graph_module.get_submodule(n.target), nn.Conv2d)]
    if convs_left or not chain:
        return Plan(tuple(chain), None, blocker or "no layer")
    return Plan(tuple(chain), _head(graph_module, split), None)


def _exact(module: nn.Module) -> bool:
    """Layers whose output on a cut-out block equals the full output's block."""
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


@dataclass
class _Patch:
    """A window's changed block at one layer: its values and where they sit."""

    values: torch.Tensor  # [C, h, w]
    rows: tuple[int, int]
    cols: tuple[int, int]


def _step(module: nn.Module, clean_in: torch.Tensor, clean_out: torch.Tensor, patches: list[_Patch]) -> list[_Patch]:
    """The changed blocks of ``module``'s output for windows whose input blocks changed."""
    if isinstance(module, POINTWISE):
        values = module(torch.stack([p.values for p in patches]))
        return [_Patch(v, p.rows, p.cols) for v, p in zip(values, patches)]
    geometry = Geometry.of(module)
    height, width = clean_in.shape[-2:]
    out_h, out_w = clean_out.shape[-2:]
    outside = float("-inf") if isinstance(module, nn.MaxPool2d) else 0.0
    blocks, regions = [], []
    for patch in patches:
        rows = geometry.affected(0, *patch.rows, out_h)
        cols = geometry.affected(1, *patch.cols, out_w)
        need_r, need_c = geometry.needed(0, *rows), geometry.needed(1, *cols)
        block = clean_in[0, :, max(0, need_r[0]):min(height, need_r[1]), max(0, need_c[0]):min(width, need_c[1])]
        block = F.pad(block, (max(0, -need_c[0]), max(0, need_c[1] - width), max(0, -need_r[0]),
                              max(0, need_r[1] - height)), value=outside).clone()
        # A changed input that no output window reads (past the last stride) is left out.
        r0, r1 = max(patch.rows[0], need_r[0]), min(patch.rows[1], need_r[1])
        c0, c1 = max(patch.cols[0], need_c[0]), min(patch.cols[1], need_c[1])
        block[:, r0 - need_r[0]:r1 - need_r[0], c0 - need_c[0]:c1 - need_c[0]] = \
            patch.values[:, r0 - patch.rows[0]:r1 - patch.rows[0], c0 - patch.cols[0]:c1 - patch.cols[0]]
        blocks.append(block)
        regions.append((rows, cols))
    outputs = _windowed(module, geometry, torch.stack(blocks))
    return [_Patch(out, rows, cols) for out, (rows, cols) in zip(outputs, regions)]


def _windowed(module: nn.Module, geometry: Geometry, blocks: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.Conv2d):
        return F.conv2d(blocks, module.weight, module.bias, geometry.stride, 0, geometry.dilation, module.groups)
    if isinstance(module, nn.MaxPool2d):
        return F.max_pool2d(blocks, geometry.kernel, geometry.stride, 0, geometry.dilation)
    return F.avg_pool2d(blocks, geometry.kernel, geometry.stride, 0)


def incremental_outputs(plan: Plan, x: torch.Tensor, boxes: list[Box], paint: torch.Tensor,
                        batch_size: int) -> torch.Tensor:
    """The model's outputs with each box painted, recomputing only the changed blocks."""
    with torch.no_grad():
        clean = [x]
        for module in plan.chain:
            # An in-place ReLU overwrites its input, the previous conv's output: only the ReLU itself
            # would read that as its clean input, and a pointwise step never does.
            clean.append(module(clean[-1]))
        outputs = []
        for first in range(0, len(boxes), batch_size):
            group = boxes[first:first + batch_size]
            patches = [_Patch(paint[0].expand(x.shape[1], b.bottom - b.top, b.right - b.left),
                              (b.top, b.bottom), (b.left, b.right)) for b in group]
            for index, module in enumerate(plan.chain):
                patches = _grouped_step(module, clean[index], clean[index + 1], patches)
            final = clean[-1].repeat(len(group), 1, 1, 1)
            for slot, patch in enumerate(patches):
                final[slot, :, slice(*patch.rows), slice(*patch.cols)] = patch.values
            outputs.append(plan.head(final))
    return torch.cat(outputs)


def _grouped_step(module, clean_in, clean_out, patches: list[_Patch]) -> list[_Patch]:
    """One layer for all windows, batching those whose blocks have equal shapes."""
    result: list[_Patch | None] = [None] * len(patches)
    groups: dict[tuple, list[int]] = {}
    for index, patch in enumerate(patches):
        groups.setdefault(tuple(patch.values.shape), []).append(index)
    for indices in groups.values():
        if isinstance(module, POINTWISE):
            key_groups = [indices]
        else:  # equal input blocks can still need unequal halos at the border
            geometry = Geometry.of(module)
            by_need: dict[tuple, list[int]] = {}
            for i in indices:
                p = patches[i]
                rows = geometry.affected(0, *p.rows, clean_out.shape[-2])
                cols = geometry.affected(1, *p.cols, clean_out.shape[-1])
                by_need.setdefault((rows[1] - rows[0], cols[1] - cols[0]), []).append(i)
            key_groups = list(by_need.values())
        for members in key_groups:
            for i, patch in zip(members, _step(module, clean_in, clean_out, [patches[i] for i in members])):
                result[i] = patch
    return result


def occlusion_cost(model: nn.Module, window: int, stride: int, input_size: tuple[int, int]) -> float:
    """The share of the model's conv multiply-adds an exact incremental sweep needs (the inverse of
    its best speed-up): per window, each conv of the chain computed over its changed units only,
    averaged over the sweep's windows, against a full forward pass per window."""
    plan = incremental_plan(model)
    if not plan.supported:
        raise ValueError(f"{type(model).__name__} is not incremental: the chain stops at {plan.blocker}")
    height, width = input_size
    shapes = _shapes(plan.chain, height, width)
    full = sum(_macs(module, shape) for module, shape in zip(plan.chain, shapes) if isinstance(module, nn.Conv2d))
    tops = range(0, height - window + 1, stride)
    lefts = range(0, width - window + 1, stride)
    needed = 0
    for top in tops:
        for left in lefts:
            rows, cols = (top, top + window), (left, left + window)
            for module, (out_h, out_w, _) in zip(plan.chain, shapes):
                if isinstance(module, WINDOWED):
                    geometry = Geometry.of(module)
                    rows, cols = geometry.affected(0, *rows, out_h), geometry.affected(1, *cols, out_w)
                if isinstance(module, nn.Conv2d):
                    needed += _macs(module, (rows[1] - rows[0], cols[1] - cols[0], None))
    return needed / (full * len(tops) * len(lefts))


def _shapes(chain, height: int, width: int) -> list[tuple[int, int, None]]:
    shapes = []
    for module in chain:
        if isinstance(module, WINDOWED):
            g = Geometry.of(module)
            rounding = math.ceil if getattr(module, "ceil_mode", False) else math.floor
            height = rounding((height + 2 * g.padding[0] - g.dilation[0] * (g.kernel[0] - 1) - 1) / g.stride[0]) + 1
            width = rounding((width + 2 * g.padding[1] - g.dilation[1] * (g.kernel[1] - 1) - 1) / g.stride[1]) + 1
        shapes.append((height, width, None))
    return shapes


def _macs(conv: nn.Conv2d, shape) -> int:
    out_h, out_w, _ = shape
    return out_h * out_w * conv.out_channels * (conv.in_channels // conv.groups) * math.prod(as_pair(conv.kernel_size))
