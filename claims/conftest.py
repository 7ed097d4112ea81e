"""The claim run: verdicts and results collected from the test reports, the end-of-run table,
the claims report and ``--record-expectations``."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from claims.judging import nulls
from claims.judging.expectations import recorded_references, verdicts_of, write_expectations
from claims.judging.rules import Verdict
from claims.session.options import RUN_OPTIONS, RunOptions
from claims.showing import run_results, terminal
from claims.showing.page import ClaimResult
from claims.showing.verdict_matrix import VerdictMatrix, verdict_matrix
from claims.tools.mutants import MUTANTS, mutation_table

# The options, parametrization and fixtures; loaded here too, so that an installed suite run with
# `python -m claims test` from any folder has them (pytest loads a plugin once, however many ask).
pytest_plugins = ("claims.session.plugin",)


@dataclass(eq=False)  # a plugin object: hashed by identity
class ClaimRun:
    """Everything a run learns about the claims; built from test reports, so it works under xdist too."""

    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    subjects: dict[str, dict[str, str]] = field(default_factory=dict)  # how each was fed, which null judged it
    labels: dict[str, str] = field(default_factory=dict)  # a measured model's key (model_name) -> its subject
    nulls: list[dict] = field(default_factory=list)  # with --record-nulls: each architecture's new entry
    results: dict[str, ClaimResult] = field(default_factory=dict)
    report: Path | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Registered as a plugin, the run sees every report (on the xdist controller too)."""
        if report.when == "call":
            for verdict in verdicts_of(report.user_properties):
                self.verdicts[(verdict.claim, verdict.subject.label)] = verdict
        self.nulls += [entry for key, entry in report.user_properties if key == "nulls"]
        for key, text in report.user_properties:
            if key == "subject":
                described = json.loads(text)
                self.subjects[described["subject"]] = described
                self.labels[described["key"]] = described["subject"]
        description = dict(report.user_properties).get("claim")
        if description and (report.when == "call" or (report.when == "setup" and not report.passed)):
            self.results[report.nodeid] = run_results.result_from(report, description)

    def compared(self, run: RunOptions) -> tuple[str, ...]:
        """The subjects of the run's compared checkpoints, in the order given to ``--weights``."""
        return tuple(self.labels[checkpoint.key] for checkpoint in run.compared if checkpoint.key in self.labels)

    def matrix(self, run: RunOptions) -> VerdictMatrix:
        """The run's verdicts as the page has them: per model when one trained model ran (beside the suite's
        recorded references), and what changed from one compared checkpoint to the next."""
        return verdict_matrix(list(self.verdicts.values()), run.models, recorded_references(), self.compared(run))


CLAIM_RUN = pytest.StashKey[ClaimRun]()


def pytest_configure(config):
    config.stash[CLAIM_RUN] = ClaimRun()
    config.pluginmanager.register(config.stash[CLAIM_RUN], "cnn-claims-run")


def pytest_sessionstart(session):
    config = session.config
    if not config.stash[RUN_OPTIONS].mutants or hasattr(config, "workerinput"):
        return
    run = config.stash[RUN_OPTIONS]
    args = ["--model", "vgg16", "-p", "no:randomly"] + (["--fixtures-dir", str(run.fixtures.folder)] if run.fixtures.folder else [])
    write = config.pluginmanager.get_plugin("terminalreporter").write_line
    write(f"cnn-claims mutants: {len(MUTANTS)} mutants, each a full `pytest claims {' '.join(args)}` on a copy (about a minute each)")
    all_killed = mutation_table(Path(config.rootpath), args, write)
    pytest.exit("every mutant killed" if all_killed else "some mutant survived", returncode=0 if all_killed else 1)


def pytest_collection_modifyitems(items):
    # Kept in user_properties, the description reaches the report also from pytest-xdist workers.
    for item in items:
        description = run_results.describe(item)
        if description is not None:
            item.user_properties.append(("claim", description))


def pytest_sessionfinish(session):
    config = session.config
    if hasattr(config, "workerinput"):
        return
    run = config.stash[CLAIM_RUN]
    expectations = config.stash[RUN_OPTIONS].expectations
    if expectations.recording and run.verdicts:
        write_expectations(list(run.verdicts.values()), expectations.path)
    if config.stash[RUN_OPTIONS].record_nulls and run.nulls:
        nulls.write(run.nulls)
    if config.stash[RUN_OPTIONS].report is not None:
        run.report = run_results.write(config, list(run.results.values()), list(run.verdicts.values()),
                                       run.compared(config.stash[RUN_OPTIONS]))


def pytest_terminal_summary(terminalreporter, config):
    run = config.stash[CLAIM_RUN]
    lines = terminal.table(list(run.verdicts.values()), run.subjects)
    if lines:
        lines += terminal.findings(run.matrix(config.stash[RUN_OPTIONS]))
        terminalreporter.section("the notebook's claims: CONFIRMED / REFUTED / INCONCLUSIVE / NOT MEASURED")
        for line in lines:
            terminalreporter.write_line(line)
    if run.report is not None:
        terminalreporter.section("claims")
        by_claim: dict[tuple[str, str], dict[str, int]] = {}
        for result in run.results.values():
            counts = by_claim.setdefault((result.block, result.claim), {})
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        for (block, claim), counts in sorted(by_claim.items()):
            verdict = "FAIL" if counts.get("failed") or counts.get("xpassed") else "ok  "
            terminalreporter.write_line(f"{verdict} block {block:<8} {claim:<64} "
                                        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        terminalreporter.write_line(f"report: {run.report}")
    if run.verdicts:
        terminalreporter.section("expectations")
        for line in config.stash[RUN_OPTIONS].expectations.summary(list(run.verdicts.values())):
            terminalreporter.write_line(line)
