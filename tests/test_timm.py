"""timm's models by name (``timm/NAME``): built with their own init, preprocessed by their
``pretrained_cfg``, loaded from a state_dict path, and measured by the learned claims like any CNN."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cnn_core
from claims.judging import structural
from claims.judging.probes import probe_layers
from claims.judging.rules import NOT_MEASURED
from cnn_core.models import TINY_VGG

timm = pytest.importorskip("timm", reason="timm's models need timm: pip install -e '.[dev]' brings it")
ROOT = Path(__file__).resolve().parents[1]
NAME = "timm/resnet18"


def test_a_timm_model_has_its_pretrained_cfg_as_its_card():
    model = cnn_core.load_model(NAME, weights="none")
    card = cnn_core.model_card(model)
    cfg = model.pretrained_cfg
    assert (card.label, card.trained, card.input_size) == ("timm/resnet18.random", False, cfg["input_size"][-1])
    assert card.resize == int(cfg["input_size"][-1] / cfg["crop_pct"]) and card.interpolation == cfg["interpolation"]
    assert card.normalization.mean == tuple(cfg["mean"]) and len(card.class_names) == 1000


def test_a_timm_state_dict_path_loads_and_a_wrong_one_says_so(tmp_path):
    source = cnn_core.load_model(NAME, weights="none", seed=3)
    path = tmp_path / "mine.pth"
    torch.save(source.state_dict(), path)
    loaded = cnn_core.load_model(NAME, weights=path)
    assert torch.equal(loaded.conv1.weight, source.conv1.weight)
    assert cnn_core.model_card(loaded).label == "timm/resnet18.file-mine"
    with pytest.raises(cnn_core.WeightsError, match="do not fit"):
        cnn_core.load_model("timm/mobilenetv3_small_050", weights=path)


def test_an_unknown_timm_name_suggests_close_ones():
    with pytest.raises(cnn_core.ModelNotFound, match="did you mean 'timm/resnet18'"):
        cnn_core.load_model("timm/resnet81")


@pytest.mark.parametrize("name", [NAME, "timm/tf_efficientnet_b0"])
def test_learned_claims_run_on_a_timm_model_with_a_weights_path(tmp_path, tiny_vgg_folder, name, pytester):
    """The held-out check's command: ``pytest claims -m learned --model timm/NAME --weights PATH``,
    also on a ``tf_`` model (TensorFlow "SAME" padding, which torch.fx cannot trace into)."""
    stem = name.removeprefix("timm/")
    path = tmp_path / f"{stem}.pth"
    torch.save(cnn_core.load_model(name, weights="none", seed=7).state_dict(), path)
    # Without the photo sample only the weights' claims are measured: twenty random inits in
    # seconds, where the photos' claims would take minutes for an architecture with no recorded nulls.
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    (fixtures / TINY_VGG).symlink_to(tiny_vgg_folder)
    result = pytester.runpytest_inprocess(str(ROOT / "claims"), "-q", "-p", "no:cacheprovider", "-m", "learned",
                                          "--model", name, "--weights", str(path), "--fixtures-dir", str(fixtures),
                                          "-k", "not folder")
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    assert f"NOT MEASURED on {name}.file-{stem}" in out and "needs the ImageNet sample" in out
    # A random state_dict passed as "trained" must be REFUTED on the filter claims, as any random init is.
    assert f"L1-filters-detect-edges               {name}.file-{stem}" in out
    assert "CONFIRMED" not in out.split("L1-filters-detect-edges")[1].split("\n")[0]


def test_models_that_fuse_resolutions_are_shifted_in_views_that_divide_evenly(image):
    """HRNet adds upsampled coarse maps to fine ones, so it runs only sizes its strides divide: the
    equivariance view is rounded up to a multiple of the largest stride up to the layer."""
    model = cnn_core.load_model("timm/hrnet_w18_small", weights="none").eval()
    layer = "stage3.0.fuse_layers.2.1.0.0"
    field = cnn_core.receptive_field(model, layer)
    natural = max(64, field.size[0] + (2 * structural.SHIFT_UNITS + 1) * field.jump[0])
    assert natural % 16 and structural.aligned_view(model, layer, natural) % 16 == 0
    structural.check_equivariance(model, layer, image, (1, -1), rtol=1e-4, atol=1e-5)


def test_a_conv_on_a_pooled_pixel_is_no_deep_probe_and_no_far_unit_is_not_measured():
    """GhostNet's head is a 1x1 conv on the globally pooled map: a fully connected layer, not the
    deep conv the notebook means; and a layer with no unit far from the corner box has no locality
    verdict (the fraction of no units is no number)."""
    model = cnn_core.load_model("timm/ghostnet_100", weights="none").eval()
    listing = cnn_core.layers(model)
    assert probe_layers(listing, "deep") == ["blocks.9.0.conv"]
    verdict = structural.locality_verdict(model, "conv_head", torch.zeros(1, 3, 224, 224))
    assert verdict.status == NOT_MEASURED and "no unit of conv_head is centred" in verdict.detail
