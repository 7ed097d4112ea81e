"""The structural claims over many architectures: one table of which notebook sentences hold where.

    python -m claims sweep                       # every torchvision classifier and the timm families
    python -m claims sweep --models torchvision  # or: timm, or a comma list of names
    python -m claims sweep --out reports/sweep --timeout 300
    python -m claims sweep --shard 1/2 --out A & python -m claims sweep --shard 2/2 --out B; python -m claims sweep --combine A B

Each model runs in its own ``pytest claims -m "not learned" --model NAME --weights none``
(only the tests parametrized by that model; the deliberate breaks do not depend on it), so one
model that crashes or runs out of time costs its own row and no other. The table gives, per model,
the seconds pytest counted, the structural verdicts with their values, the tests that passed,
failed or were not measured, and each failure's first line. Rows are written as they finish, so
an interrupted sweep keeps what it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cnn_core
from claims.judging.rules import NOT_MEASURED, RULES, Verdict
from cnn_core.models import TIMM_PREFIX

ROOT = Path(__file__).resolve().parents[2]  # the clone: the sweep runs its pytest claims
OUT = ROOT / "reports" / "sweep"
STRUCTURAL_VERDICTS = tuple(claim for claim, rule in RULES.items() if not rule.learned)
# One small member of each timm family the issue names, and a few more designs (attention-free
# hybrids of conv and pooling that torchvision lacks): random weights, timm's own init.
TIMM_FAMILIES = (
    "resnet18", "efficientnet_b0", "tf_efficientnet_b0", "mobilenetv3_small_100", "convnext_atto",
    "regnetx_002", "densenet121", "ghostnet_100", "mixnet_s", "rexnet_100", "vgg11", "inception_v3",
    "dla34", "cspresnet50", "hrnet_w18_small",
)
TIMEOUT_S = 300


@dataclass
class Row:
    model: str
    seconds: float | None = None  # pytest's own count (no interpreter start or collection)
    wall: float | None = None
    passed: int = 0
    failed: int = 0
    skipped: list[str] = field(default_factory=list)  # "test: reason"
    verdicts: dict[str, dict] = field(default_factory=dict)  # claim -> status, measured, threshold, detail
    failures: list[str] = field(default_factory=list)  # "test: first line of the failure"
    error: str | None = None  # the run itself broke: timeout, crash, collection error
    commit: str = ""  # the suite's git commit that measured the row

    @property
    def outcome(self) -> str:
        if self.error:
            return "ERROR"
        return "FAIL" if self.failed else "ok"


def models_for(choice: str) -> list[str]:
    names: list[str] = []
    for part in choice.split(","):
        if part == "torchvision":
            names += cnn_core.available_models()
        elif part == "timm":
            names += [TIMM_PREFIX + name for name in TIMM_FAMILIES]
        elif part == "all":
            names += cnn_core.available_models() + [TIMM_PREFIX + name for name in TIMM_FAMILIES]
        elif part:
            names.append(part)
    return names


def command(name: str, junit: Path, fixtures: str | None) -> list[str]:
    return [sys.executable, "-m", "pytest", "claims", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "-m", "not learned", "--model", name, "--weights", "none", "-k", f"{name} and not bench",
            "--junitxml", str(junit)] + (["--fixtures-dir", fixtures] if fixtures else [])


def run_model(name: str, timeout: float, fixtures: str | None, threads: int | None = None) -> Row:
    row = Row(name)
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "junit.xml"
        start = time.perf_counter()
        try:
            result = subprocess.run(command(name, junit, fixtures), cwd=ROOT, capture_output=True, text=True,
                                    timeout=timeout, env=child_environment(threads))
        except subprocess.TimeoutExpired:
            row.wall = round(time.perf_counter() - start, 1)
            row.error = f"did not finish in {timeout:g} s"
            return row
        row.wall = round(time.perf_counter() - start, 1)
        if not junit.is_file() or result.returncode not in (0, 1):
            tail = (result.stderr or result.stdout).strip().splitlines()
            row.error = f"pytest exited {result.returncode}: {tail[-1] if tail else 'no output'}"
            return row
        read_junit(row, ET.parse(junit).getroot())
    return row


def child_environment(threads: int | None) -> dict[str, str]:
    """The model's pytest with ``threads`` CPU threads (torch reads OMP_NUM_THREADS at start)."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else dict(os.environ)


def read_junit(row: Row, root: ET.Element) -> None:
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    row.seconds = round(float(suite.get("time", 0.0)), 1)
    for case in suite.iter("testcase"):
        test = case.get("name")
        for prop in case.iter("property"):
            if prop.get("name") == "verdict":
                verdict = Verdict.from_json(prop.get("value"))
                row.verdicts[verdict.claim] = {"status": verdict.status, "measured": verdict.measured,
                                               "threshold": verdict.rule_text, "detail": verdict.detail}
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skip = case.find("skipped")
        if problem is not None:
            row.failed += 1
            row.failures.append(f"{test}: {first_line(problem.get('message') or problem.text or '')}")
        elif skip is not None:
            row.skipped.append(f"{test}: {first_line(skip.get('message') or '')}")
        else:
            row.passed += 1


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else "")[:240]


def cell(verdict: dict | None) -> str:
    if verdict is None:
        return "—"
    if verdict["status"] == NOT_MEASURED:
        return f"NOT MEASURED: {verdict['detail']}"
    return f"{verdict['status']} {verdict['measured']:.4g}"


def markdown(rows: list[Row], header: str) -> str:
    claims = "".join(f" {claim} |" for claim in STRUCTURAL_VERDICTS)
    lines = [header, "", "| model | s | tests | outcome |" + claims + " notes |",
             "|---|---:|---|---|" + "---|" * len(STRUCTURAL_VERDICTS) + "---|"]
    for row in rows:
        tests = f"{row.passed} passed" + (f", {row.failed} failed" if row.failed else "") \
            + (f", {len(row.skipped)} not measured" if row.skipped else "")
        seconds = f"{row.seconds:.0f}" if row.seconds is not None else f">{row.wall:.0f}"
        notes = "; ".join(row.failures[:3] + row.skipped[:2] + ([row.error] if row.error else []))
        verdicts = "".join(f" {cell(row.verdicts.get(claim))} |" for claim in STRUCTURAL_VERDICTS)
        lines.append(f"| {row.model} | {seconds} | {tests if not row.error else '—'} | {row.outcome} |{verdicts} "
                     f"{notes.replace('|', '/')} |")
    lines += ["", "The rules: " + "; ".join(f"{claim}: {RULES[claim].describe()}" for claim in STRUCTURAL_VERDICTS)]
    return "\n".join(lines) + "\n"


def load_rows(out: Path) -> list[Row]:
    path = out / "sweep.json"
    return [Row(**row) for row in json.loads(path.read_text())] if path.is_file() else []


def merged(kept: list[Row], fresh: list[Row]) -> list[Row]:
    """``kept`` with the rows of the models run again replaced in place, new models appended."""
    by_model = {row.model: row for row in fresh}
    return [by_model.pop(row.model, row) for row in kept] + list(by_model.values())


def sweep(names: list[str], out: Path, timeout: float, fixtures: str | None, threads: int | None = None,
          update: bool = False) -> list[Row]:
    """Run ``names`` one by one, writing sweep.json and sweep.md after each; with ``update``, the
    rows already in ``out`` are kept and only these models' rows replaced."""
    out.mkdir(parents=True, exist_ok=True)
    kept = load_rows(out) if update else []
    rows: list[Row] = []
    commit = suite_commit()
    for index, name in enumerate(names, 1):
        print(f"[{index}/{len(names)}] {name} ...", end=" ", flush=True)
        row = run_model(name, timeout, fixtures, threads)
        row.commit = commit
        rows.append(row)
        print(f"{row.outcome} in {row.wall:.0f} s" + (f" ({row.error})" if row.error else ""), flush=True)
        write_table(out, merged(kept, rows), threads)
    return rows


def suite_commit() -> str:
    """The checkout's commit, marked ``+changes`` when files differ from it (or "unknown" outside git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    return (commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")) if commit else "unknown"


def write_table(out: Path, table: list[Row], threads: int | None) -> None:
    (out / "sweep.json").write_text(json.dumps([asdict(r) for r in table], indent=1) + "\n")
    wall = sum(row.wall or 0.0 for row in table)
    commits = Counter(row.commit or "unknown" for row in table)
    header = (f"# The structural claims on {len(table)} architectures (random weights)\n\n"
              f"`python -m claims sweep` on {threads or os.cpu_count()} CPU thread(s) per model: {wall / 60:.0f} min "
              f"of wall time in all, measured at commit "
              + ", ".join(f"{commit} ({count} models)" for commit, count in commits.most_common())
              + ". The s column is pytest's count per model (without starting Python and collecting, about 10 s more).")
    (out / "sweep.md").write_text(markdown(table, header))


def shard(names: list[str], part: str) -> list[str]:
    """``part`` "i/n": every n-th name from the i-th (1-based), so that n sweeps share the machine."""
    index, count = (int(v) for v in part.split("/"))
    return names[index - 1::count]


def combine(folders: list[Path], out: Path, order: list[str], threads: int | None) -> list[Row]:
    """The rows of several sweeps' folders in one table, in ``order`` (then any others)."""
    rows = {row.model: row for folder in folders for row in load_rows(folder)}
    table = [rows.pop(name) for name in order if name in rows] + list(rows.values())
    out.mkdir(parents=True, exist_ok=True)
    write_table(out, table, threads)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claims sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="all", help="all | torchvision | timm | a comma list of names")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for sweep.md and sweep.json (default {OUT})")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds one model may take")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per model (default: all)")
    parser.add_argument("--update", action="store_true", help="keep the rows already in --out; replace these models' rows")
    parser.add_argument("--shard", default=None, metavar="I/N", help="run every N-th model from the I-th (parallel sweeps)")
    parser.add_argument("--combine", nargs="+", type=Path, default=None, metavar="DIR",
                        help="run nothing: write --out's table from these sweeps' folders, in --models order")
    parser.add_argument("--fixtures-dir", default=None, help="passed on to pytest (the notebook's photo needs none)")
    args = parser.parse_args(argv)
    names = models_for(args.models)
    if args.combine:
        rows = combine(args.combine, args.out, names, args.threads)
    else:
        names = shard(names, args.shard) if args.shard else names
        rows = sweep(names, args.out, args.timeout, args.fixtures_dir, args.threads, args.update)
    broken = [row.model for row in rows if row.outcome != "ok"]
    print(f"{len(rows) - len(broken)} of {len(rows)} models ok" + (f"; not ok: {', '.join(broken)}" if broken else ""))
    print(f"table: {args.out / 'sweep.md'}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
