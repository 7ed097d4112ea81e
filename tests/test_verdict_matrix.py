"""What the run found, in words: per model when one trained model ran, beside the recorded references;
every / none / split when several did."""
from __future__ import annotations

from dataclasses import replace

from claims.judging.expectations import recorded_references
from claims.judging.rules import CONFIRMED, INCONCLUSIVE, REFUTED, RULES, SubjectId, Verdict
from claims.showing.page import write_report
from claims.showing.verdict_matrix import Relation, bar_text, verdict_matrix

EDGES, COLOURS, SPARSER = "L1-filters-detect-edges", "L1-filters-detect-colours", "L3-sparser-with-depth"
RANK, PROBE = "L4-class-structure-grows-with-depth", "L4-linear-probe-grows-with-depth"
STEPS, CKA = "L4-class-structure-grows-gradually", "L4-neighbour-stages-most-similar"


def verdict(claim: str, subject: SubjectId, status: str, value: float) -> Verdict:
    return Verdict(claim, subject, status, value, ">=", resolution=0.02, bar=0.3, random=(0.1, 0.2))


def rows(subject: str, statuses: dict[str, str]) -> list[Verdict]:
    """A trained model's verdicts (``subject``: ``architecture.weights``) and its random control's."""
    architecture, weights = subject.split(".")
    tested = SubjectId(architecture, weights)
    mine = [verdict(claim, tested, status, 0.5 if status == CONFIRMED else 0.2) for claim, status in statuses.items()]
    return mine + [verdict(claim, tested.random_control(), REFUTED, 0.1) for claim in statuses]


def reference(status: str, value: float, claim: str = EDGES) -> dict[str, dict[str, Verdict]]:
    return {"ref.imagenet": {claim: Verdict(claim, SubjectId("ref", "imagenet"), status, value, ">=", recorded=status)}}


def test_one_trained_model_gets_its_own_findings_beside_the_references():
    run = rows("m.file-mine", {EDGES: REFUTED, COLOURS: CONFIRMED, SPARSER: INCONCLUSIVE})
    matrix = verdict_matrix(run, ("m",), reference(CONFIRMED, 0.58))
    assert matrix.columns == ("m.file-mine", "ref.imagenet") and matrix.references == ("ref.imagenet",)
    found = matrix.findings()
    assert found["m.file-mine bears out"] == [f"\"{RULES[COLOURS].sentence}\": 0.5 (bar 0.3)"]
    assert found["m.file-mine does not bear out"] == [f"\"{RULES[EDGES].sentence}\": 0.2 (bar 0.3)"]
    assert found["The photos do not decide, on m.file-mine"] == [f"\"{RULES[SPARSER].sentence}\": 0.2 (bar 0.3)"]
    assert found["Where m.file-mine differs from the recorded references (ref.imagenet)"] == [
        f"\"{RULES[EDGES].sentence}\": m.file-mine REFUTED 0.2 (bar 0.3); ref.imagenet CONFIRMED 0.58 (recorded)"]
    assert found["Their random controls (seed 0, on the same photos, against the same null)"] == ["3 REFUTED"]


def test_a_reference_that_agrees_is_no_difference_and_one_the_run_measured_is_no_reference():
    run = rows("m.file-mine", {EDGES: REFUTED})
    assert verdict_matrix(run, ("m",), reference(REFUTED, 0.21)).findings()[
        "Where m.file-mine differs from the recorded references (ref.imagenet)"] == ["none of the learned claims"]
    both = run + rows("ref.imagenet", {EDGES: CONFIRMED})
    matrix = verdict_matrix(both, ("m", "ref"), reference(CONFIRMED, 0.58))
    assert matrix.references == () and matrix.trained == ("m.file-mine", "ref.imagenet")


def test_several_trained_models_are_summed_up_as_every_none_or_split():
    """Break of the one-model findings: with two trained models, the per-model titles give way."""
    run = rows("a.imagenet", {EDGES: CONFIRMED, COLOURS: REFUTED, SPARSER: CONFIRMED}) + \
        rows("b.imagenet", {EDGES: CONFIRMED, COLOURS: REFUTED, SPARSER: REFUTED})
    found = verdict_matrix(run, ("a", "b")).findings()
    assert list(found)[:3] == ["Every trained model bears out", "No trained model bears out", "The trained models split on"]
    assert [item.split("\":")[0].strip("\"") for item in found["Every trained model bears out"]] == [RULES[EDGES].sentence]
    assert [item.split("\":")[0].strip("\"") for item in found["The trained models split on"]] == [RULES[SPARSER].sentence]


def test_two_instruments_of_one_sentence_are_said_to_agree_or_not_per_model():
    """Both instruments CONFIRM on one model; on another they split, which the findings say in words
    instead of picking the instrument that confirms; where one is INCONCLUSIVE, only the other decides."""
    run = rows("a.imagenet", {RANK: CONFIRMED, PROBE: CONFIRMED, STEPS: CONFIRMED, CKA: REFUTED}) + \
        rows("b.imagenet", {RANK: CONFIRMED, PROBE: CONFIRMED, STEPS: REFUTED, CKA: REFUTED}) + \
        rows("c.trained", {RANK: REFUTED, PROBE: INCONCLUSIVE})
    matrix = verdict_matrix(run, ("a", "b", "c"))
    probe_row, cka_row = (next(row for row in matrix.rows if row.rule.claim == claim) for claim in (PROBE, CKA))
    said = {subject: str(agreed) for subject, agreed in matrix.agreement(probe_row).items()}
    assert said == {"a.imagenet": "agree: both CONFIRMED", "b.imagenet": "agree: both CONFIRMED",
                    "c.trained": "only one decides: partner rank REFUTED, linear probe INCONCLUSIVE"}
    assert {subject: agreed.relation for subject, agreed in matrix.agreement(cka_row).items()} == {
        "a.imagenet": Relation.DISAGREE, "b.imagenet": Relation.AGREE}
    assert str(matrix.agreement(cka_row)["a.imagenet"]) == "disagree: partner-rank steps CONFIRMED, linear CKA REFUTED"
    assert all(matrix.agreement(row) == {} for row in matrix.rows if row.rule.claim not in (PROBE, CKA))
    said = matrix.findings()["Where two instruments measure one sentence"]
    assert said[0] == (f"\"{RULES[RANK].sentence}\": {RULES[RANK].instrument_text} and {RULES[PROBE].instrument_text} agree on "
                       "a.imagenet (both CONFIRMED), b.imagenet (both CONFIRMED); only one decides on c.trained "
                       "(partner rank REFUTED, linear probe INCONCLUSIVE): the other's interval straddles its bar, "
                       "so one instrument's verdict stands alone")
    assert said[1].endswith("disagree on a.imagenet (partner-rank steps CONFIRMED, linear CKA REFUTED): the sentence's "
                            "verdict depends on the instrument") and "agree on b.imagenet (both REFUTED)" in said[1]


def test_the_references_are_the_suites_offline_imagenet_cnns_as_recorded():
    references = recorded_references()
    assert set(references) == {"mobilenet_v2.imagenet", "vgg16.imagenet-features"}
    assert references["vgg16.imagenet-features"][EDGES].status == CONFIRMED
    assert all(verdict.recorded == verdict.status and verdict.bar is None and verdict.subject.label == subject
               for subject, claims in references.items() for verdict in claims.values())


def test_compared_checkpoints_are_columns_and_the_findings_say_what_changed(tmp_path):
    """Two checkpoints of one architecture: a column each in the matrix and on the page, and the findings list
    each learned claim whose verdict changed or whose value moved beyond its rule's tolerance, then how many kept."""
    base = rows("m.file-base", {EDGES: CONFIRMED, COLOURS: CONFIRMED, SPARSER: REFUTED})
    tuned = rows("m.file-tuned", {EDGES: REFUTED, COLOURS: CONFIRMED, SPARSER: REFUTED})
    tuned = [replace(row, measured=0.9) if row.claim == SPARSER and row.subject == SubjectId("m", "file-tuned") else row
             for row in tuned]
    compared = ("m.file-base", "m.file-tuned")
    matrix = verdict_matrix(base + tuned, ("m",), None, compared)
    assert matrix.columns == compared
    assert matrix.findings()["What changed from m.file-base to m.file-tuned"] == [
        f"\"{RULES[EDGES].sentence}\": CONFIRMED → REFUTED: m.file-base CONFIRMED 0.5 (bar 0.3) → m.file-tuned REFUTED 0.2 (bar 0.3)",
        f"\"{RULES[SPARSER].sentence}\": REFUTED, value moved: m.file-base REFUTED 0.2 (bar 0.3) → m.file-tuned REFUTED 0.9 (bar 0.3)",
        "1 learned claims kept their verdict, each value within its rule's tolerance"]
    assert "What changed" not in " ".join(verdict_matrix(base + tuned, ("m",)).findings())  # not compared: not said
    page = write_report([], tmp_path, None, {"models": "m", "compared": list(compared)}, base + tuned).read_text()
    assert "<th>m.file-base</th>" in page and "<th>m.file-tuned</th>" in page
    assert "What changed from m.file-base to m.file-tuned" in page and "CONFIRMED → REFUTED" in page


def test_a_degenerate_null_is_said_beside_its_bar():
    """Every random init gives exactly 0 (an output no occlusion moves): the bar is only the resolution, said
    wherever the bar is (the page's cells, the README's table, the findings)."""
    flat = Verdict("L5-occluding-the-object-matters", SubjectId("m", "imagenet"), CONFIRMED, 0.3, ">=", resolution=0.02,
                   bar=0.02, random=(0.0,) * 20)
    assert bar_text(flat) == "bar 0.02: its 20 random inits all give 0"
    assert bar_text(replace(flat, random=(0.0, 0.01) * 10)) == "bar 0.02"
