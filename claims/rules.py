"""Each claim's rule as data: the operator, the threshold (fixed, or derived from random
initialisations and an effect size) and the regression tolerance, stored once and used both to
decide the verdict and to print it.

A learned claim holds when the trained model's value lies beyond the random spread:
``value >= mean + max(EFFECT_SIZE * sd, resolution)`` over NULL_SEEDS random initialisations of the
same architecture (its own init, seeds 1-5). ``resolution`` is the smallest difference in the
metric's own units that counts as a finding, for when the random spread is nearly nil.
"""
from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from types import MappingProxyType

CONFIRMED, REFUTED, NOT_MEASURED = "CONFIRMED", "REFUTED", "NOT MEASURED"
EFFECT_SIZE = 3.0  # random standard deviations beyond the random mean
NULL_SEEDS = (1, 2, 3, 4, 5)
CONTROL_SEED = 0  # the random control of a trained model: measured against NULL_SEEDS like it
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
class Verdict:
    claim: str
    subject: str  # "model.weights", e.g. "mobilenet_v2.imagenet"
    status: str  # CONFIRMED, REFUTED or NOT MEASURED
    measured: float | None
    threshold: str  # the rule, with its numbers
    random: tuple[float, ...] = ()  # the random initialisations' values (learned claims)
    detail: str = ""
    series: tuple[float, ...] = ()
    expected: str | None = field(default=None, compare=False)  # the recorded status, attached by the gate

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Verdict:
        return cls(**{**data, "random": tuple(data["random"]), "series": tuple(data["series"])})


@dataclass(frozen=True)
class Rule:
    claim: str
    block: str  # the notebook block: "1"-"4"
    sentence: str  # the notebook's words
    op: str  # ">=", "<=" or "=="
    threshold: float | None = None  # a fixed threshold; None: derived from the random spread
    resolution: float = 0.0  # learned: the smallest difference that counts, in the metric's units
    tolerance: float = 0.05  # regression: relative change of a recorded value that fails the run
    needs: str = ""  # what the measurement needs: "head" (a trained classifier), "labelled" images

    def bar(self, spread: Spread | None) -> float:
        if self.threshold is not None:
            return self.threshold
        margin = max(EFFECT_SIZE * spread.sd, self.resolution)
        return spread.mean + margin if self.op == ">=" else spread.mean - margin

    def describe(self, spread: Spread | None = None) -> str:
        if self.threshold is not None:
            return f"{self.op} {self.threshold:g}"
        return (f"{self.op} {self.bar(spread):.4g}: random {spread} "
                f"{'+' if self.op == '>=' else '-'} max({EFFECT_SIZE:g} sd, {self.resolution:g})")

    def judge(self, subject: str, value: float, spread: Spread | None = None, detail: str = "",
              series: tuple[float, ...] = ()) -> Verdict:
        # Decided on the values as recorded, so that the printed spread, the bar and the verdict agree.
        value = rounded(value)
        spread = Spread(tuple(rounded(v) for v in spread.values)) if spread else None
        holds = math.isfinite(value) and OPERATORS[self.op](value, self.bar(spread))
        return Verdict(self.claim, subject, CONFIRMED if holds else REFUTED, value, self.describe(spread),
                       spread.values if spread else (), detail, tuple(rounded(v) for v in series))

    def not_measured(self, subject: str, reason: str) -> Verdict:
        return Verdict(self.claim, subject, NOT_MEASURED, None, self.describe() if self.threshold is not None
                       else f"{self.op} random mean + max({EFFECT_SIZE:g} sd, {self.resolution:g})", detail=reason)

    def allowed_drift(self, recorded: float) -> float:
        return self.tolerance * abs(recorded) + self.resolution / 4


def learned(claim, block, sentence, resolution, needs="") -> Rule:
    return Rule(claim, block, sentence, ">=", resolution=resolution, needs=needs)


RULES = MappingProxyType({rule.claim: rule for rule in (
    learned("L1-maps-differ", "1", "64 different filtered versions of the image, each highlighting different "
            "local patterns", 0.02),
    learned("L1-early-probe-detects-edges", "2", "Each 3×3 filter detects a specific pattern (edge direction, ...), "
            "at the early probe conv1_2", 0.02),
    learned("L1-filters-detect-edges", "2", "Each 3×3 filter detects a specific pattern (edge direction, ...)", 0.02),
    learned("L1-filters-detect-colours", "2", "... (..., color gradient, etc.)", 0.02),
    learned("L2-maps-show-where-edges-are", "2", "The activation map shows WHERE that pattern appears in the image", 0.02),
    # A ratio over the early probe's spread, which is 1-2 px: a 0.1 px change there moves the ratio
    # by about 0.4, so differences under 0.5 are within what the early layer's sub-pixel spread decides.
    learned("L3-middle-layers-see-larger-patterns", "3", "Middle layers → patterns, motifs, object parts", 0.5),
    learned("L3-sparser-with-depth", "3", "DEEP: Very low resolution, sparse activations", 0.02),
    learned("L4-class-structure-grows-with-depth", "3", "Deep layers → abstract, class-relevant", 0.02,
            needs="labelled"),
    learned("L4-class-structure-grows-gradually", "4", "CNNs trade spatial precision for semantic meaning "
            "gradually, not all at once (the semantic half)", 0.02, needs="labelled"),
    learned("L5-occluding-the-object-matters", "4", "This is why Grad-CAM and similar methods work "
            "(Zeiler & Fergus: hiding the object lowers its class)", 0.02, needs="head"),
    Rule("S-channels-grow-resolution-falls", "3", "EARLY: High resolution ... DEEP: Very low resolution; "
         "64 ... 256 ... 512 channels", "==", 0.0, tolerance=0.0),
    Rule("S-occlusion-stays-local", "4", "Even deep layers maintain spatial correspondence with the input image!",
         "==", 0.0, tolerance=0.0),
    Rule("S-fields-grow-gradually", "4", "CNNs trade spatial precision for semantic meaning gradually, "
         "not all at once", "<=", 2.0, tolerance=0.0),
)})
