"""Benchmark fixtures: devices, the timing discipline, machine info and the ratio summary.

    pytest claims/bench --benchmark-enable --benchmark-json=reports/bench/latest.json

times every benchmark and writes, beside the JSON, ``reports/bench/<machine>/benchmarks.json``
and ``summary.md`` (the ratios). In an ordinary ``pytest claims`` run benchmarking is disabled:
each benchmark runs once, on a small input, as a smoke test.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from claims.bench.hardware import machine_label
from claims.bench.summary import write_baseline

CUDNN_BENCHMARK = False  # fixed, so that runs compare: autotuning would change kernels between runs


def pytest_configure(config):
    torch.backends.cudnn.benchmark = CUDNN_BENCHMARK
    # Comparisons in fp32 mean fp32: TF32 is its own benchmark variant, never a silent default.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["cnn_claims_machine"] = machine_label()
    machine_info["torch"] = torch.__version__
    machine_info["cuda"] = torch.version.cuda
    machine_info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    machine_info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        machine_info["gpu"] = torch.cuda.get_device_name(0)
        machine_info["cudnn"] = torch.backends.cudnn.version()


def pytest_addoption(parser):
    parser.getgroup("cnn-claims").addoption(
        "--bench-update-baseline", action="store_true",
        help="benchmarks: write into reports/bench/<machine>/ (the committed baseline) instead of reports/bench/latest/")


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """A run writes reports/bench/latest/; updating a committed baseline is asked for, never a side effect, and
    keeps the baseline's benchmarks this run did not time."""
    machine = output_json["machine_info"]["cnn_claims_machine"]
    if config.getoption("--bench-update-baseline"):
        write_baseline(Path(config.rootpath) / "reports" / "bench" / machine, output_json)
    else:
        write_baseline(Path(config.rootpath) / "reports" / "bench" / "latest", output_json, keep=False)


@pytest.fixture
def timed(benchmark):
    """Times ``fn`` with fixed warm-up and rounds, synchronising CUDA inside the timed call.

    With benchmarking disabled (the ordinary ``pytest claims`` run) it calls ``fn`` once.
    """
    def run(fn, device: str, rounds: int = 10, warmup: int = 3):
        def call():
            result = fn()
            if device == "cuda":
                torch.cuda.synchronize()
            return result

        benchmark.extra_info.update(device=device, tf32=torch.backends.cuda.matmul.allow_tf32,
                                    cudnn_benchmark=torch.backends.cudnn.benchmark)
        return benchmark.pedantic(call, rounds=rounds, warmup_rounds=warmup, iterations=1)

    run.smoke = benchmark.disabled
    return run


# Architectures with a recorded null whose own weights the benchmark times when benchmarks are enabled,
# small to large; the ordinary run's smoke pass times Tiny VGG's alone (seconds, not minutes).
OWN_WEIGHTS = ("mobilenet_v2", "resnet18", "efficientnet_b0", "timm/tf_efficientnet_b0", "resnet50", "timm/resnet50", "vgg16")


# The trained models whose null the benchmark measures now, with their records set aside: the offline MobileNetV2
# checkpoint, and a state_dict of timm's TF EfficientNet-B0 (squeeze-excitation blocks); the ordinary run's smoke
# pass measures Tiny VGG's.
NULL_MEASURED_NOW = ("mobilenet_v2", "timm/tf_efficientnet_b0")


def pytest_generate_tests(metafunc):
    enabled = metafunc.config.getoption("benchmark_enable", False)
    if "own_weights_name" in metafunc.fixturenames:
        metafunc.parametrize("own_weights_name", OWN_WEIGHTS if enabled else ("tiny-vgg",))
    if "null_model_name" in metafunc.fixturenames:
        metafunc.parametrize("null_model_name", NULL_MEASURED_NOW if enabled else ("tiny-vgg",))
