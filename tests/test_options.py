"""A bad option stops the run before any test, with one line that names it: pytest's usage error, exit code 4.

Each run is pytest's own, in this process (pytester): the same option parsing, plugin and exit code as a
`pytest claims` of its own, without paying torch's and torchvision's imports nine times over."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

BAD_OPTIONS = {
    "model": (["--model", "vgg99"], "--model vgg99: unknown model 'vgg99'; did you mean 'vgg19'"),
    "weights-not-a-state-dict": (["--model", "vgg16", "--weights", "/etc/passwd"],
                                 "--weights /etc/passwd: does not fit vgg16"),
    "weights-missing": (["--weights", "/nonexistent.pth"], "--weights /nonexistent.pth: is not none, imagenet, auto"),
    "image": (["--image", "/nonexistent.jpg"], "--image /nonexistent.jpg: no such file"),
    "images": (["--images", "/nonexistent/*.jpg"], "--images /nonexistent/*.jpg: matches no image files"),
    "device": (["--device", "cuda"], "--device cuda: device 'cuda' was asked for but torch sees no CUDA GPU"),
    "fixtures-dir": (["--fixtures-dir", "/tmp"], "--fixtures-dir /tmp: holds neither imagenet-sample-images/ nor tiny-vgg/"),
    "fixtures-dir-missing": (["--fixtures-dir", "/nonexistent"], "--fixtures-dir /nonexistent: no such folder"),
    "expectations-missing": (["--expectations", "/nonexistent.toml"],
                             "--expectations /nonexistent.toml: no such file (record it with --record-expectations)"),
    "expectations-not-toml": (["--expectations", "/etc/passwd"], "--expectations /etc/passwd: is not a TOML file"),
    "weights-compared-on-two-models": (["--model", "vgg16,resnet18", "--weights", "/etc/passwd,/etc/hosts"],
                                       "--weights /etc/passwd,/etc/hosts: compares 2 checkpoints of one architecture; "
                                       "select that one with --model (now 2 models)"),
    "weights-compared-twins": (["--model", "vgg16", "--weights", "/etc/hosts,/etc/../etc/hosts"],
                               "two files are named 'hosts': the verdicts name each checkpoint by its file's name"),
    "preprocessing": (["--model", "mobilenet_v2", "--preprocessing", "IMAGENET1K_V9"],
                      "--preprocessing IMAGENET1K_V9: for mobilenet_v2: MobileNet_V2_Weights has IMAGENET1K_V1, IMAGENET1K_V2"),
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_a_bad_option_stops_the_run_with_one_line(case, pytester):
    arguments, message = BAD_OPTIONS[case]
    if case == "device" and torch.cuda.is_available():
        arguments, message = ["--device", "tpu"], "--device tpu: device 'tpu' is not a torch device"
    result = pytester.runpytest_inprocess(str(ROOT / "claims"), "-p", "no:cacheprovider", *arguments)
    lines = [line for line in result.outlines + result.errlines if line.strip()]
    assert result.ret == 4, lines[-5:]
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and message in lines[0], lines
