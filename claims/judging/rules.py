"""The claims registry: one record per claim of the verdict table (:data:`RULES`), read by every view.

A record holds the claim's notebook sentence and block, its rule as data (the operator, the threshold,
fixed or derived from random initialisations and an effect size, and the regression tolerance), and, for
a learned claim, the measurement that gives its value, the per-stage series its figure draws and what
one measurement of a random initialisation costs (which the fresh-control calibration reads). A test
states which claim it checks with ``@pytest.mark.claim(ID)``, a structural claim's deliberate break
with ``@pytest.mark.breaks(ID)``; ``tests/test_registry.py`` holds every claim to one of each.

A learned claim is judged against NULL_SEEDS random initialisations of the same architecture
(its own init), whose values are recorded (:mod:`claims.judging.nulls`). Its bar is the one-sided
(1 - ALPHA) prediction bound of that null (:mod:`claims.judging.statistics`), or ``resolution`` above the
null mean if that is higher (the smallest difference in the metric's own units that counts as a
finding, for when the random spread is nearly nil). Then, with the value's 95% interval over photos:

- CONFIRMED: the value clears the bar (a random initialisation does so with probability ALPHA at most);
- REFUTED: the whole interval lies short of the bar (for a statistic of the weights: the value does);
- INCONCLUSIVE: neither; the verdict says about how many photos would decide it.
"""
from __future__ import annotations

import difflib
import json
import math
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import MappingProxyType

from claims.judging import measures
from claims.judging.statistics import ALPHA, Interval, images_to_decide, null_shape, prediction_factor

CONFIRMED, REFUTED, INCONCLUSIVE, NOT_MEASURED = "CONFIRMED", "REFUTED", "INCONCLUSIVE", "NOT MEASURED"
NULL_SEEDS = tuple(range(1, 21))
CONTROL_SEED = 0  # the random control of a trained model: judged against NULL_SEEDS like it
DIGITS = 4  # significant digits kept of every measured value: serial, -n 2 and any thread count agree
OPERATORS = MappingProxyType({">=": operator.ge, "<=": operator.le, "==": operator.eq})


def rounded(value: float) -> float:
    return float(f"{value:.{DIGITS}g}") if math.isfinite(value) else value


@dataclass(frozen=True)
class Spread:
    """The values of the random initialisations."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def sd(self) -> float:
        mean = self.mean
        return math.sqrt(sum((v - mean) ** 2 for v in self.values) / (len(self.values) - 1))

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.sd:.2g} (n={len(self.values)}, {min(self.values):.4g}..{max(self.values):.4g})"


@dataclass(frozen=True)
class SubjectId:
    """What a verdict is about: a model, by its architecture and weights (``cnn_core.ModelCard.tag``), or
    that model's random control (CONTROL_SEED of the architecture, fed as the model is)."""

    architecture: str  # "mobilenet_v2", "timm/resnet18", "tiny-vgg"
    weights: str  # "imagenet", "imagenet-features", "random", "file-mine", "trained"
    control: bool = False

    @classmethod
    def of(cls, card) -> SubjectId:
        """The model a ``cnn_core.ModelCard`` describes."""
        return cls(card.name, card.tag)

    @property
    def model(self) -> str:
        """``mobilenet_v2.imagenet``: the model, also for its control."""
        return f"{self.architecture}.{self.weights}"

    @property
    def label(self) -> str:
        """``mobilenet_v2.imagenet`` for the model, ``mobilenet_v2.imagenet/random`` for its random control."""
        return self.model + ("/random" if self.control else "")

    def random_control(self) -> SubjectId:
        return SubjectId(self.architecture, self.weights, control=True)

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Verdict:
    """One claim judged on one subject: the one value every view (terminal table, page, ``claims.json``,
    README) prints, each with its own formatter."""

    claim: str
    subject: SubjectId
    status: str  # CONFIRMED, REFUTED, INCONCLUSIVE or NOT MEASURED
    measured: float | None
    op: str  # the rule's operator: ">=", "<=" or "=="
    threshold: float | None = None  # a fixed rule's threshold; None: the bar comes from the random null
    resolution: float = 0.0  # learned: the smallest difference that counts, in the metric's units
    bar: float | None = None  # learned: the random null's bound the value must clear
    random: tuple[float, ...] = ()  # the random initialisations' values (learned claims)
    detail: str = ""
    series: tuple[float, ...] = ()
    recorded: str | None = field(default=None, compare=False)  # the status the expectations record, attached by the gate
    low: float | None = None  # the value's 95% interval over photos (None: a statistic of the weights, or structural)
    high: float | None = None
    images: int = 0  # the photos the value rests on
    random_series: tuple[tuple[float, ...], ...] = ()  # each random init's per-stage series, beside ``series``
    alpha: float = ALPHA  # learned: the false-confirm rate of ``bar`` (a look of the sequential null spends less)

    @property
    def spread(self) -> Spread | None:
        return Spread(self.random) if self.random else None

    @property
    def rule_text(self) -> str:
        """The rule with its numbers: ``== 0``, or ``>= 0.4596: random 0.31 ± 0.05 (n=20, ...) + max(2.60 sd, 0.02) (α = 0.01)``."""
        return RULES[self.claim].describe(self.spread, self.alpha)

    def to_dict(self) -> dict:
        """Plain JSON values: what crosses pytest-xdist, lands in a --junitxml file's properties and in ``claims.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        return cls(**{**data, "subject": SubjectId(**data["subject"]), "random": tuple(data["random"]),
                      "series": tuple(data["series"]), "random_series": tuple(tuple(values) for values in data["random_series"])})

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        return cls.from_dict(json.loads(text))


# What one random initialisation's value of a learned claim takes: the families of one forward pass or none
# (CALIBRATED_COSTS) have fresh controls recorded (python -m claims calibration --fresh-weights, --fresh-forward).
WEIGHTS, FIRST_CONV, STAGES, FIELDS, OCCLUSION = "weights", "first-conv maps", "stage pass", "fields", "occlusion"
COSTS = (WEIGHTS, FIRST_CONV, STAGES, FIELDS, OCCLUSION)
CALIBRATED_COSTS = (WEIGHTS, STAGES)
# The scale a learned claim's null bound is taken on. The statistics of the first filters' weights (COST WEIGHTS)
# are shares of a filter's energy: positive, bounded and skewed over seeds, so that a normal bound on the values
# themselves sat too low (their recorded nulls, each seed against the other 20: 20 of 840 CONFIRMED; fresh inits of
# 16 architectures: 1.01%, the conv1_2 edges 1.41%). Their bound is taken over the logs (the transform that did best
# on the recorded nulls, 9 of 840, chosen before the fresh inits were judged: 0.64% of 5760 there, every claim at
# most α); every other claim's on the values (claims/README.md, "The false-confirm rate").
LINEAR, LOG = "linear", "log"


@dataclass(frozen=True)
class Rule:
    claim: str
    block: str  # the notebook block: "1"-"4"
    sentence: str  # the notebook's words
    op: str  # ">=", "<=" or "=="
    threshold: float | None = None  # a fixed threshold; None: derived from the random spread
    resolution: float = 0.0  # learned: the smallest difference that counts, in the metric's units
    tolerance: float = 0.05  # regression: relative change of a recorded value that fails the run
    needs: str = ""  # what the measurement needs beyond images: "head" (a trained classifier)
    instrument: str = ""  # how the value is measured, where two instruments measure one sentence: "linear probe"
    source: str = ""  # where the instrument comes from: "Alain & Bengio 2016", "the suite's"
    second_opinion_of: str = ""  # the claim whose sentence this one measures with another instrument
    measure: Callable[[measures.Probe], measures.Sample] | None = None  # learned: the value on one model
    series: Callable[[measures.Probe], list[float]] | None = None  # the numbers behind the value, per stage (figures)
    cost: str = ""  # learned: what one random initialisation's value takes (COSTS)
    scale: str = LINEAR  # learned: the scale the null's prediction bound is taken on (LINEAR, or LOG: see above)

    @property
    def learned(self) -> bool:
        return self.measure is not None

    def to_dict(self) -> dict:
        """The record as plain JSON values (``claims.json``'s ``registry``): everything but the functions."""
        return {"block": self.block, "sentence": self.sentence, "op": self.op, "threshold": self.threshold,
                "resolution": self.resolution, "tolerance": self.tolerance, "learned": self.learned, "cost": self.cost,
                "scale": self.scale,
                "needs": self.needs, "instrument": self.instrument, "source": self.source,
                "second_opinion_of": self.second_opinion_of}

    @property
    def instrument_text(self) -> str:
        """``linear probe (Alain & Bengio 2016)``; empty where one instrument measures the sentence."""
        return f"{self.instrument} ({self.source})" if self.source else self.instrument

    def on_log_scale(self, spread: Spread) -> bool:
        """Whether the bound is taken over the values' logarithms: a LOG claim's null, where every value is positive."""
        return self.scale == LOG and min(spread.values) > 0

    @property
    def sequential(self) -> bool:
        """Whether a null measured now judges it in two looks (claims.judging.sequential): a claim that costs a
        forward pass over the photos and more; the weights' and the first conv's maps' always get every seed."""
        return self.learned and self.cost not in (WEIGHTS, FIRST_CONV)

    def bar(self, spread: Spread | None, alpha: float = ALPHA) -> float:
        if self.threshold is not None:
            return self.threshold
        sign = 1 if self.op == ">=" else -1
        factor = prediction_factor(len(spread.values), alpha)
        least = spread.mean + sign * self.resolution
        if self.on_log_scale(spread):
            logs = Spread(tuple(math.log(value) for value in spread.values))
            bound = math.exp(logs.mean + sign * factor * logs.sd)
        else:
            bound = spread.mean + sign * factor * spread.sd
        return max(bound, least) if sign > 0 else min(bound, least)

    def describe(self, spread: Spread | None = None, alpha: float = ALPHA) -> str:
        if self.threshold is not None:
            return f"{self.op} {self.threshold:g}"
        log = " of the logs" if self.scale == LOG else ""
        if spread is None:
            return (f"{self.op} random mean {'+' if self.op == '>=' else '-'} max(t bound{log}, {self.resolution:g}) "
                    f"(α = {ALPHA:g})")
        log = " of the logs" if self.on_log_scale(spread) else ""
        rate = f"α = {alpha:g}" + (f" at this look, {ALPHA:g} over both" if alpha != ALPHA else "")
        return (f"{self.op} {self.bar(spread, alpha):.4g}: random {spread} {'+' if self.op == '>=' else '-'} "
                f"max({prediction_factor(len(spread.values), alpha):.2f} sd{log}, {self.resolution:g}) ({rate})")

    def judge(self, subject: SubjectId, value: float | Interval, spread: Spread | None = None, detail: str = "",
              series: tuple[float, ...] = (), random_series: tuple[tuple[float, ...], ...] = (), alpha: float = ALPHA,
              refute_short_of: float | None = None) -> Verdict:
        """``alpha``: the bar's false-confirm rate; ``refute_short_of``: where the interval must end for REFUTED,
        if not at the bar (the sequential null's first look: a bound the last look's bar passes)."""
        # Decided on the values as recorded, so that the printed spread, the bar and the verdict agree.
        if not isinstance(value, Interval):
            value = Interval(value, value, value, 0)
        estimate = Interval(rounded(value.value), rounded(value.low), rounded(value.high), value.count)
        spread = Spread(tuple(rounded(v) for v in spread.values)) if spread else None
        bar = self.bar(spread, alpha)
        short_of = bar if refute_short_of is None else refute_short_of
        if spread is not None:
            detail = "; ".join(filter(None, [detail, null_shape(spread.values, self.on_log_scale(spread))]))
        beyond = OPERATORS[self.op]
        if math.isfinite(estimate.value) and beyond(estimate.value, bar):
            status = CONFIRMED
        elif not math.isfinite(estimate.value) or not beyond(estimate.high if self.op == ">=" else estimate.low, short_of) \
                or self.op == "==":
            status = REFUTED
        else:
            status = INCONCLUSIVE
            needed = images_to_decide(estimate, bar)
            detail = "; ".join(filter(None, [detail, f"its 95% interval {estimate.low:.4g}..{estimate.high:.4g} reaches "
                                                      f"the bar {bar:.4g}" + (f": about {needed} photos (now {estimate.count}) "
                                                                              f"would decide it if the value held" if needed else "")]))
        exact = estimate.exact
        return Verdict(self.claim, subject, status, estimate.value, self.op, self.threshold, self.resolution,
                       bar=None if spread is None else rounded(bar), random=spread.values if spread else (), detail=detail,
                       series=tuple(rounded(v) for v in series),
                       low=None if exact else estimate.low, high=None if exact else estimate.high, images=estimate.count,
                       random_series=tuple(tuple(rounded(v) for v in values) for values in random_series), alpha=alpha)

    def not_measured(self, subject: SubjectId, reason: str) -> Verdict:
        return Verdict(self.claim, subject, NOT_MEASURED, None, self.op, self.threshold, self.resolution, detail=reason)

    def allowed_drift(self, recorded: float) -> float:
        return self.tolerance * abs(recorded) + self.resolution / 4




def learned(claim, block, sentence, resolution, measure, cost, series=None, needs="", instrument="", source="",
            second_opinion_of="") -> Rule:
    return Rule(claim, block, sentence, ">=", resolution=resolution, needs=needs, instrument=instrument, source=source,
                second_opinion_of=second_opinion_of, measure=measure, series=series, cost=cost,
                scale=LOG if cost == WEIGHTS else LINEAR)


CLASS_RELEVANT = "Deep layers → abstract, class-relevant"
GRADUALLY = "CNNs trade spatial precision for semantic meaning gradually, not all at once (the semantic half)"


RULES = MappingProxyType({rule.claim: rule for rule in (
    learned("L1-maps-differ", "1", "64 different filtered versions of the image, each highlighting different "
            "local patterns", 0.02, measures.map_diversity, FIRST_CONV),
    learned("L1-early-probe-detects-edges", "2", "Each 3×3 filter detects a specific pattern (edge direction, ...), "
            "at the early probe conv1_2", 0.02, measures.early_probe_edges, WEIGHTS),
    learned("L1-filters-detect-edges", "2", "Each 3×3 filter detects a specific pattern (edge direction, ...)", 0.02,
            measures.filter_edges, WEIGHTS),
    learned("L1-filters-detect-colours", "2", "... (..., color gradient, etc.)", 0.02, measures.filter_colours, WEIGHTS),
    learned("L2-maps-show-where-edges-are", "2", "The activation map shows WHERE that pattern appears in the image", 0.02,
            measures.edge_tracking, FIRST_CONV),
    # A ratio over the early probe's spread, which is 1-2 px: a 0.1 px change there moves the ratio
    # by about 0.4, so differences under 0.5 are within what the early layer's sub-pixel spread decides.
    learned("L3-middle-layers-see-larger-patterns", "3", "Middle layers → patterns, motifs, object parts", 0.5,
            measures.middle_field_growth, FIELDS),
    learned("L3-sparser-with-depth", "3", "DEEP: Very low resolution, sparse activations", 0.02,
            measures.sparsity_trend, STAGES, series=measures.inactive_by_stage),
    learned("L4-class-structure-grows-with-depth", "3", CLASS_RELEVANT, 0.02, measures.class_structure_gain, STAGES,
            instrument="partner rank", source="the suite's"),
    # Accuracy over 100 photos moves in steps of 0.01 and a refit fold moves a few photos: 0.05 is five photos.
    learned("L4-linear-probe-grows-with-depth", "3", CLASS_RELEVANT, 0.05, measures.probe_accuracy_gain, STAGES,
            series=measures.probe_accuracy_by_stage, instrument="linear probe", source="Alain & Bengio 2016",
            second_opinion_of="L4-class-structure-grows-with-depth"),
    learned("L4-class-structure-grows-gradually", "4", GRADUALLY, 0.02, measures.gradual_class_structure, STAGES,
            series=measures.class_structure_by_stage, instrument="partner-rank steps", source="the suite's"),
    learned("L4-neighbour-stages-most-similar", "4", GRADUALLY, 0.02, measures.stage_similarity_contrast, STAGES,
            series=measures.neighbour_similarity_by_step, instrument="linear CKA", source="Kornblith et al. 2019",
            second_opinion_of="L4-class-structure-grows-gradually"),
    learned("L5-occluding-the-object-matters", "4", "This is why Grad-CAM and similar methods work "
            "(Zeiler & Fergus: hiding the object lowers its class)", 0.02, measures.object_relevance, OCCLUSION,
            needs="head"),
    Rule("S-channels-grow-resolution-falls", "3", "EARLY: High resolution ... DEEP: Very low resolution; "
         "64 ... 256 ... 512 channels", "==", 0.0, tolerance=0.0),
    Rule("S-deep-change-centred", "4", "Early: localized change • Deep: broader but still spatially structured",
         "==", 0.0, tolerance=0.0),
    Rule("S-occlusion-stays-local", "4", "Even deep layers maintain spatial correspondence with the input image!",
         "==", 0.0, tolerance=0.0),
    Rule("S-fields-grow-gradually", "4", "CNNs trade spatial precision for semantic meaning gradually, "
         "not all at once", "<=", 2.0, tolerance=0.0),
)})


class UnknownClaim(LookupError):
    """A test marks a claim id that the registry does not hold."""

    def __init__(self, claim: str):
        close = difflib.get_close_matches(claim, list(RULES), n=3, cutoff=0.5)
        super().__init__(f"unknown claim {claim!r} in a claim/breaks marker"
                         + (f"; did you mean {', '.join(map(repr, close))}?" if close else f"; the registry holds {', '.join(RULES)}"))

    def __str__(self) -> str:  # LookupError would repr() the message
        return self.args[0]


def marked_claims(node, marker: str = "claim") -> tuple[str, ...]:
    """The registry claims a pytest item's ``claim`` (or ``breaks``) marker names, checked against the registry."""
    found = node.get_closest_marker(marker)
    claims = tuple(found.args) if found is not None else ()
    for claim in claims:
        if claim not in RULES:
            raise UnknownClaim(claim)
    return claims
