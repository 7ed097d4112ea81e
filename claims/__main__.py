"""``python -m claims COMMAND [ARGS]``: the suite's commands, each a module's ``main``.

    python -m claims test [ARGS]    the claims, a pytest session of their own (from any folder; ARGS: pytest's
                                    and the suite's options, e.g. --model resnet18 --weights ours.pth)
    python -m claims fetch          the fixture files (photos, Tiny VGG), checked, into the cache folder
    python -m claims readme         the README's verdict tables from a run's claims.json
    python -m claims docs           the pages' other generated tables (--check: which are stale)
    python -m claims recorded       every recorded null re-measured and compared
    python -m claims calibration    the false-confirm rate over random controls
    python -m claims sweep          the structural claims over torchvision's and timm's zoo
"""
from __future__ import annotations

import difflib
import importlib
import sys

# Imported only when named: each command needs only its own module (the fetch must not wait for matplotlib).
COMMANDS = {
    "test": "claims.session.suite",
    "fetch": "claims.session.fetch",
    "readme": "claims.showing.readme",
    "docs": "claims.showing.docs",
    "recorded": "claims.judging.recorded",
    "calibration": "claims.judging.calibration",
    "sweep": "claims.tools.sweep",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if argv else 2
    command, *rest = argv
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, COMMANDS, n=1)
        print(f"python -m claims: no command {command!r}" + (f"; did you mean {close[0]!r}?" if close else "")
              + f" (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[command]).main(rest)


if __name__ == "__main__":
    sys.exit(main())
