"""The sweep (python -m claims sweep): one pytest per model, a row each, nothing lost when one breaks."""
from __future__ import annotations

import json
from xml.sax.saxutils import quoteattr

from claims.judging.rules import RULES, SubjectId
from claims.tools import sweep


def test_a_model_row_holds_its_verdicts_and_tests(tmp_path):
    rows = sweep.sweep(["squeezenet1_1", "no_such_net"], tmp_path, timeout=300, fixtures=None, threads=1)
    ok, broken = rows
    assert ok.outcome == "ok" and ok.passed > 20 and not ok.failures and ok.seconds > 0
    assert set(ok.verdicts) == set(sweep.STRUCTURAL_VERDICTS)
    assert ok.verdicts["S-occlusion-stays-local"]["status"] in ("CONFIRMED", "REFUTED")
    # An unknown name stops its own pytest with a usage error: its row says so, the other row stays.
    assert broken.outcome == "ERROR" and "unknown model 'no_such_net'" in broken.error
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert [row["model"] for row in saved] == ["squeezenet1_1", "no_such_net"]
    table = (tmp_path / "sweep.md").read_text()
    assert "| squeezenet1_1 |" in table and "| no_such_net |" in table and "ERROR" in table
    # Each row names the commit that measured it; the header counts the rows of each commit.
    assert ok.commit == broken.commit == sweep.suite_commit() != "unknown"
    assert f"measured at commit {ok.commit} (2 models)" in table


def test_failures_and_not_measured_tests_reach_the_row():
    verdict = RULES["S-fields-grow-gradually"].not_measured(SubjectId("m", "random"), "ReceptiveFieldError: cannot be traced")
    junit = f"""<testsuites><testsuite name="pytest" time="12.5">
      <testcase name="test_a[m]"><properties><property name="verdict" value={quoteattr(verdict.to_json())}/></properties></testcase>
      <testcase name="test_b[m]"><failure message="AssertionError: far units changed&#10;second line">tb</failure></testcase>
      <testcase name="test_c[m]"><skipped message="Tiny VGG not found"/></testcase>
    </testsuite></testsuites>"""
    row = sweep.Row("m")
    sweep.read_junit(row, sweep.ET.fromstring(junit))
    assert (row.seconds, row.passed, row.failed, row.outcome) == (12.5, 1, 1, "FAIL")
    assert row.failures == ["test_b[m]: AssertionError: far units changed"]
    assert row.skipped == ["test_c[m]: Tiny VGG not found"]
    assert sweep.cell(row.verdicts["S-fields-grow-gradually"]) == "NOT MEASURED: ReceptiveFieldError: cannot be traced"


def test_an_update_replaces_only_the_models_run_again(tmp_path):
    (tmp_path / "sweep.json").write_text(json.dumps([{"model": "a", "seconds": 1.0}, {"model": "b", "seconds": 2.0}]))
    merged = sweep.merged(sweep.load_rows(tmp_path), [sweep.Row("b", seconds=3.0), sweep.Row("c", seconds=4.0)])
    assert [(row.model, row.seconds) for row in merged] == [("a", 1.0), ("b", 3.0), ("c", 4.0)]


def test_shards_cover_every_model_once_and_combine_in_order(tmp_path):
    names = ["a", "b", "c", "d", "e"]
    parts = [sweep.shard(names, f"{i}/2") for i in (1, 2)]
    assert parts == [["a", "c", "e"], ["b", "d"]]
    for index, part in enumerate(parts):
        folder = tmp_path / str(index)
        folder.mkdir()
        sweep.write_table(folder, [sweep.Row(name, seconds=1.0, wall=2.0) for name in part], threads=1)
    table = sweep.combine([tmp_path / "0", tmp_path / "1"], tmp_path / "all", names, threads=1)
    assert [row.model for row in table] == names
    assert "on 5 architectures" in (tmp_path / "all" / "sweep.md").read_text()
