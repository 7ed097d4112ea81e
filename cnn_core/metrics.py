"""Small measurements on activation maps, shared by claims and reports."""
from __future__ import annotations

import torch

from .geometry import Box


def changed_region(difference: torch.Tensor) -> Box | None:
    """Bounding box of the non-zero entries of a 2-D map; None when nothing changed."""
    if difference.dim() != 2:
        raise ValueError(f"changed_region takes a 2-D map, got shape {list(difference.shape)}")
    rows = torch.nonzero(difference.ne(0).any(dim=1)).flatten()
    cols = torch.nonzero(difference.ne(0).any(dim=0)).flatten()
    if rows.numel() == 0:
        return None
    return Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def centre_of_mass(weights: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> tuple[float, float]:
    """Weighted mean position of a non-negative 2-D map, given each row's and column's coordinate."""
    total = weights.sum()
    if total <= 0:
        raise ValueError("centre_of_mass needs a map with positive mass")
    row = (weights.sum(dim=1) * rows).sum() / total
    col = (weights.sum(dim=0) * cols).sum() / total
    return float(row), float(col)


def sparsity(activation: torch.Tensor) -> float:
    """Fraction of exact zeros."""
    return float((activation == 0).double().mean())
