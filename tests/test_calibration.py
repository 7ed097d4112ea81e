"""The false-confirm rate, measured per claim family (``Rule.cost``), each control against a null of its own.

The recorded nulls' seeds, each judged against the other twenty of its entry (identical nulls once), and the
recorded fresh random inits (``reports/calibration/fresh-*.json``: the first filters' statistics on 16
torchvision architectures, the stage pass's claims on Tiny VGG and six small torchvision CNNs, check photos),
each of 120 controls against twenty others of a pool of 140, are judged here with the rule as it is now; a few
of the fresh seeds are measured again, so that the records stay what the code measures (re-record: ``python -m
claims calibration --fresh-weights``, ``--fresh-forward``).

Per family, the rate's point estimate is at most α and its 95% Clopper–Pearson upper bound at most 2α."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from claims.judging import calibration
from claims.judging.calibration import (
    FRESH_SEEDS,
    FRESH_FORWARD,
    FRESH_WEIGHTS,
    every_recorded,
    fresh_record,
    judged_fresh,
    one_look,
    per_claim,
    per_family,
    forward_values,
    weight_values,
)
from claims.judging.rules import CALIBRATED_COSTS, LINEAR, NULL_SEEDS, RULES, WEIGHTS
from claims.judging.sequential import judged_now
from claims.judging.statistics import ALPHA, binomial_interval

LEAST = {WEIGHTS: 1000}  # verdicts a family's rate rests on at least; 300 for the others


def off_rate(families: dict[str, list[int]], least: dict[str, int] = LEAST) -> dict[str, str]:
    """The families whose rate's point estimate exceeds α, whose upper bound exceeds 2α, or that rest on too few
    verdicts, each with its numbers."""
    found = {}
    for family, (confirmed, judged) in families.items():
        low, high = binomial_interval(confirmed, judged)
        if confirmed / judged > ALPHA or high > 2 * ALPHA or judged < least.get(family, 300):
            found[family] = f"{confirmed} of {judged} = {confirmed / judged:.2%} ({low:.2%}..{high:.2%})"
    return found


@pytest.mark.parametrize("judge", [one_look, judged_now], ids=["recorded-null", "null-measured-now-in-two-looks"])
def test_each_family_is_confirmed_at_most_alpha_of_the_time(judge):
    """As a recorded null judges (every seed at once), and as a null measured now does (the costly claims in two
    looks, claims.judging.sequential: the first look at the first five seeds of each null as drawn)."""
    families = per_family(calibration.recorded_and_fresh(judge))
    print({family: f"{k}/{n}" for family, (k, n) in families.items()})
    assert set(families) == {rule.cost for rule in RULES.values() if rule.learned}
    assert not off_rate(families), off_rate(families)


def test_the_rate_check_fails_when_the_weights_bound_is_taken_on_the_values(monkeypatch):
    """Break: the first filters' statistics judged with a normal bound on the values themselves (the rule before
    the log scale) are CONFIRMED more often than α over the fresh inits."""
    monkeypatch.setattr(calibration, "RULES", {claim: replace(rule, scale=LINEAR) for claim, rule in RULES.items()})
    families = per_family(per_claim(judged_fresh(json.loads(FRESH_WEIGHTS.read_text()))))
    assert list(off_rate(families, {})) == [WEIGHTS]


def test_the_rate_check_fails_when_the_bar_is_the_null_mean(monkeypatch):
    """Break: a bar at the null's mean plus only the resolution (no prediction bound) confirms far more than α."""
    monkeypatch.setattr("claims.judging.rules.prediction_factor", lambda n, alpha=ALPHA: 0.0)
    assert set(off_rate(per_family(per_claim(judged_fresh(fresh_record()))), {})) == set(CALIBRATED_COSTS)


def test_the_fresh_records_are_what_the_code_measures(fixtures_with_photos, tiny_vgg_folder):
    """The first and last seed of two architectures' first filters and of Tiny VGG's stage pass, measured again,
    give the recorded values."""
    seeds = [FRESH_SEEDS[0], FRESH_SEEDS[-1]]
    weights, forward = json.loads(FRESH_WEIGHTS.read_text()), json.loads(FRESH_FORWARD.read_text())
    assert set(weights) == set(calibration.FRESH_ARCHITECTURES) and set(forward) == set(calibration.FRESH_FORWARD_ARCHITECTURES)
    tiny = forward["tiny-vgg"]
    measured = {(name, seed): values for name in ("squeezenet1_1", "mobilenet_v3_small")
                for seed, values in weight_values(name, seeds).items()}
    measured |= {("tiny-vgg", seed): values for seed, values in forward_values("tiny-vgg", fixtures_with_photos, seeds).items()}
    for (name, seed), values in measured.items():
        recorded = (tiny if name == "tiny-vgg" else weights[name])[str(seed)]
        assert all(math.isclose(values[claim], recorded[claim], rel_tol=1e-6, abs_tol=1e-12) for claim in values), (name, seed)


def test_identical_nulls_count_once_but_constant_ones_each():
    """nulls.json's entries that share an init (resnet18 and timm/resnet18, ...) share their first filters'
    values: those count once; L5's all-zero nulls of five architectures are five nulls."""
    judged = per_claim(every_recorded())
    entries = len(calibration.nulls.load())
    assert judged["L1-filters-detect-edges"][1] < entries * (len(NULL_SEEDS) + 1)
    assert judged["L5-occluding-the-object-matters"][1] == entries * (len(NULL_SEEDS) + 1)
