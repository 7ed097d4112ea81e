"""The verdict matrix: the notebook's claims against the run's trained models, one cell each; what
the random-init models and the random controls gave, one line per claim; and the findings in
words. The report's first screen and the README's table are both drawn from it, from a run's
verdict rows (``claims.json``'s ``verdicts``), never typed by hand.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from claims.rules import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, REFUTED, RULES, Rule

CONTROL = "/random"  # a trained model's random control: "vgg16.imagenet-features/random"
STATUS_ORDER = (CONFIRMED, REFUTED, INCONCLUSIVE, NOT_MEASURED)


def value_text(row: dict) -> str:
    """``0.6131 [0.6092, 0.6167]``: the value with its 95% interval over photos, where it has one."""
    value = f"{row['measured']:.4g}"
    return value + (f" [{row['low']:.4g}, {row['high']:.4g}]" if row.get("low") is not None else "")


def bar_text(row: dict) -> str:
    """``bar 0.4596`` for a learned claim (the random null's bound), else the fixed rule's: ``== 0``."""
    return f"bar {row['bar']:.4g}" if row.get("bar") is not None else row["rule"].split(" (")[0]


def _tally(rows: Sequence[dict], noun: str) -> str:
    """``6 random-init models: CONFIRMED on 4; REFUTED on vgg19, resnet18``: the commonest verdict
    by count, the others by name."""
    if not rows:
        return ""
    by_status: dict[str, list[str]] = {}
    for row in rows:
        by_status.setdefault(row["status"], []).append(row["subject"].split(".", 1)[0])
    ordered = sorted(by_status.items(), key=lambda item: (-len(item[1]), STATUS_ORDER.index(item[0])))
    parts = [f"{ordered[0][0]} on {len(ordered[0][1])}" if len(ordered) > 1 else f"all {ordered[0][0]}"]
    parts += [f"{status} on {', '.join(names)}" for status, names in ordered[1:]]
    return f"{len(rows)} {noun}: " + "; ".join(parts)


@dataclass(frozen=True)
class MatrixRow:
    rule: Rule
    cells: dict[str, dict]  # trained subject -> its verdict row
    untrained: tuple[dict, ...]  # the verdict rows of the run's random-init models
    controls: tuple[dict, ...]  # the verdict rows of the trained models' random controls

    @property
    def others(self) -> str:
        """The random-init models and the random controls, in one line."""
        return " · ".join(part for part in (_tally(self.untrained, "random-init models"),
                                            _tally(self.controls, "random controls")) if part)

    @property
    def why(self) -> str:
        """Why those of them that were not CONFIRMED came out as they did, one reason each."""
        reasons = {}
        for row in (*self.untrained, *self.controls):
            if row["status"] != CONFIRMED and row.get("detail"):
                reasons.setdefault(row["detail"], []).append(row["subject"])
        return "; ".join(f"{', '.join(subjects)}: {reason}" for reason, subjects in reasons.items())


@dataclass(frozen=True)
class VerdictMatrix:
    columns: tuple[str, ...]  # the trained models of the run, in the run's model order
    rows: tuple[MatrixRow, ...]  # the notebook's claims in its order, block by block

    def findings(self) -> dict[str, list[str]]:
        """Which sentences every trained model bears out, which none does, which split, in plain
        words with the numbers (learned claims measured on two or more trained models); then how
        their random controls fared."""
        titles = {"every": "Every trained model bears out", "none": "No trained model bears out",
                  "split": "The trained models split on"}
        groups: dict[str, list[str]] = {title: [] for title in titles.values()}
        for row in self.rows:
            measured = {subject: cell for subject, cell in row.cells.items() if cell["status"] != NOT_MEASURED}
            if len(measured) < 2 or row.rule.threshold is not None:
                continue
            statuses = {cell["status"] for cell in measured.values()}
            kind = "every" if statuses == {CONFIRMED} else "none" if CONFIRMED not in statuses else "split"
            numbers = "; ".join(f"{subject} {cell['status']} {cell['measured']:.3g} ({bar_text(cell)})"
                                for subject, cell in measured.items())
            groups[titles[kind]].append(f"\"{row.rule.sentence}\": {numbers}")
        controls = Counter(row["status"] for matrix_row in self.rows for row in matrix_row.controls
                           if row["status"] != NOT_MEASURED)
        if controls:
            groups["Their random controls (seed 0, on the same photos, against the same null)"] = [
                ", ".join(f"{count} {status}" for status, count in sorted(controls.items()))]
        return {title: items or ["none of the learned claims"] for title, items in groups.items()}


def verdict_matrix(verdicts: Sequence[dict], models: Sequence[str] = ()) -> VerdictMatrix:
    """The matrix of a run's verdict rows. The trained models are the subjects with a random
    control; ``models`` (the run's ``--model`` order) orders them."""
    def order(subject: str) -> tuple[int, str]:
        name = subject.split(".", 1)[0]
        return (list(models).index(name) if name in models else len(models), subject)

    columns = tuple(sorted({v["subject"].removesuffix(CONTROL) for v in verdicts if v["subject"].endswith(CONTROL)},
                           key=order))
    rows = []
    for rule in sorted(RULES.values(), key=lambda rule: rule.block):  # stable: the notebook's order in a block
        mine = sorted((v for v in verdicts if v["claim"] == rule.claim), key=lambda v: order(v["subject"]))
        if mine:
            rows.append(MatrixRow(rule, {v["subject"]: v for v in mine if v["subject"] in columns},
                                  tuple(v for v in mine if v["subject"] not in columns and not v["subject"].endswith(CONTROL)),
                                  tuple(v for v in mine if v["subject"].endswith(CONTROL))))
    return VerdictMatrix(columns, tuple(rows))
