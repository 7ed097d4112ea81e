"""Turning the test run into the claims report: one ClaimResult per test, and the figures."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import cnn_core
from claims.matrix import verdicts_of
from claims.notebook import NOTEBOOK_BOX
from claims.options import RUN_OPTIONS
from claims.probes import depth_probes
from claims.report import (
    ClaimResult,
    figure_depth,
    figure_filters,
    figure_first_maps,
    figure_occlusion,
    figure_receptive_fields,
    figure_sensitivity,
    figure_sparsity,
    write_report,
)
from claims.rules import RULES, Verdict
from claims.zoo import MODEL_ZOO, ModelZoo, terminal_progress


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
    for verdict in verdicts_of(report.user_properties)[:1]:  # the model's own; its random control has a row of its own
        result.measured, result.threshold, result.detail = verdict.measured, verdict.threshold, verdict.detail
        result.expected, result.verdict, result.series = verdict.expected, verdict.status, list(verdict.series)
    return result


def figures(config: pytest.Config, results: list[ClaimResult]) -> dict[str, list]:
    """The notebook's figures, drawn from the run's first selected CNN (VGG16 by default) on the run's
    device, with the run's image; the cat-class sensitivity map needs an ImageNet head."""
    run = config.stash[RUN_OPTIONS]
    name = next((m for m in run.models if m.startswith("vgg16")), run.models[0])
    # The session's own model where this process has one (not on an xdist controller).
    zoo = config.stash.get(MODEL_ZOO, None) or ModelZoo(run, run.device, terminal_progress(config))
    model = zoo.get(name)
    card = cnn_core.model_card(model)
    x = cnn_core.preprocess(cnn_core.load_image(run.image), card.input_size, card.normalization).to(zoo.device)
    probes = depth_probes(model)
    spatial = [layer.path for layer in cnn_core.layers(model, (card.input_size, card.input_size))
               if not layer.container and layer.type == "Conv2d"]
    sparsity = {r.subject: r.series for r in results if r.claim == "test_activations_get_sparser_with_depth" and r.series}
    effective = {layer: cnn_core.effective_receptive_field(model, layer, x) for layer in spatial[:: max(1, len(spatial) // 6)]}
    box = NOTEBOOK_BOX
    drawn = {
        "1": [lambda: figure_first_maps(model, x, card.normalization)],
        "2": [lambda: figure_filters(model, x, card.normalization)],
        "3": [lambda: figure_depth(model, x, probes)] + ([lambda: figure_sparsity(sparsity)] if sparsity else []),
        "4": [lambda: figure_occlusion(model, x, card.normalization, box, [probes["early"], probes["deep"]]),
              lambda: figure_receptive_fields(model, effective)],
    }
    if card.head_trained and card.class_names and len(card.class_names) == 1000:
        drawn["4"].append(lambda: figure_sensitivity(model, x, card.normalization, CAT_CLASSES,
                                                     f"occlusion sensitivity of the cat classes ({card.label})"))
    return drawn


CAT_CLASSES = (281, 282, 283, 284, 285)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


def environment(config: pytest.Config) -> dict:
    run = config.stash[RUN_OPTIONS]
    return {"torch": torch.__version__, "models": ",".join(run.models), "weights": run.weights,
            "image": run.image, "device": str(run.device)}


def verdict_rows(verdicts: list[Verdict]) -> list[dict]:
    """One row per notebook sentence and subject, grouped by block: what the report opens with."""
    return [{"block": RULES[v.claim].block, "claim": v.claim, "sentence": RULES[v.claim].sentence, "subject": v.subject,
             "status": v.status, "measured": v.measured, "rule": v.threshold, "random": list(v.random),
             "detail": v.detail, "recorded": v.expected, "low": v.low, "high": v.high, "images": v.images, "bar": v.bar}
            for v in sorted(verdicts, key=lambda v: (RULES[v.claim].block, v.claim, v.subject))]


def write(config: pytest.Config, results: list[ClaimResult], verdicts: list[Verdict]) -> Path:
    folder = Path(config.getoption("--report"))
    if not folder.is_absolute():
        folder = Path(config.rootpath) / folder
    return write_report(results, folder, figures(config, results), environment(config), verdict_rows(verdicts))
