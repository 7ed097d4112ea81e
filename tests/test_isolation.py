"""One failing measurement never sinks the others: a claim whose measurement raises on a model is
NOT MEASURED there, with the reason in one line; every other claim keeps its verdict. A bug (an
error no measurement is expected to raise) is not hidden that way."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torchvision
from torch import nn

import cnn_core
from claims.judging import measures, structural, subjects
from claims.judging.expectations import not_measured_skips
from claims.judging.rules import NOT_MEASURED, REFUTED, RULES


def untraceable(*_args, **_kwargs):
    raise cnn_core.ReceptiveFieldError("Net cannot be traced with torch.fx (data-dependent control flow)\nmore")


def test_a_structural_measurement_that_raises_is_not_measured_and_the_rest_are(zoo, image_tensor, monkeypatch):
    model = zoo.get("alexnet")
    monkeypatch.setattr(structural, "far_units_changed", untraceable)
    locality = structural.locality_verdict(model, "features.10", image_tensor)
    assert locality.status == NOT_MEASURED and locality.measured is None
    assert locality.detail == "ReceptiveFieldError: Net cannot be traced with torch.fx (data-dependent control flow)"
    assert structural.gradual_verdict(model, "features.10").status != NOT_MEASURED
    assert structural.depth_verdict(model).status == REFUTED  # AlexNet narrows 384 -> 256


def test_a_bug_in_a_measurement_is_not_turned_into_not_measured(zoo, image_tensor, monkeypatch):
    monkeypatch.setattr(structural, "far_units_changed", lambda *_: None)  # unpacking None: a TypeError
    with pytest.raises(TypeError):
        structural.locality_verdict(zoo.get("alexnet"), "features.10", image_tensor)


def test_a_learned_measurement_that_raises_is_not_measured_and_the_rest_are(monkeypatch):
    failing, working = "L1-filters-detect-edges", "L1-filters-detect-colours"
    monkeypatch.setattr(subjects, "RULES", {failing: replace(RULES[failing], measure=untraceable),
                                            working: replace(RULES[working], measure=lambda probe: 0.5)})
    samples = subjects.measure_all(probe=None, claims=[failing, working])
    assert samples == {failing: "ReceptiveFieldError: Net cannot be traced with torch.fx (data-dependent control flow)",
                       working: 0.5}


def test_a_layer_without_a_support_twin_is_not_measured_not_failed():
    """HRNet's fuse layers upsample: the support twin has nothing that stands in for nn.Upsample, so
    the empirical field of what follows is NOT MEASURED (a skip naming the layer), never a failure."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Upsample(scale_factor=2), nn.Conv2d(4, 4, 3)).eval()
    table = cnn_core.receptive_fields(model, structural.EMPIRICAL_CANVAS)
    with pytest.raises(measures.NotMeasurable, match="no support-preserving twin for Upsample"):
        structural.check_empirical_matches_analytic(model, "2", table)
    with pytest.raises(pytest.skip.Exception, match="NOT MEASURED: 2's gradient support"), not_measured_skips():
        structural.check_empirical_matches_analytic(model, "2", table)
    structural.check_empirical_matches_analytic(model, "0", table)  # before the upsampling it is measured


def test_a_model_with_one_spatial_layer_has_no_depth_verdict():
    """A ViT has one map (its patch embedding's) and then tokens: "64 ... 512 channels, resolution
    falls" has nothing to compare, so it is NOT MEASURED, not CONFIRMED for want of a violation."""
    vit = torchvision.models.VisionTransformer(image_size=224, patch_size=16, num_layers=1, num_heads=2,
                                               hidden_dim=16, mlp_dim=32).eval()
    verdict = structural.depth_verdict(vit)
    assert verdict.status == NOT_MEASURED and "conv_proj is the model's only layer with a spatial map" in verdict.detail
