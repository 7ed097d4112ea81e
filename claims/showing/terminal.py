"""The run's verdicts in the terminal: the table pytest prints at the end of a claim run, and what it found."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from claims.judging.rules import INCONCLUSIVE, NULL_SEEDS, RULES, Verdict
from claims.judging import sequential
from claims.judging.statistics import ALPHA
from claims.showing.verdict_matrix import VerdictMatrix, agreement, sentence_text

WIDTHS = (37, 31, 12, 9, 20, 22)  # claim, model.weights, verdict, value, 95% interval, bar / rule; then recorded


def _interval(verdict: Verdict) -> str:
    """``[0.6092, 0.6167]`` over photos, ``weights`` for a statistic of the weights, else nothing."""
    if verdict.low is not None:
        return f"[{verdict.low:.4g}, {verdict.high:.4g}]"
    return "weights" if verdict.random else ""


def _bar(verdict: Verdict) -> str:
    spread = verdict.spread
    if spread is None:
        return f"{verdict.op} {verdict.threshold:g}"
    return f"{verdict.op} {verdict.bar:.4g} (random {spread.mean:.4g} ± {spread.sd:.2g})"


def table(verdicts: Sequence[Verdict], subjects: Mapping[str, Mapping[str, str]]) -> list[str]:
    """CONFIRMED / REFUTED / INCONCLUSIVE / NOT MEASURED per notebook claim and subject, with the
    value, its 95% interval over photos and the random null's bar; the subjects a claim was not
    measured on share one line per reason. ``subjects``: how each learned subject was fed and which null judged it."""
    if not verdicts:
        return []
    claim_w, subject_w, status_w, value_w, interval_w, bar_w = WIDTHS
    lines = [f"learned claims: CONFIRMED when the value clears the random null's one-sided {1 - ALPHA:.0%} prediction "
             f"bound (α = {ALPHA:g} per verdict, {len(NULL_SEEDS)} random inits; {sequential.in_words()}); REFUTED when "
             f"its 95% interval over photos lies short of it; else INCONCLUSIVE"]
    if subjects:
        lines.append("how each model was fed, and which random null judged it:")
        lines += [f"  {label}: {d['preprocessing'] + '; ' if d['preprocessing'] else ''}null: {d['null']}"
                  for label, d in sorted(subjects.items())]
    lines.append(f"{'claim':<{claim_w}} {'model.weights':<{subject_w}} {'verdict':<{status_w}} {'value':>{value_w}} "
                 f"{'95% interval':<{interval_w}} {'bar / rule':<{bar_w}} recorded")
    by_claim: dict[str, list[Verdict]] = {}
    for verdict in sorted(verdicts, key=lambda v: v.subject.label):
        by_claim.setdefault(verdict.claim, []).append(verdict)
    for block in sorted({RULES[claim].block for claim in by_claim}):
        lines.append(f"-- notebook block {block}")
        for claim in sorted(claim for claim in by_claim if RULES[claim].block == block):
            lines.append(f"   {sentence_text(RULES[claim])}")
            unmeasured: dict[str, list[str]] = {}
            for v in by_claim[claim]:
                if v.measured is None:
                    unmeasured.setdefault(v.detail, []).append(v.subject.label)
                    continue
                lines.append(f"{claim:<{claim_w}} {v.subject.label:<{subject_w}} {v.status:<{status_w}} {v.measured:>{value_w}.4g} "
                             f"{_interval(v):<{interval_w}} {_bar(v):<{bar_w}} {v.recorded or 'not recorded'}")
                if v.status == INCONCLUSIVE:
                    lines.append(f"{'':<{claim_w}} {'':<{subject_w}} ({v.detail})")
            for reason, labels in unmeasured.items():
                lines.append(f"{claim:<{claim_w}} NOT MEASURED on {', '.join(labels)}: {reason}")
            first = RULES[claim].second_opinion_of
            if first:
                said = agreement(RULES[first], RULES[claim], _cells(verdicts, first), _cells(verdicts, claim))
                lines += [f"{'the two instruments':<{claim_w}} {label:<{subject_w}} {agreed}" for label, agreed in sorted(said.items())]
    return lines


def _cells(verdicts: Sequence[Verdict], claim: str) -> dict[str, Verdict]:
    return {v.subject.label: v for v in verdicts if v.claim == claim}


def findings(matrix: VerdictMatrix) -> list[str]:
    """What the run found, in the words of the report's page (nothing when no trained model ran)."""
    if not matrix.trained:
        return []
    lines = ["what the run found:"]
    for title, items in matrix.findings().items():
        lines += [f"{title}:", *(f"  - {item}" for item in items)]
    return lines
