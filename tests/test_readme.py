"""The README's verdict table agrees with the recorded expectations, cell by cell."""
from __future__ import annotations

import re

import pytest

from claims.matrix import load_expectations
from claims.readme import END, README, START, cell, rewrite, table

STATUS = re.compile(r"\*\*(CONFIRMED|REFUTED|INCONCLUSIVE)\*\*")


def readme_cells(text: str) -> dict[tuple[str, str], str]:
    """(claim, subject) -> the status the README's table prints."""
    block = text.split(START, 1)[1].split(END, 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("| ")]
    subjects = re.findall(r"`([^`]+)`", rows[0])
    cells = {}
    for row in rows[1:]:
        parts = [part.strip() for part in row.strip("|").split(" | ")]
        claim = parts[0].strip("`")
        for subject, text_cell in zip(subjects, parts[2:]):
            found = STATUS.search(text_cell)
            if found:
                cells[(claim, subject)] = found.group(1)
    return cells


def test_the_readme_table_says_what_the_expectations_record():
    cells = readme_cells(README.read_text())
    expectations = load_expectations()
    assert len(cells) >= 20
    wrong = {key: (status, expectations.get(key[0], {}).get(key[1], {}).get("status"))
             for key, status in cells.items() if expectations.get(key[0], {}).get(key[1], {}).get("status") != status}
    assert not wrong, f"README says / expectations record: {wrong}; regenerate with python -m claims.readme"


def test_a_changed_recorded_verdict_is_caught():
    """Break: one cell of the README flipped."""
    text = README.read_text()
    cells = readme_cells(text)
    (claim, subject), status = next(iter(cells.items()))
    flipped = "REFUTED" if status != "REFUTED" else "CONFIRMED"
    row = next(line for line in text.split(START, 1)[1].splitlines() if line.startswith(f"| `{claim}` |"))
    assert readme_cells(text.replace(row, row.replace(f"**{status}**", f"**{flipped}**", 1)))[(claim, subject)] == flipped


def test_the_table_is_generated_from_verdict_rows():
    rows = [{"claim": "L3-sparser-with-depth", "subject": "m.imagenet", "status": "INCONCLUSIVE", "measured": 0.1,
             "low": 0.05, "high": 0.2, "bar": 0.15, "rule": "", "detail": ""},
            {"claim": "L3-sparser-with-depth", "subject": "m.imagenet/random", "status": "REFUTED", "measured": 0.0,
             "low": -0.01, "high": 0.01, "bar": 0.15, "rule": "", "detail": ""}]
    block = table(rows)
    assert "| `L3-sparser-with-depth` |" in block and "**INCONCLUSIVE** 0.1 [0.05, 0.2]; bar 0.15" in block
    assert "1 REFUTED" in block
    assert cell({"status": "NOT MEASURED", "detail": "no head"}) == "NOT MEASURED: no head"
    with pytest.raises(ValueError, match="no <!-- verdicts -->"):
        rewrite("no block here", block)
