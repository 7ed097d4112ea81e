"""The statistics of a verdict: the null's prediction bound, the interval over photos and the
binomial interval, each against a value computed another way."""
from __future__ import annotations

import math

import pytest
import torch

from claims.judging.rules import RULES, Spread, SubjectId
from claims.judging.statistics import Interval, binomial_interval, bootstrap, images_to_decide, null_shape, prediction_factor


def test_the_prediction_factor_is_the_t_quantile_widened_for_one_new_draw():
    # t(0.99; 19) = 2.5395 (tables), sqrt(1 + 1/20) = 1.0247
    assert prediction_factor(20) == pytest.approx(2.5395 * 1.0247, abs=1e-3)
    assert prediction_factor(5) == pytest.approx(3.7469 * math.sqrt(1.2), abs=1e-3)
    with pytest.raises(ValueError, match="at least 2"):
        prediction_factor(1)


def test_the_bound_holds_its_rate_for_normal_nulls():
    """Simulated: 20 draws of a normal null, then one more; it clears the bound about 1% of the time."""
    generator = torch.Generator().manual_seed(1)
    draws = torch.randn(20000, 21, generator=generator, dtype=torch.float64)
    null, fresh = draws[:, :20], draws[:, 20]
    bound = null.mean(dim=1) + prediction_factor(20) * null.std(dim=1)
    rate = float((fresh >= bound).double().mean())
    low, high = binomial_interval(int((fresh >= bound).sum()), len(fresh))
    assert low <= 0.01 <= high, f"rate {rate:.4f} [{low:.4f}, {high:.4f}]"


def test_the_bootstrap_interval_is_repeatable_and_covers_the_mean():
    rows = torch.linspace(0, 1, 101, dtype=torch.float64)
    first, second = (bootstrap(rows, lambda means: float(means[0])) for _ in range(2))
    assert first == second
    assert first.value == pytest.approx(0.5)
    # the mean of 101 evenly spread values: sd 0.2915, standard error 0.029, so about +-0.057
    assert first.low == pytest.approx(0.5 - 0.057, abs=0.012) and first.high == pytest.approx(0.5 + 0.057, abs=0.012)


def test_the_bootstrap_applies_the_value_function_to_each_resample():
    rows = torch.tensor([[0.0, 1.0], [0.0, 3.0], [0.0, 2.0]], dtype=torch.float64)
    estimate = bootstrap(rows, lambda means: float(means[1] - means[0]))
    assert estimate.value == pytest.approx(2.0) and 1.0 <= estimate.low <= estimate.high <= 3.0


def test_the_binomial_interval_is_clopper_pearsons():
    assert binomial_interval(0, 100) == (0.0, pytest.approx(0.03622, abs=1e-4))
    low, high = binomial_interval(1, 100)
    assert low == pytest.approx(0.000253, abs=1e-5) and high == pytest.approx(0.05446, abs=1e-4)


def test_photos_to_decide_scale_as_one_over_the_square_root():
    assert images_to_decide(Interval(0.1, 0.0, 0.2, 100), bar=0.15) == 400
    assert images_to_decide(Interval(0.15, 0.1, 0.2, 100), bar=0.15) is None


def test_a_nulls_shape_is_said_when_it_is_not_normal_or_degenerate():
    """Degenerate (every seed the same): the bar is only the resolution above it, said; a skewed null fails
    Shapiro-Wilk, said; a normal one passes silently; a skewed one taken on its logs passes."""
    normal = [float(v) for v in torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.02, 0.98, 20))]
    skewed = [math.exp(3 * v) for v in normal]
    assert null_shape([0.0] * 20).startswith("its 20 random inits all give exactly 0")
    assert null_shape(normal) == ""
    assert "does not look normal (Shapiro-Wilk p = " in null_shape(skewed)
    assert null_shape(skewed, on_logs=True) == ""
    judged = RULES["L5-occluding-the-object-matters"].judge(SubjectId("m", "imagenet"), 0.3, Spread((0.0,) * 20))
    assert judged.status == "CONFIRMED" and "all give exactly 0" in judged.detail
