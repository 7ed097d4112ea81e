"""The benchmark summary and the committed baseline a run updates (claims/bench/summary.py)."""
from __future__ import annotations

import json

from claims.bench.summary import summary_markdown, updated_baseline, write_baseline


def _benchmark(name: str, group: str, mean: float, **params) -> dict:
    return {"fullname": name, "group": group, "params": params, "stats": {"mean": mean}, "extra_info": {}}


RUN = {"machine_info": {"cnn_claims_machine": "cpu-2core"}, "benchmarks": [
    _benchmark("null[m-every-seed]", "null-measured-now", 200.0, null_model_name="m", way="every-seed"),
    {**_benchmark("null[m-sequential]", "null-measured-now", 80.0, null_model_name="m", way="sequential"),
     "extra_info": {"seeds_per_group": {"fields": 5, "occlusion": 5, "stage pass": 20}}},
    _benchmark("cost[m-occlusion]", "null-seed-cost", 8.5, null_model_name="m", cost="occlusion")]}


def test_a_run_of_some_benchmarks_updates_those_and_keeps_the_others(tmp_path):
    baseline = {"machine_info": {"old": True}, "benchmarks": [_benchmark("forward[cpu]", "forward", 1.0, hardware="cpu", batch=1, variant="fp32"),
                                                              _benchmark("null[m-every-seed]", "null-measured-now", 999.0)]}
    (tmp_path / "benchmarks.json").write_text(json.dumps(baseline))
    write_baseline(tmp_path, RUN)
    written = json.loads((tmp_path / "benchmarks.json").read_text())
    assert [b["fullname"] for b in written["benchmarks"]] == ["forward[cpu]", "null[m-every-seed]", "null[m-sequential]",
                                                              "cost[m-occlusion]"]
    assert written["benchmarks"][1]["stats"]["mean"] == 200.0 and written["machine_info"] == RUN["machine_info"]
    assert updated_baseline(None, RUN) == RUN


def test_the_summary_sets_the_two_ways_of_a_null_side_by_side():
    text = summary_markdown(RUN)
    assert "| m | 200.0 s | 80.0 s | 0.40 | fields 5, occlusion 5, stage pass 20 |" in text
    assert "| m | occlusion | 8.50 |" in text
