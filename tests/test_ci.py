"""CI runs the README's Quickstart and nothing else: two commands, the first setting up and running
`pytest claims`, the second `pytest`; the README's and CI's lists must be the same."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CI_MARKER = "# --- quickstart (the README's, verbatim) ---"


def readme_quickstart(text: str) -> list[str]:
    """The commands of the bash block between the README's quickstart markers, comments dropped."""
    match = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```\s*<!-- /quickstart -->", text, re.S)
    assert match is not None, "README.md has no ```bash block between <!-- quickstart --> and <!-- /quickstart -->"
    return [line.split("  #")[0].rstrip() for line in match.group(1).splitlines() if line.strip()]


def ci_quickstart(text: str) -> list[str]:
    """The commands .ci/run runs after its quickstart marker: the last thing it does."""
    assert CI_MARKER in text, f".ci/run lacks the line {CI_MARKER!r}"
    return [line.rstrip() for line in text.split(CI_MARKER, 1)[1].splitlines() if line.strip()]


def test_ci_runs_the_readmes_quickstart_commands_word_for_word():
    readme = readme_quickstart((ROOT / "README.md").read_text())
    assert len(readme) == 2 and readme[0].endswith(" && pytest claims") and readme[1] == "pytest"
    assert ci_quickstart((ROOT / ".ci" / "run").read_text()) == readme


def test_a_changed_readme_command_is_caught():
    """Break: a README that installs something else no longer matches what CI runs."""
    run = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text().replace('".[dev]"', '".[dev,extra]"', 1)
    assert ci_quickstart(run) != readme_quickstart(readme)
