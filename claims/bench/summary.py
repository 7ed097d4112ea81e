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
    """Capture ways relative to a plain forward, naive vs batched occlusion, and images per second."""
    machine = output["machine_info"]
    benchmarks = output["benchmarks"]
    lines = [f"# Benchmarks on {machine.get('cnn_claims_machine')}", "",
             f"torch {machine.get('torch')}, CUDA {machine.get('cuda')}, GPU {machine.get('gpu', 'none')}, "
             f"cudnn.benchmark {machine.get('cudnn_benchmark')}, {machine.get('torch_threads')} CPU threads. "
             "Ratios are of mean times measured in the same run.", ""]

    forward = [b for b in benchmarks if b["group"] == "forward"]
    if forward:
        lines += ["## Forward throughput", "", "| device | batch | variant | ms / batch | images / s |", "|---|---|---|---|---|"]
        for b in forward:
            p = b["params"]
            lines.append(f"| {p['hardware']} | {p['batch']} | {p['variant']} | {_mean(b) * 1e3:.2f} | {p['batch'] / _mean(b):.1f} |")
        lines.append("")

    capture = [b for b in benchmarks if b["group"] == "capture"]
    if capture:
        lines += ["## Capturing the notebook's three layers, relative to a plain forward", "",
                  "| device | batch | way | ratio to forward |", "|---|---|---|---|"]
        lines += [f"| {b['params']['hardware']} | {b['params']['batch']} | {b['params']['way']} | {_mean(b) / base:.3f} |"
                  for b, base in _against(capture, "forward")]
        lines.append("")

    occlusion = [b for b in benchmarks if b["group"] == "occlusion"]
    if occlusion:
        lines += ["## Occlusion sensitivity map", "",
                  "Incremental: speed-up over batched, against its limit (1 / occlusion_cost, the share of conv "
                  "multiply-adds an exact incremental sweep needs).", "",
                  "| device | way | ratio to batched | speed-up | share of the limit |", "|---|---|---|---|---|"]
        for b, base in _against(occlusion, "batched"):
            cost = b.get("extra_info", {}).get("occlusion_cost")
            limit = f"{(base / _mean(b)) * cost:.0%} of {1 / cost:.1f}x" if cost and b["params"]["way"] == "incremental" else ""
            lines.append(f"| {b['params']['hardware']} | {b['params']['way']} | {_mean(b) / base:.3f} | "
                         f"{base / _mean(b):.2f}x | {limit} |")
        lines.append("")
    lines += _null_sections(benchmarks)
    return "\n".join(lines) + "\n"


def _null_sections(benchmarks: list[dict]) -> list[str]:
    """A null measured now, every seed against two looks, per model; and one random init's time per cost group."""
    lines = []
    measured = {(b["params"]["null_model_name"], b["params"]["way"]): b for b in benchmarks if b["group"] == "null-measured-now"}
    models = sorted({model for model, _ in measured})
    if models:
        lines += ["## A null measured now (the recorded one set aside), loaded model to last learned verdict", "",
                  "| model | every claim on every seed | two looks | ratio | seeds per cost group in two looks |",
                  "|---|---|---|---|---|"]
        for model in models:
            every, looks = measured.get((model, "every-seed")), measured.get((model, "sequential"))
            if every is None or looks is None:
                continue
            seeds = ", ".join(f"{group} {count}" for group, count in looks.get("extra_info", {}).get("seeds_per_group", {}).items())
            lines.append(f"| {model} | {_mean(every):.1f} s | {_mean(looks):.1f} s | {_mean(looks) / _mean(every):.2f} | {seeds} |")
        lines.append("")
    costs = [b for b in benchmarks if b["group"] == "null-seed-cost"]
    if costs:
        lines += ["## One random init, per cost group (one thread, as a seed's worker measures it)", "",
                  "| model | cost group | s per seed |", "|---|---|---|"]
        lines += [f"| {b['params']['null_model_name']} | {b['params']['cost']} | {_mean(b):.2f} |" for b in costs]
        lines.append("")
    return lines


def write_baseline(folder: Path, output_json: dict, keep: bool = True) -> None:
    """``benchmarks.json`` (over what the folder holds, with ``keep``) and its ``summary.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "benchmarks.json"
    baseline = json.loads(path.read_text()) if keep and path.is_file() else None
    written = updated_baseline(baseline, json.loads(json.dumps(output_json, default=str)))
    path.write_text(json.dumps(written, indent=2))
    (folder / "summary.md").write_text(summary_markdown(written))
