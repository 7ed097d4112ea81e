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


# --- what training leaves in the weights and activations -----------------------------------------

def _ramp_basis(size: int, like: torch.Tensor) -> torch.Tensor:
    """Orthonormal horizontal and vertical linear ramps: the first-derivative (edge) subspace of a kernel."""
    ramp = torch.linspace(-1, 1, size, dtype=like.dtype, device=like.device)
    horizontal = ramp.view(1, -1).expand(size, size)
    return torch.stack([horizontal.flatten() / horizontal.norm(), horizontal.T.flatten() / horizontal.norm()])


def edge_energy(weight: torch.Tensor) -> torch.Tensor:
    """Per filter: the share of its whole energy that lies in oriented first-derivative structure.

    Each colour channel's kernel is projected on the horizontal and vertical linear ramps; the
    projections' energy is divided by the filter's total energy, its flat (mean) part included,
    so a filter that is mostly a flat blob scores low however clean its faint ramp is.
    3x3 kernels score: Sobel 0.889, an odd Gabor (sin(πx/2)·exp(-(x²+y²)) on [-1, 1]²) 0.790, a red-green
    colour edge 1.000,
    a flat colour blob 0.000, a flat blob with a 1% ramp 0.0001, a centre-surround 0.000, an
    i.i.d. random kernel 2/9 = 0.222 on average (2 / k² for side k).
    """
    w = weight.detach().double()
    if w.dim() != 4 or w.shape[-1] != w.shape[-2] or w.shape[-1] < 2:
        raise ValueError(f"edge_energy takes square conv kernels [out, in, k, k], got {list(w.shape)}")
    flat = w.flatten(2)  # out, in, k*k
    projected = flat @ _ramp_basis(w.shape[-1], w).T
    return projected.pow(2).sum(dim=(1, 2)) / flat.pow(2).sum(dim=(1, 2)).clamp_min(1e-30)


def colour_opponency(weight: torch.Tensor) -> torch.Tensor:
    """Per filter: the share of its energy that is chromatic, at every tap.

    At each kernel position the three input channels' weights are split into their average (the
    achromatic, luminance part) and the rest (colour contrast); the score is the rest's share of
    the energy. A filter blind to colour scores 0, one that sees only colour differences 1.
    3x3 RGB kernels score: Sobel or Gabor or centre-surround applied alike to R, G and B 0.000,
    a red-green colour edge 1.000, a red-vs-green flat blob 1.000, an i.i.d. random kernel 2/3 on
    average ((C - 1) / C for C input channels).
    """
    w = weight.detach().double()
    if w.dim() != 4 or w.shape[1] < 2:
        raise ValueError(f"colour_opponency takes kernels [out, in >= 2, k, k], got {list(w.shape)}")
    chroma = w - w.mean(dim=1, keepdim=True)
    return chroma.pow(2).sum(dim=(1, 2, 3)) / w.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-30)


def edge_strength(pixels: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the luminance of ``[N, 3, H, W]`` pixels in [0, 1]: ``[N, H-2, W-2]``."""
    grey = pixels.mean(dim=1, keepdim=True)
    sobel = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=pixels.dtype, device=pixels.device).view(1, 1, 3, 3)
    horizontal = torch.nn.functional.conv2d(grey, sobel)
    vertical = torch.nn.functional.conv2d(grey, sobel.transpose(2, 3))
    return (horizontal.pow(2) + vertical.pow(2)).sqrt()[:, 0]


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two equally shaped tensors (0 when either is constant)."""
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    denominator = (a.norm() * b.norm()).item()
    return float(a @ b) / denominator if denominator > 0 else 0.0


def invariance(original: torch.Tensor, *transformed: torch.Tensor) -> float:
    """How much more an image's pooled features resemble its transformed copies than other images.

    Features ``[N, C]`` are standardised per channel over every row, then compared by cosine:
    mean similarity of each image to its own copies minus mean similarity between different
    images. 0: the copies look like strangers; higher: the features ignore the transformation.
    """
    rows = len(original)
    features = torch.cat([original, *transformed]).double()
    features = (features - features.mean(dim=0)) / features.std(dim=0).clamp_min(1e-12)
    features = torch.nn.functional.normalize(features, dim=1)
    similarity = features @ features.T
    own = torch.cat([similarity[range(rows), [k * rows + i for i in range(rows)]] for k in range(1, len(transformed) + 1)])
    others = similarity[:rows, :rows][~torch.eye(rows, dtype=torch.bool, device=similarity.device)]
    return float(own.mean() - others.mean())


def gram_products(features: list[torch.Tensor], pairs: list[tuple[int, int]]) -> torch.Tensor:
    """Per image, the terms of linear CKA (Kornblith et al., ICML 2019) between layers' features.

    ``features``: one ``[N, C_k]`` tensor per layer, the same N images. Each is centred over the images,
    K_k = X_k X_kᵀ. Row i holds Σ_j K_k[i, j]² for every layer k, then Σ_j K_a[i, j] K_b[i, j] for every
    pair (a, b): the column means are the Frobenius products that :func:`linear_cka` divides, so the
    rows can be resampled by image (an interval over images, with the centring held fixed).
    """
    grams = []
    for layer in features:
        centred = layer.double() - layer.double().mean(dim=0)
        grams.append(centred @ centred.T)
    columns = [(gram * gram).sum(dim=1) for gram in grams] + [(grams[a] * grams[b]).sum(dim=1) for a, b in pairs]
    return torch.stack(columns, dim=1)


def linear_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    """Linear CKA of two layers' ``[N, C]`` features over the same N images: 1 for representations equal up
    to rotation and scale, near 0 for unrelated ones."""
    means = gram_products([a, b], [(0, 1)]).mean(dim=0)
    denominator = float(means[0] * means[1]) ** 0.5
    return float(means[2]) / denominator if denominator > 0 else 0.0
