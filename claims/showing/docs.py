"""The tables of the suite's pages that code or data already state, generated, never typed by hand:

    python -m claims docs            rewrite every generated block
    python -m claims docs --check    exit 1 and name each block that is stale (tests/test_readme.py runs it)

A block lies between ``<!-- NAME -->`` and ``<!-- /NAME -->`` in a page. In claims/README.md: ``options``, from
the options as the plugin declares them (``claims.session.plugin.OPTIONS``, the text ``pytest --help`` shows
too); ``registry``, from the claims registry (``claims.judging.rules.RULES``: each claim's block, sentence, rule
and its measure's docstring); ``nulls``, from ``claims/nulls.json``; ``calibration``, each recorded seed judged
against the other twenty of its entry (``claims.judging.calibration.every_recorded``: judging only, nothing
measured); ``mutants``, the mutation check's wrong edits (``claims.tools.mutants.MUTANTS``); ``claim-tests``,
every test of the block files with its markers and docstring (read with ``ast``: nothing is imported or run).
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from claims.judging import nulls
from claims.judging.calibration import (
    FRESH_ARCHITECTURES,
    FRESH_CONTROLS,
    FRESH_SEEDS,
    FRESH_FORWARD_ARCHITECTURES,
    every_recorded,
    fresh_record,
    judged_fresh,
    per_claim,
    per_family,
    recorded_and_fresh,
    replayed,
)
from claims.judging.expectations import trained_values
from claims.judging.rules import COSTS, NULL_SEEDS, RULES
from claims.judging.sequential import judged_now
from claims.judging.statistics import ALPHA, binomial_interval
from claims.session.plugin import OPTIONS
from claims.tools.mutants import MUTANTS
from cnn_core.models import preprocessing_key

SUITE_PAGE = Path(__file__).resolve().parents[1] / "README.md"


def options_table() -> str:
    lines = ["| option | default | meaning |", "|---|---|---|"]
    lines += [f"| `{option.name}` | {option.shown_default} | {option.help.replace('%%', '%')} |" for option in OPTIONS]
    return "\n".join(lines)


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").split("\n\n")[0].split())


def registry_table() -> str:
    """One row per claim of the verdict table, in the registry's order."""
    lines = ["| claim | block | notebook sentence | rule | measured as |", "|---|---|---|---|---|"]
    for claim, rule in RULES.items():
        if rule.learned:
            verdict_rule = f"beyond the random null (resolution {rule.resolution:g}); cost: {rule.cost}"
            measured = _first_paragraph(rule.measure.__doc__) + (f" [{rule.instrument_text}]" if rule.instrument else "")
        else:
            verdict_rule, measured = f"{rule.op} {rule.threshold:g}", "structural: a count of violations, exact"
        lines.append(f"| `{claim}` | {rule.block} | \"{rule.sentence}\" | {verdict_rule} | {measured.replace('|', '/')} |")
    return "\n".join(lines)


def nulls_table() -> str:
    """One row per recorded entry of ``claims/nulls.json``: the architecture, how its photos were fed, what it holds."""
    lines = ["| architecture | fed as | claims recorded | random inits |", "|---|---|---|---|"]
    for data in nulls.load().values():
        claims = sorted({claim for values in data["seeds"].values() for claim in values})
        lines.append(f"| `{data['architecture']}` | `{preprocessing_key(data['preprocessing'])}` | {len(claims)} | "
                     f"{len(data['seeds']) - 1} + the control |")
    return "\n".join(lines)


def _rate(confirmed: int, judged: int) -> str:
    low, high = binomial_interval(confirmed, judged)
    return f"{confirmed} of {judged}, {confirmed / judged:.2%} ({low:.2%}–{high:.2%})"


def calibration_tables() -> str:
    """Each recorded entry's random inits, each judged as a control against the other twenty, per entry and per claim."""
    results = every_recorded()
    lines = ["| architecture | fed as | controls | CONFIRMED of verdicts, rate (95% Clopper–Pearson) |", "|---|---|---|---|"]
    for result, data in zip(results, nulls.load().values()):
        lines.append(f"| `{result.model}` | `{preprocessing_key(data['preprocessing'])}` | {result.controls} | "
                     f"{_rate(result.confirmed, result.verdicts)} |")
    lines.append(f"| all {len(results)} entries | | {sum(r.controls for r in results)} | "
                 f"{_rate(sum(r.confirmed for r in results), sum(r.verdicts for r in results))} |")
    lines += ["", f"Per claim, over the {len(results)} entries (each seed against the other {len(NULL_SEEDS)}; "
                  f"α = {ALPHA:g}):", "", "| claim | CONFIRMED of controls, rate (95% Clopper–Pearson) |", "|---|---|"]
    lines += [f"| `{claim}` | {_rate(confirmed, judged)} |" for claim, (confirmed, judged) in per_claim(results).items()]
    fresh = per_claim(judged_fresh(fresh_record()))
    recorded = per_family(per_claim(results))
    lines += ["", f"Per claim family (`cost` in the registry): the recorded seeds above; fresh random inits, "
                  f"{FRESH_CONTROLS} controls of each architecture, each against {len(NULL_SEEDS)} others of a pool of "
                  f"{len(FRESH_SEEDS)}: the first filters' statistics on {len(FRESH_ARCHITECTURES)} torchvision "
                  f"architectures (`python -m claims calibration --fresh-weights`) and the claims of one forward pass "
                  f"on {', '.join(FRESH_FORWARD_ARCHITECTURES)}, check photos (`--fresh-forward`):", "",
              "| family | recorded seeds | fresh inits | together | together, a null measured now (two looks) |",
              "|---|---|---|---|---|"]
    looks = per_family(recorded_and_fresh(judged_now))
    for family in COSTS:
        old, new = recorded.get(family, [0, 0]), per_family(fresh).get(family, [0, 0])
        both = [old[0] + new[0], old[1] + new[1]]
        in_looks = any(rule.sequential for rule in RULES.values() if rule.cost == family)
        lines.append(f"| {family} | {_rate(*old)} | {_rate(*new) if new[1] else '—'} | {_rate(*both)} | "
                     f"{_rate(*looks[family]) if in_looks else 'the same: every seed at once'} |")
    return "\n".join(lines + ["", _replay_line()])


def _replay_line() -> str:
    """The two looks replayed on the recorded nulls, against the one-look rule, in a sentence."""
    replays = replayed(trained_values(), left_out=True)
    recorded = [replay for replay in replays if replay.subject in ("control", "trained")]
    left_out = [replay for replay in replays if replay.subject.startswith("seed")]
    same = sum(replay.one.status == replay.two.status for replay in recorded)
    moved = Counter(f"{replay.one.status} → {replay.two.status}" for replay in left_out if replay.one.status != replay.two.status)
    return (f"Two looks replayed on the recorded nulls (`claims.judging.calibration.replayed`), costly claims only: "
            f"{same} of {len(recorded)} verdicts of the recorded controls (seed 0) and trained values "
            f"(`claims/expectations.toml`) are the one-look rule's, {sum(r.first_look for r in recorded)} of them decided "
            f"at the first look; each recorded seed against the other {len(NULL_SEEDS)}, {sum(moved.values())} of "
            f"{len(left_out)} differ" + (f" ({', '.join(f'{count} {change}' for change, count in sorted(moved.items()))})"
                                         if moved else "") + ".")


CLAIM_FILES = SUITE_PAGE.parent  # the block files, claims/test_*.py


def _marks(decorators: list[ast.expr]) -> dict[str, tuple]:
    """``{name: args}`` of the ``pytest.mark.NAME(...)`` among ``decorators`` (literal arguments)."""
    found = {}
    for decorator in decorators:
        call = decorator if isinstance(decorator, ast.Call) else None
        target = call.func if call else decorator
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute) and target.value.attr == "mark":
            found[target.attr] = tuple(ast.literal_eval(arg) for arg in call.args) if call else ()
    return found


def claim_tests_table() -> str:
    """One row per test of the block files, in file order: its block (the file's ``block`` marker), what kind of
    claim, the registry claim it states or breaks, and its docstring: the notebook's words and what is checked."""
    lines = ["| block | test | kind | registry claim | the notebook says, and what is checked |", "|---|---|---|---|---|"]
    for path in sorted(CLAIM_FILES.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        module = next((_marks(node.value.elts if isinstance(node.value, ast.List) else [node.value]) for node in tree.body
                       if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)), {})
        if "block" not in module:
            continue
        for node in tree.body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            marks = {**module, **_marks(node.decorator_list)}
            kind = "learned" if "learned" in marks else "structural"
            stated = ", ".join(f"`{claim}`" for claim in marks.get("claim", ())) or \
                ", ".join(f"breaks `{claim}`" for claim in marks.get("breaks", ())) or "—"
            doc = " ".join((ast.get_docstring(node) or "").split()).replace("|", "/")
            lines.append(f"| {module['block'][0]} | `{node.name}` | {kind} | {stated} | {doc} |")
    return "\n".join(lines)


def mutants_table() -> str:
    """One row per mutant of the mutation check: its wrong edit and the file it edits."""
    lines = ["| mutant | the wrong edit | in |", "|---|---|---|"]
    lines += [f"| `{mutant.name}` | {mutant.what} | `{mutant.file}` |" for mutant in MUTANTS]
    return "\n".join(lines)


BLOCKS: dict[str, tuple[Path, Callable[[], str]]] = {
    "options": (SUITE_PAGE, options_table), "registry": (SUITE_PAGE, registry_table), "nulls": (SUITE_PAGE, nulls_table),
    "calibration": (SUITE_PAGE, calibration_tables), "mutants": (SUITE_PAGE, mutants_table),
    "claim-tests": (SUITE_PAGE, claim_tests_table)}


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
