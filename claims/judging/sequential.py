"""The sequential null: the costly learned claims of an architecture with no recorded null, judged in two looks.

Without a recorded null a run measures its random initialisations itself. A claim that needs a forward pass
over the photos and more (``Rule.sequential``: the stage pass, the fields, the occlusion sweeps) costs seconds
per seed, so it is judged in two looks at the seeds, in NULL_SEEDS' order:

1. The first FIRST_SEEDS seeds. CONFIRMED when the value clears their one-sided (1 - FIRST_ALPHA) prediction
   bound (5 seeds, α = 0.001: mean + 7.86 sd). REFUTED when its 95% interval over photos lies below
   :func:`refute_bound`, under which the last look's bar falls with probability 1 - REFUTE_CONFIDENCE at most
   (this never confirms, so it spends no α). Otherwise undecided.
2. All NULL_SEEDS: the one-look rule with α = FINAL_ALPHA (20 seeds: mean + 2.637 sd), so that a random
   initialisation clears the bar at one look or the other with probability ALPHA in all, under the normal model
   the one-look rule also assumes (:func:`two_look_rate` simulates it).

The run measures the undecided claims' cost groups on the other seeds only. A recorded null keeps its 20 seeds
and the one-look rule; so do the claims of the weights alone and of the first conv's maps, which cost next to
nothing and always get every seed. The rate the two looks give on the recorded and fresh random inits is in
claims/README.md ("The false-confirm rate").
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy import stats

from claims.judging.rules import INCONCLUSIVE, NULL_SEEDS, REFUTED, Rule, Spread, SubjectId, Verdict, rounded
from claims.judging.statistics import Interval, prediction_factor

FIRST_SEEDS = 5
FIRST_ALPHA = 0.001
# The last look's α: with FIRST_ALPHA spent at the first look, the two looks together confirm a random init with
# probability ALPHA (two_look_rate(prediction_factor(20, 0.0093)) = 0.00999; tests/test_sequential.py simulates it).
FINAL_ALPHA = 0.0093
REFUTE_CONFIDENCE = 0.99  # the last look's bar lies above refute_bound with at least this probability
# (bar - mean) / sd of the first FIRST_SEEDS seeds is pivotal under the normal model (the bar's t part: mean + 2.637 sd
# of all 20): its 0.5% quantile, simulated (final_bar_quantile; tests/test_sequential.py re-derives it).
FINAL_BAR_QUANTILE = 1.378
DRAWS = 1_000_000  # simulated nulls behind the two constants above


def in_words() -> str:
    """The two looks in a clause, for the legends of the terminal table and the page."""
    return (f"a null measured now judges the claims of a forward pass in two looks: {FIRST_SEEDS} random inits at "
            f"α = {FIRST_ALPHA:g}, all {len(NULL_SEEDS)} at α = {FINAL_ALPHA:g} where the first leaves a verdict undecided")


def _split_confidence() -> float:
    """Each of refute_bound's two bounds holds with this probability, so both hold with REFUTE_CONFIDENCE."""
    return 1 - (1 - REFUTE_CONFIDENCE) / 2


def mean_factor(first: int = FIRST_SEEDS, final: int = len(NULL_SEEDS)) -> float:
    """How many sd of the first ``first`` seeds below their mean the mean of all ``final`` seeds lies at most, with
    probability :func:`_split_confidence`: (m_final - m_first) / s_first is a scaled t with first - 1 degrees of freedom."""
    rest = final - first
    scale = rest / final * math.sqrt(1 / first + 1 / rest)
    return scale * float(stats.t.ppf(_split_confidence(), first - 1))


def refute_bound(rule: Rule, first: Spread) -> float:
    """A bound the last look's bar lies beyond with probability REFUTE_CONFIDENCE, from the first look's seeds:
    the bar is at least its t bound (mean + 2.637 sd, whose pivot's quantile is FINAL_BAR_QUANTILE) and at least the
    last look's mean plus the resolution (which mean_factor bounds); each bound holds with half the miss."""
    sign = 1 if rule.op == ">=" else -1
    t_part = first.mean + sign * FINAL_BAR_QUANTILE * first.sd
    mean_part = first.mean - sign * mean_factor() * first.sd + sign * rule.resolution
    return max(t_part, mean_part) if sign > 0 else min(t_part, mean_part)


def _said(verdict: Verdict, look: str) -> Verdict:
    return replace(verdict, detail="; ".join(filter(None, [look, verdict.detail])))


def first_look(rule: Rule, subject: SubjectId, value: Interval, first: Spread, **shown) -> Verdict | None:
    """The verdict at the first look (``first``: FIRST_SEEDS seeds' values), or None while it is undecided.
    ``shown``: what Rule.judge draws (series, random_series)."""
    first = Spread(tuple(rounded(v) for v in first.values))
    bound = refute_bound(rule, first)
    verdict = rule.judge(subject, value, first, alpha=FIRST_ALPHA, refute_short_of=bound, **shown)
    if verdict.status == INCONCLUSIVE:
        return None
    how = ("it clears the bar" if verdict.status != REFUTED else
           f"its interval lies short of {bound:.4g}, which the last look's bar (all {len(NULL_SEEDS)} seeds) passes "
           f"with probability {REFUTE_CONFIDENCE:.0%}")
    return _said(verdict, f"decided at the first look, {len(first.values)} of {len(NULL_SEEDS)} random inits: {how}")


def final_look(rule: Rule, subject: SubjectId, value: Interval, null: Spread, **shown) -> Verdict:
    """The verdict at the last look, on every seed (α = FINAL_ALPHA there)."""
    return _said(rule.judge(subject, value, null, alpha=FINAL_ALPHA, **shown),
                 f"decided at the last look, {len(null.values)} random inits (undecided at the first {FIRST_SEEDS})")


def judge(rule: Rule, subject: SubjectId, value: Interval | float, null: Spread, **shown) -> Verdict:
    """Both looks on a null given in the order its seeds are measured (NULL_SEEDS'): the first look's verdict
    where it decides, else the last look's, which needs every seed."""
    if not isinstance(value, Interval):
        value = Interval(value, value, value, 0)
    first = {**shown, "random_series": shown.get("random_series", ())[:FIRST_SEEDS]}
    decided = first_look(rule, subject, value, Spread(null.values[:FIRST_SEEDS]), **first)
    if decided is not None:
        return decided
    if len(null.values) < len(NULL_SEEDS):
        raise ValueError(f"{rule.claim} on {subject}: undecided at the first look, and only {len(null.values)} of "
                         f"{len(NULL_SEEDS)} seeds measured")
    return final_look(rule, subject, value, null, **shown)


def judged_now(rule: Rule, subject: SubjectId, value: Interval | float, null: Spread, **shown) -> Verdict:
    """How a null measured now judges a claim: a costly one (``Rule.sequential``) in two looks, any other at once."""
    return judge(rule, subject, value, null, **shown) if rule.sequential else rule.judge(subject, value, null, **shown)


def decided_at_first_look(rule: Rule, values: Sequence[Interval], first: Spread) -> bool:
    """Whether every one of ``values`` (the model's, its control's) is decided at the first look."""
    return all(first_look(rule, SubjectId("", ""), value, first) is not None for value in values)


def _simulated_nulls(draws: int, seed: int) -> np.ndarray:
    """``draws`` standard normal nulls of NULL_SEEDS seeds each: the normal model is location-scale free."""
    return np.random.default_rng(seed).standard_normal((draws, len(NULL_SEEDS)))


def two_look_rate(final_factor: float, draws: int = DRAWS, seed: int = 0) -> float:
    """The probability that a random init clears the first look's bar or the last look's (``final_factor`` sd),
    under the normal model: each simulated null's exact chance, averaged."""
    nulls = _simulated_nulls(draws, seed)
    first = nulls[:, :FIRST_SEEDS]
    first_bar = first.mean(1) + prediction_factor(FIRST_SEEDS, FIRST_ALPHA) * first.std(1, ddof=1)
    final_bar = nulls.mean(1) + final_factor * nulls.std(1, ddof=1)
    return float(stats.norm.sf(np.minimum(first_bar, final_bar)).mean())


def final_bar_quantile(draws: int = DRAWS, seed: int = 1) -> float:
    """The :func:`_split_confidence` lower quantile of (last look's t bound - first mean) / first sd, simulated."""
    nulls = _simulated_nulls(draws, seed)
    first = nulls[:, :FIRST_SEEDS]
    final_bar = nulls.mean(1) + prediction_factor(len(NULL_SEEDS), FINAL_ALPHA) * nulls.std(1, ddof=1)
    return float(np.quantile((final_bar - first.mean(1)) / first.std(1, ddof=1), 1 - _split_confidence()))
