"""Installable, and a good guest: the wheel carries the claims and their recorded data and everything they need
to run; installed into another project's environment it changes none of that project's pytest runs (no
plugin, no option, no torch at start-up), and runs from that project's folder with ``python -m claims test``,
as the README's CI job runs it, gating the project's own checkpoint from a file in the project."""
from __future__ import annotations

import re
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.installed import ROOT, build_wheel, clean_environment, dependencies, fresh_venv, pip_install

# Block 1's shape claims and the erratum's first layer: seconds, with the model built and the options parsed.
FEW_CLAIMS = "first_conv_gives_64_maps or conv_arithmetic or first_layer_is_a_64_filter"
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
def host(wheel, dependency_folder, tmp_path_factory) -> tuple[Path, Path]:
    """Another project (its conftest declares ``--device``, ``--model``, ... and its pyproject has pytest
    settings) in a fresh venv with the wheel installed by pip, no extras; its python and its folder."""
    root = tmp_path_factory.mktemp("host")
    python = fresh_venv(root / "venv", dependency_folder)
    pip_install(python, wheel)
    project = root / "another-project"
    project.mkdir()
    (project / "conftest.py").write_text(HOST_CONFTEST)
    (project / "test_theirs.py").write_text(HOST_TEST)
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-ra --strict-markers"\n')
    return python, project


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


def test_installed_it_changes_no_pytest_run_of_the_project(host):
    """The project's own `pytest`, with its own --device, --model, ... options: it passes, with no torch imported
    and no plugin of the suite loaded (at 0368532 it crashed: option dest 'device' already used)."""
    python, project = host
    result = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                            env=clean_environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and re.search(r"\b1 passed\b", result.stdout), result.stdout[-3000:] + result.stderr[-2000:]


def test_an_installed_suite_runs_from_the_projects_folder(host):
    """``python -m claims test`` from that folder: the claims come from the installed package, not the clone,
    and the project's conftest (which declares --model too) is not read."""
    python, project = host
    where = subprocess.run([str(python), "-c", "import claims; print(claims.__file__)"], cwd=project,
                           env=clean_environment(), capture_output=True, text=True, check=True).stdout.strip()
    assert str(ROOT) not in where and where.endswith("site-packages/claims/__init__.py"), where
    result = subprocess.run([str(python), "-m", "claims", "test", "-q", "-p", "no:cacheprovider", "-m", "structural",
                             "--model", "vgg16", "-k", FEW_CLAIMS],
                            cwd=project, env=clean_environment(), capture_output=True, text=True, timeout=600)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0 and "3 passed" in summary, result.stdout[-3000:] + result.stderr[-2000:]


def readme_ci_job() -> dict:
    """The GitHub Actions job of the README's "In another project's CI", as YAML reads it."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- ci-recipe -->\s*```yaml\n(.*?)```\s*<!-- /ci-recipe -->", text, re.S)
    assert block, "the README's CI recipe block is missing"
    workflow = yaml.safe_load(block.group(1))
    (job,) = workflow["jobs"].values()
    return job


def run_steps(job: dict, python: Path, project: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    """Every ``run:`` step of the job, in order, in bash, as GitHub Actions runs them (``uses:`` steps set up
    what the fresh venv already is: the checkout and a python); the first failing step's result."""
    bin_folder = str(python.parent)
    for step in job["steps"]:
        if "run" not in step:
            continue
        result = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=project, capture_output=True,
                                text=True, timeout=600,
                                env={**environment, "PATH": f"{bin_folder}:{environment['PATH']}"})
        if result.returncode != 0:
            return result
    return result


def test_the_readmes_ci_job_gates_the_projects_checkpoint(wheel, dependency_folder, fixtures_with_photos,
                                                          offline_classifier, tmp_path):
    """The README's job, step by step, in a fresh venv and a project of its own: the project saves its checkpoint
    (the offline MobileNetV2) and records its expectations with the README's command; the job passes; then a
    fine-tune that shuffles the first conv's weights fails it, each changed claim named on a line of its own."""
    job = readme_ci_job()
    project = tmp_path / "project"
    (project / "checkpoints").mkdir(parents=True)
    (project / "ci" / "wheels").mkdir(parents=True)
    (project / "ci" / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    checkpoint = project / "checkpoints" / "model.pth"
    torch.save(offline_classifier.state_dict(), checkpoint)
    python = fresh_venv(tmp_path / "venv", dependency_folder)
    # No network: pip finds every dependency installed already; the fetch verifies the fixtures folder instead.
    environment = clean_environment(CNN_CLAIMS_FIXTURES=str(fixtures_with_photos.folder))
    record = readme_command("record")
    install = next(step["run"] for step in job["steps"] if "pip install" in step.get("run", ""))
    for command in (install, record):
        done = subprocess.run(["bash", "-c", command], cwd=project, capture_output=True, text=True, timeout=600,
                              env={**environment, "PATH": f"{python.parent}:{environment['PATH']}"})
        assert done.returncode == 0, command + "\n" + done.stdout[-3000:] + done.stderr[-2000:]
    assert (project / "ci" / "claims.toml").is_file()

    passed = run_steps(job, python, project, environment)
    assert passed.returncode == 0, passed.stdout[-4000:] + passed.stderr[-2000:]
    assert re.search(r"expectations ci/claims.toml: \d+ verdicts gated, none changed", passed.stdout), passed.stdout[-3000:]

    weights = torch.load(checkpoint)
    first = weights["features.0.0.weight"]
    shuffled = torch.randperm(first.numel(), generator=torch.Generator().manual_seed(0))
    weights["features.0.0.weight"] = first.flatten()[shuffled].view_as(first)
    torch.save(weights, checkpoint)
    failed = run_steps(job, python, project, environment)
    changed = [line for line in failed.stdout.splitlines() if line.startswith("  CHANGED ")]
    assert failed.returncode == 1 and changed, failed.stdout[-4000:] + failed.stderr[-2000:]
    assert any(line.startswith("  CHANGED L1-filters-detect-colours on mobilenet_v2.file-model: recorded CONFIRMED")
               for line in changed), changed


def readme_command(name: str) -> str:
    """A command the README's CI section shows in a block marked ``<!-- ci-NAME -->``."""
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- ci-{name} -->\s*```bash\n(.*?)```", text, re.S)
    assert block, f"the README's ci-{name} block is missing"
    return block.group(1).strip()
