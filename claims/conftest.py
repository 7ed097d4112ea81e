"""Fixtures of the claims matrix: subjects built once per session, and the end-of-run table."""
from __future__ import annotations

import pytest

from claims import reporting
from claims.matrix import summary_lines, verdicts_of
from claims.subjects import CNN_SUBJECTS, build_subject

_SUBJECTS: dict[str, object] = {}


def pytest_generate_tests(metafunc):
    if "subject_key" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("subjects")
    keys = marker.args if marker else CNN_SUBJECTS
    metafunc.parametrize("subject_key", [pytest.param(k, marks=pytest.mark.xdist_group(k)) for k in keys],
                         ids=[k.replace(".", "-") for k in keys], scope="module")


@pytest.fixture(scope="module")
def subject(subject_key, zoo, pytestconfig):
    if subject_key not in _SUBJECTS:
        _SUBJECTS[subject_key] = build_subject(subject_key, zoo, pytestconfig.getoption("--weights"))
    return _SUBJECTS[subject_key]


_VERDICTS: list = []
_RESULTS: dict[str, object] = {}
_REPORT: list = []


def pytest_collection_modifyitems(items):
    # Kept in user_properties, the description reaches the report also from pytest-xdist workers.
    for item in items:
        description = reporting.describe(item)
        if description is not None:
            item.user_properties.append(("claim", description))


def pytest_runtest_logreport(report):
    if report.when == "call":
        _VERDICTS.extend(verdicts_of(report))
    description = dict(report.user_properties).get("claim")
    if description and (report.when == "call" or (report.when == "setup" and not report.passed)):
        _RESULTS[report.nodeid] = reporting.result_from(report, description)


def pytest_sessionfinish(session):
    config = session.config
    if config.getoption("--report") and not hasattr(config, "workerinput"):
        _REPORT.append(reporting.write(config, list(_RESULTS.values())))


def pytest_terminal_summary(terminalreporter, config):
    lines = summary_lines(_VERDICTS)
    if lines:
        terminalreporter.section("claims matrix (claims/expectations.toml)")
        for line in lines:
            terminalreporter.write_line(line)
    if _REPORT:
        terminalreporter.section("claims")
        by_claim: dict[tuple[str, str], dict[str, int]] = {}
        for result in _RESULTS.values():
            counts = by_claim.setdefault((result.block, result.claim), {})
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        for (block, claim), counts in sorted(by_claim.items()):
            verdict = "FAIL" if counts.get("failed") or counts.get("xpassed") else "ok  "
            terminalreporter.write_line(f"{verdict} block {block:<8} {claim:<64} "
                                        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        terminalreporter.write_line(f"report: {_REPORT[0]}")
