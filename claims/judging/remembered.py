"""Measurements remembered between runs, in pytest's cache directory.

A learned claim's sample depends only on the model's weights, the probe images, the measuring
code and the torch/torchvision that ran it. :func:`key` digests all of these, so a second run of
an unchanged model reuses the first run's rows (the verdicts, intervals and gates are still
computed from them), while a changed weight, photo, line of ``claims/`` or ``cnn_core/``, or
torch version measures afresh. ``pytest --cache-clear`` (or ``-p no:cacheprovider``) forgets them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision

import claims
import cnn_core
from claims.judging import measures
from claims.judging.probes import ProbeImages

PREFIX = "cnn-claims/measured"
_CODE = [*sorted(Path(claims.__file__).parent.rglob("*.py")), *sorted(Path(cnn_core.__file__).parent.glob("*.py"))]


def _update(digest, tensor: torch.Tensor | None) -> None:
    if tensor is None:
        digest.update(b"none")
        return
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy())


def key(model: torch.nn.Module, images: ProbeImages, claims: list[str]) -> str:
    """A cache key for ``claims`` measured on ``model`` over ``images``."""
    digest = hashlib.sha256()
    digest.update(f"{torch.__version__} {torchvision.__version__} {sorted(claims)} {images.name}".encode())
    for path in _CODE:
        digest.update(path.read_bytes())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        _update(digest, tensor)
    for tensor in (images.photos, images.labelled, images.objects):
        _update(digest, tensor)
    digest.update(repr((images.labels, images.object_boxes)).encode())
    return f"{PREFIX}/{digest.hexdigest()[:32]}"


def encode(samples: Mapping[str, measures.Sample | str], series: Mapping[str, tuple[float, ...]]) -> dict:
    def one(sample: measures.Sample | str):
        if isinstance(sample, str):
            return {"not_measured": sample}
        if sample.rows is None:
            return {"weights_value": sample.weights_value}
        return {"rows": sample.rows.cpu().tolist(), "value_of": sample.value_of.__name__}

    return {"samples": {claim: one(sample) for claim, sample in samples.items()},
            "series": {claim: list(values) for claim, values in series.items()}}


def decode(data: dict) -> tuple[dict[str, measures.Sample | str], dict[str, tuple[float, ...]]]:
    def one(entry: dict) -> measures.Sample | str:
        if "not_measured" in entry:
            return entry["not_measured"]
        if "weights_value" in entry:
            return measures.of_weights(entry["weights_value"])
        return measures.Sample(torch.tensor(entry["rows"], dtype=torch.float64), measures.VALUE_FUNCTIONS[entry["value_of"]])

    return ({claim: one(entry) for claim, entry in data["samples"].items()},
            {claim: tuple(values) for claim, values in data["series"].items()})
