"""CI runs the README's Quickstart and nothing else: one source of truth for what a new user runs."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_module():
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / ".ci" / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ci_runs_the_readmes_quickstart_commands_themselves():
    commands = quickstart_module().quickstart_commands((ROOT / "README.md").read_text())
    assert commands[0].startswith('python -m pip install -e ".[dev]"')
    assert commands[1:] == ["pytest claims", "pytest"]
    run = (ROOT / ".ci" / "run").read_text()
    assert 'commands="$(python3 .ci/quickstart.py)"' in run and 'bash -euxo pipefail -c "$commands"' in run
    # Nothing after the Quickstart: CI runs no test command of its own.
    assert run.rstrip().endswith('bash -euxo pipefail -c "$commands"')


def test_a_readme_without_the_markers_stops_ci_with_a_clear_message():
    try:
        quickstart_module().quickstart_commands("# no quickstart here")
    except SystemExit as stop:
        assert "no ```bash block between <!-- quickstart -->" in str(stop)
    else:
        raise AssertionError("a README without the quickstart block must stop CI")
