"""The field's instruments behind two learned claims: linear CKA (Kornblith et al. 2019) equals its
feature-space formula and ignores what it should; the linear probe reads separable classes and not
shuffled ones; the CKA contrast tells a gradual change from one made in a single step."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from claims.judging import measures
from cnn_core import gram_products, linear_cka

GENERATOR = torch.Generator().manual_seed(0)


def features(rows: int, columns: int) -> torch.Tensor:
    return torch.randn(rows, columns, generator=GENERATOR, dtype=torch.float64)


def test_linear_cka_is_the_feature_space_formula():
    """Kornblith et al.'s eq. 5: ||Yᵀ X||²_F / (||Xᵀ X||_F ||Yᵀ Y||_F), features centred; float64 to 1e-12."""
    x, y = features(50, 8), features(50, 5) + 0.5 * features(50, 8)[:, :5]
    xc, yc = x - x.mean(dim=0), y - y.mean(dim=0)
    expected = float(torch.linalg.matrix_norm(yc.T @ xc) ** 2
                     / (torch.linalg.matrix_norm(xc.T @ xc) * torch.linalg.matrix_norm(yc.T @ yc)))
    assert linear_cka(x, y) == pytest.approx(expected, rel=1e-12, abs=0)


def test_linear_cka_ignores_rotation_scale_and_shift_but_not_a_new_representation():
    x = features(40, 6)
    rotation, _ = torch.linalg.qr(features(6, 6))
    assert linear_cka(x, 3.0 * x @ rotation + 5.0) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, features(40, 6)) < 0.5  # independent features of 40 images: about 6/40 + noise


def test_gram_rows_average_to_the_frobenius_products():
    x, y = features(30, 4), features(30, 7)
    rows = gram_products([x, y], [(0, 1)])
    xc, yc = x - x.mean(dim=0), y - y.mean(dim=0)
    products = [(xc @ xc.T).pow(2).sum(), (yc @ yc.T).pow(2).sum(), ((xc @ xc.T) * (yc @ yc.T)).sum()]
    assert rows.shape == (30, 3)
    assert torch.allclose(rows.sum(dim=0), torch.stack(products), rtol=1e-12, atol=0)


def test_the_probe_reads_separable_classes_and_not_shuffled_ones():
    labels = torch.arange(10).repeat_interleave(10)
    separable = torch.nn.functional.one_hot(labels, 10).double() * 8 + features(100, 10)
    assert measures.probe_hits(separable, labels).mean() == 1.0
    shuffled = labels[torch.randperm(100, generator=GENERATOR)]
    assert measures.probe_hits(separable, shuffled).mean() < 0.3  # chance is 0.1


def test_the_probe_leaves_out_classes_of_one_image_and_needs_two_classes():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    assert len(measures.probe_hits(features(7, 3), labels)) == 6
    with pytest.raises(measures.NotMeasurable, match="two classes"):
        measures.probe_hits(features(4, 3), torch.tensor([0, 0, 0, 1]))


def staged(*stages: torch.Tensor) -> SimpleNamespace:
    """What the CKA measure reads of a probe: each stage's last pooled features."""
    return SimpleNamespace(stages=[[SimpleNamespace(pooled=stage)] for stage in stages])


def test_the_cka_contrast_tells_gradual_change_from_one_step():
    """Gradual: each stage adds a little noise to the last, so every neighbouring pair is more alike than
    the ends. One step: three equal stages, then two of new, unrelated features: the pair at the jump is
    exactly as unlike as the ends, and the contrast is 0 (the mean over neighbours would score it 0.57)."""
    start = features(60, 16)
    gradual = [start]
    for _ in range(4):
        gradual.append(gradual[-1] + 0.8 * features(60, 16))
    jump = features(60, 16)
    one_step = [start, start, start, jump, jump]
    gradual_value = measures.stage_similarity_contrast(staged(*gradual)).value
    one_step_value = measures.stage_similarity_contrast(staged(*one_step)).value
    assert gradual_value > 0.15 and one_step_value == pytest.approx(0.0, abs=1e-12), (gradual_value, one_step_value)
    assert measures.stage_similarity_contrast(staged(start, start, start)).value == pytest.approx(0.0, abs=1e-12)


def test_the_cka_contrast_needs_three_stages():
    with pytest.raises(measures.NotMeasurable, match="three stages"):
        measures.stage_similarity_contrast(staged(features(10, 3), features(10, 3)))
