"""Measurements kept between runs: the same numbers back, and a new key for anything that changed."""
from __future__ import annotations

import copy

import torch
from torch import nn

from claims.judging import measures, remembered
from claims.judging.probes import ProbeImages


def probe_images(seed: int = 0) -> ProbeImages:
    photos = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    return ProbeImages(photos, photos, (0, 0, 1, 1), None, (), "test:4")


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())


def test_samples_come_back_with_the_same_values_and_intervals():
    rows = torch.rand(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    samples = {"over photos": measures.Sample(rows, measures.VALUE_FUNCTIONS["_gradual"]),
               "of weights": measures.of_weights(0.25), "not measured": "needs the ImageNet sample"}
    series = {"over photos": (0.1, 0.2)}
    back, back_series = remembered.decode(remembered.encode(samples, series))
    assert back["not measured"] == "needs the ImageNet sample" and back_series == series
    for claim in ("over photos", "of weights"):
        assert back[claim].value == samples[claim].value  # exact: float64 rows survive JSON unchanged
        assert back[claim].interval() == samples[claim].interval()


def test_the_key_follows_the_weights_and_the_photos_not_the_object():
    model, images = small_model(), probe_images()
    key = remembered.key(model, images, ["L3-sparser-with-depth"])
    assert remembered.key(copy.deepcopy(model), probe_images(), ["L3-sparser-with-depth"]) == key
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed[0].weight[0, 0, 0, 0] += 1e-6
    assert remembered.key(changed, images, ["L3-sparser-with-depth"]) != key
    assert remembered.key(model, probe_images(seed=1), ["L3-sparser-with-depth"]) != key
    assert remembered.key(model, images, ["L4-class-structure-grows-with-depth"]) != key
