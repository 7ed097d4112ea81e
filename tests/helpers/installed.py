"""The suite as a user installs it: its wheel, and fresh virtual environments that see this environment's
dependencies (torch and the rest, through a ``.pth`` line) but not the clone's own editable install."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The clone's editable install: a venv that saw it would import the clone instead of the installed wheel.
EDITABLE = ("__editable__", "cnn_claims", "claims", "cnn_core")


def build_wheel(folder: Path) -> Path:
    """The project's wheel, built as ``pip wheel .`` builds it (no dependencies; setuptools from this
    environment), from a copy of the sources: setuptools writes its build folders beside them."""
    sources = folder / "sources" / "cnn-claims"
    shutil.copytree(ROOT, sources, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".benchmarks", "reports"))
    out = folder / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(sources), "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out)], check=True, capture_output=True, text=True, timeout=300)
    (found,) = out.glob("cnn_claims-*.whl")
    return found


def dependencies(folder: Path) -> Path:
    """A folder of links to this environment's installed packages, less the clone's own: what a fresh venv's
    ``.pth`` line points at (links cost nothing; torch is not copied)."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(EDITABLE):
            (folder / entry.name).symlink_to(entry)
    return folder


def fresh_venv(folder: Path, dependency_folder: Path) -> Path:
    """A new virtual environment at ``folder`` whose site-packages sees ``dependency_folder``; its python. Its
    pip and setuptools are this environment's too (ensurepip's older setuptools would shadow the one torch needs)."""
    venv.create(folder, with_pip=False)
    python = folder / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(f"{dependency_folder}\n")
    return python


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without what would point a child at the clone (PYTHONPATH), plus ``extra``;
    pip offline (every dependency is installed already; nothing is fetched)."""
    offline = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return {**{key: value for key, value in os.environ.items() if key != "PYTHONPATH"}, **offline, **extra}

