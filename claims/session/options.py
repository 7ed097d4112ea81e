"""The run's options, checked once before any test runs, and carried as one value on ``config.stash``.

A bad ``--model``, ``--weights``, ``--preprocessing``, ``--image``, ``--images``, ``--device`` or ``--fixtures-dir``
stops the run with one line (pytest's exit code 4) that names the option, the value and what
is wrong.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import cnn_core
from cnn_core.fixtures import Fixtures
from cnn_core.models import PACKAGED, TINY_VGG

# One model per distinct geometry: the notebook's VGG16, the shallowest and the deepest VGG (whose
# deep fields outgrow the image), AlexNet's large strides, ResNet's residual adds, MobileNetV2's
# depthwise blocks. A batch-norm twin (vgg16_bn) has its plain twin's geometry, since batch norm
# in eval is a per-channel affine map, and gave the same structural verdicts; --model all has them.
DEFAULT_MODELS = ("vgg11", "vgg16", "vgg19", "alexnet", "resnet18", "mobilenet_v2")


@dataclass(frozen=True)
class RunOptions:
    models: tuple[str, ...]
    default_selection: bool
    weights: str  # none | imagenet | auto | a path
    image: str
    device: torch.device
    images: str | None
    fixtures: Fixtures
    record_expectations: bool
    record_nulls: bool
    preprocessing: str | None = None  # how the selected models' weights were trained to be fed; None: their card's
    # torch's threads in a serial run: the learned claims measure with them also in an xdist worker,
    # since float32 sums split over another number of threads round differently.
    measuring_threads: int = 1

    @property
    def learned_models(self) -> tuple[str, ...]:
        """The models the learned claims measure: the selection, plus Tiny VGG by default (NOT MEASURED, with the
        command that fetches it, where its files are missing)."""
        return self.models + ((TINY_VGG,) if self.default_selection and TINY_VGG not in self.models else ())

    @property
    def classifiers(self) -> tuple[str, ...]:
        """The models the top-1 oracle checks: the suite's own offline ImageNet classifiers, and a
        user's selection."""
        packaged = tuple(name for name, weights in PACKAGED.items() if weights.head_trained)
        return tuple(dict.fromkeys((() if self.default_selection else self.models) + packaged))

    def weights_for(self, name: str) -> str:
        """The run's weights for a selected model; the suite's own models (breaks, erratum) use ``auto``."""
        return self.weights if name in self.models else "auto"

    def preprocessing_for(self, name: str) -> str | None:
        """The stated preprocessing of a selected model; the suite's own models keep their cards'."""
        return self.preprocessing if name in self.models else None


RUN_OPTIONS = pytest.StashKey[RunOptions]()


def usage_error(option: str, value, problem: str) -> pytest.UsageError:
    return pytest.UsageError(f"{option} {value}: {problem}")


def parse(config: pytest.Config, measuring_threads: int = 1) -> RunOptions:
    models, default = _models(config.getoption("--model"))
    fixtures = _fixtures(config.getoption("--fixtures-dir"))
    weights = _weights(config.getoption("--weights"), models, fixtures)
    image = config.getoption("--image")
    try:
        cnn_core.load_image(image)
    except cnn_core.CnnCoreError as error:
        raise usage_error("--image", image, getattr(error, "problem", str(error))) from None
    images = config.getoption("--images")
    if images:
        try:
            cnn_core.image_files(images)
        except cnn_core.CnnCoreError as error:
            raise usage_error("--images", images, getattr(error, "problem", str(error))) from None
    try:
        device = cnn_core.models.resolve_device(config.getoption("--device"))
    except cnn_core.CnnCoreError as error:
        raise usage_error("--device", config.getoption("--device"), str(error)) from None
    preprocessing = config.getoption("--preprocessing")
    for name in models if preprocessing else ():
        try:
            cnn_core.models.check_preprocessing(name, preprocessing)
        except cnn_core.CnnCoreError as error:
            raise usage_error("--preprocessing", preprocessing, f"for {name}: {str(error).split(': ', 1)[-1]}") from None
    return RunOptions(tuple(models), default, weights, image, device, images, fixtures,
                      config.getoption("--record-expectations"), config.getoption("--record-nulls"), preprocessing,
                      measuring_threads)


def _models(choice: str) -> tuple[list[str], bool]:
    if choice == "default":
        return list(DEFAULT_MODELS), True
    if choice == "all":
        return cnn_core.available_models(), False
    names = [name.strip() for name in choice.split(",") if name.strip()]
    if not names:
        raise usage_error("--model", repr(choice), "names no model")
    for name in names:
        try:
            cnn_core.models.check_model_name(name)
        except cnn_core.ModelNotFound as error:
            raise usage_error("--model", name, str(error)) from None
    return names, False


def _fixtures(folder: str | None) -> Fixtures:
    """``--fixtures-dir``, else ``$CNN_CLAIMS_FIXTURES`` (the one place the suite reads it), else the cache folder
    that ``python -m claims fetch`` fills."""
    try:
        return cnn_core.fixtures.locate(folder, named_by="--fixtures-dir")
    except cnn_core.InputError as error:
        raise pytest.UsageError(str(error)) from None


def _weights(weights: str, models: list[str], fixtures: Fixtures) -> str:
    if weights in ("none", "imagenet", "auto"):
        return weights
    path = Path(weights)
    if not path.is_file():
        raise usage_error("--weights", weights, "is not none, imagenet, auto or an existing file")
    problems = {}
    for name in models:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                cnn_core.models.check_weights_file(name, path, fixtures)
        except cnn_core.WeightsError as error:
            problems[name] = str(error)
    if problems:
        name, problem = next(iter(problems.items()))
        more = f" (and {len(problems) - 1} more selected models)" if len(problems) > 1 else ""
        raise usage_error("--weights", weights, f"does not fit {name}{more}: {problem.split(': ', 1)[-1]}; "
                                                f"select the model it belongs to with --model")
    return weights
