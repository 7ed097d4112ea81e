"""The claims matrix: for every (claim, model, weights), is the claim expected to hold?

``claims/expectations.toml`` records each expectation with the value that was measured when it
was set. A run fails when an observed verdict differs from its expectation, in either
direction, and says what it measured. That makes the suite a regression check: a change in
torch, torchvision or the weights that moves a verdict is caught.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

EXPECTATIONS = Path(__file__).with_name("expectations.toml")


@dataclass(frozen=True)
class Verdict:
    claim: str
    subject: str  # "model.weights", e.g. "tiny-vgg.trained"
    holds: bool
    measured: float
    threshold: str
    detail: str = ""
    series: tuple[float, ...] = ()  # per-layer or per-block values behind the verdict, for figures
    expected: bool | None = field(default=None, compare=False)


def load_expectations(path: Path = EXPECTATIONS) -> dict[str, dict[str, dict]]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def check_expectation(verdict: Verdict, expectations: dict[str, dict[str, dict]]) -> Verdict:
    """The verdict with its expectation attached; fails the test when they differ or none is recorded."""
    entry = expectations.get(verdict.claim, {}).get(verdict.subject)
    observed = (f"measured {verdict.measured:.4g} (holds if {verdict.threshold}) -> "
                f"{'holds' if verdict.holds else 'does not hold'}{'; ' + verdict.detail if verdict.detail else ''}")
    if entry is None:
        pytest.fail(f"{verdict.claim} on {verdict.subject}: no expectation in {EXPECTATIONS.name}; {observed}", pytrace=False)
    result = Verdict(**{**verdict.__dict__, "expected": bool(entry["holds"])})
    if result.expected != verdict.holds:
        pytest.fail(
            f"{verdict.claim} on {verdict.subject}: expected to {'hold' if result.expected else 'fail'} "
            f"(recorded measurement {entry.get('measured')}), but {observed}",
            pytrace=False,
        )
    return result


def record(request: pytest.FixtureRequest, verdict: Verdict) -> None:
    """Check ``verdict`` against the matrix; it travels with the test's report (also from xdist workers)."""
    entry = load_expectations().get(verdict.claim, {}).get(verdict.subject)
    expected = None if entry is None else bool(entry["holds"])
    request.node.user_properties.append(("verdict", {**asdict(verdict), "expected": expected}))
    check_expectation(verdict, load_expectations())


def verdicts_of(report: pytest.TestReport) -> list[Verdict]:
    return [Verdict(**value) for key, value in report.user_properties if key == "verdict"]


def summary_lines(verdicts: list[Verdict]) -> list[str]:
    if not verdicts:
        return []
    lines = [f"{'claim':<44} {'model.weights':<20} {'measured':>10}  {'verdict':<13} expected"]
    for v in sorted(verdicts, key=lambda v: (v.claim, v.subject)):
        expected = "-" if v.expected is None else ("holds" if v.expected else "fails")
        lines.append(f"{v.claim:<44} {v.subject:<20} {v.measured:>10.4g}  {'holds' if v.holds else 'fails':<13} {expected}")
    return lines
