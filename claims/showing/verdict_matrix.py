"""The verdict matrix: the notebook's claims against the run's trained models, one cell each; what
the random-init models and the random controls gave, one line per claim; and the findings in
words. The report's first screen, the terminal's findings and the README's table are all drawn from
it, from a run's verdicts (``claims.json``'s ``verdicts``), never typed by hand. The formatters a
cell shares between views (its value, its bar) live here.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from claims.judging.rules import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, REFUTED, RULES, Rule, Verdict

STATUS_ORDER = (CONFIRMED, REFUTED, INCONCLUSIVE, NOT_MEASURED)


def value_text(verdict: Verdict) -> str:
    """``0.6131 [0.6092, 0.6167]``: the value with its 95% interval over photos, where it has one."""
    value = f"{verdict.measured:.4g}"
    return value + (f" [{verdict.low:.4g}, {verdict.high:.4g}]" if verdict.low is not None else "")


def bar_text(verdict: Verdict, reference: bool = False) -> str:
    """``bar 0.4596`` for a learned claim (the random null's bound; ``bar 0.02: its 20 random inits all give 0`` where
    they do, so that the bar is only the resolution), ``recorded`` for a reference's recorded verdict, else the fixed
    rule's: ``== 0``."""
    if reference:
        return "recorded"
    if verdict.bar is not None and len(set(verdict.random)) == 1:  # a degenerate null: the bar is only the resolution
        return f"bar {verdict.bar:.4g}: its {len(verdict.random)} random inits all give {verdict.random[0]:.4g}"
    if verdict.bar is not None:
        return f"bar {verdict.bar:.4g}"
    return f"{verdict.op} {verdict.threshold:g}" if verdict.threshold is not None else verdict.op


def _tally(rows: Sequence[Verdict], noun: str, nouns: str) -> str:
    """``6 random-init models: 4 CONFIRMED; REFUTED on vgg19, resnet18`` (the commonest verdict by count,
    the others by name), ``3 random controls, all REFUTED``, ``1 random control: REFUTED``,
    ``4 random-init models, none measured``."""
    if not rows:
        return ""
    by_status: dict[str, list[str]] = {}
    for row in rows:
        by_status.setdefault(row.status, []).append(row.subject.architecture)
    ordered = sorted(by_status.items(), key=lambda item: (-len(item[1]), STATUS_ORDER.index(item[0])))
    if len(rows) == 1:
        return f"1 {noun}: {ordered[0][0]}"
    if len(ordered) == 1:
        return f"{len(rows)} {nouns}, " + ("none measured" if ordered[0][0] == NOT_MEASURED else f"all {ordered[0][0]}")
    parts = [f"{len(ordered[0][1])} {ordered[0][0]}"] + [f"{status} on {', '.join(names)}" for status, names in ordered[1:]]
    return f"{len(rows)} {nouns}: " + "; ".join(parts)


@dataclass(frozen=True)
class MatrixRow:
    rule: Rule
    cells: dict[str, Verdict]  # trained subject's label -> its verdict
    untrained: tuple[Verdict, ...]  # the verdicts of the run's random-init models
    controls: tuple[Verdict, ...]  # the verdicts of the trained models' random controls

    @property
    def others(self) -> str:
        """The random-init models and the random controls, in one line."""
        return " · ".join(part for part in (_tally(self.untrained, "random-init model", "random-init models"),
                                            _tally(self.controls, "random control", "random controls")) if part)

    @property
    def why(self) -> str:
        """Why those of them that were not CONFIRMED came out as they did, one reason each."""
        reasons = {}
        for row in (*self.untrained, *self.controls):
            if row.status != CONFIRMED and row.detail:
                reasons.setdefault(row.detail, []).append(row.subject.label)
        return "; ".join(f"{', '.join(subjects)}: {reason}" for reason, subjects in reasons.items())


def sentence_text(rule: Rule) -> str:
    """The notebook's sentence in quotes, and the instrument where two measure it."""
    return f"\"{rule.sentence}\"" + (f" [{rule.instrument_text}]" if rule.instrument else "")


class Relation(Enum):
    """How two instruments' verdicts on one model relate."""

    AGREE = "agree"
    DISAGREE = "disagree"  # one CONFIRMED, the other REFUTED: the sentence's verdict depends on the instrument
    UNDECIDED = "only one decides"  # one INCONCLUSIVE: one instrument's verdict stands alone


RELATION_MEANING = {
    Relation.DISAGREE: "the sentence's verdict depends on the instrument",
    Relation.UNDECIDED: "the other's interval straddles its bar, so one instrument's verdict stands alone",
}


@dataclass(frozen=True)
class Agreement:
    """Two instruments' verdicts on one sentence and one model."""

    relation: Relation
    first: Rule
    second: Rule
    first_status: str
    second_status: str

    @property
    def statuses(self) -> str:
        """``both CONFIRMED`` or ``partner rank CONFIRMED, linear probe REFUTED``."""
        if self.relation is Relation.AGREE:
            return f"both {self.first_status}"
        return (f"{self.first.instrument} {self.first_status}, "
                f"{self.second.instrument} {self.second_status}")

    def __str__(self) -> str:
        return f"{self.relation.value}: {self.statuses}"


def agreement(first: Rule, second: Rule, first_cells: Mapping[str, Verdict],
              second_cells: Mapping[str, Verdict]) -> dict[str, Agreement]:
    """Per subject measured by both instruments of one sentence: agree (the same verdict), disagree (one
    CONFIRMED, the other REFUTED) or only one decides (one INCONCLUSIVE)."""
    said = {}
    for subject, one in first_cells.items():
        other = second_cells.get(subject)
        if other is None or NOT_MEASURED in (one.status, other.status):
            continue
        statuses = {one.status, other.status}
        relation = Relation.AGREE if len(statuses) == 1 else Relation.UNDECIDED if INCONCLUSIVE in statuses \
            else Relation.DISAGREE
        said[subject] = Agreement(relation, first, second, one.status, other.status)
    return said


def _numbers(subject: str, cell: Verdict, reference: bool = False) -> str:
    """``vgg16.imagenet-features CONFIRMED 0.613 (bar 0.4596)``; a recorded reference's ``(recorded)``."""
    rest = f" ({bar_text(cell, reference)})" if cell.bar is not None or reference else ""
    return f"{subject} {cell.status} {cell.measured:.3g}{rest}"


@dataclass(frozen=True)
class VerdictMatrix:
    columns: tuple[str, ...]  # the trained models of the run, in the run's model order, then the references
    rows: tuple[MatrixRow, ...]  # the notebook's claims in its order, block by block
    references: tuple[str, ...] = ()  # columns of recorded verdicts (not measured in this run), beside the run's
    compared: tuple[str, ...] = ()  # checkpoints of one architecture, compared in the order given

    def agreement(self, row: MatrixRow) -> dict[str, Agreement]:
        """For a claim that measures another's sentence with a second instrument, per column, whether the two
        verdicts agree (:func:`agreement`); empty for any other claim."""
        first = next((other for other in self.rows if other.rule.claim == row.rule.second_opinion_of), None)
        return {} if first is None else agreement(first.rule, row.rule, first.cells, row.cells)

    @property
    def trained(self) -> tuple[str, ...]:
        """The trained models this run measured."""
        return tuple(column for column in self.columns if column not in self.references)

    def numbers(self, subject: str, cell: Verdict) -> str:
        return _numbers(subject, cell, subject in self.references)

    def findings(self) -> dict[str, list[str]]:
        """In plain words with the numbers, over the learned claims: with one trained model, which sentences
        it bears out, which it does not, which are undecided, and where it differs from the recorded
        references; with several, which every one bears out, which none does, which split (claims measured
        on two or more). Then how their random controls fared."""
        groups = self._one_model() if len(self.trained) == 1 else self._several()
        for before, after in zip(self.compared, self.compared[1:]):
            groups[f"What changed from {before} to {after}"] = self._changes(before, after)
        instruments = self._instruments()
        if instruments:
            groups["Where two instruments measure one sentence"] = instruments
        controls = Counter(row.status for matrix_row in self.rows for row in matrix_row.controls if row.status != NOT_MEASURED)
        if controls:
            groups["Their random controls (seed 0, on the same photos, against the same null)"] = [
                ", ".join(f"{count} {status}" for status, count in sorted(controls.items()))]
        return {title: items or ["none of the learned claims"] for title, items in groups.items()}

    def _learned(self) -> list[MatrixRow]:
        return [row for row in self.rows if row.rule.learned]

    def _one_model(self) -> dict[str, list[str]]:
        model = self.trained[0]
        titles = {CONFIRMED: f"{model} bears out", REFUTED: f"{model} does not bear out",
                  INCONCLUSIVE: f"The photos do not decide, on {model}"}
        groups: dict[str, list[str]] = {title: [] for title in titles.values()}
        differs = f"Where {model} differs from the recorded references ({', '.join(self.references)})"
        if self.references:
            groups[differs] = []
        for row in self._learned():
            cell = row.cells.get(model)
            if cell is None or cell.status == NOT_MEASURED:
                continue
            groups[titles[cell.status]].append(f"{sentence_text(row.rule)}: {cell.measured:.3g} ({bar_text(cell)})")
            others = [self.numbers(reference, row.cells[reference]) for reference in self.references
                      if reference in row.cells and row.cells[reference].status != cell.status]
            if others:
                groups[differs].append(f"{sentence_text(row.rule)}: {self.numbers(model, cell)}; {'; '.join(others)}")
        return groups

    def _changes(self, before: str, after: str) -> list[str]:
        """Each learned claim whose verdict changed from one checkpoint to the other, or whose value moved beyond
        its rule's tolerance (the expectations' gate), with both numbers; a line saying so when none did."""
        lines, same = [], 0
        for row in self._learned():
            old, new = row.cells.get(before), row.cells.get(after)
            if old is None or new is None or NOT_MEASURED in (old.status, new.status):
                continue
            moved = abs(new.measured - old.measured) > row.rule.allowed_drift(old.measured)
            if old.status == new.status and not moved:
                same += 1
                continue
            verdict = f"{old.status} → {new.status}" if old.status != new.status else f"{new.status}, value moved"
            lines.append(f"{sentence_text(row.rule)}: {verdict}: {self.numbers(before, old)} → {self.numbers(after, new)}")
        return lines + [f"{same} learned claims kept their verdict, each value within its rule's tolerance"]

    def _instruments(self) -> list[str]:
        """Per sentence measured two ways, on which models the instruments agree and on which they do not:
        a disagreement says the sentence reads differently under each instrument."""
        lines = []
        for row in self.rows:
            said = self.agreement(row)
            if not said:
                continue
            first = RULES[row.rule.second_opinion_of]
            by_relation: dict[Relation, list[str]] = {}
            for subject, agreed in said.items():
                by_relation.setdefault(agreed.relation, []).append(f"{subject} ({agreed.statuses})")
            parts = [f"{relation.value} on {', '.join(subjects)}"
                     + (f": {RELATION_MEANING[relation]}" if relation in RELATION_MEANING else "")
                     for relation in Relation if (subjects := by_relation.get(relation))]
            lines.append(f"\"{row.rule.sentence}\": {first.instrument_text} and {row.rule.instrument_text} " + "; ".join(parts))
        return lines

    def _several(self) -> dict[str, list[str]]:
        titles = {"every": "Every trained model bears out", "none": "No trained model bears out",
                  "split": "The trained models split on"}
        groups: dict[str, list[str]] = {title: [] for title in titles.values()}
        for row in self._learned():
            measured = {subject: cell for subject, cell in row.cells.items()
                        if subject in self.trained and cell.status != NOT_MEASURED}
            if len(measured) < 2:
                continue
            statuses = {cell.status for cell in measured.values()}
            kind = "every" if statuses == {CONFIRMED} else "none" if CONFIRMED not in statuses else "split"
            groups[titles[kind]].append(f"{sentence_text(row.rule)}: "
                                        + "; ".join(self.numbers(subject, cell) for subject, cell in measured.items()))
        return groups


def verdict_matrix(verdicts: Sequence[Verdict], models: Sequence[str] = (),
                   references: Mapping[str, Mapping[str, Verdict]] | None = None,
                   compared: Sequence[str] = ()) -> VerdictMatrix:
    """The matrix of a run's verdicts. The trained models are the subjects with a random control;
    ``models`` (the run's ``--model`` order) orders them. ``references`` (subject label -> claim ->
    recorded verdict) adds a column for each subject the run did not measure, marked as recorded.
    ``compared``: the subjects of checkpoints of one architecture, whose changes the findings list."""
    def order(verdict: Verdict) -> tuple[int, str]:
        name = verdict.subject.architecture
        return (list(models).index(name) if name in models else len(models), verdict.subject.label)

    controls = sorted((v for v in verdicts if v.subject.control), key=order)
    trained = tuple(dict.fromkeys(v.subject.model for v in controls))
    extra = {subject: claims for subject, claims in (references or {}).items() if subject not in trained}
    rows = []
    for rule in sorted(RULES.values(), key=lambda rule: rule.block):  # stable: the notebook's order in a block
        mine = sorted((v for v in verdicts if v.claim == rule.claim), key=order)
        if mine:
            cells = {v.subject.label: v for v in mine if v.subject.label in trained}
            cells |= {subject: claims[rule.claim] for subject, claims in extra.items() if rule.claim in claims}
            rows.append(MatrixRow(rule, cells,
                                  tuple(v for v in mine if v.subject.label not in trained and not v.subject.control),
                                  tuple(v for v in mine if v.subject.control)))
    return VerdictMatrix(trained + tuple(extra), tuple(rows), tuple(extra), tuple(compared))
