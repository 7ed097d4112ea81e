"""The README's verdict table, and the full one of reports/verdicts.md, agree with the recorded expectations, cell by
cell; the README stays a front page (12 KB at most), and every link of it and of its pages lands."""
from __future__ import annotations

import importlib
import json
import re
import shlex
from dataclasses import replace

import pytest

from claims.__main__ import COMMANDS as CLAIMS_COMMANDS
from claims.judging.expectations import load_expectations
from claims.judging.rules import SubjectId, Verdict
from claims.showing import docs
from claims.showing.readme import END, README, START, VERDICTS_PAGE, cell, table

STATUS = re.compile(r"\*\*(CONFIRMED|REFUTED|INCONCLUSIVE)\*\* ([-+.0-9e]+)")


def readme_cells(text: str) -> dict[tuple[str, str], tuple[str, float]]:
    """(claim, subject) -> the status and value the README's table prints."""
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
                cells[(claim, subject)] = (found.group(1), float(found.group(2)))
    return cells


def recorded(claim: str, subject: str) -> tuple[str, float] | None:
    entry = load_expectations().get(claim, {}).get(subject)
    return None if entry is None else (entry["status"], float(f"{entry['measured']:.4g}"))


@pytest.mark.parametrize("page", [README, VERDICTS_PAGE], ids=["README", "reports-verdicts"])
def test_the_readme_table_says_what_the_expectations_record(page):
    cells = readme_cells(page.read_text())
    assert len(cells) >= 20
    wrong = {key: (cell, recorded(*key)) for key, cell in cells.items() if recorded(*key) != cell}
    assert not wrong, f"README says / expectations record: {wrong}; regenerate with python -m claims readme"


@pytest.mark.parametrize("change", ["verdict", "value"])
def test_a_changed_cell_is_caught(change):
    """Break: one cell of the README flipped to another verdict, or its value moved in the last digit."""
    text = README.read_text()
    (claim, subject), (status, value) = next(iter(readme_cells(text).items()))
    row = next(line for line in text.split(START, 1)[1].splitlines() if line.startswith(f"| `{claim}` |"))
    old = f"**{status}** {value:.4g}"
    new = f"**{'REFUTED' if status != 'REFUTED' else 'CONFIRMED'}** {value:.4g}" if change == "verdict" else \
        f"**{status}** {value * 1.01:.4g}"
    assert old in row
    assert readme_cells(text.replace(row, row.replace(old, new, 1)))[(claim, subject)] != recorded(claim, subject)


def test_the_table_is_generated_from_verdicts():
    tested = SubjectId("m", "imagenet")
    verdicts = [Verdict("L3-sparser-with-depth", tested, "INCONCLUSIVE", 0.1, ">=", low=0.05, high=0.2, bar=0.15),
                Verdict("L3-sparser-with-depth", tested.random_control(), "REFUTED", 0.0, ">=", low=-0.01, high=0.01, bar=0.15)]
    block = table(verdicts)
    assert "| `L3-sparser-with-depth` |" in block and "**INCONCLUSIVE** 0.1 [0.05, 0.2]; bar 0.15" in block
    assert "1 REFUTED" in block
    assert cell(Verdict("L5-occluding-the-object-matters", tested, "NOT MEASURED", None, ">=", detail="no head")) == \
        "NOT MEASURED: no head"
    with pytest.raises(ValueError, match="no <!-- verdicts -->"):
        docs.rewritten("no block here", "verdicts", block)


PAGES = (README, README.parent / "claims" / "README.md", README.parent / "cnn_core" / "README.md",
         README.parent / "reports" / "README.md", VERDICTS_PAGE)
FRONT_PAGE_BYTES = 12 * 1024


def test_the_readme_is_a_front_page():
    """What it is, the two commands, what a run prints, the verdict table, your own model, a map of links; the
    rest lives in the pages it links. The full verdict page holds the findings the README's table leaves out."""
    assert len(README.read_bytes()) <= FRONT_PAGE_BYTES, f"README.md is {len(README.read_bytes())} bytes"
    assert "No trained model bears out:" not in README.read_text() and "No trained model bears out:" in VERDICTS_PAGE.read_text()


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(README.parent)))
def test_every_link_of_the_pages_lands(page):
    """Break: a link to a file that is not there, or to a heading it does not have."""
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        found = (page.parent / path).resolve() if path else page
        headings = {slug(line.lstrip("#")) for line in found.read_text().splitlines() if line.startswith("#")} \
            if found.is_file() and found.suffix == ".md" else set()
        if not found.exists() or (anchor and anchor not in headings):
            missing.append(target)
    assert not missing, f"{page.name}: {missing}"


def test_every_generated_block_of_the_pages_is_fresh():
    """Break: an option's help changed in the code but not in the page's table."""
    assert docs.stale() == []


def test_a_changed_option_makes_its_table_stale(monkeypatch):
    changed = (replace(docs.OPTIONS[0], help="something else"), *docs.OPTIONS[1:])
    monkeypatch.setattr(docs, "OPTIONS", changed)
    assert docs.stale() == ["claims/README.md: options"]


def test_a_changed_claim_or_recorded_null_makes_its_table_stale(monkeypatch, tmp_path):
    """Break: a claim's sentence changed in the registry, or an entry recorded in nulls.json without its page."""
    rules = dict(docs.RULES)
    rules["L3-sparser-with-depth"] = replace(rules["L3-sparser-with-depth"], sentence="something else")
    monkeypatch.setattr(docs, "RULES", rules)
    assert docs.stale() == ["claims/README.md: registry"]
    monkeypatch.undo()
    data = json.loads(docs.nulls.NULLS.read_text())
    data["entries"] = dict(list(data["entries"].items())[1:])
    fewer = tmp_path / "nulls.json"
    fewer.write_text(json.dumps(data))
    monkeypatch.setattr(docs.nulls, "NULLS", fewer)
    monkeypatch.setattr(docs.nulls.load, "__defaults__", (fewer,))
    assert docs.stale() == ["claims/README.md: nulls", "claims/README.md: calibration"]


def test_a_new_claim_test_makes_the_table_of_tests_stale(monkeypatch, tmp_path):
    """Break: a test added to a block file but not to the page."""
    for path in docs.CLAIM_FILES.glob("test_*.py"):
        (tmp_path / path.name).write_text(path.read_text())
    block3 = tmp_path / "test_block3_depth.py"
    block3.write_text(block3.read_text() + '\n\ndef test_new(model):\n    """"A new sentence"."""\n')
    monkeypatch.setattr(docs, "CLAIM_FILES", tmp_path)
    assert docs.stale() == ["claims/README.md: claim-tests"]


def page_commands() -> list[tuple[str, list[str]]]:
    """Every command of the pages' ``bash`` blocks, one per ``&&`` part: (page, its words), comments dropped."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", page.read_text(), re.S):
            for line in block.splitlines():
                for part in line.split("#", 1)[0].split("&&"):
                    if part.strip():
                        found.append((page.relative_to(README.parent).as_posix(), shlex.split(part)))
    return found


def test_every_command_of_the_pages_names_options_that_exist(pytester, capsys):
    """Each ``pytest claims ...`` or ``python -m claims test ...`` of a page parses with the suite's options (pytest's
    own parser: an unknown or misspelt option is a usage error); each other ``python -m claims COMMAND`` names a
    command whose ``--help`` lists every option it gives. Break: a command with a misspelt option fails."""
    commands = page_commands()
    assert len(commands) >= 10
    checked = [words for _, words in commands if check_command(pytester, capsys, words)]
    assert len(checked) >= 10
    with pytest.raises(AssertionError, match="--weigths"):
        check_command(pytester, capsys, ["pytest", "claims", "--weigths", "none"])
    with pytest.raises(AssertionError, match="--al"):
        check_command(pytester, capsys, ["python", "-m", "claims", "calibration", "--al"])


def check_command(pytester, capsys, words: list[str]) -> bool:
    """Checks one command of a page (see above); False for one that is not the suite's (pip, a shell line)."""
    if words[:2] == ["pytest", "claims"] or words[:2] == ["pytest", "claims/bench"]:
        arguments = words[2:]
    elif words[:4] == ["python", "-m", "claims", "test"]:
        arguments = words[4:]
    elif words[:3] == ["python", "-m", "claims"]:
        command = words[3]
        assert command in CLAIMS_COMMANDS, f"{' '.join(words)}: no command {command}"
        with pytest.raises(SystemExit):
            importlib.import_module(CLAIMS_COMMANDS[command]).main(["--help"])
        shown = capsys.readouterr().out
        unknown = [word for word in words[4:] if word.startswith("-")
                   and not re.search(rf"(?<![\w-]){re.escape(word.split('=')[0])}(?![\w-])", shown)]
        assert not unknown, f"{' '.join(words)}: {unknown} not among the options of python -m claims {command}"
        return True
    elif words == ["pytest"]:
        return True
    else:
        return False
    try:
        pytester.parseconfig(str(README.parent / "claims"), *arguments)
    except (pytest.UsageError, SystemExit) as error:
        raise AssertionError(f"{' '.join(words)}: {error} {capsys.readouterr().err[-300:]}") from None
    return True
