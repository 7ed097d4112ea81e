"""The false-confirm rate, measured: 100 random controls of Tiny VGG, each judged against a null of
20 other random initialisations, are CONFIRMED about ALPHA of the time.

The claims here are those a control gives with one forward pass or none, so that 120 random models
take seconds; no claim's rate, the field's two instruments' included, may be shown to exceed α.
``python -m claims calibration`` judges every claim, on the full probe images, for the ImageNet
architectures (README: "The false-confirm rate")."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cnn_core
from claims.judging.calibration import CONTROL_SEEDS_FROM, calibrate, fresh_controls, random_values
from claims.judging.probes import probe_images
from claims.judging.rules import CALIBRATED_COSTS, NULL_SEEDS, RULES
from claims.judging.statistics import ALPHA, binomial_interval

CONTROLS = 100
CLAIMS = [claim for claim, rule in RULES.items() if rule.cost in CALIBRATED_COSTS]


@pytest.fixture(scope="module")
def tiny_vgg(tiny_vgg_folder: Path, fixtures_with_photos):
    model = cnn_core.load_model("tiny-vgg", weights="auto", fixtures_dir=tiny_vgg_folder.parent)
    images = probe_images(cnn_core.model_card(model), fixtures_with_photos, torch.device("cpu"))
    # The check photos (2 per class group, 4 boxed): the rate is a property of the rule, not of the image count.
    return model, images.check_subset()


def test_random_controls_are_confirmed_at_most_alpha_of_the_time(tiny_vgg):
    model, images = tiny_vgg
    measure = random_values(model, images, CLAIMS)
    null = [measure(seed) for seed in NULL_SEEDS]
    result = calibrate("tiny-vgg", fresh_controls(null, measure, range(CONTROL_SEEDS_FROM, CONTROL_SEEDS_FROM + CONTROLS)),
                       images.name)
    print(result.summary(), result.by_claim)
    assert result.controls == CONTROLS and result.verdicts == len(CLAIMS) * CONTROLS
    low, _ = result.interval
    assert low <= ALPHA, f"random controls are CONFIRMED more often than α: {result.summary()}"
    over = {claim: counts for claim, counts in result.by_claim.items() if binomial_interval(*counts)[0] > ALPHA}
    assert not over, f"claims whose controls are CONFIRMED more often than α (95% interval above it): {over}"


def test_the_rate_check_fails_when_the_bar_is_the_null_mean(tiny_vgg, monkeypatch):
    """Break: a bar at the null's mean plus only the resolution (no prediction bound) confirms a
    third of the controls or more."""
    model, images = tiny_vgg
    monkeypatch.setattr("claims.judging.rules.prediction_factor", lambda n: 0.0)
    measure = random_values(model, images, ["L1-filters-detect-edges", "L1-filters-detect-colours"])
    null = [measure(seed) for seed in NULL_SEEDS]
    result = calibrate("tiny-vgg", fresh_controls(null, measure, range(CONTROL_SEEDS_FROM, CONTROL_SEEDS_FROM + 40)),
                       images.name)
    assert result.interval[0] > ALPHA, result.summary()
