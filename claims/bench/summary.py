"""The benchmark summary: ratios measured in one run, as a Markdown table; and a baseline updated by a run."""
from __future__ import annotations

import json
from pathlib import Path


def updated_baseline(baseline: dict | None, run: dict) -> dict:
    """The run's output over a committed baseline's: a run of some benchmarks replaces those (by full name) and
    keeps the others, so that timing one group does not drop the rest; the machine info is the run's."""
    if not baseline:
        return run
    timed = {benchmark["fullname"] for benchmark in run["benchmarks"]}
    return {**run, "benchmarks": [b for b in baseline["benchmarks"] if b["fullname"] not in timed] + run["benchmarks"]}


def _mean(benchmark: dict) -> float:
    return benchmark["stats"]["mean"]


def _case(benchmark: dict, drop: str) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in benchmark["params"].items() if k != drop))


def _against(benchmarks: list[dict], reference: str) -> list[tuple[dict, float]]:
    """Each benchmark with the mean time of the ``reference`` way in its own case (device, batch)."""
    base = {_case(b, "way"): _mean(b) for b in benchmarks if b["params"]["way"] == reference}
    return [(b, base[_case(b, "way")]) for b in benchmarks if _case(b, "way") in base]


def summary_markdown(output: dict) -> str:
    """Images per second, capture ways relative to a plain forward, occlusion ways relative to batched passes, a null
    measured in two looks relative to every seed, and a random init's time per cost group."""
    machine = output["machine_info"]
    benchmarks = output["benchmarks"]
    lines = [f"# Benchmarks on {machine.get('cnn_claims_machine')}", "",
             f"torch {machine.get('torch')}, CUDA {machine.get('cuda')}, GPU {machine.get('gpu', 'none')}, "
             f"cudnn.benchmark {machine.get('cudnn_benchmark')}, {machine.get('torch_threads')} CPU threads. "
             "Ratios are of mean times measured in the same run.", ""]

    forward = [b for b in benchmarks if b["group"] == "forward"]
    lines += _table("Forward throughput", ["device", "batch", "variant", "ms / batch", "images / s"],
                    [[b["params"]["hardware"], b["params"]["batch"], b["params"]["variant"], f"{_mean(b) * 1e3:.2f}",
                      f"{b['params']['batch'] / _mean(b):.1f}"] for b in forward])
    capture = [b for b in benchmarks if b["group"] == "capture"]
    lines += _table("Capturing the notebook's three layers, relative to a plain forward",
                    ["device", "batch", "way", "ratio to forward"],
                    [[b["params"]["hardware"], b["params"]["batch"], b["params"]["way"], f"{_mean(b) / base:.3f}"]
                     for b, base in _against(capture, "forward")])
    occlusion = [b for b in benchmarks if b["group"] == "occlusion"]
    lines += _table("Occlusion sensitivity map", ["device", "way", "ratio to batched", "speed-up", "share of the limit"],
                    [[b["params"]["hardware"], b["params"]["way"], f"{_mean(b) / base:.3f}", f"{base / _mean(b):.2f}x",
                      _share_of_limit(b, base)] for b, base in _against(occlusion, "batched")],
                    "Incremental: speed-up over batched, against its limit (1 / occlusion_cost, the share of conv "
                    "multiply-adds an exact incremental sweep needs).")
    nulls = [b for b in benchmarks if b["group"] == "null-measured-now"]
    lines += _table("A null measured now (the recorded one set aside), loaded model to last learned verdict",
                    ["model", "every claim on every seed", "two looks", "ratio", "seeds per cost group in two looks"],
                    [[b["params"]["null_model_name"], f"{base:.1f} s", f"{_mean(b):.1f} s", f"{_mean(b) / base:.2f}",
                      ", ".join(f"{group} {count}" for group, count in b.get("extra_info", {}).get("seeds_per_group", {}).items())]
                     for b, base in _against(nulls, "every-seed") if b["params"]["way"] == "sequential"])
    costs = [b for b in benchmarks if b["group"] == "null-seed-cost"]
    lines += _table("One random init, per cost group (one thread, as a seed's worker measures it)",
                    ["model", "cost group", "s per seed"],
                    [[b["params"]["null_model_name"], b["params"]["cost"], f"{_mean(b):.2f}"] for b in costs])
    return "\n".join(lines) + "\n"


def _share_of_limit(benchmark: dict, batched: float) -> str:
    """The incremental sweep's speed-up as a share of its limit (1 / occlusion_cost); empty for the other ways."""
    cost = benchmark.get("extra_info", {}).get("occlusion_cost")
    if not cost or benchmark["params"]["way"] != "incremental":
        return ""
    return f"{(batched / _mean(benchmark)) * cost:.0%} of {1 / cost:.1f}x"


def _table(title: str, columns: list[str], rows: list[list], intro: str = "") -> list[str]:
    """A section of the summary: its title, an optional sentence, and its Markdown table; nothing without rows."""
    if not rows:
        return []
    return ([f"## {title}", ""] + ([intro, ""] if intro else []) + ["| " + " | ".join(columns) + " |",
                                                                     "|" + "---|" * len(columns)]
            + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows] + [""])


def write_baseline(folder: Path, output_json: dict, keep: bool = True) -> None:
    """``benchmarks.json`` (over what the folder holds, with ``keep``) and its ``summary.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "benchmarks.json"
    baseline = json.loads(path.read_text()) if keep and path.is_file() else None
    written = updated_baseline(baseline, json.loads(json.dumps(output_json, default=str)))
    path.write_text(json.dumps(written, indent=2))
    (folder / "summary.md").write_text(summary_markdown(written))
