"""Every recorded null re-checked: each entry of ``claims/nulls.json`` fed as it records (its ``preprocessing``), its random control
(seed 0) re-measured on the check photos and compared with what was recorded (``claims.judging.nulls.check``).

    python -m claims recorded                     # every entry
    python -m claims recorded --model resnet50    # that architecture's entries

A run of ``pytest claims`` checks only the entries of the models it judges; this checks them all, as after
a change of torch, torchvision or timm. One line per entry; exit code 1 when a value moved.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

import cnn_core
from claims.judging import measures, nulls
from claims.judging.probes import probe_images
from claims.judging.rules import CONTROL_SEED
from claims.judging.subjects import init_template, random_init, seed_values
from cnn_core.models import ModelCard, preprocessing_key

def card_of(entry: nulls.NullEntry, found: cnn_core.Fixtures) -> tuple[ModelCard, torch.nn.Module]:
    """The card that feeds the entry's architecture as the entry records, and a model of it (random)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = cnn_core.load_model(entry.architecture, "none", fixtures_dir=found)
    return cnn_core.model_card(model).fed_as(entry.preprocessing, f"recorded in {nulls.NULLS.name}"), model


def recheck(entry: nulls.NullEntry, found: cnn_core.Fixtures) -> float:
    """Re-measures the entry's control on its check photos; :class:`~claims.judging.nulls.StaleNulls` when it moved.
    Returns the seconds it took."""
    start = time.perf_counter()
    card, model = card_of(entry, found)
    images = probe_images(card, found, torch.device("cpu"))
    if images.name != entry.images:
        raise nulls.StaleNulls(f"{entry.architecture}: the photos give {images.name!r}, not the recorded {entry.images!r} "
                               f"({images.missing or 'another photo set'})")
    control = random_init(card, CONTROL_SEED, torch.device("cpu"), init_template(model)).to(memory_format=torch.channels_last)
    samples, _ = seed_values(measures.Probe(control, images.check_subset()), list(entry.check))
    nulls.check(entry, nulls.values_of(samples), list(entry.check))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claims recorded", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], help="only this architecture's entries (repeatable)")
    parser.add_argument("--nulls", type=Path, default=nulls.NULLS, help=f"the recorded file (default {nulls.NULLS.name})")
    parser.add_argument("--fixtures-dir", default=None, help=f"default: ${cnn_core.fixtures.ENV}, else the fetch's cache folder")
    args = parser.parse_args(argv)
    try:
        found = cnn_core.fixtures.locate(args.fixtures_dir, named_by="--fixtures-dir")
    except cnn_core.CnnCoreError as error:
        parser.error(str(error))
    entries = [(data["architecture"], data["images"], preprocessing_key(data["preprocessing"]))
               for data in nulls.load(args.nulls).values() if not args.model or data["architecture"] in args.model]
    if not entries:
        parser.error(f"{args.nulls} records no entry" + (f" of {', '.join(args.model)}" if args.model else ""))
    failed = 0
    for architecture, images, fed in entries:
        try:
            entry = nulls.recorded(architecture, images, args.nulls)
            seconds = recheck(entry, found)
            print(f"ok     {architecture} @{fed}: {len(entry.check)} claims unchanged ({seconds:.0f} s)")
        except (nulls.StaleNulls, cnn_core.CnnCoreError) as error:
            failed += 1
            print(f"MOVED  {architecture} @{fed}: {error}")
    print(f"{len(entries) - failed} of {len(entries)} recorded entries re-measured without a change")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
