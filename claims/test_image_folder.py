"""The learned claims over a whole folder of images (``--images DIR``), with confidence intervals.

Block 3's sparsity claim over every photo of the folder (streamed through a DataLoader, so memory
stays bounded whatever the folder's size), with a 95% bootstrap interval, against the bar the
sample photos' verdict was judged by.
"""
from __future__ import annotations

import pytest

from claims.judging.rules import RULES
from claims.session.folder import sparsity_over_folder

pytestmark = pytest.mark.learned


@pytest.mark.learned
def test_sparsity_grows_with_depth_over_the_folder(subject, image_folder, zoo):
    """Block 3, "DEEP: ... sparse activations", over a folder: the model's interval reaches the random
    null's bar where the sample photos CONFIRM the claim, and falls short of it where they REFUTE it."""
    rule = RULES["L3-sparser-with-depth"]
    if subject.why_not_measured(rule):
        pytest.skip(subject.why_not_measured(rule))
    verdict = subject.verdicts(rule.claim)[0]
    if verdict.status not in ("CONFIRMED", "REFUTED"):
        pytest.skip(f"{verdict.subject}: {verdict.status} on the sample photos, so no verdict to compare ({verdict.detail})")
    estimate = sparsity_over_folder(subject, image_folder, zoo.progress)
    print(f"{rule.claim} over the folder on {verdict.subject}: {estimate}; random bar {verdict.bar:.4g}")
    if verdict.status == "CONFIRMED":
        assert estimate.high >= verdict.bar, f"the folder contradicts the sample photos: {estimate} below {verdict.bar:.4g}"
    else:
        assert estimate.low < verdict.bar, f"the folder contradicts the sample photos: {estimate} above {verdict.bar:.4g}"
