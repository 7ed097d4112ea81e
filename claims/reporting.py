"""Turning the test run into the claims report: one ClaimResult per test, and the figures."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch

import cnn_core
from claims.matrix import verdicts_of
from claims.subjects import CAT_CLASSES
from cnn_core.report import ClaimResult, figure_depth, figure_filters, figure_first_maps, figure_occlusion, \
    figure_receptive_fields, figure_sensitivity, figure_sparsity, write_report

NOTEBOOK_PROBES = {"early": "features.2", "middle": "features.16", "deep": "features.28"}


def describe(item: pytest.Item) -> dict | None:
    """The claim a test checks: its block (from the file name) and the notebook sentence it quotes."""
    module = item.path.name
    match = re.match(r"test_block(\d)_", module)
    block = match.group(1) if match else "erratum" if module == "test_notebook_erratum.py" else None
    if block is None:
        return None
    doc = " ".join((item.function.__doc__ or "").split())
    return {"claim": item.originalname, "block": block, "sentence": doc[:240] + ("…" if len(doc) > 240 else ""),
            "subject": item.callspec.id if hasattr(item, "callspec") else ""}


def result_from(report: pytest.TestReport, description: dict) -> ClaimResult:
    outcome = report.outcome
    reason = ""
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
        reason = report.wasxfail
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    elif report.failed:
        lines = [line for line in report.longreprtext.splitlines() if line.startswith("E ")]
        reason = " ".join(line[1:].strip() for line in lines[:3]) or report.longreprtext.splitlines()[-1]
    result = ClaimResult(report.nodeid, description["claim"], description["block"], description["sentence"],
                         description["subject"], outcome, reason=reason.removeprefix("Skipped: "))
    for verdict in verdicts_of(report):
        result.measured, result.threshold, result.detail = verdict.measured, verdict.threshold, verdict.detail
        result.expected = None if verdict.expected is None else ("holds" if verdict.expected else "fails")
        result.series = list(verdict.series)
    return result


def figures(config: pytest.Config, results: list[ClaimResult]) -> dict[str, list]:
    """The notebook's figures, drawn from VGG16 as the run built it and the run's image."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = cnn_core.load_model("vgg16", weights=config.getoption("--weights"))
    x = cnn_core.preprocess(cnn_core.load_image(config.getoption("--image")))
    sparsity = {".".join(r.subject.rsplit("-", 1)): r.series  # "tiny-vgg-random" -> "tiny-vgg.random"
                for r in results if r.claim == "test_activations_get_sparser_with_depth" and r.series}
    effective = {layer: cnn_core.effective_receptive_field(model, layer, x)
                 for layer in ("features.0", "features.2", "features.7", "features.14", "features.21", "features.28")}
    weights = model.weights_source
    return {
        "1": [lambda: figure_first_maps(model, x, cnn_core.IMAGENET)],
        "2": [lambda: figure_filters(model, x, cnn_core.IMAGENET)],
        "3": [lambda: figure_depth(model, x, NOTEBOOK_PROBES), lambda: figure_sparsity(sparsity)],
        "4": [lambda: figure_occlusion(model, x, cnn_core.IMAGENET, cnn_core.Box(50, 60, 150, 160), ["features.2", "features.28"]),
              lambda: figure_receptive_fields(model, effective),
              lambda: figure_sensitivity(model, x, cnn_core.IMAGENET, CAT_CLASSES,
                                         f"occlusion sensitivity of the cat classes ({weights})")],
    }


def environment(config: pytest.Config) -> dict:
    return {"torch": torch.__version__, "cnn_core_models": config.getoption("--model"),
            "weights": config.getoption("--weights"), "image": config.getoption("--image"),
            "device": config.getoption("--device")}


def write(config: pytest.Config, results: list[ClaimResult]) -> Path:
    folder = Path(config.getoption("--report"))
    if not folder.is_absolute():
        folder = Path(config.rootpath) / folder
    return write_report(results, folder, figures(config, results), environment(config))
