"""The sequential null (claims.judging.sequential): its constants are what the normal model gives, its early REFUTED
spends no α, it gives the recorded verdicts, and a run that measures its null in two looks judges as one that
reads the record."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import cnn_core
from claims.judging import calibration, nulls, sequential
from claims.judging.expectations import trained_values
from claims.judging.rules import NOT_MEASURED, NULL_SEEDS, RULES, Spread, SubjectId
from claims.judging.statistics import ALPHA, Interval, prediction_factor
from claims.judging.subjects import LEARNED, Subject, first_look_line

DRAWS = 400_000  # simulated nulls: the two-look rate to about ±0.00003, the quantile to about ±0.003
COSTLY = [claim for claim in LEARNED if RULES[claim].sequential]


def test_the_costly_claims_are_the_sequential_ones_and_on_the_linear_scale():
    """The two looks' bounds are taken on the values: every claim they judge has its bound there."""
    assert {RULES[claim].cost for claim in COSTLY} == {"stage pass", "fields", "occlusion"}
    assert all(RULES[claim].scale == "linear" for claim in COSTLY)


def test_the_two_looks_confirm_a_random_init_at_alpha_in_all():
    """With FINAL_ALPHA at the last look the two looks together spend α (the normal model, simulated).
    Break: the one-look factor at the last look, after α spent at the first, spends more."""
    assert sequential.two_look_rate(prediction_factor(len(NULL_SEEDS), sequential.FINAL_ALPHA), DRAWS) == \
        pytest.approx(ALPHA, abs=2e-4)
    assert sequential.two_look_rate(prediction_factor(len(NULL_SEEDS)), DRAWS) > ALPHA + 5e-4


def test_the_final_bar_quantile_is_the_simulated_one():
    assert sequential.final_bar_quantile(DRAWS) == pytest.approx(sequential.FINAL_BAR_QUANTILE, abs=0.01)


def _misses(rule, quantile: float, nulls_drawn: int = 20_000) -> float:
    """How often the last look's bar lies below the refute bound, over simulated normal nulls (sd 1)."""
    generator = torch.Generator().manual_seed(3)
    misses = 0
    for values in torch.randn(nulls_drawn, len(NULL_SEEDS), generator=generator, dtype=torch.float64).tolist():
        first = Spread(tuple(values[:sequential.FIRST_SEEDS]))
        bound = max(first.mean + quantile * first.sd, first.mean - sequential.mean_factor() * first.sd + rule.resolution)
        misses += rule.bar(Spread(tuple(values)), sequential.FINAL_ALPHA) < bound
    return misses / nulls_drawn


@pytest.mark.parametrize("resolution", [0.0, 0.5, 3.0], ids=["no-resolution", "resolution-half-sd", "resolution-3-sd"])
def test_the_last_looks_bar_passes_the_refute_bound_99_percent_of_the_time(resolution):
    """An early REFUTED is one the last look would give (its bar above the bound) but once in a hundred nulls at
    most, whether the bar is the t bound or the resolution. Break: a bound at the last look's own factor."""
    rule = replace(RULES["L3-sparser-with-depth"], resolution=resolution)
    first = Spread((0.1, -0.4, 0.3, 1.2, -0.2))
    assert sequential.refute_bound(rule, first) == max(first.mean + sequential.FINAL_BAR_QUANTILE * first.sd,
                                                       first.mean - sequential.mean_factor() * first.sd + resolution)
    assert _misses(rule, sequential.FINAL_BAR_QUANTILE) <= 1 - sequential.REFUTE_CONFIDENCE + 0.002
    if resolution == 0.0:
        assert _misses(rule, prediction_factor(len(NULL_SEEDS), sequential.FINAL_ALPHA)) > 0.2


def test_a_first_look_confirms_refutes_or_waits():
    rule = RULES["L4-class-structure-grows-with-depth"]
    first = Spread((0.0, 0.01, -0.01, 0.02, -0.02))
    bar = rule.bar(first, sequential.FIRST_ALPHA)
    subject = SubjectId("m", "trained")
    confirmed = sequential.first_look(rule, subject, 1.0, first)
    assert confirmed.status == "CONFIRMED" and confirmed.bar == pytest.approx(bar, rel=1e-3)
    assert "α = 0.001 at this look, 0.01 over both" in confirmed.rule_text and "first look" in confirmed.detail
    refuted = sequential.first_look(rule, subject, Interval(0.0, -0.01, 0.01, 100), first)
    assert refuted.status == "REFUTED" and "lies short of" in refuted.detail
    assert sequential.first_look(rule, subject, Interval(0.03, 0.0, 0.06, 100), first) is None
    with pytest.raises(ValueError, match="undecided at the first look"):
        sequential.judge(rule, subject, Interval(0.03, 0.0, 0.06, 100), first)
    final = sequential.judge(rule, subject, Interval(0.03, 0.0, 0.06, 100), Spread(first.values * 4))
    assert final.alpha == sequential.FINAL_ALPHA and "last look" in final.detail and len(final.random) == 20


def test_the_two_looks_give_every_recorded_verdict():
    """Replayed on every entry of claims/nulls.json (its seeds in NULL_SEEDS' order): each random control (seed 0,
    with its interval over photos) and each trained value that claims/expectations.toml records (a value without
    its interval: CONFIRMED or not) gets from the two looks the verdict that the one-look rule gives."""
    replays = calibration.replayed(trained_values())
    assert [replay for replay in replays if replay.one.status != replay.two.status] == []
    assert {replay.architecture for replay in replays} == {data["architecture"] for data in nulls.load().values()}
    assert sum(replay.subject == "trained" for replay in replays) >= 10
    assert sum(replay.first_look for replay in replays) > len(replays) / 3  # most of them early


def test_a_null_measured_in_two_looks_measures_the_undecided_claims_on_every_seed(tiny_vgg_folder):
    """Tiny VGG with its recorded null set aside: the cheap claims on every seed, the costly ones decided at the
    first look on five, the others on all twenty, with a line that names both; and every verdict the recorded null
    gives."""
    found = cnn_core.fixtures.locate(tiny_vgg_folder.parent)
    model = cnn_core.load_model("tiny-vgg", weights="auto", fixtures_dir=found)
    shown: list[str] = []

    def subject(source: nulls.NullSource) -> Subject:
        return Subject(model, found, torch.device("cpu"), measure_random=True, progress=shown.append, threads=1,
                       null_source=source)

    looked, recorded = subject(nulls.NullSource.SEQUENTIAL), subject(nulls.NullSource.RECORDED)
    for claim in LEARNED:
        judged, wanted = looked.verdicts(claim), recorded.verdicts(claim)
        assert [v.status for v in judged] == [v.status for v in wanted] and NOT_MEASURED not in [v.status for v in judged]
        seeds = {len(verdict.random) for verdict in judged}
        assert seeds <= ({len(NULL_SEEDS)} if not RULES[claim].sequential else {sequential.FIRST_SEEDS, len(NULL_SEEDS)})
    assert looked.null_source.startswith("measured now") and "in two looks" in looked.null_source
    line = next(text for text in shown if "first look (5 random inits)" in text)
    undecided = [claim for claim in COSTLY if claim in looked.last_look]
    assert 0 < len(undecided) < len(COSTLY) and all(claim in line for claim in COSTLY)
    assert line == first_look_line("tiny-vgg", COSTLY, undecided, len(NULL_SEEDS) - sequential.FIRST_SEEDS)

