"""The learned claims over a whole folder of images (``--images DIR``), with confidence intervals.

The same measurements as Blocks 3 and 4, per image, streamed through a DataLoader in batches of
BATCH (memory stays bounded whatever the folder's size), aggregated as a mean with a 95% interval.
A claim fails only when the folder contradicts the claims matrix with that confidence: an
expected-to-hold claim whose interval lies wholly below its threshold, or the reverse.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import torch

import cnn_core
from claims.matrix import load_expectations
from claims.test_block3_depth import INVARIANCE_GAIN, SPARSITY_TREND, spatial_relus
from claims.test_block4_spatial_locality import RELEVANT_DROP, class_drop

pytestmark = pytest.mark.learned
BATCH = 8


@pytest.fixture(scope="module")
def folder(pytestconfig) -> str:
    pattern = pytestconfig.getoption("--images")
    if not pattern:
        pytest.skip("pass --images DIR (or a glob) to measure the learned claims over a folder of images")
    return pattern


def batches(subject, pattern: str, label: str):
    """The folder's images for this subject, BATCH at a time, with a progress line on the terminal."""
    dataset = cnn_core.ImageFolder(pattern, subject.size, cnn_core.models.normalization_of(subject.model))
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, collate_fn=cnn_core.collate_images)
    done = 0
    for images, indices in loader:
        done += len(indices)
        sys.__stderr__.write(f"\r{label} [{subject.key}]: {done}/{len(dataset)} images")
        if len(indices):
            yield images.to(subject.images.device), [dataset.files[i] for i in indices.tolist()]
    sys.__stderr__.write(f" ({len(dataset.skipped)} unreadable skipped)\n")
    for path, problem in dataset.skipped:
        sys.__stderr__.write(f"  skipped {path}: {problem}\n")


def check_against_matrix(claim: str, subject, estimate: cnn_core.Estimate, threshold: float) -> None:
    expected = load_expectations().get(claim, {}).get(subject.key, {}).get("holds")
    message = f"{claim} over the folder on {subject.key}: {estimate}, threshold {threshold}"
    print(message)
    if expected is True:
        assert estimate.high >= threshold, f"{message}: confidently fails, but the matrix expects it to hold"
    elif expected is False:
        assert estimate.low < threshold, f"{message}: confidently holds, but the matrix expects it to fail"


def zeros_per_image(maps: dict, paths: list[str]) -> torch.Tensor:
    """Per image, the fraction of exact zeros, averaged over the layers in ``paths``."""
    return torch.stack([(maps[p] == 0).flatten(1).double().mean(dim=1) for p in paths]).mean(dim=0)


def test_sparsity_grows_with_depth_over_the_folder(subject, folder):
    """Block 3, "DEEP: ... sparse activations", per image: zeros after the last block's ReLUs
    minus the first block's."""
    relus = spatial_relus(subject.model, subject.size)
    first = [layer.path for block, layer in relus if block == relus[0][0]]
    last = [layer.path for block, layer in relus if block == relus[-1][0]]
    trends = []
    for images, _ in batches(subject, folder, "sparsity"):
        maps = cnn_core.capture(subject.model, images, first + last)
        trends += (zeros_per_image(maps, last) - zeros_per_image(maps, first)).tolist()
    check_against_matrix("L3-sparser-with-depth", subject, cnn_core.mean_ci(trends), SPARSITY_TREND)


def test_abstraction_grows_over_the_folder(subject, folder):
    """Block 3, "Depth = Abstraction", per batch: the invariance gain from the first to the last
    ReLU beyond the random twin's."""
    from claims.test_block3_depth import invariance_growth

    margins = []
    for images, files in batches(subject, folder, "abstraction"):
        if len(files) < 2:
            continue
        first, last = invariance_growth(subject.model, images, [str(f) for f in files])
        twin_first, twin_last = invariance_growth(subject.twin, images, [str(f) for f in files])
        margins.append((last - first) - (twin_last - twin_first))
    check_against_matrix("L4-abstraction-grows-with-depth", subject, cnn_core.mean_ci(margins), INVARIANCE_GAIN)


def labels_of(pattern: str) -> dict[str, int]:
    """``labels.csv`` (file name, class index) in the folder, or beside the glob's files."""
    base = Path(pattern) if Path(pattern).is_dir() else Path(pattern).parent
    table = base / "labels.csv"
    if not table.is_file():
        pytest.skip(f"class relevance over a folder needs {table} with rows 'file name,class index'")
    with table.open() as handle:
        return {row[0]: int(row[1]) for row in csv.reader(handle) if row and not row[0].startswith("#")}


def test_occluding_the_object_matters_over_the_folder(subject, folder):
    """Block 4, Zeiler & Fergus, per labelled image: how much the true class falls when the
    centre (where object-centred photos put the object) is hidden, beyond hiding the corners."""
    labels = labels_of(folder)
    size = subject.size
    centre = cnn_core.Box(size * 5 // 16, size * 5 // 16, size * 11 // 16, size * 11 // 16)
    side = size * 5 // 16
    corners = [cnn_core.Box(t, l, t + side, l + side) for t in (0, size - side) for l in (0, size - side)]
    drops = []
    with torch.no_grad():
        for images, files in batches(subject, folder, "relevance"):
            for i in [i for i, f in enumerate(files) if f.name in labels]:
                x, target = images[i:i + 1], labels[files[i].name]
                base = cnn_core.class_score(subject.model(x), target)
                drops.append(class_drop(subject.model, x, target, centre, base)
                             - sum(class_drop(subject.model, x, target, b, base) for b in corners) / len(corners))
    if not drops:
        pytest.skip("no image of the folder is named in labels.csv")
    check_against_matrix("L5-occluding-the-object-matters", subject, cnn_core.mean_ci(drops), RELEVANT_DROP)
