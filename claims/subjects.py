"""The subjects of the learned claims: a selected model, its random control and its null distribution.

For each selected model the run measures every learned claim on the model as loaded (its
card's label, e.g. ``mobilenet_v2.imagenet``) and on NULL_SEEDS random initialisations of the
same architecture (its own init). A trained model is also accompanied by its random control
(CONTROL_SEED, ``mobilenet_v2.imagenet/random``), judged against the same seeds: the deliberate
break of every learned claim.
Each random model is built once, measured for every claim, and let go.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import torch
from torch import nn

import cnn_core
from claims import measures
from claims.probes import probe_images
from claims.rules import CONTROL_SEED, NULL_SEEDS, RULES, Rule, Spread, Verdict

MEASURES: Mapping[str, Callable[[measures.Probe], float]] = MappingProxyType({
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


class Subject:
    """One selected model and the random models it is judged against, measured lazily, once."""

    def __init__(self, model: nn.Module, random_model: Callable[[int], nn.Module], fixtures_dir: Path | None,
                 device: torch.device, measure_random: bool):
        self.model = model
        self.measure_random = measure_random
        self.card = cnn_core.model_card(model)
        self.images = probe_images(self.card, fixtures_dir, device)
        self._random_model = random_model
        self._values: dict[int | None, dict[str, float]] = {}
        self._probe = measures.Probe(model, self.images)  # the model's own, kept: its series are reported too

    def why_not_measured(self, rule: Rule) -> str | None:
        if not self.card.trained and not self.measure_random:
            return ("no trained weights offline, so --weights auto fell back to random init "
                    "(--weights none measures random inits against other seeds)")
        if rule.needs == "head" and not self.card.head_trained and self.card.trained:
            return f"its classifier is untrained: {self.card.provenance}"
        if rule.needs == "labelled" and self.images.labelled is None:
            return "needs CNN Explainer's 20 labelled demo images: pass --fixtures-dir (the folder holding tiny-vgg/)"
        return None

    def measured_claims(self) -> list[str]:
        return [claim for claim in MEASURES if self.why_not_measured(RULES[claim]) is None]

    def values(self, seed: int | None) -> dict[str, float]:
        """Every measured claim's value for the model (seed None) or one random initialisation."""
        if seed not in self._values:
            if seed is None:
                probe = self._probe
            else:
                sys.__stderr__.write(f"\rcnn-claims: {self.card.name} random init seed {seed} ...")
                probe = measures.Probe(self._random_model(seed).to(memory_format=torch.channels_last), self.images)
            self._values[seed] = {claim: MEASURES[claim](probe) for claim in self.measured_claims()}
        return self._values[seed]

    def verdicts(self, claim: str) -> list[Verdict]:
        """The model's verdict and, when it is trained, its random control's."""
        rule = RULES[claim]
        # The control is measured on the trained model's own preprocessing, so it is named after it.
        subjects = [(self.card.label, None)] + ([(f"{self.card.label}/random", CONTROL_SEED)] if self.card.trained else [])
        reason = self.why_not_measured(rule)
        if reason is not None:
            return [rule.not_measured(label, reason) for label, _ in subjects]
        spread = Spread(tuple(self.values(seed)[claim] for seed in NULL_SEEDS))
        series = tuple(SERIES[claim](self._probe)) if claim in SERIES else ()
        return [rule.judge(label, self.values(seed)[claim], spread, series=series if seed is None else ())
                for label, seed in subjects]
