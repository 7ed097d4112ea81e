"""The run's options, checked once before any test runs, and carried as one value on ``config.stash``.

A bad ``--model``, ``--weights``, ``--preprocessing``, ``--image``, ``--images``, ``--device``, ``--fixtures-dir``
or ``--expectations`` stops the run with one line (pytest's exit code 4) that names the option, the value
and what is wrong.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import cnn_core
from claims import RECORDED_DATA
from claims.judging.expectations import EXPECTATIONS, Expectations
from claims.judging.nulls import NullSource
from claims.judging.probes import Architecture, build
from cnn_core.fixtures import Fixtures
from cnn_core.models import PACKAGED, TINY_VGG

# One model per distinct geometry: the notebook's VGG16, the shallowest and the deepest VGG (whose
# deep fields outgrow the image), AlexNet's large strides, ResNet's residual adds, MobileNetV2's
# depthwise blocks. A batch-norm twin (vgg16_bn) has its plain twin's geometry, since batch norm
# in eval is a per-channel affine map, and gave the same structural verdicts; --model all has them.
DEFAULT_MODELS = ("vgg11", "vgg16", "vgg19", "alexnet", "resnet18", "mobilenet_v2")


@dataclass(frozen=True)
class Checkpoint:
    """One of several ``--weights`` files of one architecture, whose learned claims are measured side by side."""

    key: str  # its learned claims' parameter and test id: ``resnet18@base``
    architecture: str
    weights: str  # the file's path


class Architectures:
    """Each selected model's architecture, built once per run when first asked for (on the meta device where it
    builds there): the weights and preprocessing checks, the claims' parametrization and their probes share it."""

    def __init__(self, fixtures: Fixtures):
        self._fixtures = fixtures
        self._built: dict[str, Architecture] = {}

    def __getitem__(self, name: str) -> Architecture:
        if name not in self._built:
            self._built[name] = build(name, self._fixtures)
        return self._built[name]


@dataclass(frozen=True)
class RunOptions:
    models: tuple[str, ...]
    default_selection: bool
    weights: str  # none | imagenet | auto | a path (the first, where several checkpoints are compared)
    image: str
    device: torch.device
    images: str | None
    fixtures: Fixtures
    expectations: Expectations  # what gates the verdicts, or, recording, where they are written
    record_nulls: bool
    preprocessing: str | None = None  # how the selected models' weights were trained to be fed; None: their card's
    # torch's threads in a serial run: the learned claims measure with them also in an xdist worker,
    # since float32 sums split over another number of threads round differently.
    measuring_threads: int = 1
    compared: tuple[Checkpoint, ...] = ()  # several --weights files of the one selected architecture
    architectures: Architectures | None = None  # the selected models', each built once
    report: Path | None = None  # --report: the folder the claims report goes to
    mutants: bool = False  # --mutants: the mutation check instead of the claims
    nulls: NullSource = NullSource.RECORDED  # --nulls: recorded where there is a record, or measured now

    @property
    def learned_models(self) -> tuple[str, ...]:
        """The models the learned claims measure: the selection (each compared checkpoint on its own), plus Tiny
        VGG by default (NOT MEASURED, with the command that fetches it, where its files are missing)."""
        if self.compared:
            return tuple(checkpoint.key for checkpoint in self.compared)
        return self.models + ((TINY_VGG,) if self.default_selection and TINY_VGG not in self.models else ())

    def architecture_of(self, key: str) -> str:
        """The architecture of a model the run measures: a compared checkpoint's, else the name itself."""
        return next((checkpoint.architecture for checkpoint in self.compared if checkpoint.key == key), key)

    @property
    def classifiers(self) -> tuple[str, ...]:
        """The models the top-1 oracle checks: the suite's own offline ImageNet classifiers, and a
        user's selection."""
        packaged = tuple(name for name, weights in PACKAGED.items() if weights.head_trained)
        return tuple(dict.fromkeys((() if self.default_selection else self.models) + packaged))

    def weights_for(self, name: str) -> str:
        """The run's weights for a selected model (a compared checkpoint: its file); the suite's own models
        (breaks, erratum) use ``auto``."""
        checkpoint = next((checkpoint for checkpoint in self.compared if checkpoint.key == name), None)
        if checkpoint is not None:
            return checkpoint.weights
        return self.weights if name in self.models else "auto"

    def preprocessing_for(self, name: str) -> str | None:
        """The stated preprocessing of a selected model; the suite's own models keep their cards'."""
        return self.preprocessing if self.architecture_of(name) in self.models else None

    @property
    def weights_text(self) -> str:
        """``--weights`` as given: every compared checkpoint's file, else the one choice."""
        return ",".join(checkpoint.weights for checkpoint in self.compared) or self.weights


RUN_OPTIONS = pytest.StashKey[RunOptions]()


def usage_error(option: str, value, problem: str) -> pytest.UsageError:
    return pytest.UsageError(f"{option} {value}: {problem}")


def parse(config: pytest.Config, measuring_threads: int = 1) -> RunOptions:
    models, default = _models(config.getoption("--model"))
    fixtures = _fixtures(config.getoption("--fixtures-dir"))
    architectures = Architectures(fixtures)
    files = [part.strip() for part in config.getoption("--weights").split(",") if part.strip()]
    compared = _compared(config.getoption("--weights"), files, models)
    for path in files:
        _weights(path, models, fixtures, architectures)
    expectations = _expectations(config.getoption("--expectations"), config.getoption("--record-expectations"))
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
            cnn_core.models.check_preprocessing(name, preprocessing, _built(architectures, name))
        except cnn_core.CnnCoreError as error:
            raise usage_error("--preprocessing", preprocessing, f"for {name}: {str(error).split(': ', 1)[-1]}") from None
    report = config.getoption("--report")
    return RunOptions(tuple(models), default, files[0] if files else config.getoption("--weights"), image, device,
                      images, fixtures, expectations, config.getoption("--record-nulls"), preprocessing,
                      measuring_threads, compared, architectures,
                      # from where pytest was started: an installed suite's rootdir is site-packages
                      None if not report else config.invocation_params.dir / report, config.getoption("--mutants"),
                      NullSource(config.getoption("--nulls")))


def _built(architectures: Architectures, name: str) -> torch.nn.Module | None:
    """``name``'s architecture where a check needs it (a timm model's card is read from it), built once."""
    return architectures[name].model if name.startswith(cnn_core.models.TIMM_PREFIX) else None


def _compared(given: str, files: list[str], models: list[str]) -> tuple[Checkpoint, ...]:
    """Several ``--weights`` files: checkpoints of the one selected architecture, each keyed by its file's stem
    (which also names its subject, ``resnet18.file-base``)."""
    if len(files) < 2:
        return ()
    keywords = [path for path in files if path in ("none", "imagenet", "auto")]
    if keywords:
        raise usage_error("--weights", given, f"compares checkpoint files; {keywords[0]} is not one")
    if len(models) != 1:
        raise usage_error("--weights", given, f"compares {len(files)} checkpoints of one architecture; select that "
                                              f"one with --model (now {len(models)} models)")
    if models[0] == TINY_VGG:
        raise usage_error("--weights", given, f"{TINY_VGG}'s verdicts name it {TINY_VGG}.trained whatever its file; "
                                              f"compare state_dict files of a torchvision or timm architecture")
    stems = [Path(path).stem for path in files]
    twins = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twins:
        raise usage_error("--weights", given, f"two files are named {twins[0]!r}: the verdicts name each checkpoint "
                                              f"by its file's name, so give them distinct names")
    return tuple(Checkpoint(f"{models[0]}@{stem}", models[0], path) for stem, path in zip(stems, files))


def _expectations(path: str | None, recording: bool) -> Expectations:
    """``--expectations FILE`` (a file of the user's project; when recording, it may not exist yet), else the
    suite's own ``claims/expectations.toml``, which an installed suite never writes into."""
    if path is None:
        in_a_clone = (RECORDED_DATA.parent / "pyproject.toml").is_file()
        if recording and not in_a_clone:
            raise pytest.UsageError(f"--record-expectations: would write into the installed package ({EXPECTATIONS}); "
                                    f"name a file of your project with --expectations FILE")
        target = EXPECTATIONS
    else:
        target = Path(path)
        if target.is_dir() or (not recording and not target.is_file()):
            problem = "is a folder" if target.is_dir() else "no such file (record it with --record-expectations)"
            raise usage_error("--expectations", path, problem)
    try:
        return Expectations.read(target, recording)
    except ValueError as error:
        raise usage_error("--expectations", target, str(error)) from None


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


def _weights(weights: str, models: list[str], fixtures: Fixtures, architectures: Architectures) -> None:
    if weights in ("none", "imagenet", "auto"):
        return
    path = Path(weights)
    if not path.is_file():
        raise usage_error("--weights", weights, "is not none, imagenet, auto or an existing file")
    problems = {}
    for name in models:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                cnn_core.models.check_weights_file(name, path, fixtures,
                                                   None if name == TINY_VGG else architectures[name].model)
        except cnn_core.WeightsError as error:
            problems[name] = str(error)
    if problems:
        name, problem = next(iter(problems.items()))
        more = f" (and {len(problems) - 1} more selected models)" if len(problems) > 1 else ""
        raise usage_error("--weights", weights, f"does not fit {name}{more}: {problem.split(': ', 1)[-1]}; "
                                                f"select the model it belongs to with --model")
