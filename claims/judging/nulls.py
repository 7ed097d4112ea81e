"""The random nulls, recorded: each learned claim's value on the random initialisations of an
architecture, so that a run need not build and measure a random model per seed.

``claims/nulls.json`` is written by ``pytest claims --record-nulls`` (never by hand): for each
architecture and way of feeding it (its ``preprocessing`` as fields; the probe images' name holds it too), the values of
NULL_SEEDS and of the random control
(CONTROL_SEED, with its interval over photos), the probe images they were measured on, the
control's values on the check subset, and a digest of all of it. Every run

- rejects an entry whose digest does not match (a value edited by hand fails the run);
- re-measures the control on the check subset and fails when a value moved (a changed
  measurement, torch or torchvision cannot keep a stale null);
- measures an architecture with nothing recorded (a user's own, or other probe images) at first
  use, in two looks (:mod:`claims.judging.sequential`), with a progress line, and keeps each seed's
  values in pytest's cache directory for the next run (``--nulls`` sets the record aside: :class:`NullSource`).
"""
from __future__ import annotations

import enum
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from claims import RECORDED_DATA
from claims.judging.rules import CONTROL_SEED
from claims.judging.statistics import Interval

NULLS = RECORDED_DATA / "nulls.json"
SCHEMA = 3  # 3: each entry's preprocessing as fields; 2: entries keyed by architecture and probe images
CHECK_TOLERANCE = 1e-3  # relative: float32 arithmetic in another order (threads, kernels) moves a value less
CACHE_KEY = "cnn-claims/nulls3"  # 3: each seed with the claims measured on it (the sequential null measures some)


class StaleNulls(Exception):
    """The recorded nulls no longer describe what the code measures, or were edited by hand."""


@dataclass(frozen=True)
class SeedValues:
    """One random initialisation's measurement: each claim's value with its interval over photos, and the
    per-stage series the report draws (the random band beside a trained model's line)."""

    values: dict[str, Interval]
    series: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def joined(self, other: SeedValues | None) -> SeedValues:
        """These values with ``other``'s (another set of claims of the same seed) beside them."""
        return self if other is None else SeedValues({**self.values, **other.values}, {**self.series, **other.series})


def _values_json(values: dict[str, Interval]) -> dict[str, list]:
    return {claim: [i.value, i.low, i.high, i.count] for claim, i in sorted(values.items())}


def _values(data: dict[str, list]) -> dict[str, Interval]:
    return {claim: Interval(*values) for claim, values in data.items()}


@dataclass(frozen=True)
class NullEntry:
    """One architecture's recorded nulls, for one way of feeding it."""

    architecture: str
    images: str  # ProbeImages.name of the images they were measured on (the preprocessing included)
    seeds: dict[int, dict[str, Interval]]  # CONTROL_SEED and NULL_SEEDS
    check: dict[str, float]  # the control's values on the check subset
    preprocessing: dict  # how the photos were fed: cnn_core.ModelCard.preprocessing_cfg
    series: dict[int, dict[str, tuple[float, ...]]] = field(default_factory=dict)  # per seed, per-stage series

    def to_json(self) -> dict:
        body = {"images": self.images, "preprocessing": self.preprocessing,
                "seeds": {str(seed): _values_json(values) for seed, values in sorted(self.seeds.items())},
                "check": dict(sorted(self.check.items())),
                "series": {str(seed): {claim: list(values) for claim, values in sorted(series.items())}
                           for seed, series in sorted(self.series.items())}}
        return {**body, "digest": _digest(body)}

    @classmethod
    def from_json(cls, architecture: str, data: dict) -> NullEntry:
        body = {key: value for key, value in data.items() if key != "digest"}
        if data.get("digest") != _digest(body):
            raise StaleNulls(f"{NULLS.name}: the recorded nulls of {architecture} do not match their digest (edited by "
                             f"hand?); re-record them with `pytest claims --record-nulls`")
        seeds = {int(seed): _values(claims) for seed, claims in data["seeds"].items()}
        series = {int(seed): {claim: tuple(values) for claim, values in claims.items()}
                  for seed, claims in data.get("series", {}).items()}
        return cls(architecture, data["images"], seeds, dict(data["check"]), data["preprocessing"], series)


def _digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def entry_key(architecture: str, images: str) -> str:
    return f"{architecture} {images}"


def load(path: Path = NULLS) -> dict[str, dict]:
    """The recorded entries by :func:`entry_key`; a file of another schema records nothing usable."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data.get("entries", {}) if data.get("schema") == SCHEMA else {}


def recorded(architecture: str, images: str, path: Path = NULLS) -> NullEntry | None:
    """The recorded entry of ``architecture`` for these probe images (fed this way); None when there is none."""
    data = load(path).get(entry_key(architecture, images))
    if data is None:
        return None
    return NullEntry.from_json(architecture, {key: value for key, value in data.items() if key != "architecture"})


def write(entries: list[dict], path: Path = NULLS) -> None:
    """Merge entries (``NullEntry.to_json`` with an ``architecture`` key) into the file."""
    table = load(path)
    for entry in entries:
        table[entry_key(entry["architecture"], entry["images"])] = entry
    path.write_text(json.dumps({"schema": SCHEMA, "note": "written by `pytest claims --record-nulls`; never edit by hand",
                                "entries": dict(sorted(table.items()))}, indent=1, sort_keys=False) + "\n")


def _moved(entry: NullEntry, measured: Mapping[str, float]) -> list[str]:
    """The recorded claims whose control value, re-measured on the check subset, differs from the record."""
    return [claim for claim, value in sorted(entry.check.items())
            if claim in measured and not math.isclose(measured[claim], value, rel_tol=CHECK_TOLERANCE, abs_tol=1e-9)]


def check(entry: NullEntry, measured: Mapping[str, float], wanted: Iterable[str] | None = None) -> None:
    """Fails when the control, re-measured on the check subset, no longer gives the recorded values, or gives
    none for a claim of ``wanted`` (default: every claim recorded; a subject measures only its own claims:
    VGG16's features without their head do not measure L5, which the entry records for a VGG16 with its head)."""
    moved = [f"{claim}: measured {measured[claim]:.6g}, recorded {entry.check[claim]:.6g}" for claim in _moved(entry, measured)]
    missing = sorted(set(entry.check if wanted is None else wanted) - set(measured))
    if moved or missing:
        raise StaleNulls(f"the recorded nulls of {entry.architecture} are stale: the control (seed {CONTROL_SEED}) "
                         f"re-measured on the check photos moved ({'; '.join(moved + [f'{c}: not measured now' for c in missing])}); "
                         f"re-record them with `pytest claims --record-nulls`")


def still_recorded(entry: NullEntry | None, measured: Mapping[str, float]) -> list[str]:
    """The claims of ``measured`` (the control's values on the check subset) whose recorded null stands: every
    seed has a value and the control re-measures as recorded. Re-recording measures only the others."""
    if entry is None:
        return []
    moved = set(_moved(entry, measured))
    return [claim for claim in measured if claim in entry.check and claim not in moved
            and all(claim in values for values in entry.seeds.values())]


def merged(entry: NullEntry | None, kept: Iterable[str], seeds: Mapping[int, SeedValues]) -> dict[int, SeedValues]:
    """``seeds`` (newly measured claims) with the ``kept`` claims' values and series from ``entry``."""
    kept = set(kept)
    if entry is None or not kept:
        return dict(seeds)
    wanted = set(entry.seeds) | set(seeds)
    return {seed: SeedValues({**{c: v for c, v in entry.seeds.get(seed, {}).items() if c in kept},
                              **(seeds[seed].values if seed in seeds else {})},
                             {**{c: v for c, v in entry.series.get(seed, {}).items() if c in kept},
                              **(seeds[seed].series if seed in seeds else {})})
            for seed in sorted(wanted)}


Job = tuple[int, tuple[str, ...]]  # one random init to measure: its seed, and the claims to measure on it


class NullSource(enum.Enum):
    """Where a run's nulls come from (``--nulls``)."""

    RECORDED = "recorded"  # claims/nulls.json where it records the architecture, else measured now in two looks
    SEQUENTIAL = "sequential"  # measured now in two looks (claims.judging.sequential), the record set aside
    EVERY_SEED = "every-seed"  # measured now, every claim on every seed (the record set aside; what a record takes)


def measure_seeds(architecture: str, measure: Callable[[Sequence[Job]], Iterable[tuple[int, SeedValues]]],
                  jobs: Sequence[Job], progress: Callable[[str], None], cache=None, images: str = "",
                  what: str = "its null") -> tuple[dict[int, SeedValues], int]:
    """Each job's values: from pytest's cache where an earlier run measured that seed's claims, else measured now
    (``measure`` yields each seed as it is done) with a progress line, and added to the cache. Returns them by seed
    (each with its job's claims only) and how many seeds were measured now."""
    key = f"{CACHE_KEY}/{architecture}/{hashlib.sha256(images.encode()).hexdigest()[:16]}"
    stored = {int(seed): (set(done["claims"]), SeedValues(_values(done["values"]), {c: tuple(v) for c, v in done["series"].items()}))
              for seed, done in (cache.get(key, None) or {}).items()} if cache is not None else {}
    todo = [(seed, claims) for seed, claims in jobs if not set(claims) <= stored.get(seed, (set(), None))[0]]
    if todo:
        start = time.perf_counter()
        progress(f"\rcnn-claims: measuring random inits of {architecture} for {what}: 0/{len(todo)} ")
        wanted = dict(todo)
        for count, (seed, done) in enumerate(measure(todo), start=1):
            tried, before = stored.get(seed, (set(), SeedValues({})))
            stored[seed] = (tried | set(wanted[seed]), before.joined(done))
            progress(f"\rcnn-claims: measuring random inits of {architecture} for {what}: seed {seed} done "
                     f"({count}/{len(todo)}, {time.perf_counter() - start:.0f} s) ")
        progress("\n")
        if cache is not None:
            cache.set(key, {str(seed): {"claims": sorted(tried), "values": _values_json(done.values),
                                        "series": {c: list(v) for c, v in done.series.items()}}
                            for seed, (tried, done) in stored.items()})
    return ({seed: SeedValues({c: v for c, v in stored[seed][1].values.items() if c in claims},
                              {c: v for c, v in stored[seed][1].series.items() if c in claims})
             for seed, claims in sorted(jobs)}, len(todo))


def as_values(samples: Mapping[str, object], intervals: bool = True) -> dict[str, Interval]:
    """The measured claims' intervals (a claim that could not be measured is left out). Without ``intervals``, each
    value alone (``low == high == value``): a null seed's interval over photos decides no verdict, and its
    bootstrap is the costliest part of judging one; only the control's is kept."""
    return {claim: sample.interval() if intervals else Interval(sample.value, sample.value, sample.value, sample.count)
            for claim, sample in samples.items() if not isinstance(sample, str)}


def values_of(samples: Mapping[str, object]) -> dict[str, float]:
    """The measured claims' values alone (a claim that could not be measured is left out)."""
    return {claim: sample.value for claim, sample in samples.items() if not isinstance(sample, str)}
