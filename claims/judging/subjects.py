"""The subjects of the learned claims: a selected model, its random control and its null distribution.

For each selected model the run measures every learned claim on the model as loaded (its
card's label, e.g. ``mobilenet_v2.imagenet``) and judges it against NULL_SEEDS random
initialisations of the same architecture (its own init), recorded in ``claims/nulls.json``
(:mod:`claims.judging.nulls`), or measured now in two looks where nothing is recorded (:mod:`claims.judging.sequential`). A trained model is also accompanied by its random control (CONTROL_SEED,
``mobilenet_v2.imagenet/random``), judged against the same seeds: the deliberate break of every
learned claim. Its values are recorded with the nulls and re-measured on the check photos every run.
A measurement that cannot be made, or raises, makes that one claim NOT MEASURED with its reason.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace

import torch
from torch import nn

import cnn_core
from claims.judging import measures, nulls, remembered, sequential
from claims.judging.probes import ProbeImages, probe_images
from claims.judging.rules import CONTROL_SEED, NULL_SEEDS, RULES, Rule, Spread, SubjectId, Verdict
from claims.judging.statistics import Interval, null_shape
from cnn_core.fixtures import Fixtures
from cnn_core.models import ModelCard

LEARNED = tuple(claim for claim, rule in RULES.items() if rule.learned)  # the learned claims, in the registry's order


def random_init(card: ModelCard, seed: int, device: torch.device, template: nn.Module | None = None) -> nn.Module:
    """A random initialisation of ``card``'s architecture, fed the way ``card`` says (marked random, so that
    a stated preprocessing holds for the null too): torchvision's or timm's own init; a TF.js model
    (Tiny VGG) has none, so PyTorch's default one, on a copy of ``template``."""
    if not card.own_init:
        model = cnn_core.random_twin(template, seed)
    else:
        model = cnn_core.load_model(card.name, "none", device, seed=seed)
    return cnn_core.with_card(model.to(device), replace(card, weights=f"random(seed={seed})", trained=False,
                                                        head_trained=False))


def init_template(model: nn.Module) -> nn.Module | None:
    """What :func:`random_init` needs of ``model``: the model itself where its architecture has no init of
    its own to build afresh (Tiny VGG, read from TF.js files), else nothing (workers are sent no weights)."""
    return None if cnn_core.model_card(model).own_init else model


MAX_SEED_WORKERS = 8  # each holds the model and the photos: VGG16 and its activations take over a gigabyte


def seed_workers(device: torch.device, seeds: int) -> int:
    """Processes to measure random inits in: on the CPU one per core, each on one thread (small convolutions
    use one thread far better than two: 1.2x on two cores), at most MAX_SEED_WORKERS; one on a GPU."""
    return 1 if device.type != "cpu" else max(1, min(os.cpu_count() or 1, MAX_SEED_WORKERS, seeds))


# In a worker process only: what each of its seeds is measured on (the pool's initializer sets it once,
# so that the photos cross to the process once, not once per seed).
_WORKER_JOB: dict = {}


def _start_worker(card: ModelCard, template: nn.Module | None, images: ProbeImages) -> None:
    torch.set_num_threads(1)
    _WORKER_JOB.update(card=card, template=template, images=images)


def _measure_seed(seed: int, claims: list[str]) -> tuple[int, nulls.SeedValues]:
    job = _WORKER_JOB
    model = random_init(job["card"], seed, torch.device("cpu"), job["template"]).to(memory_format=torch.channels_last)
    samples, series = seed_values(measures.Probe(model, job["images"]), claims)
    return seed, nulls.SeedValues(nulls.as_values(samples, intervals=seed == CONTROL_SEED), series)


@contextlib.contextmanager
def torch_threads(count: int):
    """torch's intra-op threads set to ``count`` for the block: a measurement's float32 sums then
    round the same whatever pytest-xdist gave the process."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure_all(probe: measures.Probe, claims: list[str]) -> dict[str, measures.Sample | str]:
    """Each claim's sample, or the one-line reason it could not be measured: one failing
    measurement never sinks the others."""
    samples: dict[str, measures.Sample | str] = {}
    for claim in claims:
        try:
            samples[claim] = RULES[claim].measure(probe)
        except measures.MEASUREMENT_ERRORS as error:
            samples[claim] = measures.reason(error)
    return samples


def seed_values(probe: measures.Probe, claims: list[str]) -> tuple[dict[str, measures.Sample | str], dict[str, tuple[float, ...]]]:
    """Each claim's sample on one probe, and the per-stage series the report draws."""
    samples = measure_all(probe, claims)
    return samples, {claim: tuple(RULES[claim].series(probe)) for claim in claims
                     if RULES[claim].series is not None and isinstance(samples.get(claim), measures.Sample)}


def first_look_line(architecture: str, looked: Sequence[str], undecided: Sequence[str], more: int) -> str:
    """The progress line after the first look: which costly claims it decided, which need ``more`` seeds, and
    the cost groups those seeds are measured for."""
    decided = [claim for claim in looked if claim not in undecided]
    groups = sorted({RULES[claim].cost for claim in undecided})
    return (f"cnn-claims: {architecture}, first look ({sequential.FIRST_SEEDS} random inits): decided "
            f"{', '.join(decided) or 'none'}; " + (f"{more} more seeds of {', '.join(groups)} for {', '.join(undecided)}"
                                                   if undecided else "no more seeds needed") + "\n")


class Subject:
    """One selected model and the random models it is judged against, measured lazily, once."""

    def __init__(self, model: nn.Module, found: Fixtures, device: torch.device, measure_random: bool,
                 progress: Callable[[str], None], cache=None, record_nulls: bool = False, threads: int | None = None,
                 null_source: nulls.NullSource = nulls.NullSource.RECORDED):
        self.model = model
        self.measure_random = measure_random
        self.card = cnn_core.model_card(model)
        self.device = device
        self._fixtures = found
        self.record_nulls = record_nulls
        self._cache = cache
        self._progress = progress
        self._threads = threads or torch.get_num_threads()
        self._own: dict[str, measures.Sample | str] | None = None
        self._series: dict[str, tuple[float, ...]] = {}
        self._nulls: dict[int, dict[str, Interval]] | None = None
        self.null_series: dict[int, dict[str, tuple[float, ...]]] = {}  # each seed's per-stage series, where known
        self.null_source: str | None = None  # where the null came from, once it is known
        self.recorded_entry: dict | None = None  # with --record-nulls: this architecture's new entry
        self.nulls = null_source
        self.in_looks = False  # whether the null was measured in two looks (claims.judging.sequential)
        self.last_look: set[str] = set()  # there: the claims measured on every seed

    @functools.cached_property
    def images(self) -> ProbeImages:
        """The probe images, read when a claim is first measured (a model that measures none reads no photo)."""
        return probe_images(self.card, self._fixtures, self.device)

    def description(self) -> dict[str, str]:
        """How the subject was fed and which null judged it, for the run's summary."""
        return {"subject": self.card.label, "preprocessing": self.card.preprocessing,
                "null": self.null_source or "none needed"}

    def why_not_measured(self, rule: Rule) -> str | None:
        if not self.card.trained and not self.measure_random:
            return ("no trained weights offline, so --weights auto fell back to random init "
                    "(--weights none measures random inits against other seeds)")
        if rule.needs == "head" and not self.card.head_trained and self.card.trained:
            return f"its classifier is untrained: {self.card.provenance}"
        return None

    def measured_claims(self) -> list[str]:
        return [claim for claim in LEARNED if self.why_not_measured(RULES[claim]) is None]

    def _random_probe(self, seed: int, images: ProbeImages) -> measures.Probe:
        return measures.Probe(random_init(self.card, seed, self.device, init_template(self.model))
                              .to(memory_format=torch.channels_last), images)

    @contextlib.contextmanager
    def _seed_measurer(self, jobs: int):
        """A function that measures jobs (seeds and their claims) and yields each seed's values as it is done: in
        worker processes on the CPU (each seed on one thread; the processes start at the first job and serve every
        look), here on a GPU."""
        workers = seed_workers(self.device, jobs)
        if workers == 1:
            def measure_here(todo: Sequence[nulls.Job]) -> Iterator[tuple[int, nulls.SeedValues]]:
                for seed, claims in todo:
                    with torch_threads(self._threads):
                        samples, series = seed_values(self._random_probe(seed, self.images), list(claims))
                    yield seed, nulls.SeedValues(nulls.as_values(samples, intervals=seed == CONTROL_SEED), series)
            yield measure_here
            return
        # spawn, not fork: a forked child of a process whose torch already runs threads can deadlock.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                 initargs=(self.card, init_template(self.model), self.images)) as pool:
            def measure_in_workers(todo: Sequence[nulls.Job]) -> Iterator[tuple[int, nulls.SeedValues]]:
                for done in as_completed([pool.submit(_measure_seed, seed, list(claims)) for seed, claims in todo]):
                    yield done.result()
            yield measure_in_workers

    def own(self) -> dict[str, measures.Sample | str]:
        """The model's own samples (and the series the report draws), measured once on a copy in one
        memory layout, whatever other tests did to the shared model; the copy is let go afterwards.
        A previous run's samples of the same weights, photos, code and torch are reused."""
        if self._own is None:
            claims = self.measured_claims()

            def measure() -> tuple[dict[str, measures.Sample | str], dict[str, tuple[float, ...]]]:
                layout = cnn_core.models.with_card(copy.deepcopy(self.model).to(memory_format=torch.channels_last),
                                                   self.card)
                return seed_values(measures.Probe(layout, self.images), claims)

            self._own, self._series = self._remembered(self.model, self.images, claims, measure)
        return self._own

    def _remembered(self, model: nn.Module, images: ProbeImages, claims: list[str], measure):
        """``measure()``, or what it gave in an earlier run (pytest's cache, :mod:`claims.judging.remembered`)."""
        key = remembered.key(model, images, claims) if self._cache is not None else None
        stored = self._cache.get(key, None) if key is not None else None
        if stored is not None:
            return remembered.decode(stored)
        with torch_threads(self._threads):
            samples, series = measure()
        if key is not None:
            self._cache.set(key, remembered.encode(samples, series))
        return samples, series

    def null_values(self) -> dict[int, dict[str, Interval]]:
        """The control's and NULL_SEEDS' values: recorded (and checked), or measured now (or by an earlier run, from
        pytest's cache) in two looks (claims.judging.sequential), or on every seed where ``nulls`` says so."""
        if self._nulls is None:
            claims = self.measured_claims()
            entry = None if self.record_nulls or self.nulls is not nulls.NullSource.RECORDED else \
                nulls.recorded(self.card.name, self.images.name)
            if self.record_nulls:
                self._record_nulls(claims)
            elif entry is not None:
                check_images, checked = self.images.check_subset(), [c for c in claims if c in entry.check]
                control = self._random_probe(CONTROL_SEED, check_images)
                samples, _ = self._remembered(control.model, check_images, checked,
                                              lambda: (measure_all(control, checked), {}))
                nulls.check(entry, nulls.values_of(samples), checked)
                self._nulls, self.null_series = entry.seeds, entry.series
                self.null_source = f"recorded in {nulls.NULLS.parent.name}/{nulls.NULLS.name}"
            elif self.nulls is nulls.NullSource.EVERY_SEED:
                start = time.perf_counter()
                with self._seed_measurer(len(NULL_SEEDS) + 1) as measure:
                    measured, now = nulls.measure_seeds(self.card.name, measure, [(seed, tuple(claims)) for seed in
                                                                                  (CONTROL_SEED, *NULL_SEEDS)],
                                                        self._progress, self._cache, self.images.name)
                self._keep(measured)
                self.null_source = self._measured_text(now, time.perf_counter() - start,
                                                       f"every claim on the control and all {len(NULL_SEEDS)} seeds")
            else:
                self._measure_in_looks(claims)
        return self._nulls

    def _measured_text(self, now: int, seconds: float, how: str) -> str:
        """Where a null measured by the run comes from, in words: ``now`` is how many random inits it measured."""
        if not now:
            return f"measured by an earlier run (pytest's cache), {how}"
        return f"measured now ({seconds:.0f} s), {how}" + ("; kept in pytest's cache" if self._cache is not None else "")

    def _measure_in_looks(self, claims: list[str]) -> None:
        """The sequential null: the control and the first FIRST_SEEDS seeds of every claim, the other seeds of the
        cheap ones (the weights', the first conv's maps'), then those seeds of the claims the first look left
        undecided, with a line that says which."""
        start = time.perf_counter()
        looked = [claim for claim in claims if RULES[claim].sequential]
        cheap = tuple(claim for claim in claims if claim not in looked)
        first, rest = (CONTROL_SEED, *NULL_SEEDS[:sequential.FIRST_SEEDS]), NULL_SEEDS[sequential.FIRST_SEEDS:]
        with self._seed_measurer(len(NULL_SEEDS) + 1) as measure:
            measured, now = nulls.measure_seeds(
                self.card.name, measure, [(seed, tuple(claims)) for seed in first] + [(seed, cheap) for seed in rest if cheap],
                self._progress, self._cache, self.images.name,
                f"the first look (the control and {len(first) - 1} seeds of every claim, the others of the cheap ones)")
            undecided = [claim for claim in looked if not self._decided_at_first_look(claim, measured)]
            self._progress(first_look_line(self.card.name, looked, undecided, len(rest)))
            if undecided:
                more, later = nulls.measure_seeds(self.card.name, measure, [(seed, tuple(undecided)) for seed in rest],
                                                  self._progress, self._cache, self.images.name,
                                                  f"the last look ({len(undecided)} undecided claims)")
                measured = {seed: done.joined(more.get(seed)) for seed, done in measured.items()}
                now += later
        self._keep(measured)
        self.in_looks, self.last_look = True, set(undecided)
        self.null_source = self._measured_text(now, time.perf_counter() - start,
                                               f"in two looks: the control and {len(first) - 1} seeds of every claim, "
                                               f"all {len(NULL_SEEDS)} of the cheap ones and of {len(undecided)} of the "
                                               f"{len(looked)} costly ones")

    def seeds_of(self, claim: str) -> tuple[int, ...]:
        """The null seeds ``claim`` is judged on: all of them, but only the first look's for a costly claim that
        a null measured in two looks decided there."""
        first_only = self.in_looks and RULES[claim].sequential and claim not in self.last_look
        return NULL_SEEDS[:sequential.FIRST_SEEDS] if first_only else NULL_SEEDS

    def _decided_at_first_look(self, claim: str, measured: Mapping[int, nulls.SeedValues]) -> bool:
        """Whether the model's value and its control's are both decided by the first FIRST_SEEDS seeds (a claim that
        a seed could not measure is NOT MEASURED, and needs no more)."""
        first = [measured[seed].values.get(claim) for seed in NULL_SEEDS[:sequential.FIRST_SEEDS]]
        if any(value is None for value in first):
            return True
        own = self.own().get(claim)
        judged = [own.interval()] if isinstance(own, measures.Sample) else []
        control = measured[CONTROL_SEED].values.get(claim)
        judged += [control] if self.card.trained and control is not None else []
        return sequential.decided_at_first_look(RULES[claim], judged, Spread(tuple(value.value for value in first)))

    def _keep(self, measured: Mapping[int, nulls.SeedValues]) -> None:
        self._nulls = {seed: done.values for seed, done in measured.items()}
        self.null_series = {seed: done.series for seed, done in measured.items() if done.series}

    def _record_nulls(self, claims: list[str]) -> None:
        """--record-nulls: the control re-measured on the check subset; the claims whose recorded null it
        confirms are kept, the others (new, changed, or all where nothing is recorded) measured on every seed."""
        try:
            previous = nulls.recorded(self.card.name, self.images.name)
        except nulls.StaleNulls:  # edited by hand: nothing in it stands
            previous = None
        with torch_threads(self._threads):
            check, _ = seed_values(self._random_probe(CONTROL_SEED, self.images.check_subset()), claims)
        check_values = nulls.values_of(check)
        kept = nulls.still_recorded(previous, check_values)
        check_values |= {claim: previous.check[claim] for claim in kept}  # as recorded: a re-record changes nothing kept
        todo = [claim for claim in claims if claim not in kept]
        measured, self.null_source = {}, "recorded, unchanged"
        if todo:
            with self._seed_measurer(len(NULL_SEEDS) + 1) as measure:
                measured, _ = nulls.measure_seeds(
                    self.card.name, measure, [(seed, tuple(todo)) for seed in (CONTROL_SEED, *NULL_SEEDS)], self._progress,
                    None, self.images.name,
                    "its null" if not kept else f"the null of {', '.join(todo)} (the other {len(kept)} recorded and unchanged)")
            self.null_source = "recorded now"
        self._keep(nulls.merged(previous, kept, measured))
        entry = nulls.NullEntry(self.card.name, self.images.name, self._nulls, check_values, self.card.preprocessing_cfg,
                                self.null_series)
        for claim in todo:  # the shape of each new null, said when it is recorded (the verdicts say it again)
            values = Spread(tuple(self._nulls[seed][claim].value for seed in NULL_SEEDS if claim in self._nulls[seed]))
            shape = null_shape(values.values, RULES[claim].on_log_scale(values)) if len(values.values) > 1 else ""
            if shape:
                self._progress(f"\n{self.card.name} {claim}: {shape}\n")
        self.recorded_entry = {"architecture": self.card.name, **entry.to_json()}

    def verdicts(self, claim: str) -> list[Verdict]:
        """The model's verdict and, when it is trained, its random control's."""
        rule = RULES[claim]
        # The control is measured on the trained model's own preprocessing, so it is named after it.
        labels = [SubjectId.of(self.card)] + ([SubjectId.of(self.card).random_control()] if self.card.trained else [])
        reason = self.why_not_measured(rule)
        own = None if reason else self.own()[claim]
        if isinstance(own, str):
            reason = own
        if reason is not None:
            return [rule.not_measured(label, reason) for label in labels]
        seeds = self.null_values()
        used = self.seeds_of(claim)
        null = [seeds[seed].get(claim) for seed in used]
        if any(value is None for value in null):
            reason = (f"its random initialisations have no value for this claim (claims/nulls.json records {self.card.name} "
                      f"without it, or they could not be measured): record them with "
                      f"`pytest claims --model {self.card.name} -m learned --record-nulls`")
            return [rule.not_measured(label, reason) for label in labels]
        spread = Spread(tuple(value.value for value in null))
        random_series = tuple(self.null_series[seed][claim] for seed in used if claim in self.null_series.get(seed, {}))
        judge = functools.partial(sequential.judged_now, rule) if self.in_looks else rule.judge
        verdicts = [judge(labels[0], own.interval(), spread, series=self._series.get(claim, ()),
                          random_series=random_series)]
        if len(labels) > 1:
            control = seeds[CONTROL_SEED].get(claim)
            verdicts.append(rule.not_measured(labels[1], "the random control could not be measured") if control is None
                            else judge(labels[1], control, spread))
        return verdicts


class Unavailable:
    """A learned-claims subject whose model cannot be loaded in this run (Tiny VGG without its files):
    every claim is NOT MEASURED on it and its random control, with the reason."""

    recorded_entry = None

    def __init__(self, name: str, reason: str):
        # A model the suite reads from files is named after them (cnn_core.ModelCard.tag): tiny-vgg.trained.
        self.tested, self.reason = SubjectId(name, "trained"), reason

    def why_not_measured(self, rule: Rule) -> str:
        return self.reason

    def description(self) -> dict[str, str]:
        return {"subject": self.tested.label, "preprocessing": "", "null": self.reason}

    def verdicts(self, claim: str) -> list[Verdict]:
        return [RULES[claim].not_measured(tested, self.reason) for tested in (self.tested, self.tested.random_control())]
