"""The filter metrics score the reference kernels their docstrings name, exactly."""
from __future__ import annotations

import math

import pytest
import torch

from cnn_core import colour_opponency, edge_energy

AXIS = torch.linspace(-1, 1, 3, dtype=torch.float64)
ROWS, COLS = torch.meshgrid(AXIS, AXIS, indexing="ij")
SOBEL = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64)
GABOR = torch.exp(-(COLS ** 2 + ROWS ** 2)) * torch.sin(math.pi / 2 * COLS)
CENTRE_SURROUND = torch.full((3, 3), -1.0, dtype=torch.float64).index_put_((torch.tensor(1), torch.tensor(1)), torch.tensor(8.0, dtype=torch.float64))
RAMP = COLS.clone()
ZERO, ONES = torch.zeros(3, 3, dtype=torch.float64), torch.ones(3, 3, dtype=torch.float64)


def achromatic(kernel: torch.Tensor) -> torch.Tensor:
    return kernel.expand(3, 3, 3).unsqueeze(0)


def red_green(kernel: torch.Tensor) -> torch.Tensor:
    return torch.stack([kernel, -kernel, ZERO]).unsqueeze(0)


KERNELS = {  # name: (kernel, edge_energy, colour_opponency), as each metric's docstring states them
    "sobel": (achromatic(SOBEL), 8 / 9, 0.0),
    "gabor": (achromatic(GABOR), 0.790, 0.0),
    "colour-edge": (red_green(RAMP), 1.0, 1.0),
    "flat-colour-blob": (red_green(ONES), 0.0, 1.0),
    "blob-with-1%-ramp": (red_green(ONES + 0.01 * RAMP), 0.0001, 1.0),
    "centre-surround": (achromatic(CENTRE_SURROUND), 0.0, 0.0),
}


@pytest.mark.parametrize("name", KERNELS)
def test_reference_kernels_score_as_documented(name):
    kernel, edges, colours = KERNELS[name]
    assert float(edge_energy(kernel)) == pytest.approx(edges, abs=5e-4)  # the docstrings give 3 decimals
    assert float(colour_opponency(kernel)) == pytest.approx(colours, abs=5e-4)


def test_random_kernels_score_their_expected_shares():
    """i.i.d. Gaussian 3x3x3 kernels: 2/9 of their energy in the two ramps, 2/3 in colour contrast."""
    kernels = torch.randn(20000, 3, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # 20,000 filters: the standard error of either mean is below 0.002.
    assert float(edge_energy(kernels).mean()) == pytest.approx(2 / 9, abs=0.006)
    assert float(colour_opponency(kernels).mean()) == pytest.approx(2 / 3, abs=0.006)


def test_a_faint_ramp_on_a_flat_blob_is_not_an_edge():
    """Break of the old metric, which removed the flat part first and scored this 1.0, above Sobel."""
    faint = float(edge_energy(KERNELS["blob-with-1%-ramp"][0]))
    assert faint < 0.01 < float(edge_energy(KERNELS["sobel"][0]))
