"""Benchmarks: forward passes, the cost of capturing activations, occlusion sweeps, cheap listings.

Groups are compared as ratios measured in the same run (see claims/bench/summary.py); absolute
times mean something only on the machine that produced them.
"""
from __future__ import annotations

import copy
from types import MappingProxyType

import pytest
import torch
from torchvision.models.feature_extraction import (
    create_feature_extractor,
    get_graph_node_names,
)

import cnn_core
from claims.bench.hardware import devices
from claims.judging import measures, nulls
from claims.judging.notebook import detach_hooks
from claims.judging.probes import depth_probes, probe_images
from claims.judging.rules import COSTS, RULES
from claims.judging.subjects import LEARNED, Subject, init_template, random_init, seed_values, torch_threads
from claims.session.options import RUN_OPTIONS
from cnn_core.models import TINY_VGG

CPU_BATCHES, GPU_BATCHES = (1, 8), (1, 64, 256)
VARIANTS = MappingProxyType({"cpu": ("fp32", "fp32-compiled"),
            "cuda": ("fp32", "tf32", "bf16", "bf16-channels_last", "bf16-channels_last-compiled")})


def cases(batches_for_gpu=GPU_BATCHES):
    return [pytest.param(hardware, batch, variant, id=f"{hardware}-bs{batch}-{variant}")
            for hardware in devices()
            for batch in (CPU_BATCHES if hardware == "cpu" else batches_for_gpu)
            for variant in VARIANTS[hardware]]


@pytest.fixture(scope="module")
def bench_model(zoo, pytestconfig):
    """The run's selection, as every claim takes it: VGG16 when selected (the default), else the first model."""
    models = pytestconfig.stash[RUN_OPTIONS].models
    return zoo.get("vgg16" if "vgg16" in models else models[0])


@pytest.fixture(scope="module")
def probes(bench_model) -> list[str]:
    """The notebook's three hooked layers (VGG16), or their counterparts in another CNN."""
    return list(depth_probes(bench_model).values())


def prepared(model, device: str, batch: int, variant: str, smoke: bool):
    """A copy of the model and an input batch on ``device`` in the variant's dtype and layout."""
    size = 32 if smoke else 224
    batch = 1 if smoke else batch
    dtype = torch.bfloat16 if variant.startswith("bf16") else torch.float32
    layout = torch.channels_last if "channels_last" in variant else torch.contiguous_format
    # nn.Module.to moves in place: the session's shared model is copied unless it already is what is asked for.
    weight = next(model.parameters())
    as_asked = weight.device == torch.device(device) and weight.dtype == dtype and layout == torch.contiguous_format
    target = model if as_asked else copy.deepcopy(model).to(device=device, dtype=dtype, memory_format=layout)
    if variant.endswith("-compiled"):
        target = torch.compile(target)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
    return target, x.contiguous(memory_format=layout)


@pytest.fixture
def tf32(request):
    """Turns TF32 on for the 'tf32' variant only, and off again afterwards."""
    enabled = "tf32" in request.node.callspec.id.split("-")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    yield enabled
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


@pytest.mark.benchmark(group="forward")
@pytest.mark.parametrize("hardware, batch, variant", cases())
def test_forward(timed, bench_model, hardware, batch, variant, tf32, pytestconfig):
    if variant.endswith("-compiled") and not pytestconfig.getoption("--bench-compile"):
        pytest.skip("torch.compile takes minutes to compile: pass --bench-compile to measure it")
    model, x = prepared(bench_model, hardware, batch, "fp32" if variant == "tf32" else variant, timed.smoke)
    with torch.no_grad():
        timed(lambda: model(x), hardware)


CAPTURE_WAYS = ("forward", "notebook-hooks", "every-layer-hooked", "feature-extractor", "cnn_core-capture", "features-29")


def feature_extractor(model, probes: list[str]):
    """torchvision's extractor, traced from a copy: tracing switches the model to training mode and
    back, and a failed trace would leave the shared model training (and its BatchNorm statistics moving)."""
    nodes = set(get_graph_node_names(copy.deepcopy(model))[1])
    missing = [probe for probe in probes if probe not in nodes]
    if missing:
        pytest.skip(f"torch.fx names no node {', '.join(missing)} in {type(model).__name__}: nothing to extract")
    return create_feature_extractor(copy.deepcopy(model), probes)


@pytest.mark.benchmark(group="capture")
@pytest.mark.parametrize("way", CAPTURE_WAYS)
@pytest.mark.parametrize("hardware, batch", [pytest.param(d, b, id=f"{d}-bs{b}") for d in devices()
                                             for b in (CPU_BATCHES if d == "cpu" else (1, 64))])
def test_capture(timed, bench_model, probes, hardware, batch, way):
    model, x = prepared(bench_model, hardware, batch, "fp32", timed.smoke)
    extractor = feature_extractor(model, probes) if way == "feature-extractor" else None
    truncated = cnn_core.tracing.truncate(model, probes[-1]) if way == "features-29" else None
    run = {
        "forward": lambda: model(x),
        "notebook-hooks": lambda: detach_hooks(model, x, probes),
        "every-layer-hooked": lambda: detach_hooks(model, x, [name for name, _ in model.named_modules() if name]),
        "feature-extractor": lambda: extractor(x),
        "cnn_core-capture": lambda: cnn_core.capture(model, x, probes),
        "features-29": lambda: truncated(x),  # the network cut after the deep probe (VGG16: features[:29])
    }[way]
    with torch.no_grad():
        timed(run, hardware)


def occlusion_setup(device: str, smoke: bool) -> dict:
    """CPU: 169 windows (32 px, stride 16); GPU: the full 625 (32 px, stride 8) on 224x224."""
    if smoke:
        return {"size": 32, "window": 16, "stride": 16, "batch_size": 4}
    if device == "cpu":
        return {"size": 224, "window": 32, "stride": 16, "batch_size": 16}
    return {"size": 224, "window": 32, "stride": 8, "batch_size": 64}


def naive_occlusion(model, x, window, stride, target):
    """One window per forward, as a loop over positions would do it."""
    base = cnn_core.class_score(model(x), target)
    size = x.shape[-1]
    return torch.stack([
        base - cnn_core.class_score(model(cnn_core.occlude(x, cnn_core.Box(top, left, top + window, left + window))), target)
        for top in range(0, size - window + 1, stride) for left in range(0, size - window + 1, stride)
    ])


@pytest.mark.benchmark(group="occlusion")
@pytest.mark.parametrize("way", ("naive-loop", "batched", "incremental", "plain-forward-same-images", "captum"))
@pytest.mark.parametrize("hardware", devices())
def test_occlusion(timed, bench_model, hardware, way, benchmark):
    setup = occlusion_setup(hardware, timed.smoke)
    model, _ = prepared(bench_model, hardware, 1, "fp32", timed.smoke)
    x = cnn_core.preprocess(cnn_core.load_image(), size=setup["size"]).to(hardware)
    windows = ((setup["size"] - setup["window"]) // setup["stride"] + 1) ** 2
    plan = cnn_core.incremental.incremental_plan(model)
    if plan.supported:  # the limit of the incremental speed-up, for the summary's "share of the limit reached"
        benchmark.extra_info["occlusion_cost"] = cnn_core.incremental.occlusion_cost(
            model, setup["window"], setup["stride"], (setup["size"], setup["size"]))
    if way == "captum":
        occlusion = pytest.importorskip("captum.attr", reason="captum is optional: pip install captum").Occlusion

        def probabilities(images):
            return model(images).softmax(dim=1)

        def run():
            return occlusion(probabilities).attribute(
                x, sliding_window_shapes=(3, setup["window"], setup["window"]),
                strides=(3, setup["stride"], setup["stride"]), target=281, baselines=0.0,
                perturbations_per_eval=setup["batch_size"])
    elif way == "plain-forward-same-images":
        images = x.repeat(windows, 1, 1, 1)

        def run():
            for first in range(0, windows, setup["batch_size"]):
                model(images[first:first + setup["batch_size"]])
    elif way == "naive-loop":
        def run():
            return naive_occlusion(model, x, setup["window"], setup["stride"], 281)
    else:
        if way == "incremental" and not plan.supported:
            pytest.skip(f"{type(model).__name__} is not incremental: its supported part stops at {plan.blocker}")

        def run():
            return cnn_core.occlusion_map(model, x, setup["window"], setup["stride"], 281, setup["batch_size"], method=way)
    with torch.no_grad():
        timed(run, hardware, rounds=3, warmup=1)


@pytest.mark.benchmark(group="listing")
@pytest.mark.parametrize("what", ("layers", "receptive_fields", "empirical_receptive_field"))
def test_listing(timed, bench_model, probes, what):
    run = {
        "layers": lambda: cnn_core.layers(bench_model),
        "receptive_fields": lambda: cnn_core.receptive_fields(bench_model),
        "empirical_receptive_field": lambda: cnn_core.empirical_receptive_field(bench_model, probes[-1]),
    }[what]
    try:
        timed(run, "cpu")
    except cnn_core.NoSupportTwin as error:  # ShuffleNet's channel shuffle: nothing to time
        pytest.skip(f"no support twin for {probes[-1]}: {error}")


@pytest.mark.benchmark(group="own-weights")
def test_learned_verdicts_of_own_weights(timed, own_weights_name, pytestconfig, tmp_path):
    """A user's own checkpoint of an architecture whose null is recorded, from loading the file to its last
    learned verdict: its own measurement over the photos and the recorded control's check (no random init
    is measured). Target on the 2-core machine: 90 s."""
    run = pytestconfig.stash[RUN_OPTIONS]
    if own_weights_name == TINY_VGG:
        try:
            path = cnn_core.models.tiny_vgg_json(run.fixtures)  # CNN Explainer's file, as a user passes it
        except cnn_core.WeightsError as error:
            pytest.skip(f"NOT MEASURED: {error}")  # names the fetch command
    else:
        path = tmp_path / "mine.pth"
        torch.save(cnn_core.load_model(own_weights_name, "none", seed=11).state_dict(), path)
    card = cnn_core.model_card(cnn_core.load_model(own_weights_name, path))
    images = probe_images(card, run.fixtures, torch.device("cpu"))
    if nulls.recorded(card.name, images.name) is None:
        pytest.fail(f"{own_weights_name} has no null recorded for {images.name}: record it with "
                    f"`pytest claims -m learned --model {own_weights_name} --weights none --record-nulls`")

    def verdicts() -> Subject:
        subject = Subject(cnn_core.load_model(own_weights_name, path), run.fixtures, torch.device("cpu"),
                          measure_random=True, progress=lambda _: None)
        for claim in LEARNED:
            subject.verdicts(claim)
        return subject

    subject = timed(verdicts, "cpu", rounds=1, warmup=0)
    assert subject.null_source.startswith("recorded"), subject.null_source


def _trained(name: str, run, tmp_path):
    """A trained model of ``name`` as a user has it: Tiny VGG's files, the offline MobileNetV2 checkpoint, or a
    state_dict file (seed 11) of any other architecture."""
    if name == TINY_VGG:
        try:
            return cnn_core.load_model(name, cnn_core.models.tiny_vgg_json(run.fixtures), fixtures_dir=run.fixtures)
        except cnn_core.WeightsError as error:
            pytest.skip(f"NOT MEASURED: {error}")  # names the fetch command
    if cnn_core.models.offline_weights(name):
        return cnn_core.load_model(name, "auto")
    path = tmp_path / "mine.pth"
    torch.save(cnn_core.load_model(name, "none", seed=11).state_dict(), path)
    return cnn_core.load_model(name, path)


def _statuses(subject: Subject) -> dict[str, list[str]]:
    return {claim: [verdict.status for verdict in subject.verdicts(claim)] for claim in LEARNED}


@pytest.mark.benchmark(group="null-measured-now")
@pytest.mark.parametrize("way", (nulls.NullSource.EVERY_SEED.value, nulls.NullSource.SEQUENTIAL.value))  # JSON params
def test_null_measured_now(timed, benchmark, null_model_name, way, pytestconfig, tmp_path):
    """A trained model whose architecture's null is recorded, judged with the record set aside (as one with no
    record is), from its loaded model to its last learned verdict: every claim on every seed (one look) against
    the sequential null (claims.judging.sequential). Timed with nothing from pytest's cache; the ordinary run's
    smoke pass (Tiny VGG) shares it, so that the second way reads what the first measured. Either way the verdicts
    are the ones the recorded null gives."""
    run = pytestconfig.stash[RUN_OPTIONS]
    cache = getattr(pytestconfig, "cache", None) if timed.smoke else None
    model = _trained(null_model_name, run, tmp_path)
    if nulls.recorded(cnn_core.model_card(model).name, probe_images(cnn_core.model_card(model), run.fixtures,
                                                                    torch.device("cpu")).name) is None:
        pytest.fail(f"{null_model_name} has no null recorded to compare with: record it with "
                    f"`pytest claims -m learned --model {null_model_name} --weights none --record-nulls`")

    def subject(source: nulls.NullSource) -> Subject:
        return Subject(model, run.fixtures, torch.device("cpu"), measure_random=True, progress=lambda _: None,
                       cache=cache, null_source=source)

    measured = subject(nulls.NullSource(way))
    statuses = timed(lambda: _statuses(measured), "cpu", rounds=1, warmup=0)
    seeds_per_group: dict[str, int] = {}
    for claim in LEARNED:
        if RULES[claim].sequential:
            cost = RULES[claim].cost
            seeds_per_group[cost] = max(seeds_per_group.get(cost, 0), len(measured.seeds_of(claim)))
    benchmark.extra_info.update(null=measured.null_source, last_look=sorted(measured.last_look),
                                seeds_per_group=dict(sorted(seeds_per_group.items())))
    assert statuses == _statuses(subject(nulls.NullSource.RECORDED)), measured.null_source


@pytest.mark.benchmark(group="null-seed-cost")
@pytest.mark.parametrize("cost", COSTS, ids=lambda cost: cost.replace(" ", "-"))
def test_one_random_init_per_cost_group(timed, null_model_name, cost, pytestconfig, tmp_path):
    """What one random init of each cost group's claims takes on one thread (as a seed's worker measures it), so
    that a null's time splits by group: seeds measured x this."""
    run = pytestconfig.stash[RUN_OPTIONS]
    trained = _trained(null_model_name, run, tmp_path)
    card, template = cnn_core.model_card(trained), init_template(trained)
    images = probe_images(card, run.fixtures, torch.device("cpu"))
    claims = [claim for claim in LEARNED if RULES[claim].cost == cost]
    seeds = iter(range(1, 1000))

    def one_seed():
        model = random_init(card, next(seeds), torch.device("cpu"), template)
        return seed_values(measures.Probe(model.to(memory_format=torch.channels_last), images), claims)

    with torch_threads(1):
        timed(one_seed, "cpu", rounds=3, warmup=0)
