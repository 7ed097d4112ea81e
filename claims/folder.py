"""Measuring a learned claim over a folder of images, in batches, with progress and skipped files listed."""
from __future__ import annotations

import sys

import torch

import cnn_core
from claims import measures
from claims.probes import ProbeImages

BATCH = 8


def sparsity_over_folder(subject, pattern: str) -> cnn_core.Estimate:
    card = subject.card
    dataset = cnn_core.ImageFolder(pattern, card.input_size, card.normalization)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, collate_fn=cnn_core.collate_images)
    trends, done = [], 0
    for images, indices in loader:
        done += len(indices)
        sys.__stderr__.write(f"\rsparsity [{card.label}]: {done}/{len(dataset)} images")
        if len(indices):
            batch = ProbeImages(images.to(subject.images.photos.device), (), None, ())
            trends.append(measures.sparsity_trend(measures.Probe(subject.model, batch)))
    sys.__stderr__.write(f" ({len(dataset.skipped)} unreadable skipped)\n")
    for path, problem in dataset.skipped:
        sys.__stderr__.write(f"  skipped {path}: {problem}\n")
    return cnn_core.mean_ci(trends)
