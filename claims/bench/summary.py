"""The benchmark summary: ratios measured in one run, as a Markdown table."""
from __future__ import annotations


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
    return "\n".join(lines) + "\n"
