"""The claims matrix: for every (claim, subject), the verdict and the value recorded last time.

``claims/expectations.toml`` (the suite's own models) or a file of the user's project
(``--expectations ci/claims.toml``: their checkpoint) is written by ``--record-expectations``;
an entry may also state a verdict alone (``{ status = "CONFIRMED" }``). A run fails when a
recorded verdict changes, in either direction, or when a recorded value moves beyond its rule's
tolerance; a subject with nothing recorded is reported, not gated, and the run's last lines say
so. That makes the suite a regression check on torch, torchvision and the weights.
NOT MEASURED is a statement about the run (weights or images it lacks), not a measurement: it
is neither recorded nor gated.
"""
from __future__ import annotations

import contextlib
import math
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from claims import RECORDED_DATA
from claims.judging.measures import NotMeasurable
from claims.judging.rules import NOT_MEASURED, RULES, SubjectId, Verdict, marked_claims
from cnn_core.models import PACKAGED

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

EXPECTATIONS = RECORDED_DATA / "expectations.toml"
HEADER = """\
# The claims matrix, written by `pytest claims --record-expectations` (never edit a value by hand).
# For each claim and model.weights subject: the verdict and the value measured when it was recorded.
# A run fails when a verdict changes or a value moves beyond its rule's tolerance (claims/judging/rules.py).
# An entry may state a verdict alone, { status = "CONFIRMED" }: the run then fails when the verdict differs.
"""


def load_expectations(path: Path = EXPECTATIONS) -> dict[str, dict[str, dict]]:
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        return tomllib.load(handle)


@dataclass(frozen=True)
class Change:
    """A verdict that left what its expectations file records: another verdict, or a value beyond the rule's drift."""

    claim: str
    subject: str
    recorded_status: str
    recorded_value: float | None
    status: str
    value: float | None
    drift: float | None = None  # the allowed drift, when only the value moved

    def line(self) -> str:
        """One line: the claim, the subject, what was recorded and what was measured now."""
        def said(status, value):
            return status + (f" {value:.6g}" if value is not None else "")
        moved = f" (beyond the allowed drift {self.drift:.3g})" if self.drift is not None else ""
        return (f"{self.claim} on {self.subject}: recorded {said(self.recorded_status, self.recorded_value)}, "
                f"now {said(self.status, self.value)}{moved}")


@dataclass(frozen=True)
class Expectations:
    """The run's expectations file, read once: what gates each verdict, or, recording, where the verdicts go."""

    path: Path
    table: Mapping[str, Mapping[str, Mapping]]  # claim -> subject -> {status, measured (optional)}
    recording: bool = False

    @classmethod
    def read(cls, path: Path = EXPECTATIONS, recording: bool = False) -> Expectations:
        try:
            return cls(path, load_expectations(path), recording)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"is not a TOML file: {error}") from None

    @property
    def where(self) -> str:
        """The file as a person finds it: from the current folder when it lies below it."""
        try:
            return str(self.path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(self.path)

    def entry(self, verdict: Verdict) -> Mapping | None:
        return self.table.get(verdict.claim, {}).get(verdict.subject.label)

    def attached(self, verdict: Verdict) -> Verdict:
        """The verdict with its recorded status beside it (``recorded``), where one is recorded."""
        entry = self.entry(verdict)
        return verdict if entry is None else replace(verdict, recorded=entry["status"])

    def change(self, verdict: Verdict) -> Change | None:
        """How the verdict left its recorded entry, or None (nothing recorded, NOT MEASURED, or within tolerance)."""
        entry = self.entry(verdict)
        if entry is None or verdict.status == NOT_MEASURED:
            return None
        recorded = entry.get("measured")
        if entry["status"] != verdict.status:
            return Change(verdict.claim, verdict.subject.label, entry["status"], recorded, verdict.status, verdict.measured)
        if recorded is not None and verdict.measured is not None:
            drift = RULES[verdict.claim].allowed_drift(recorded)
            if not math.isclose(verdict.measured, recorded, rel_tol=0, abs_tol=drift):
                return Change(verdict.claim, verdict.subject.label, entry["status"], recorded, verdict.status,
                              verdict.measured, drift)
        return None


    def summary(self, verdicts: list[Verdict]) -> list[str]:
        """A run's last lines: each verdict that left this file, one line each, and the subjects with nothing
        recorded here, which were reported, not gated."""
        if self.recording:
            return [f"expectations: recorded into {self.where} (this run did not gate)"]
        measured = [verdict for verdict in verdicts if verdict.status != NOT_MEASURED]
        changes = sorted((change for verdict in measured if (change := self.change(verdict))),
                         key=lambda change: (change.subject, change.claim))
        unrecorded = Counter(verdict.subject.label for verdict in measured if self.entry(verdict) is None)
        lines = [f"expectations {self.where}: {len(measured) - sum(unrecorded.values())} verdicts gated, "
                 + (f"{len(changes)} changed:" if changes else "none changed")]
        lines += [f"  CHANGED {change.line()}" for change in changes]
        if unrecorded:
            lines.append(f"NOT GATED: nothing recorded in {self.where} for "
                         + ", ".join(f"{subject} ({count} verdicts)" for subject, count in sorted(unrecorded.items()))
                         + "; they are reported, not checked (record them with --record-expectations)")
        return lines


IN_FORCE = pytest.StashKey[Expectations]()  # the run's, set once when the options are read


def record(request: pytest.FixtureRequest, *verdicts: Verdict) -> None:
    """Each verdict travels with the test's report (also from xdist workers), then is gated by the
    run's expectations file; with ``--record-expectations`` (accept mode) the run's values replace the recorded
    ones instead."""
    stated = marked_claims(request.node)
    strays = sorted({verdict.claim for verdict in verdicts} - set(stated)) if stated else []
    if strays:
        raise pytest.UsageError(f"{request.node.nodeid} states {', '.join(stated)} (its claim marker) "
                                f"but records verdicts of {', '.join(strays)}")
    expectations = request.config.stash[IN_FORCE]
    attached = [expectations.attached(verdict) for verdict in verdicts]
    for verdict in attached:
        request.node.user_properties.append(("verdict", verdict.to_json()))
    if expectations.recording:
        return
    changes = [change for change in map(expectations.change, attached) if change is not None]
    if changes:
        details = "; ".join(f"{verdict.rule_text}: {verdict.detail}" for verdict in attached if verdict.detail)
        pytest.fail("\n".join(change.line() for change in changes) + (f"\n{details}" if details else ""), pytrace=False)


@contextlib.contextmanager
def not_measured_skips():
    """A claim check that cannot be measured on this model (``measures.NotMeasurable``) skips its
    test with the reason, which the run and the sweep list as NOT MEASURED; every other error fails it."""
    try:
        yield
    except NotMeasurable as error:
        pytest.skip(f"NOT MEASURED: {error}")


def verdicts_of(user_properties) -> list[Verdict]:
    return [Verdict.from_json(value) for key, value in user_properties if key == "verdict"]


def recorded_references(path: Path = EXPECTATIONS) -> dict[str, dict[str, Verdict]]:
    """The recorded verdicts of the suite's offline ImageNet CNNs (VGG16's features, MobileNetV2), to stand
    beside the models of a run that did not measure them: subject label -> claim -> verdict (its ``recorded``
    status and value; no interval, bar or null: those belong to the run that measured them)."""
    table = load_expectations(path)
    references: dict[str, dict[str, Verdict]] = {}
    for name, packaged in PACKAGED.items():
        tested = SubjectId(name, packaged.weights)
        references[tested.label] = {
            claim: Verdict(claim, tested, entries[tested.label]["status"], entries[tested.label].get("measured"),
                           RULES[claim].op, RULES[claim].threshold, RULES[claim].resolution,
                           recorded=entries[tested.label]["status"])
            for claim, entries in table.items() if tested.label in entries}
    return dict(sorted(references.items()))


def trained_values(path: Path = EXPECTATIONS) -> dict[tuple[str, str], float]:
    """Each trained model's recorded value: (architecture, claim) -> value; random models and controls left out."""
    return {(label.rsplit(".", 1)[0], claim): entry["measured"] for claim, entries in load_expectations(path).items()
            for label, entry in entries.items()
            if not label.endswith(("/random", ".random")) and entry.get("measured") is not None}


def write_expectations(verdicts: list[Verdict], path: Path = EXPECTATIONS) -> None:
    """Merge the run's verdicts into the matrix file at ``path`` (other subjects' rows are kept)."""
    table = load_expectations(path)
    for verdict in verdicts:
        if verdict.status != NOT_MEASURED:
            table.setdefault(verdict.claim, {})[verdict.subject.label] = {"status": verdict.status, "measured": verdict.measured}
    lines = [HEADER]
    for claim in sorted(table):
        lines.append(f'\n["{claim}"]  # {RULES[claim].describe() if RULES[claim].threshold is not None else "learned: beyond the random spread"}')
        for subject in sorted(table[claim]):
            entry = table[claim][subject]
            value = f', measured = {entry["measured"]!r}' if entry.get("measured") is not None else ""
            lines.append(f'"{subject}" = {{ status = "{entry["status"]}"{value} }}')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
