"""The recorded nulls: an edited value or a measurement that moved fails the run; a missing record is
measured once and cached."""
from __future__ import annotations

import json

import pytest

from claims.judging import nulls
from claims.judging.rules import CONTROL_SEED, NULL_SEEDS
from claims.judging.statistics import Interval

CLAIM = "L3-sparser-with-depth"
FED = {"input_size": 224, "resize": 256, "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def entry() -> nulls.NullEntry:
    seeds = {seed: {CLAIM: Interval(0.01 * seed, 0.01 * seed - 0.005, 0.01 * seed + 0.005, 100)}
             for seed in (CONTROL_SEED, *NULL_SEEDS)}
    return nulls.NullEntry("m", "photos:10x10", seeds, {CLAIM: 0.002}, FED, {seed: {CLAIM: (0.1, 0.01 * seed)} for seed in seeds})


@pytest.fixture
def recorded(tmp_path):
    path = tmp_path / "nulls.json"
    nulls.write([{"architecture": "m", **entry().to_json()}], path)
    return path


def test_a_record_round_trips_and_other_images_are_not_it(recorded):
    assert nulls.recorded("m", "photos:10x10", recorded) == entry()
    assert nulls.recorded("m", "other photos", recorded) is None
    assert nulls.recorded("n", "photos:10x10", recorded) is None


def test_an_architecture_keeps_one_record_per_way_of_feeding_it(recorded):
    """The preprocessing is part of the images' name: a second one adds an entry, it does not replace the first."""
    other = nulls.NullEntry("m", "photos:10x10@resize232", entry().seeds, {CLAIM: 0.003}, {**FED, "resize": 232})
    nulls.write([{"architecture": "m", **other.to_json()}], recorded)
    assert nulls.recorded("m", "photos:10x10", recorded) == entry()
    assert nulls.recorded("m", "photos:10x10@resize232", recorded) == other


def test_a_value_edited_by_hand_fails(recorded):
    data = json.loads(recorded.read_text())
    data["entries"][nulls.entry_key("m", "photos:10x10")]["seeds"]["7"][CLAIM][0] = 0.5
    recorded.write_text(json.dumps(data))
    with pytest.raises(nulls.StaleNulls, match="do not match their digest"):
        nulls.recorded("m", "photos:10x10", recorded)


def test_a_measurement_that_moved_fails_and_one_within_float_noise_passes():
    nulls.check(entry(), {CLAIM: 0.002 * (1 + nulls.CHECK_TOLERANCE / 2)})
    with pytest.raises(nulls.StaleNulls, match=f"{CLAIM}: measured 0.0021, recorded 0.002"):
        nulls.check(entry(), {CLAIM: 0.0021})
    with pytest.raises(nulls.StaleNulls, match="not measured now"):
        nulls.check(entry(), {})
    nulls.check(entry(), {}, wanted=[])  # a subject that does not measure the claim (no trained head) checks none of it


class DictCache:
    def __init__(self):
        self.data = {}

    def get(self, key, default):
        return self.data.get(key, default)

    def set(self, key, value):
        self.data[key] = json.loads(json.dumps(value))


def test_without_a_record_the_seeds_are_measured_once_with_progress_and_cached():
    measured, shown = [], []
    other = "L4-linear-probe-grows-with-depth"

    def measure(jobs):
        for seed, claims in reversed(jobs):  # as workers finish them: in any order
            measured.append((seed, claims))
            yield seed, nulls.SeedValues({claim: Interval(float(seed), float(seed), float(seed), 0) for claim in claims},
                                         {CLAIM: (0.1, 0.2)})

    cache = DictCache()
    every = [(seed, (CLAIM,)) for seed in (CONTROL_SEED, *NULL_SEEDS)]
    first, now = nulls.measure_seeds("m", measure, every, shown.append, cache, "photos")
    assert sorted(seed for seed, _ in measured) == [CONTROL_SEED, *NULL_SEEDS] and list(first) == [CONTROL_SEED, *NULL_SEEDS]
    assert any("(21/21, " in line for line in shown) and first[5].series == {CLAIM: (0.1, 0.2)} and now == 21
    again, now = nulls.measure_seeds("m", measure, every, shown.append, cache, "photos")
    assert again == first and len(measured) == len(NULL_SEEDS) + 1 and now == 0
    # Another claim on five of the seeds (a later look) measures those only, and the cache keeps both.
    more, now = nulls.measure_seeds("m", measure, [(seed, (other,)) for seed in NULL_SEEDS[:5]], shown.append, cache, "photos")
    assert now == 5 and set(more) == set(NULL_SEEDS[:5]) and all(set(done.values) == {other} for done in more.values())
    both, now = nulls.measure_seeds("m", measure, [(1, (CLAIM, other)), (7, (CLAIM,))], shown.append, cache, "photos")
    assert now == 0 and set(both[1].values) == {CLAIM, other} and set(both[7].values) == {CLAIM}
