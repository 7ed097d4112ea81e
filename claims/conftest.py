"""Fixtures of the claims matrix: subjects built once per session, and the end-of-run table."""
from __future__ import annotations

import pytest

from claims.matrix import summary_lines, verdicts_of
from claims.subjects import CNN_SUBJECTS, build_subject

_SUBJECTS: dict[str, object] = {}


def pytest_generate_tests(metafunc):
    if "subject_key" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("subjects")
    keys = marker.args if marker else CNN_SUBJECTS
    metafunc.parametrize("subject_key", keys, ids=[k.replace(".", "-") for k in keys], scope="module")


@pytest.fixture(scope="module")
def subject(subject_key, device, pytestconfig):
    if subject_key not in _SUBJECTS:
        _SUBJECTS[subject_key] = build_subject(subject_key, device, pytestconfig.getoption("--weights"))
    return _SUBJECTS[subject_key]


_VERDICTS: list = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _VERDICTS.extend(verdicts_of(report))


def pytest_terminal_summary(terminalreporter, config):
    lines = summary_lines(_VERDICTS)
    if lines:
        terminalreporter.section("claims matrix (claims/expectations.toml)")
        for line in lines:
            terminalreporter.write_line(line)
