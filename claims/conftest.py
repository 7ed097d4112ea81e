"""The claim run: verdicts and results collected from the test reports, the end-of-run table,
the claims report and ``--record-expectations``."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from claims.judging import nulls
from claims.judging.expectations import recorded_references, verdicts_of, write_expectations
from claims.judging.rules import INCONCLUSIVE, NULL_SEEDS, RULES, Spread, Verdict
from claims.judging.statistics import ALPHA
from claims.session.options import RUN_OPTIONS, RunOptions
from claims.showing import run_results
from claims.showing.page import ClaimResult
from claims.showing.verdict_matrix import agreement, sentence_text, verdict_matrix
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
                self.verdicts[(verdict.claim, verdict.subject)] = verdict
        self.nulls += [entry for key, entry in report.user_properties if key == "nulls"]
        for key, text in report.user_properties:
            if key == "subject":
                described = json.loads(text)
                self.subjects[described["subject"]] = described
                self.labels[described["key"]] = described["subject"]
        description = dict(report.user_properties).get("claim")
        if description and (report.when == "call" or (report.when == "setup" and not report.passed)):
            self.results[report.nodeid] = run_results.result_from(report, description)

    def table(self) -> list[str]:
        """CONFIRMED / REFUTED / INCONCLUSIVE / NOT MEASURED per notebook claim and subject, with the
        value, its 95% interval over photos and the random null's bar; the subjects a claim was not
        measured on share one line per reason."""
        if not self.verdicts:
            return []
        lines = [f"learned claims: CONFIRMED when the value clears the random null's one-sided {1 - ALPHA:.0%} prediction "
                 f"bound (α = {ALPHA:g} per verdict, {len(NULL_SEEDS)} random inits); REFUTED when its 95% interval over "
                 f"photos lies short of it; else INCONCLUSIVE",
                 ]
        if self.subjects:
            lines.append("how each model was fed, and which random null judged it:")
            lines += [f"  {label}: {d['preprocessing'] + '; ' if d['preprocessing'] else ''}null: {d['null']}"
                      for label, d in sorted(self.subjects.items())]
        lines.append(f"{'claim':<37} {'model.weights':<31} {'verdict':<12} {'value':>9} {'95% interval':<20} "
                     f"{'bar / rule':<22} recorded")
        for block in sorted({RULES[claim].block for claim, _ in self.verdicts}):
            lines.append(f"-- notebook block {block}")
            for claim in sorted({claim for claim, _ in self.verdicts if RULES[claim].block == block}):
                lines.append(f"   {sentence_text(RULES[claim])}")
                unmeasured: dict[str, list[str]] = {}
                for (name, subject), v in sorted(self.verdicts.items()):
                    if name != claim:
                        continue
                    if v.measured is None:
                        unmeasured.setdefault(v.detail, []).append(subject)
                        continue
                    interval = v.interval or ("weights" if v.random else "")
                    bar = f">= {v.bar:.4g} (random {Spread(v.random).mean:.4g} ± {Spread(v.random).sd:.2g})" if v.random \
                        else v.threshold
                    lines.append(f"{claim:<37} {subject:<31} {v.status:<12} {v.measured:>9.4g} {interval:<20} {bar:<22} "
                                 f"{v.expected or 'not recorded'}")
                    if v.status == INCONCLUSIVE:
                        lines.append(f"{'':<37} {'':<31} ({v.detail})")
                for reason, subjects in unmeasured.items():
                    lines.append(f"{claim:<37} NOT MEASURED on {', '.join(subjects)}: {reason}")
                first = RULES[claim].second_opinion_of
                if first:
                    said = agreement(RULES[first], RULES[claim], self._cells(first), self._cells(claim))
                    lines += [f"{'the two instruments':<37} {subject:<31} {text}" for subject, text in sorted(said.items())]
        return lines

    def _cells(self, claim: str) -> dict[str, dict]:
        """The claim's verdicts by subject, as the matrix's cells."""
        return {subject: {"status": v.status} for (name, subject), v in self.verdicts.items() if name == claim}

    def compared(self, run: RunOptions) -> tuple[str, ...]:
        """The subjects of the run's compared checkpoints, in the order given to ``--weights``."""
        return tuple(self.labels[checkpoint.key] for checkpoint in run.compared if checkpoint.key in self.labels)

    def findings(self, run: RunOptions) -> list[str]:
        """What the run found, in the words of the report's page: per model when one trained model ran
        (beside the suite's recorded references), else what every, none or some of them bear out, and
        what changed from one compared checkpoint to the next."""
        matrix = verdict_matrix(run_results.verdict_rows(list(self.verdicts.values())), run.models, recorded_references(),
                                self.compared(run))
        if not matrix.trained:
            return []
        lines = ["what the run found:"]
        for title, items in matrix.findings().items():
            lines += [f"{title}:", *(f"  - {item}" for item in items)]
        return lines


CLAIM_RUN = pytest.StashKey[ClaimRun]()


def pytest_configure(config):
    config.stash[CLAIM_RUN] = ClaimRun()
    config.pluginmanager.register(config.stash[CLAIM_RUN], "cnn-claims-run")


def pytest_sessionstart(session):
    config = session.config
    if not config.getoption("--mutants") or hasattr(config, "workerinput"):
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
    if config.getoption("--record-nulls") and run.nulls:
        nulls.write(run.nulls)
    if config.getoption("--report"):
        run.report = run_results.write(config, list(run.results.values()), list(run.verdicts.values()),
                                       run.compared(config.stash[RUN_OPTIONS]))


def pytest_terminal_summary(terminalreporter, config):
    run = config.stash[CLAIM_RUN]
    lines = run.table()
    if lines:
        lines += run.findings(config.stash[RUN_OPTIONS])
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
