"""The tables of the suite's pages that code or data already state, generated, never typed by hand:

    python -m claims docs            rewrite every generated block
    python -m claims docs --check    exit 1 and name each block that is stale (tests/test_readme.py runs it)

A block lies between ``<!-- NAME -->`` and ``<!-- /NAME -->`` in a page; today: ``options`` in
claims/README.md, from the options as the plugin declares them (``claims.session.plugin.OPTIONS``, the
text ``pytest --help`` shows too).
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from claims.session.plugin import OPTIONS

SUITE_PAGE = Path(__file__).resolve().parents[1] / "README.md"


def options_table() -> str:
    lines = ["| option | default | meaning |", "|---|---|---|"]
    lines += [f"| `{option.name}` | {option.shown_default} | {option.help.replace('%%', '%')} |" for option in OPTIONS]
    return "\n".join(lines)


BLOCKS: dict[str, tuple[Path, Callable[[], str]]] = {"options": (SUITE_PAGE, options_table)}


def pattern(name: str) -> re.Pattern:
    return re.compile(rf"<!-- {name} -->\n.*?<!-- /{name} -->", re.S)


def rewritten(text: str, name: str, block: str) -> str:
    if not pattern(name).search(text):
        raise ValueError(f"no <!-- {name} --> ... <!-- /{name} --> block")
    return pattern(name).sub(lambda _: f"<!-- {name} -->\n{block}\n<!-- /{name} -->", text)


def stale() -> list[str]:
    """The generated blocks whose page says something else than the code or data now would."""
    return [f"{page.relative_to(SUITE_PAGE.parents[1])}: {name}" for name, (page, make) in BLOCKS.items()
            if rewritten(page.read_text(), name, make()) != page.read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claims docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each stale block")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        for block in found:
            print(f"stale: {block} (regenerate with python -m claims docs)", file=sys.stderr)
        return 1 if found else 0
    for name, (page, make) in BLOCKS.items():
        page.write_text(rewritten(page.read_text(), name, make()))
        print(f"{page.relative_to(SUITE_PAGE.parents[1])}: {name} regenerated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
