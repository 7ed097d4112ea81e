"""The claims matrix: for every (claim, subject), the verdict and the value recorded last time.

``claims/expectations.toml`` is written by ``pytest claims --record-expectations``, never by
hand. A run fails when a recorded verdict changes, in either direction, or when a recorded
value moves beyond its rule's tolerance; a subject with nothing recorded is reported, not
gated. That makes the suite a regression check on torch, torchvision and the weights.
NOT MEASURED is a statement about the run (weights or images it lacks), not a measurement: it
is neither recorded nor gated.
"""
from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path

import pytest

from claims import RECORDED_DATA
from claims.judging.measures import NotMeasurable
from claims.judging.rules import NOT_MEASURED, RULES, Verdict
from cnn_core.models import PACKAGED

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

EXPECTATIONS = RECORDED_DATA / "expectations.toml"
HEADER = """\
# The claims matrix, written by `pytest claims --record-expectations` (never edit by hand).
# For each claim and model.weights subject: the verdict and the value measured when it was recorded.
# A run fails when a verdict changes or a value moves beyond its rule's tolerance (claims/judging/rules.py).
"""


def load_expectations(path: Path = EXPECTATIONS) -> dict[str, dict[str, dict]]:
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        return tomllib.load(handle)


def with_expected(verdict: Verdict, expectations: dict[str, dict[str, dict]]) -> Verdict:
    entry = expectations.get(verdict.claim, {}).get(verdict.subject)
    return verdict if entry is None else Verdict(**{**verdict.__dict__, "expected": entry["status"]})


def gate(verdict: Verdict, expectations: dict[str, dict[str, dict]]) -> None:
    """Fails the test when a recorded verdict changed or its value moved beyond the rule's tolerance."""
    entry = expectations.get(verdict.claim, {}).get(verdict.subject)
    if entry is None or verdict.status == NOT_MEASURED:
        return
    observed = f"{verdict.status}, measured {verdict.measured} ({verdict.threshold}); {verdict.detail}"
    if entry["status"] != verdict.status:
        pytest.fail(f"{verdict.claim} on {verdict.subject}: recorded {entry['status']} "
                    f"(measured {entry.get('measured')}), now {observed}", pytrace=False)
    recorded = entry.get("measured")
    if recorded is not None and verdict.measured is not None:
        drift = RULES[verdict.claim].allowed_drift(recorded)
        if not math.isclose(verdict.measured, recorded, rel_tol=0, abs_tol=drift):
            pytest.fail(f"{verdict.claim} on {verdict.subject}: measured {verdict.measured}, recorded {recorded} "
                        f"(allowed drift {drift:.3g}); {observed}", pytrace=False)


def record(request: pytest.FixtureRequest, *verdicts: Verdict) -> None:
    """Each verdict travels with the test's report (also from xdist workers), then is gated by the
    matrix; with ``--record-expectations`` (accept mode) the run's values replace the recorded ones instead."""
    expectations = load_expectations()
    attached = [with_expected(verdict, expectations) for verdict in verdicts]
    for verdict in attached:
        request.node.user_properties.append(("verdict", verdict.to_json()))
    if not request.config.getoption("--record-expectations"):
        for verdict in attached:
            gate(verdict, expectations)


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


def recorded_references(path: Path = EXPECTATIONS) -> dict[str, dict[str, dict]]:
    """The recorded verdicts of the suite's offline ImageNet CNNs (VGG16's features, MobileNetV2), to stand
    beside the models of a run that did not measure them: subject -> claim -> verdict row."""
    table = load_expectations(path)
    subjects = sorted(f"{name}.{packaged.weights}" for name, packaged in PACKAGED.items())
    rule = f"the verdict recorded in claims/{path.name} (not measured in this run)"
    return {subject: {claim: {**entries[subject], "claim": claim, "subject": subject, "rule": rule, "detail": ""}
                      for claim, entries in table.items() if subject in entries} for subject in subjects}


def write_expectations(verdicts: list[Verdict], path: Path = EXPECTATIONS) -> None:
    """Merge the run's verdicts into the matrix file (other subjects' rows are kept)."""
    table = load_expectations(path)
    for verdict in verdicts:
        if verdict.status != NOT_MEASURED:
            table.setdefault(verdict.claim, {})[verdict.subject] = {"status": verdict.status, "measured": verdict.measured}
    lines = [HEADER]
    for claim in sorted(table):
        lines.append(f'\n["{claim}"]  # {RULES[claim].describe() if RULES[claim].threshold is not None else "learned: beyond the random spread"}')
        for subject in sorted(table[claim]):
            entry = table[claim][subject]
            lines.append(f'"{subject}" = {{ status = "{entry["status"]}", measured = {entry["measured"]!r} }}')
    path.write_text("\n".join(lines) + "\n")
