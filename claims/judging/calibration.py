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
every recorded entry and adds the counts up per claim (``reports/calibration/all.json``); a null that repeats
another entry's (the same first convs: ``resnet18`` and ``timm/resnet18``) counts once.

    python -m claims calibration --fresh-weights

measures the statistics of the first filters' weights (the claims of cost WEIGHTS: no forward pass) on
FRESH_SEEDS random initialisations of each of FRESH_ARCHITECTURES and writes them to
``reports/calibration/fresh-weights.json``; each of the first FRESH_CONTROLS is then judged against a null of its
own, NULL_SEEDS drawn from the others (:func:`pool_trials`). ``tests/test_calibration.py`` judges that record with
the rule as it is now; ``--fresh-forward`` records fresh random inits of FRESH_FORWARD_ARCHITECTURES the same way
for the claims of one forward pass (``reports/calibration/fresh-forward.json``, on the check photos).
"""
from __future__ import annotations

import argparse
import json
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import cnn_core
from claims.judging import measures, nulls, sequential
from claims.judging.probes import ProbeImages, probe_images
from claims.judging.rules import CONFIRMED, CONTROL_SEED, NULL_SEEDS, RULES, STAGES, WEIGHTS, Rule, Spread, SubjectId, Verdict
from claims.judging.statistics import ALPHA, Interval, binomial_interval
from claims.judging.subjects import init_template, measure_all, random_init



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


def one_look(rule: Rule, subject: SubjectId, value: Interval, null: Spread) -> Verdict:
    """A recorded null's rule: every seed at once."""
    return rule.judge(subject, value, null)


Judge = Callable[[Rule, SubjectId, Interval, Spread], Verdict]


def calibrate(model: str, trials: Iterable[tuple[dict[str, Interval], list[dict[str, Interval]]]], images: str,
              judge: Judge = one_look) -> Calibration:
    """Judge each trial's control values against its null (a list of seeds' values, in the order they are looked at),
    claim by claim."""
    start = time.perf_counter()
    by_claim: dict[str, list[int]] = {}
    controls = 0
    for controls, (values, null) in enumerate(trials, start=1):
        for claim, value in values.items():
            spread = [seed[claim].value for seed in null if claim in seed]
            if len(spread) < len(null):
                continue
            verdict = judge(RULES[claim], SubjectId(model, "random", control=True), value, Spread(tuple(spread)))
            counts = by_claim.setdefault(claim, [0, 0])
            counts[0] += verdict.status == CONFIRMED
            counts[1] += 1
    return Calibration(model, images, controls, sum(n for _, n in by_claim.values()),
                       sum(k for k, _ in by_claim.values()), dict(sorted(by_claim.items())), time.perf_counter() - start)


def pool_trials(values: dict[int, dict[str, Interval]], controls: Iterable[int], size: int = len(NULL_SEEDS)):
    """Trials of each control seed against a null of its own: ``size`` seeds of the pool's others, drawn with the
    control's seed (a rate over nulls, as a user meets them, not the rate given one null)."""
    for control in controls:
        others = sorted(seed for seed in values if seed != control)
        yield values[control], [values[seed] for seed in random.Random(control).sample(others, size)]


def leave_one_out(seeds: dict[int, dict[str, Interval]]):
    """Trials of each recorded seed against the others."""
    return ((values, [other for key, other in sorted(seeds.items()) if key != seed]) for seed, values in sorted(seeds.items()))


def _recorded(path: Path | None) -> dict[str, dict]:
    """The entries recorded in ``path``, else in the suite's claims/nulls.json."""
    return nulls.load(path) if path is not None else nulls.load()


def every_recorded(path: Path | None = None, judge: Judge = one_look) -> list[Calibration]:
    """:func:`leave_one_out` on every entry recorded in ``path``; a claim whose seeds' values repeat an earlier
    entry's exactly (one init, the same first convs, fed another way or named by timm) is judged there only."""
    entries = [nulls.NullEntry.from_json(data["architecture"], {k: v for k, v in data.items() if k != "architecture"})
               for data in _recorded(path).values()]
    seen: set[tuple] = set()
    results = []
    for entry in entries:
        repeated = set()
        for claim in {claim for values in entry.seeds.values() for claim in values}:
            key = (claim, tuple(values[claim].value if claim in values else None for _, values in sorted(entry.seeds.items())))
            if key in seen and len(set(key[1])) > 1:  # a constant null (L5 of an output no photo moves) is no shared init
                repeated.add(claim)
            seen.add(key)
        seeds = {seed: {claim: value for claim, value in values.items() if claim not in repeated}
                 for seed, values in entry.seeds.items()}
        results.append(calibrate(entry.architecture, leave_one_out(seeds), entry.images, judge))
    return results


@dataclass(frozen=True)
class Replayed:
    """One value judged against a recorded null by both rules: every seed at once, and two looks."""

    architecture: str
    claim: str
    subject: str  # "control" (seed 0, with its interval over photos), "trained" (a recorded value), "seed N" (left out)
    one: Verdict
    two: Verdict

    @property
    def first_look(self) -> bool:
        """Whether the two looks decided it at the first: on its first seeds alone."""
        return len(self.two.random) == sequential.FIRST_SEEDS


def replayed(trained: Mapping[tuple[str, str], float] | None = None, left_out: bool = False,
             path: Path | None = None) -> list[Replayed]:
    """The costly claims (``Rule.sequential``) of every entry of ``path`` replayed: its control (seed 0) against its
    NULL_SEEDS, the ``trained`` values (architecture, claim -> value) against every entry of their architecture, and,
    with ``left_out``, each recorded seed against the other twenty (in seed order)."""
    found = []
    for data in _recorded(path).values():
        entry = nulls.NullEntry.from_json(data["architecture"], {k: v for k, v in data.items() if k != "architecture"})
        for claim, rule in RULES.items():
            if not rule.sequential or not all(claim in values for values in entry.seeds.values()):
                continue
            trials = [("control", entry.seeds[CONTROL_SEED][claim], NULL_SEEDS)]
            if trained and (entry.architecture, claim) in trained:
                trials.append(("trained", trained[entry.architecture, claim], NULL_SEEDS))
            if left_out:
                trials += [(f"seed {seed}", entry.seeds[seed][claim], tuple(other for other in sorted(entry.seeds) if other != seed))
                           for seed in sorted(entry.seeds)]
            for subject, value, seeds in trials:
                null = Spread(tuple(entry.seeds[seed][claim].value for seed in seeds))
                who = SubjectId(entry.architecture, subject)
                found.append(Replayed(entry.architecture, claim, subject, one_look(rule, who, value, null),
                                      sequential.judged_now(rule, who, value, null)))
    return found


def per_family(by_claim: dict[str, list[int]]) -> dict[str, list[int]]:
    """Cost family (``Rule.cost``: weights, first-conv maps, stage pass, fields, occlusion) -> [CONFIRMED, judged]."""
    totals: dict[str, list[int]] = {}
    for claim, (confirmed, judged) in by_claim.items():
        counts = totals.setdefault(RULES[claim].cost, [0, 0])
        counts[0] += confirmed
        counts[1] += judged
    return totals


# Fresh random inits of the first filters' statistics: the ImageNet CNNs of torchvision, small to large, one of each
# kind of first block; seeds far from the nulls' (0-20).
FRESH_ARCHITECTURES = ("resnet18", "mobilenet_v2", "efficientnet_b0", "mobilenet_v3_small", "regnet_y_400mf",
                       "mobilenet_v3_large", "mnasnet1_0", "shufflenet_v2_x1_0", "squeezenet1_1", "googlenet",
                       "densenet121", "resnet50", "convnext_tiny", "efficientnet_b1", "regnet_x_400mf", "vgg16")
FRESH_SEEDS = range(5000, 5140)
FRESH_CONTROLS = 120  # the first seeds of the pool; each judged against NULL_SEEDS of the other 139
FRESH_WEIGHTS = Path(__file__).resolve().parents[2] / "reports" / "calibration" / "fresh-weights.json"


def weight_values(architecture: str, seeds: Iterable[int]) -> dict[int, dict[str, float]]:
    """Each seed's statistics of the first filters' weights (the claims of cost WEIGHTS) on a random init of
    ``architecture`` (its own init, as its null's seeds are)."""
    claims = [claim for claim, rule in RULES.items() if rule.cost == WEIGHTS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        card = cnn_core.model_card(cnn_core.load_model(architecture, "none"))
    values = {}
    for seed in seeds:
        probe = measures.Probe(random_init(card, seed, torch.device("cpu")), None)
        values[seed] = {claim: RULES[claim].measure(probe).weights_value for claim in claims}
    return values


def judged_fresh(record: dict[str, dict], judge: Judge = one_look) -> list[Calibration]:
    """A fresh-controls record (architecture -> seed -> claim -> value) judged with the rule as it is now: each of
    the first FRESH_CONTROLS seeds against NULL_SEEDS of the others (:func:`pool_trials`, in the order drawn)."""
    results = []
    for architecture, by_seed in record.items():
        values = {int(seed): {claim: Interval(value, value, value, 0) for claim, value in claims.items()}
                  for seed, claims in by_seed.items()}
        results.append(calibrate(architecture, pool_trials(values, sorted(values)[:FRESH_CONTROLS]), "fresh", judge))
    return results


# Fresh controls of the claims of one forward pass (the stage pass), on the check photos: Tiny VGG and the smallest
# torchvision CNNs, each of another design. (Their first filters' statistics are FRESH_WEIGHTS' business: the same
# seeds of resnet18 there and here are the same inits, which must not be counted twice.)
FRESH_FORWARD = FRESH_WEIGHTS.with_name("fresh-forward.json")
FRESH_FORWARD_ARCHITECTURES = ("tiny-vgg", "squeezenet1_1", "shufflenet_v2_x1_0", "mobilenet_v3_small", "mnasnet0_5",
                               "regnet_x_400mf", "resnet18")


def fresh_record() -> dict[str, dict[str, dict[str, float]]]:
    """Both fresh records as one: architecture -> seed -> claim -> value (the same seed of one architecture is
    one init, whichever record holds which of its claims)."""
    merged: dict[str, dict[str, dict[str, float]]] = {}
    for path in (FRESH_WEIGHTS, FRESH_FORWARD):
        for architecture, seeds in json.loads(path.read_text()).items():
            for seed, values in seeds.items():
                merged.setdefault(architecture, {}).setdefault(seed, {}).update(values)
    return merged


def forward_values(architecture: str, found: cnn_core.Fixtures, seeds: Iterable[int] = FRESH_SEEDS) -> dict[int, dict[str, float]]:
    """Each seed's values of the stage-pass claims on a random init of ``architecture``, on the check photos."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = cnn_core.load_model(architecture, weights="auto" if architecture == cnn_core.models.TINY_VGG else "none",
                                    fixtures_dir=found)
    images = probe_images(cnn_core.model_card(model), found, torch.device("cpu")).check_subset()
    measure = random_values(model, images, [claim for claim, rule in RULES.items() if rule.cost == STAGES])
    return {seed: measure(seed) for seed in seeds}


def _fresh(path: Path, measure: Callable[[str], dict], architectures: Iterable[str]) -> int:
    record = {}
    for architecture in architectures:
        start = time.perf_counter()
        record[architecture] = measure(architecture)
        print(f"{architecture}: {len(record[architecture])} random inits measured ({time.perf_counter() - start:.0f} s)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=0, sort_keys=True) + "\n")
    judged = per_claim(judged_fresh(record))
    for family, (confirmed, count) in per_family(judged).items():
        print(_counts_line(family, confirmed, count))
    for claim, (confirmed, count) in judged.items():
        print(_counts_line(claim, confirmed, count))
    print(f"written to {path}")
    return 0


def recorded_and_fresh(judge: Judge = one_look) -> dict[str, list[int]]:
    """Claim -> [CONFIRMED, judged] over the recorded seeds (:func:`every_recorded`) and the fresh records
    (:func:`judged_fresh`) together."""
    totals = per_claim(every_recorded(judge=judge))
    for claim, (confirmed, judged) in per_claim(judged_fresh(fresh_record(), judge)).items():
        counts = totals.setdefault(claim, [0, 0])
        counts[0] += confirmed
        counts[1] += judged
    return dict(sorted(totals.items()))


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


def random_values(model: torch.nn.Module, images: ProbeImages, claims: list[str]) -> Callable[[int], dict[str, float]]:
    """A seed's values: a random initialisation of ``model``'s architecture (its own init), fed as ``model`` is,
    measured on ``images``."""
    card = cnn_core.model_card(model)

    def measure(seed: int) -> dict[str, float]:
        twin = random_init(card, seed, torch.device("cpu"), init_template(model)).to(memory_format=torch.channels_last)
        return nulls.values_of(measure_all(measures.Probe(twin, images), claims))
    return measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claims calibration", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="an architecture with recorded nulls (claims/nulls.json)")
    which.add_argument("--all", action="store_true", help="every entry of claims/nulls.json, and the counts per claim")
    which.add_argument("--fresh-weights", action="store_true",
                       help="the first filters' statistics on fresh random inits of FRESH_ARCHITECTURES, recorded")
    which.add_argument("--fresh-forward", action="store_true",
                       help="the claims of one forward pass on fresh random inits of FRESH_FORWARD_ARCHITECTURES "
                            "(check photos), recorded")
    parser.add_argument("--fixtures-dir", type=Path, default=None,
                        help=f"the fixtures folder; default: ${cnn_core.fixtures.ENV}, else the fetch's cache folder")
    parser.add_argument("--out", type=Path, default=Path("reports/calibration"))
    args = parser.parse_args(argv)
    if args.all:
        return _all(args.out)
    if args.fresh_weights:
        return _fresh(FRESH_WEIGHTS, lambda architecture: weight_values(architecture, FRESH_SEEDS), FRESH_ARCHITECTURES)
    try:
        found = cnn_core.fixtures.locate(args.fixtures_dir, named_by="--fixtures-dir")
    except cnn_core.CnnCoreError as error:
        parser.error(str(error))
    if args.fresh_forward:
        return _fresh(FRESH_FORWARD, lambda architecture: forward_values(architecture, found), FRESH_FORWARD_ARCHITECTURES)
    try:
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
