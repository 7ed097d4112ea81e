"""Turning the test run into the claims report: one ClaimResult per test, and the figures."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import cnn_core
from claims.judging.expectations import recorded_references, verdicts_of
from claims.judging.notebook import NOTEBOOK_BOX, NOTEBOOK_SIZE
from claims.judging.probes import depth_probes
from claims.judging.rules import RULES, UnknownClaim, Verdict, marked_claims
from claims.session.options import RUN_OPTIONS
from claims.session.zoo import MODEL_ZOO, ModelZoo, terminal_progress
from claims.showing.page import (
    ClaimResult,
    Figure,
    figure_depth,
    figure_filters,
    figure_first_maps,
    figure_occlusion,
    figure_receptive_fields,
    figure_sensitivity,
    figure_sparsity,
    write_report,
)


def describe(item: pytest.Item) -> dict | None:
    """The claim a test checks: its block and the notebook sentence, from the registry where the test states a
    claim of it (``@pytest.mark.claim``), else its file's ``block`` marker and its docstring's quote."""
    try:
        stated = marked_claims(item) + marked_claims(item, "breaks")
    except UnknownClaim as error:
        raise pytest.UsageError(f"{item.nodeid}: {error}") from None
    marker = item.get_closest_marker("block")
    if marker is None:
        return None
    if stated:
        rule = RULES[stated[0]]
        block, sentence = rule.block, rule.sentence
    else:
        doc = " ".join((item.function.__doc__ or "").split())
        block, sentence = marker.args[0], doc[:240] + ("…" if len(doc) > 240 else "")
    return {"claim": item.originalname, "block": block, "sentence": sentence,
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
    own = verdicts_of(report.user_properties)[:1]  # the model's own; its random control has a row of its own
    return ClaimResult(report.nodeid, description["claim"], description["block"], description["sentence"],
                       description["subject"], outcome, own[0] if own else None, reason=reason.removeprefix("Skipped: "))


def figures(config: pytest.Config, verdicts: list[Verdict]) -> list[Figure]:
    """The notebook's figures for every model of the run with trained weights (VGG16's ImageNet
    features, MobileNetV2 and Tiny VGG by default), side by side, on the run's device and image,
    with the photo's occlusion-sensitivity map from each with a trained head (the cat classes on an
    ImageNet head, its own top class otherwise). Without trained weights: the run's first model's."""
    run = config.stash[RUN_OPTIONS]
    # The session's own models where this process has them (not on an xdist controller).
    zoo = config.stash.get(MODEL_ZOO, None) or ModelZoo(run, run.device, terminal_progress(config))
    names = [name for name in run.learned_models
             if zoo.unavailable(name) is None and cnn_core.model_card(zoo.get(name)).trained] or list(run.models[:1])
    drawn = [figure for name in names for figure in _model_figures(zoo.get(name), zoo.device, run.image)]
    sparsity = {v.subject.label: (list(v.series), [list(values) for values in v.random_series]) for v in verdicts
                if v.claim == "L3-sparser-with-depth" and v.series and not v.subject.control}
    if sparsity:
        drawn.append(Figure("3", "trained models against their random inits", "L3-sparser-with-depth",
                            lambda: figure_sparsity(sparsity), photo=False))
    # Side by side: within a block, each claim's figure for every model in turn.
    return sorted(drawn, key=lambda figure: (figure.block, list(RULES).index(figure.claim)))


def _model_figures(model: torch.nn.Module, device: torch.device, image: str) -> list[Figure]:
    card = cnn_core.model_card(model)
    size = card.input_size
    x = card.preprocess(cnn_core.load_image(image)).to(device)
    probes = depth_probes(model)
    convs = [layer.path for layer in cnn_core.layers(model, (size, size)) if not layer.container and layer.conv]
    effective = {layer: cnn_core.effective_receptive_field(model, layer, x) for layer in convs[:: max(1, len(convs) // 6)]}
    box = NOTEBOOK_BOX.scaled(size / NOTEBOOK_SIZE)
    made = [
        Figure("1", card.label, "L1-maps-differ", lambda: figure_first_maps(model, x, card.normalization)),
        Figure("2", card.label, "L1-filters-detect-edges", lambda: figure_filters(model, x, card.normalization)),
        Figure("3", card.label, "S-channels-grow-resolution-falls", lambda: figure_depth(model, x, probes)),
        Figure("4", card.label, "S-occlusion-stays-local",
               lambda: figure_occlusion(model, x, card.normalization, box, [probes["early"], probes["deep"]])),
        Figure("4", card.label, "S-fields-grow-gradually", lambda: figure_receptive_fields(model, effective), photo=False),
    ]
    if card.head_trained:
        if card.class_names is not None and len(card.class_names) == IMAGENET_CLASSES:
            target, what = CAT_CLASSES, "the cat classes"
        else:
            with torch.no_grad():
                target = int(model(x).argmax())
            what = f"its top class ({card.class_names[target] if card.class_names else target})"
        made.append(Figure("4", card.label, "L5-occluding-the-object-matters",
                           lambda: figure_sensitivity(model, x, card.normalization, target, f"occlusion sensitivity of {what}")))
    return made


IMAGENET_CLASSES = 1000
CAT_CLASSES = (281, 282, 283, 284, 285)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


def environment(config: pytest.Config, compared: tuple[str, ...] = ()) -> dict:
    """What the run was: versions, models, weights (and the compared checkpoints' subjects), photos, device, and
    pytest's own test counts."""
    run = config.stash[RUN_OPTIONS]
    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "models": ",".join(run.models),
            "learned_also": ",".join(name for name in run.learned_models if run.architecture_of(name) not in run.models),
            "weights": run.weights_text, "preprocessing": run.preprocessing or "", "image": run.image, "device": str(run.device),
            "fixtures": run.fixtures.describe(), "tests": pytest_counts(config), "compared": list(compared)}


def pytest_counts(config: pytest.Config) -> dict[str, int]:
    """The run's outcomes as pytest's own summary line counts them (on the xdist controller too)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter is not None else {}
    counts = {key: sum(1 for report in reports if getattr(report, "count_towards_summary", True))
              for key, reports in stats.items() if key and key != "warnings"}
    order = [key for key in PYTEST_SUMMARY_ORDER if key in counts] + sorted(set(counts) - set(PYTEST_SUMMARY_ORDER))
    return {key: counts[key] for key in order if counts[key]}


PYTEST_SUMMARY_ORDER = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "error")  # as its last line


def write(config: pytest.Config, results: list[ClaimResult], verdicts: list[Verdict], compared: tuple[str, ...] = ()) -> Path:
    return write_report(results, config.stash[RUN_OPTIONS].report, figures(config, verdicts), environment(config, compared), verdicts,
                        recorded_references())
