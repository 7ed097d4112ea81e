"""Installable, and a good guest: the wheel carries the claims and their recorded data and everything they need
to run; installed into another project's environment it changes none of that project's pytest runs (no
plugin, no option, no torch at start-up), and runs from that project's folder with ``python -m claims test``,
as the suite page's CI job runs it, gating the project's own checkpoint from a file in the project."""
from __future__ import annotations

import re
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.installed import ROOT, build_wheel, clean_environment, dependencies, fresh_venv

RECORDED_DATA = ("claims/nulls.json", "claims/expectations.toml", "claims/object_boxes.csv", "cnn_core/fixtures.csv",
                 "claims/session/suite.ini")
# A host project's own options: generic names an ML repository's conftest often declares.
HOST_OPTIONS = ("--device", "--model", "--weights", "--report", "--images", "--image")
HOST_CONFTEST = f"""
def pytest_addoption(parser):
    for name in {HOST_OPTIONS!r}:
        parser.addoption(name, default=None)
"""
HOST_TEST = """
import sys


def test_the_hosts_own_options_and_nothing_heavy(pytestconfig):
    assert pytestconfig.getoption("--device") is None
    assert "torch" not in sys.modules, "something imported torch at pytest start-up"
    assert not [name for name, _ in pytestconfig.pluginmanager.list_name_plugin() if "claims" in str(name)]
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def dependency_folder(tmp_path_factory) -> Path:
    # Named as site-packages are: hypothesis scans the source of every module outside one for constants.
    return dependencies(tmp_path_factory.mktemp("dependencies") / "site-packages")


@pytest.fixture(scope="module")
def project(wheel, dependency_folder, tmp_path_factory) -> tuple[Path, Path]:
    """Another project, as the suite page's CI job finds it: its conftest declares ``--device``, ``--model``, ...,
    its pyproject has pytest settings, it has a test of its own, and the suite's wheel in ``ci/wheels/``; in a
    fresh venv where the job's install step installed the wheel (pip, no extras, offline: the dependencies are
    found installed). Its python and its folder."""
    root = tmp_path_factory.mktemp("host")
    python = fresh_venv(root / "venv", dependency_folder)
    folder = root / "another-project"
    (folder / "ci" / "wheels").mkdir(parents=True)
    (folder / "checkpoints").mkdir()
    (folder / "ci" / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    (folder / "conftest.py").write_text(HOST_CONFTEST)
    (folder / "test_theirs.py").write_text(HOST_TEST)
    (folder / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-ra --strict-markers"\n')
    install = next(step["run"] for step in readme_ci_job()["steps"] if "pip install" in step.get("run", ""))
    done = run_in(python, folder, install)
    assert done.returncode == 0, install + "\n" + done.stdout[-3000:] + done.stderr[-2000:]
    return python, folder


def run_in(python: Path, folder: Path, command: str, **environment: str) -> subprocess.CompletedProcess:
    """``command`` in bash in ``folder``, with the venv of ``python`` first on the PATH, as a CI step runs it."""
    env = clean_environment(**environment)
    return subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=folder, capture_output=True, text=True,
                          timeout=600, env={**env, "PATH": f"{python.parent}:{env['PATH']}"})


SUITE_PAGE = ROOT / "claims" / "README.md"  # "In another project's CI": the job and its commands


def readme_ci_job() -> dict:
    """The GitHub Actions job of the suite page's "In another project's CI", as YAML reads it."""
    text = SUITE_PAGE.read_text()
    block = re.search(r"<!-- ci-recipe -->\s*```yaml\n(.*?)```\s*<!-- /ci-recipe -->", text, re.S)
    assert block, "the suite page's CI recipe block is missing"
    (job,) = yaml.safe_load(block.group(1))["jobs"].values()
    return job


def readme_command(name: str) -> str:
    """A command the suite page's CI section shows in a block marked ``<!-- ci-NAME -->``."""
    text = SUITE_PAGE.read_text()
    block = re.search(rf"<!-- ci-{name} -->\s*```bash\n(.*?)```", text, re.S)
    assert block, f"the suite page's ci-{name} block is missing"
    return block.group(1).strip()


def run_steps(job: dict, python: Path, folder: Path, **environment: str) -> subprocess.CompletedProcess:
    """Every ``run:`` step of the job, in order, as GitHub Actions runs them (its ``uses:`` steps set up what the
    fresh venv already is: the checkout and a python); the last step's result, or the first failing one's."""
    for step in job["steps"]:
        if "run" in step:
            result = run_in(python, folder, step["run"], **environment)
            if result.returncode != 0:
                break
    return result


def shuffle_first_conv(source: Path, target: Path) -> None:
    """A "fine-tune" that destroys the first conv's learned filters: its weights shuffled, the rest as they were."""
    weights = torch.load(source)
    first = weights["features.0.0.weight"]
    shuffled = torch.randperm(first.numel(), generator=torch.Generator().manual_seed(0))
    weights["features.0.0.weight"] = first.flatten()[shuffled].view_as(first)
    torch.save(weights, target)


def test_the_wheel_holds_every_claim_module_and_the_recorded_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "claims").rglob("*.py")}
    assert not modules - names, sorted(modules - names)
    assert not set(RECORDED_DATA) - names, sorted(set(RECORDED_DATA) - names)


def test_the_wheel_needs_no_extra_to_run_the_claims_and_registers_no_plugin(wheel):
    """`pip install` of the wheel alone brings pytest, hypothesis and pytest-benchmark; extras are for the
    optional parts only. No pytest11 entry point: nothing loads in another project's pytest."""
    with zipfile.ZipFile(wheel) as archive:
        info = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(info).decode())
        entry_points = [name for name in archive.namelist() if name.endswith(".dist-info/entry_points.txt")]
        plugins = archive.read(entry_points[0]).decode() if entry_points else ""
    required = {re.split(r"[<>=;\[ ]", requirement)[0] for requirement in metadata.get_all("Requires-Dist")
                if "extra ==" not in requirement}
    assert {"torch", "torchvision", "pytest", "hypothesis", "pytest-benchmark", "onnx"} <= required, required
    assert set(metadata.get_all("Provides-Extra")) >= {"timm", "report", "bench"}
    assert "pytest11" not in plugins, plugins


def test_installed_it_changes_no_pytest_run_of_the_project(project):
    """The project's own `pytest`, with its own --device, --model, ... options: it passes, with no torch imported
    and no plugin of the suite loaded (at 0368532 it crashed: option dest 'device' already used)."""
    python, folder = project
    where = run_in(python, folder, "python -c 'import claims; print(claims.__file__)'").stdout.strip()
    assert str(ROOT) not in where and where.endswith("site-packages/claims/__init__.py"), where  # the wheel's
    result = run_in(python, folder, "python -m pytest -q -p no:cacheprovider")
    assert result.returncode == 0 and re.search(r"\b1 passed\b", result.stdout), result.stdout[-3000:] + result.stderr[-2000:]


def test_the_readmes_ci_job_gates_the_projects_checkpoint(project, fixtures_with_photos, offline_classifier):
    """The suite page's job, step by step, from that project's folder (whose conftest declares --model too): the
    project saves its checkpoint (the offline MobileNetV2) and records its expectations with the suite page's command;
    the job passes; a fine-tune that shuffles the first conv's weights fails it, each changed claim named on a
    line of its own; then the suite page's side-by-side command shows what changed from the base to the fine-tune
    (each checkpoint's measurements are remembered from the runs before, in the project's pytest cache)."""
    python, folder = project
    job = readme_ci_job()
    checkpoint, base = folder / "checkpoints" / "model.pth", folder / "checkpoints" / "base.pth"
    torch.save(offline_classifier.state_dict(), checkpoint)
    fixtures = {"CNN_CLAIMS_FIXTURES": str(fixtures_with_photos.folder)}  # the fetch verifies, downloads nothing
    record = run_in(python, folder, readme_command("record"), **fixtures)
    assert record.returncode == 0 and (folder / "ci" / "claims.toml").is_file(), record.stdout[-3000:] + record.stderr[-2000:]

    passed = run_steps(job, python, folder, **fixtures)
    assert passed.returncode == 0, passed.stdout[-4000:] + passed.stderr[-2000:]
    assert re.search(r"expectations ci/claims.toml: \d+ verdicts gated, none changed", passed.stdout), passed.stdout[-3000:]

    checkpoint.rename(base)
    shuffle_first_conv(base, checkpoint)
    failed = run_steps(job, python, folder, **fixtures)
    changed = [line for line in failed.stdout.splitlines() if line.startswith("  CHANGED ")]
    assert failed.returncode == 1 and changed, failed.stdout[-4000:] + failed.stderr[-2000:]
    assert any(line.startswith("  CHANGED L1-filters-detect-colours on mobilenet_v2.file-model: recorded CONFIRMED")
               for line in changed), changed

    compared = run_in(python, folder, readme_command("compare"), **fixtures)
    assert compared.returncode == 0, compared.stdout[-4000:] + compared.stderr[-2000:]
    what = compared.stdout.split("What changed from mobilenet_v2.file-base to mobilenet_v2.file-model:", 1)
    assert len(what) == 2 and '"... (..., color gradient, etc.)": CONFIRMED → REFUTED' in what[1], compared.stdout[-4000:]
