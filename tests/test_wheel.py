"""Installable: the wheel carries the claims and their recorded data, and an installed suite runs from
another project's folder with ``pytest --pyargs claims``, as that project's CI would run it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Block 1's shape claims and the erratum's first layer: seconds, with the model built and the options parsed.
FEW_CLAIMS = "first_conv_gives_64_maps or conv_arithmetic or first_layer_is_a_64_filter"
RECORDED_DATA = ("claims/nulls.json", "claims/expectations.toml", "claims/object_boxes.csv", "cnn_core/fixtures.csv")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built as ``pip wheel .`` builds it (no dependencies; setuptools from this
    environment), from a copy of the sources: setuptools writes its build folders beside them."""
    sources = tmp_path_factory.mktemp("sources") / "cnn-claims"
    shutil.copytree(ROOT, sources, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".benchmarks", "reports"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(sources), "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out)], check=True, capture_output=True, text=True, timeout=300)
    (found,) = out.glob("cnn_claims-*.whl")
    return found


def test_the_wheel_holds_every_claim_module_and_the_recorded_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "claims").rglob("*.py")}
    assert not modules - names, sorted(modules - names)
    assert not set(RECORDED_DATA) - names, sorted(set(RECORDED_DATA) - names)


def test_an_installed_suite_runs_from_another_projects_folder(wheel, tmp_path):
    """A fresh venv with the wheel alone installed in it (its dependencies seen from this environment's
    site-packages, where the clone's editable install is not active: a plain path, no .pth processed), run
    from an empty folder: the claims come from the installed package, not from the clone."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    with zipfile.ZipFile(wheel) as archive:  # what `pip install --no-deps` does with a pure-Python wheel
        archive.extractall(site)
    project = tmp_path / "another-project"
    project.mkdir()
    clean = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import claims; print(claims.__file__)"], cwd=project, env=clean,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where == str(site / "claims" / "__init__.py"), where
    result = subprocess.run([str(python), "-m", "pytest", "--pyargs", "claims", "-q", "-p", "no:cacheprovider",
                             "-m", "structural", "--model", "vgg16", "-k", FEW_CLAIMS],
                            cwd=project, env=clean, capture_output=True, text=True, timeout=600)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0 and "3 passed" in summary, result.stdout[-3000:] + result.stderr[-2000:]
