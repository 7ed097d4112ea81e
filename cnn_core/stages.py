"""A CNN's activations grouped by stage, for any architecture.

An activation is the output of a nonlinearity module (ReLU, ReLU6, SiLU, GELU, Hardswish, ...)
with a spatial ``[N, C, H, W]`` output; a stage is a stretch of equal resolution. Each call of
such a module is summarised as it happens (a module that runs twice, like ResNet's ``relu``,
counts twice), so that no activation map is kept: memory stays that of one forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .activations import check_input
from .errors import InputError
from .hooks import forward_hooks

NONLINEARITIES = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.LeakyReLU, nn.ELU, nn.Mish, nn.PReLU,
                  nn.Hardtanh, nn.SELU, nn.CELU, nn.Softplus)
# Libraries' own activation modules (timm's), known by class name so that none of them need be installed.
NAMED_NONLINEARITIES = {"Swish", "SwishMe", "GELUTanh", "QuickGELU", "HardSwish", "HardSwishMe", "Mish", "MishMe",
                        "StarReLU", "SquaredReLU"}


def is_nonlinearity(module: nn.Module) -> bool:
    return isinstance(module, NONLINEARITIES) or type(module).__name__ in NAMED_NONLINEARITIES


@dataclass(frozen=True)
class ActivationSummary:
    """One call of a nonlinearity: its resolution, and per image its inactive share and pooled features.

    Inactive means ``<= 0``: an exact zero after ReLU, the negative branch of SiLU or GELU.
    """

    module: str
    resolution: tuple[int, int]
    inactive: torch.Tensor  # [N], float64
    pooled: torch.Tensor  # [N, C] float64, global average


def summarise_activations(model: nn.Module, x: torch.Tensor) -> list[ActivationSummary]:
    """Every spatial nonlinearity call of ``model(x)``, in the order they ran."""
    check_input(x, model)
    names = {module: name for name, module in model.named_modules() if is_nonlinearity(module)}
    summaries: list[ActivationSummary] = []

    def hook(module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            # Reduced in the output's dtype (a float64 copy of an early map would cost more than the layer).
            values = output.detach()
            summaries.append(ActivationSummary(names[module], tuple(output.shape[-2:]),
                                               (values <= 0).flatten(1).to(values.dtype).mean(dim=1).double(),
                                               values.mean(dim=(2, 3)).double()))

    with forward_hooks(names, hook), torch.inference_mode():
        model(x)
    if not summaries:
        raise InputError(f"{type(model).__name__} has no nonlinearity with a spatial output "
                         f"(looked for {', '.join(t.__name__ for t in NONLINEARITIES)})")
    return summaries


def by_stage(summaries: list[ActivationSummary]) -> list[list[ActivationSummary]]:
    """Consecutive calls of equal resolution, first stage first."""
    stages: list[list[ActivationSummary]] = []
    for summary in summaries:
        if stages and stages[-1][-1].resolution == summary.resolution:
            stages[-1].append(summary)
        else:
            stages.append([summary])
    return stages
