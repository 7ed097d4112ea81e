"""The false-confirm rate, measured: how often a random initialisation is CONFIRMED.

Each control is a random initialisation of an architecture that is not in its null, measured like
a trained model and judged against the null. Under the rule, a control clears the bar with
probability ALPHA at most per verdict; the observed rate and its Clopper–Pearson interval say
whether that holds.

    python -m claims calibration --model mobilenet_v2 [--fixtures-dir DIR]

judges each random initialisation recorded for an architecture (claims/nulls.json: the control
and the null's NULL_SEEDS) against a null of all the others, on its probe images: as many controls, each
exactly in the position of a fresh one, and nothing to measure. It prints the rate per claim and
writes ``reports/calibration/<model>.json``. ``python -m claims calibration --all`` does the same for
every recorded entry and adds the counts up per claim (``reports/calibration/all.json``). ``tests/test_calibration.py`` draws 100 fresh controls
of Tiny VGG on the check photos, against a null it measures itself.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import cnn_core
from claims.judging import measures, nulls
from claims.judging.probes import ProbeImages, probe_images
from claims.judging.rules import CONFIRMED, RULES, Spread, SubjectId
from claims.judging.statistics import ALPHA, Interval, binomial_interval
from claims.judging.subjects import init_template, measure_all, random_init

CONTROL_SEEDS_FROM = 1000  # fresh controls' seeds: far from the null's


@dataclass(frozen=True)
class Calibration:
    model: str
    images: str
    controls: int
    verdicts: int
    confirmed: int
    by_claim: dict[str, list[int]]  # claim -> [confirmed, judged]
    seconds: float

    @property
    def rate(self) -> float:
        return self.confirmed / self.verdicts if self.verdicts else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return binomial_interval(self.confirmed, self.verdicts)

    def summary(self) -> str:
        low, high = self.interval
        return (f"{self.model}: {self.confirmed} CONFIRMED of {self.verdicts} verdicts on {self.controls} random controls "
                f"= {self.rate:.2%} (95% interval {low:.2%}..{high:.2%}; α = {ALPHA:g})")


def calibrate(model: str, trials: Iterable[tuple[dict[str, Interval], list[dict[str, Interval]]]], images: str) -> Calibration:
    """Judge each trial's control values against its null (a list of seeds' values), claim by claim."""
    start = time.perf_counter()
    by_claim: dict[str, list[int]] = {}
    controls = 0
    for controls, (values, null) in enumerate(trials, start=1):
        for claim, value in values.items():
            spread = [seed[claim].value for seed in null if claim in seed]
            if len(spread) < len(null):
                continue
            verdict = RULES[claim].judge(SubjectId(model, "random", control=True), value, Spread(tuple(spread)))
            counts = by_claim.setdefault(claim, [0, 0])
            counts[0] += verdict.status == CONFIRMED
            counts[1] += 1
    return Calibration(model, images, controls, sum(n for _, n in by_claim.values()),
                       sum(k for k, _ in by_claim.values()), dict(sorted(by_claim.items())), time.perf_counter() - start)


def fresh_controls(null: list[dict[str, Interval]], control: Callable[[int], dict[str, Interval]], seeds: Iterable[int]):
    """Trials of fresh random initialisations against one null."""
    return ((control(seed), null) for seed in seeds)


def leave_one_out(seeds: dict[int, dict[str, Interval]]):
    """Trials of each recorded seed against the others."""
    return ((values, [other for key, other in sorted(seeds.items()) if key != seed]) for seed, values in sorted(seeds.items()))


def every_recorded(path: Path = nulls.NULLS) -> list[Calibration]:
    """:func:`leave_one_out` on every entry recorded in ``path``."""
    entries = [nulls.NullEntry.from_json(data["architecture"], {k: v for k, v in data.items() if k != "architecture"})
               for data in nulls.load(path).values()]
    return [calibrate(entry.architecture, leave_one_out(entry.seeds), entry.images) for entry in entries]


def per_claim(results: Iterable[Calibration]) -> dict[str, list[int]]:
    """Claim -> [CONFIRMED, judged], added up over ``results``."""
    totals: dict[str, list[int]] = {}
    for result in results:
        for claim, (confirmed, judged) in result.by_claim.items():
            counts = totals.setdefault(claim, [0, 0])
            counts[0] += confirmed
            counts[1] += judged
    return dict(sorted(totals.items()))


def _counts_line(claim: str, confirmed: int, judged: int) -> str:
    low, high = binomial_interval(confirmed, judged)
    return f"  {claim:<40} {confirmed}/{judged} = {confirmed / judged:.2%} ({low:.2%}..{high:.2%})"


def _all(out: Path) -> int:
    results = every_recorded()
    totals = per_claim(results)
    for result in results:
        print(result.summary())
    print(f"per claim, over the {len(results)} recorded entries (each seed against the other 20; α = {ALPHA:g}):")
    for claim, (confirmed, judged) in totals.items():
        print(_counts_line(claim, confirmed, judged))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "all.json"
    path.write_text(json.dumps({"entries": [asdict(result) for result in results], "alpha": ALPHA,
                                "per_claim": {claim: {"confirmed": k, "judged": n, "interval": binomial_interval(k, n)}
                                              for claim, (k, n) in totals.items()}}, indent=1) + "\n")
    print(f"written to {path}")
    return 0


def random_values(model: torch.nn.Module, images: ProbeImages, claims: list[str]) -> Callable[[int], dict[str, Interval]]:
    """A seed's values: a random initialisation of ``model``'s architecture (its own init), fed as ``model`` is,
    measured on ``images``."""
    card = cnn_core.model_card(model)

    def measure(seed: int) -> dict[str, Interval]:
        twin = random_init(card, seed, torch.device("cpu"), init_template(model)).to(memory_format=torch.channels_last)
        return nulls.as_values(measure_all(measures.Probe(twin, images), claims))
    return measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claims calibration", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="an architecture with recorded nulls (claims/nulls.json)")
    which.add_argument("--all", action="store_true", help="every entry of claims/nulls.json, and the counts per claim")
    parser.add_argument("--fixtures-dir", type=Path, default=None,
                        help=f"the fixtures folder; default: ${cnn_core.fixtures.ENV}, else the fetch's cache folder")
    parser.add_argument("--out", type=Path, default=Path("reports/calibration"))
    args = parser.parse_args(argv)
    if args.all:
        return _all(args.out)
    try:
        found = cnn_core.fixtures.locate(args.fixtures_dir, named_by="--fixtures-dir")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = cnn_core.load_model(args.model, weights="auto", fixtures_dir=found)
    except cnn_core.CnnCoreError as error:
        parser.error(str(error))
    card = cnn_core.model_card(model)
    images = probe_images(card, found, torch.device("cpu"))
    entry = nulls.recorded(card.name, images.name)
    if entry is None:
        parser.error(f"--model {args.model}: no nulls recorded for these probe images ({images.name}); "
                     f"record them with `pytest claims --model {args.model} -m learned --record-nulls`")
    result = calibrate(card.name, leave_one_out(entry.seeds), images.name)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{card.name}.json"
    path.write_text(json.dumps({**asdict(result), "rate": result.rate, "interval": result.interval, "alpha": ALPHA},
                               indent=1) + "\n")
    print(result.summary())
    for claim, (confirmed, judged) in result.by_claim.items():
        print(_counts_line(claim, confirmed, judged))
    print(f"written to {path} ({result.seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
