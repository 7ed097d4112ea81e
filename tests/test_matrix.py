"""The claims matrix: a verdict that moves, either way, or a value that drifts fails the run; the
rules decide and print from the same numbers; recording is one command."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from claims.judging.expectations import Expectations, load_expectations, write_expectations
from claims.judging.rules import CONFIRMED, INCONCLUSIVE, LINEAR, REFUTED, RULES, Spread, SubjectId, Verdict
from claims.judging.statistics import Interval, prediction_factor

RULE = RULES["L3-sparser-with-depth"]
M_IMAGENET, TINY_VGG = SubjectId("m", "imagenet"), SubjectId("tiny-vgg", "trained")
RANDOM = Spread((0.10, 0.12, 0.11, 0.09, 0.13))  # mean 0.11, sd 0.0158
# The one-sided 99% prediction bound from 5 draws: t(0.99; 4) = 3.747, times sqrt(1 + 1/5).
BAR = 0.11 + 3.7469 * (1 + 1 / 5) ** 0.5 * 0.015811  # 0.1749


def test_the_bar_is_the_nulls_prediction_bound_and_the_text_says_so():
    assert RULE.bar(RANDOM) == pytest.approx(BAR, abs=1e-4)
    assert RULE.judge(M_IMAGENET, 0.1750, RANDOM).status == CONFIRMED
    assert RULE.judge(M_IMAGENET, 0.1748, RANDOM).status == REFUTED  # a statistic of the weights: no interval
    judged = RULE.judge(M_IMAGENET, 0.1750, RANDOM)
    assert (judged.op, judged.bar, judged.threshold, judged.resolution) == (">=", 0.1749, None, RULE.resolution)
    assert judged.rule_text.startswith(">= 0.1749: random 0.11 ± 0.016 (n=5")
    assert "α = 0.01" in judged.rule_text


def test_an_interval_that_reaches_the_bar_is_inconclusive_and_says_what_would_decide_it():
    verdict = RULE.judge(M_IMAGENET, Interval(0.16, 0.14, 0.18, 100), RANDOM)
    assert verdict.status == INCONCLUSIVE
    # half-width 0.02 against a distance of 0.0149 to the bar: about 100 * (0.02 / 0.0149)^2 = 181 photos
    assert "about 181 photos (now 100)" in verdict.detail
    assert (verdict.low, verdict.high, verdict.images) == (0.14, 0.18, 100)


def test_refuted_needs_the_whole_interval_short_of_the_bar():
    assert RULE.judge(M_IMAGENET, Interval(0.16, 0.15, 0.17, 100), RANDOM).status == REFUTED
    assert RULE.judge(M_IMAGENET, Interval(0.18, 0.10, 0.20, 100), RANDOM).status == CONFIRMED


def test_a_nil_random_spread_needs_the_resolution():
    flat = Spread((0.2, 0.2, 0.2, 0.2, 0.2))
    assert RULE.judge(M_IMAGENET, 0.2 + RULE.resolution * 0.99, flat).status == REFUTED
    assert RULE.judge(M_IMAGENET, 0.2 + RULE.resolution * 1.01, flat).status == CONFIRMED


def test_values_keep_four_significant_digits():
    assert RULE.judge(M_IMAGENET, 0.1668674516957253, RANDOM).measured == 0.1669


VERDICT = RULE.judge(TINY_VGG, 0.3, RANDOM)


def recorded(status: str, measured: float | None = 0.3) -> Expectations:
    """An expectations file that records VERDICT's subject (a stated verdict alone where ``measured`` is None)."""
    entry = {"status": status} | ({"measured": measured} if measured is not None else {})
    return Expectations(Path("expectations.toml"), {VERDICT.claim: {VERDICT.subject.label: entry}})


def test_an_agreeing_verdict_passes():
    assert recorded(CONFIRMED).change(VERDICT) is None


@pytest.mark.parametrize("status", [CONFIRMED, REFUTED])
def test_a_changed_verdict_is_one_line_with_both_numbers(status):
    flipped = RULE.judge(TINY_VGG, 0.01 if status == CONFIRMED else 0.3, RANDOM)
    change = recorded(status).change(flipped)
    assert change.line() == (f"L3-sparser-with-depth on tiny-vgg.trained: recorded {status} 0.3, "
                             f"now {flipped.status} {flipped.measured:.6g}")


def test_a_stated_verdict_without_a_value_gates_the_verdict_alone():
    """A user's "must stay CONFIRMED": any value passes while the verdict holds; another verdict fails."""
    stated = recorded(CONFIRMED, measured=None)
    assert stated.change(RULE.judge(TINY_VGG, 0.9, RANDOM)) is None
    assert stated.change(RULE.judge(TINY_VGG, 0.01, RANDOM)).line() == (
        "L3-sparser-with-depth on tiny-vgg.trained: recorded CONFIRMED, now REFUTED 0.01")


def test_not_measured_is_neither_gated_nor_recorded(tmp_path):
    missing = RULE.not_measured(TINY_VGG, "no images")
    assert recorded(CONFIRMED).change(missing) is None
    write_expectations([missing], tmp_path / "expectations.toml")
    assert load_expectations(tmp_path / "expectations.toml") == {}


def test_a_value_moved_by_half_fails_even_when_the_verdict_holds():
    change = recorded(CONFIRMED, 0.45).change(VERDICT)
    assert change.line() == ("L3-sparser-with-depth on tiny-vgg.trained: recorded CONFIRMED 0.45, now CONFIRMED 0.3 "
                             f"(beyond the allowed drift {RULE.allowed_drift(0.45):.3g})")


def test_an_unrecorded_subject_is_reported_not_gated():
    assert Expectations(Path("expectations.toml"), {}).change(VERDICT) is None


def test_a_file_that_is_not_toml_is_a_clear_error(tmp_path):
    (tmp_path / "claims.toml").write_text("L3 = [")
    with pytest.raises(ValueError, match="is not a TOML file"):
        Expectations.read(tmp_path / "claims.toml")


def test_recording_round_trips_and_keeps_other_rows(tmp_path):
    path = tmp_path / "expectations.toml"
    other = RULES["S-occlusion-stays-local"].judge(SubjectId("vit_b_16", "random"), 1.0)
    write_expectations([other], path)
    write_expectations([VERDICT], path)
    table = load_expectations(path)
    assert table[VERDICT.claim][VERDICT.subject.label] == {"status": CONFIRMED, "measured": 0.3}
    assert table[other.claim][other.subject.label] == {"status": REFUTED, "measured": 1.0}


@pytest.mark.parametrize("verdict", [VERDICT, RULE.judge(M_IMAGENET, Interval(0.16, 0.14, 0.18, 100), RANDOM)],
                         ids=["exact", "with-interval"])
def test_verdicts_survive_the_xdist_serializer(verdict):
    assert Verdict.from_json(verdict.to_json()) == verdict


def test_the_runs_last_lines_name_each_change_and_each_subject_not_gated():
    flipped = RULE.judge(TINY_VGG, 0.01, RANDOM)
    other = RULE.judge(SubjectId("mine", "file-ours"), 0.3, RANDOM)
    assert recorded(CONFIRMED).summary([flipped, other]) == [
        "expectations expectations.toml: 1 verdicts gated, 1 changed:",
        "  CHANGED L3-sparser-with-depth on tiny-vgg.trained: recorded CONFIRMED 0.3, now REFUTED 0.01",
        "NOT GATED: nothing recorded in expectations.toml for mine.file-ours (1 verdicts); they are reported, "
        "not checked (record them with --record-expectations)"]


def test_the_first_filters_bound_is_taken_on_the_logs():
    """A skewed share's null: the bound is exp(mean + factor · sd) of the logs, above the values' own normal bound
    here; a null with a value at or below 0 (no log) keeps the bound on the values."""
    edges = RULES["L1-filters-detect-edges"]
    null = Spread((0.18, 0.19, 0.2, 0.21, 0.22, 0.3))
    logs = [math.log(v) for v in null.values]
    mean, sd = sum(logs) / 6, (sum((x - sum(logs) / 6) ** 2 for x in logs) / 5) ** 0.5
    assert edges.bar(null) == pytest.approx(math.exp(mean + prediction_factor(6) * sd), rel=1e-12)
    assert edges.bar(null) > null.mean + prediction_factor(6) * null.sd
    assert "sd of the logs" in edges.describe(null)
    assert replace(edges, scale=LINEAR).bar(null) == pytest.approx(null.mean + prediction_factor(6) * null.sd)
    with_zero = Spread((0.0, *null.values[1:]))
    assert edges.bar(with_zero) == replace(edges, scale=LINEAR).bar(with_zero)
