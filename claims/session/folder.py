"""Measuring a learned claim over a folder of images, in batches, with progress and skipped files listed."""
from __future__ import annotations

import torch

import cnn_core
from claims.judging import measures
from claims.judging.probes import ProbeImages
from claims.judging.statistics import Interval

BATCH = 8


def sparsity_over_folder(subject, pattern: str, progress) -> Interval:
    card = subject.card
    dataset = cnn_core.ImageFolder(pattern, card.input_size, card.normalization)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, collate_fn=cnn_core.collate_images)
    samples, done = [], 0
    for images, indices in loader:
        done += len(indices)
        progress(f"\rsparsity [{card.label}]: {done}/{len(dataset)} images")
        if len(indices):
            batch = ProbeImages(images.to(subject.device), None, (), None, (), "folder")
            samples.append(measures.sparsity_trend(measures.Probe(subject.model, batch)))
    progress(f" ({len(dataset.skipped)} unreadable skipped)\n")
    for path, problem in dataset.skipped:
        progress(f"  skipped {path}: {problem}\n")
    if not samples:
        raise measures.NotMeasurable(f"no readable image in {pattern}")
    return measures.Sample(torch.cat([sample.rows for sample in samples]), samples[0].value_of).interval()
