"""Image folders: every readable image arrives in batches, unreadable ones are listed, not lost."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import cnn_core


@pytest.fixture
def folder(tmp_path):
    for i in range(5):
        Image.fromarray(np.full((20 + i, 30, 3), 40 * i, dtype=np.uint8)).save(tmp_path / f"photo_{i}.png")
    (tmp_path / "nested").mkdir()
    Image.new("L", (9, 9)).save(tmp_path / "nested" / "grey.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("not an image either, and not an image name")
    return tmp_path


def test_a_folder_streams_in_batches_and_lists_what_it_skipped(folder):
    dataset = cnn_core.ImageFolder(folder, size=16)
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, collate_fn=cnn_core.collate_images)
    shapes, seen = [], []
    for images, indices in loader:
        shapes.append(tuple(images.shape))
        seen += indices.tolist()
    assert len(dataset) == 7 and sorted(seen) == [i for i, f in enumerate(dataset.files) if f.name != "broken.jpg"]
    assert shapes == [(2, 3, 16, 16), (3, 3, 16, 16), (1, 3, 16, 16)]
    assert [(path.name, problem) for path, problem in dataset.skipped] == [("broken.jpg", "is not an image in a format Pillow can read")]


def test_globs_select_and_empty_matches_explain(folder, monkeypatch):
    monkeypatch.chdir(folder)
    assert [p.name for p in cnn_core.image_files("photo_*.png")] == [f"photo_{i}.png" for i in range(5)]
    with pytest.raises(cnn_core.ImageError, match="matches no image files"):
        cnn_core.image_files("*.webp")
