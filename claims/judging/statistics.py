"""The statistics behind a learned verdict: the random null's one-sided prediction bound, an
interval over images, and the binomial interval that checks the false-confirm rate.

- **Null bound.** A random initialisation's value is taken as normal with unknown mean and
  variance, estimated from ``n`` recorded seeds. A fresh initialisation's value then exceeds
  ``mean + t(1 - α; n - 1) · sd · sqrt(1 + 1/n)`` with probability α (the one-sided prediction
  bound for one new draw). With n = 20 and α = 0.01 that is mean + 2.60 sd. Whether the
  normal model holds is not assumed: ``tests/test_calibration.py`` counts how often random
  controls clear the bound, and claims/README.md gives the rate.
- **Interval over images.** A claim measured on photos has one row per photo; its value is a
  function of the rows' mean. The 95% interval is the percentile bootstrap over photos
  (BOOTSTRAP resamples from a fixed seed, so the same rows always give the same interval).
- **Binomial interval.** Clopper–Pearson, exact.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from scipy import stats

ALPHA = 0.01  # false-confirm rate per verdict: a random initialisation is CONFIRMED this often at most
SHAPE_ALPHA = 0.01  # a null whose Shapiro-Wilk p falls below this is said not to look normal
CONFIDENCE = 0.95  # of the interval over images that decides REFUTED
BOOTSTRAP = 2000  # resamples of the photos
BOOTSTRAP_SEED = 0


def prediction_factor(n: int, alpha: float = ALPHA) -> float:
    """How many null standard deviations above the null mean a one-sided (1 - alpha) prediction
    bound for one new draw lies, from n draws."""
    if n < 2:
        raise ValueError(f"a prediction bound needs at least 2 null draws, got {n}")
    return float(stats.t.ppf(1 - alpha, n - 1)) * math.sqrt(1 + 1 / n)


@dataclass(frozen=True)
class Interval:
    """A value with its interval; ``low == high == value`` for a statistic of the weights alone."""

    value: float
    low: float
    high: float
    count: int  # the photos it rests on; 0 for the weights alone

    @property
    def exact(self) -> bool:
        return self.count == 0

    def __str__(self) -> str:
        if self.exact:
            return f"{self.value:.4g} (weights)"
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}] (n={self.count})"


def bootstrap(rows: torch.Tensor, value_of: Callable[[torch.Tensor], float],
              confidence: float = CONFIDENCE) -> Interval:
    """``value_of(rows.mean(0))`` with its percentile-bootstrap interval over the rows (photos)."""
    rows = rows.detach().double().cpu()
    if rows.dim() == 1:
        rows = rows.unsqueeze(1)
    count = len(rows)
    value = value_of(rows.mean(dim=0))
    if count < 2:
        return Interval(value, -math.inf, math.inf, count)
    generator = torch.Generator().manual_seed(BOOTSTRAP_SEED)
    picks = torch.randint(count, (BOOTSTRAP, count), generator=generator)
    resampled = sorted(value_of(means) for means in rows[picks].mean(dim=1))
    tail = (1 - confidence) / 2
    low = resampled[int(math.floor(tail * (BOOTSTRAP - 1)))]
    high = resampled[int(math.ceil((1 - tail) * (BOOTSTRAP - 1)))]
    return Interval(value, low, high, count)


def binomial_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Clopper–Pearson interval of a rate."""
    tail = (1 - confidence) / 2
    low = float(stats.beta.ppf(tail, successes, trials - successes + 1)) if successes > 0 else 0.0
    high = float(stats.beta.ppf(1 - tail, successes + 1, trials - successes)) if successes < trials else 1.0
    return low, high


def images_to_decide(interval: Interval, bar: float) -> int | None:
    """About how many photos would shrink the interval (as ~1/sqrt(n)) enough to keep it off the
    bar, if the value held; None when the value sits on the bar."""
    distance = abs(bar - interval.value)
    half = (interval.high - interval.low) / 2
    if distance == 0 or not math.isfinite(half):
        return None
    return math.ceil(round(interval.count * (half / distance) ** 2, 6))


def null_shape(values: Sequence[float], on_logs: bool = False) -> str:
    """What a null's shape means for the verdicts judged against it, in a sentence; empty when the normal model
    the prediction bound assumes fits (Shapiro-Wilk, on the logs where the bound is taken on them). A degenerate
    null (every value the same) says that the bar is only the resolution above that value."""
    if len(set(values)) == 1:
        return (f"its {len(values)} random inits all give exactly {values[0]:.4g}: the bar is that plus the resolution, "
                f"so CONFIRMED says only that the model moves a value its architecture's random inits never move")
    if len(values) < 3:
        return ""
    p = float(stats.shapiro([math.log(v) for v in values] if on_logs else list(values)).pvalue)
    if p >= SHAPE_ALPHA:
        return ""
    return (f"its null does not look normal{' on the log scale' if on_logs else ''} (Shapiro-Wilk p = {p:.2g} < "
            f"{SHAPE_ALPHA:g}): this verdict's false-confirm rate is its family's as measured, not the normal model's")
