"""The subjects of the learned claims: a selected model, its random control and its null distribution.

For each selected model the run measures every learned claim on the model as loaded (its
card's label, e.g. ``mobilenet_v2.imagenet``) and judges it against NULL_SEEDS random
initialisations of the same architecture (its own init), recorded in ``claims/nulls.json``
(:mod:`claims.nulls`). A trained model is also accompanied by its random control (CONTROL_SEED,
``mobilenet_v2.imagenet/random``), judged against the same seeds: the deliberate break of every
learned claim. Its values are recorded with the nulls and re-measured on the check photos every run.
A measurement that cannot be made, or raises, makes that one claim NOT MEASURED with its reason.
"""
from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch
from torch import nn

import cnn_core
from claims import measures, nulls, remembered
from claims.probes import ProbeImages, probe_images
from claims.rules import CONTROL_SEED, NULL_SEEDS, RULES, Rule, Spread, Verdict
from claims.statistics import Interval
from cnn_core.fixtures import Fixtures

MEASURES: Mapping[str, Callable[[measures.Probe], measures.Sample]] = MappingProxyType({
    "L1-maps-differ": measures.map_diversity,
    "L1-early-probe-detects-edges": measures.early_probe_edges,
    "L1-filters-detect-edges": measures.filter_edges,
    "L1-filters-detect-colours": measures.filter_colours,
    "L2-maps-show-where-edges-are": measures.edge_tracking,
    "L3-middle-layers-see-larger-patterns": measures.middle_field_growth,
    "L3-sparser-with-depth": measures.sparsity_trend,
    "L4-class-structure-grows-with-depth": measures.class_structure_gain,
    "L4-class-structure-grows-gradually": measures.gradual_class_structure,
    "L5-occluding-the-object-matters": measures.object_relevance,
})
# The numbers behind a claim's value, per stage, for the report's figures (the model's own only).
SERIES: Mapping[str, Callable[[measures.Probe], list[float]]] = MappingProxyType({
    "L3-sparser-with-depth": measures.inactive_by_stage,
    "L4-class-structure-grows-gradually": measures.class_structure_by_stage,
})
# What a measurement may raise on a model it does not fit; anything else is a bug and surfaces.


def random_init(name: str, model: nn.Module, seed: int, device: torch.device) -> nn.Module:
    """A random initialisation of ``model``'s architecture: torchvision's or timm's own init; a
    TF.js model (Tiny VGG) has none, so PyTorch's default one."""
    if name == cnn_core.models.TINY_VGG:
        return cnn_core.random_twin(model, seed)
    return cnn_core.load_model(name, "none", device, seed=seed)


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
            samples[claim] = MEASURES[claim](probe)
        except measures.MEASUREMENT_ERRORS as error:
            samples[claim] = measures.reason(error)
    return samples


class Subject:
    """One selected model and the random models it is judged against, measured lazily, once."""

    def __init__(self, model: nn.Module, random_model: Callable[[int], nn.Module], found: Fixtures,
                 device: torch.device, measure_random: bool, progress: Callable[[str], None], cache=None,
                 record_nulls: bool = False, threads: int | None = None):
        self.model = model
        self.measure_random = measure_random
        self.card = cnn_core.model_card(model)
        self.device = device
        self._fixtures = found
        self.record_nulls = record_nulls
        self._random_model = random_model
        self._cache = cache
        self._progress = progress
        self._threads = threads or torch.get_num_threads()
        self._own: dict[str, measures.Sample | str] | None = None
        self._series: dict[str, tuple[float, ...]] = {}
        self._nulls: dict[int, dict[str, Interval]] | None = None
        self.null_source: str | None = None  # where the null came from, once it is known
        self.recorded_entry: dict | None = None  # with --record-nulls: this architecture's new entry

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
        return [claim for claim in MEASURES if self.why_not_measured(RULES[claim]) is None]

    def _random_probe(self, seed: int, images: ProbeImages) -> measures.Probe:
        return measures.Probe(self._random_model(seed).to(memory_format=torch.channels_last), images)

    def own(self) -> dict[str, measures.Sample | str]:
        """The model's own samples (and the series the report draws), measured once on a copy in one
        memory layout, whatever other tests did to the shared model; the copy is let go afterwards.
        A previous run's samples of the same weights, photos, code and torch are reused."""
        if self._own is None:
            claims = self.measured_claims()

            def measure() -> tuple[dict[str, measures.Sample | str], dict[str, tuple[float, ...]]]:
                layout = cnn_core.models.with_card(copy.deepcopy(self.model).to(memory_format=torch.channels_last),
                                                   self.card)
                probe = measures.Probe(layout, self.images)
                samples = measure_all(probe, claims)
                return samples, {claim: tuple(series(probe)) for claim, series in SERIES.items()
                                 if isinstance(samples.get(claim), measures.Sample)}

            self._own, self._series = self._remembered(self.model, self.images, claims, measure)
        return self._own

    def _remembered(self, model: nn.Module, images: ProbeImages, claims: list[str], measure):
        """``measure()``, or what it gave in an earlier run (pytest's cache, :mod:`claims.remembered`)."""
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
        """The control's and NULL_SEEDS' values: recorded (and checked), cached, or measured now."""
        if self._nulls is None:
            claims = self.measured_claims()

            def measure(seed: int, images: ProbeImages = self.images) -> dict[str, Interval]:
                with torch_threads(self._threads):
                    return nulls.as_values(measure_all(self._random_probe(seed, images), claims))

            entry = None if self.record_nulls else nulls.recorded(self.card.name, self.images.name)
            if entry is not None:
                check_images, checked = self.images.check_subset(), [c for c in claims if c in entry.check]
                control = self._random_probe(CONTROL_SEED, check_images)
                samples, _ = self._remembered(control.model, check_images, checked,
                                              lambda: (measure_all(control, checked), {}))
                nulls.check(entry, {claim: interval.value for claim, interval in nulls.as_values(samples).items()})
                self._nulls, self.null_source = entry.seeds, f"recorded in {nulls.NULLS.parent.name}/{nulls.NULLS.name}"
            else:
                self._nulls, self.null_source = nulls.measure_seeds(self.card.name, measure, self._progress,
                                                                    None if self.record_nulls else self._cache,
                                                                    self.images.name)
                if self.record_nulls:
                    check = measure(CONTROL_SEED, self.images.check_subset())
                    entry = nulls.NullEntry(self.card.name, self.images.name, self._nulls,
                                            {claim: interval.value for claim, interval in check.items()})
                    self.recorded_entry = {"architecture": self.card.name, **entry.to_json()}
        return self._nulls

    def verdicts(self, claim: str) -> list[Verdict]:
        """The model's verdict and, when it is trained, its random control's."""
        rule = RULES[claim]
        # The control is measured on the trained model's own preprocessing, so it is named after it.
        labels = [self.card.label] + ([f"{self.card.label}/random"] if self.card.trained else [])
        reason = self.why_not_measured(rule)
        own = None if reason else self.own()[claim]
        if isinstance(own, str):
            reason = own
        if reason is not None:
            return [rule.not_measured(label, reason) for label in labels]
        seeds = self.null_values()
        null = [seeds[seed].get(claim) for seed in NULL_SEEDS]
        if any(value is None for value in null):
            reason = (f"its random initialisations have no value for this claim (claims/nulls.json records {self.card.name} "
                      f"without it, or they could not be measured): record them with "
                      f"`pytest claims --model {self.card.name} -m learned --record-nulls`")
            return [rule.not_measured(label, reason) for label in labels]
        spread = Spread(tuple(value.value for value in null))
        verdicts = [rule.judge(labels[0], own.interval(), spread, series=self._series.get(claim, ()))]
        if len(labels) > 1:
            control = seeds[CONTROL_SEED].get(claim)
            verdicts.append(rule.not_measured(labels[1], "the random control could not be measured") if control is None
                            else rule.judge(labels[1], control, spread))
        return verdicts


class Unavailable:
    """A learned-claims subject whose model cannot be loaded in this run (Tiny VGG without its files):
    every claim is NOT MEASURED on it and its random control, with the reason."""

    recorded_entry = None

    def __init__(self, name: str, reason: str):
        # A model the suite reads from files is named after them (cnn_core.ModelCard.label): tiny-vgg.trained.
        self.label, self.reason = f"{name}.trained", reason

    def why_not_measured(self, rule: Rule) -> str:
        return self.reason

    def description(self) -> dict[str, str]:
        return {"subject": self.label, "preprocessing": "", "null": self.reason}

    def verdicts(self, claim: str) -> list[Verdict]:
        return [RULES[claim].not_measured(label, self.reason) for label in (self.label, f"{self.label}/random")]
