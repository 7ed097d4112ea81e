"""``python -m claims test [PYTEST OPTIONS]``: the claims as a pytest session of their own, from any folder.

The installed package registers no pytest plugin: installing it changes no other pytest run. This
command starts pytest on the package's own folder, so that its conftest, and only its, loads the
suite's plugin and options (``--model``, ``--weights``, ``--expectations``, ...), whatever the host
project's conftest declares: the host's conftest and pytest settings are not read (the suite's
``suite.ini`` is), and the host's other tests are not collected. Paths in the options are taken from
the current folder, the report (``--report``) and pytest's cache are written there, and any pytest
option passes through (``-m learned``, ``-k``, ``-x``, ``-n 2``).

    python -m claims test --model resnet18 --weights ours.pth --expectations ci/claims.toml
"""
from __future__ import annotations

import sys
from pathlib import Path

SUITE = Path(__file__).resolve().parents[1]  # the claims package: its block files and conftest
SETTINGS = Path(__file__).with_name("suite.ini")


def pytest_arguments(arguments: list[str], folder: Path) -> list[str]:
    """pytest's command line: the suite's plugin named up front (so that its options are known before pytest
    looks for conftests, and ``--weights ours.pth`` is not taken for a folder whose conftest to read), the
    suite's folder and settings, the cache in ``folder`` (never inside the installed package), then the
    user's ``arguments``."""
    cache = [] if "no:cacheprovider" in arguments else ["-o", f"cache_dir={folder / '.pytest_cache'}"]
    return ["-p", "claims.session.plugin", str(SUITE), "-c", str(SETTINGS), "--rootdir", str(SUITE.parent),
            "--confcutdir", str(SUITE), *cache, *arguments]


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
    import pytest  # here, not above: `python -m claims fetch` need not wait for pytest's plugins

    return int(pytest.main(pytest_arguments(argv, Path.cwd())))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
