"""The learned claims over a whole folder of images (``--images DIR``), with confidence intervals.

Block 3's sparsity claim, per batch of the folder (streamed through a DataLoader, so memory stays
bounded whatever the folder's size), as a mean with a 95% interval, against the same random
initialisations as the probe images.
"""
from __future__ import annotations

import pytest

from claims.folder import sparsity_over_folder
from claims.rules import RULES, Spread

pytestmark = pytest.mark.learned


@pytest.fixture(scope="module")
def folder(pytestconfig) -> str:
    pattern = pytestconfig.getoption("--images")
    if not pattern:
        pytest.skip("pass --images DIR (or a glob) to measure the learned claims over a folder of images")
    return pattern


@pytest.mark.learned
def test_sparsity_grows_with_depth_over_the_folder(subject, folder):
    """Block 3, "DEEP: ... sparse activations", per batch: a trained model's interval lies above
    the random initialisations' bar wherever the probe images say the claim is CONFIRMED."""
    rule = RULES["L3-sparser-with-depth"]
    if subject.why_not_measured(rule):
        pytest.skip(subject.why_not_measured(rule))
    verdict = subject.verdicts(rule.claim)[0]
    estimate = sparsity_over_folder(subject, folder)
    bar = rule.bar(Spread(verdict.random))
    print(f"{rule.claim} over the folder on {verdict.subject}: {estimate}; random bar {bar:.4g}")
    if verdict.status == "CONFIRMED":
        assert estimate.high >= bar, f"the folder contradicts the probe images: {estimate} below {bar:.4g}"
    else:
        assert estimate.low < bar, f"the folder contradicts the probe images: {estimate} above {bar:.4g}"
