"""The claims report: a verdict per claim, next to the notebook's figures, made correctly.

``write_report`` writes ``claims.json`` (machine-readable, stable keys), PNG figures (when
matplotlib is installed) and a self-contained ``index.html`` (figures embedded, no JavaScript).
The verdicts and measured values come from the test run itself; the figures are drawn from the
same models and image the claims used.
"""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

import torch

from cnn_core import (
    capture,
    denormalize,
    first_conv,
    occlude,
    occlusion_diff,
    receptive_fields,
)

SCHEMA_VERSION = 1
BLOCKS = MappingProxyType({
    "1": "Block 1 — Image → tensors → activations",
    "2": "Block 2 — Convolution as local pattern detection",
    "3": "Block 3 — Depth = abstraction",
    "4": "Block 4 — Spatial locality and receptive fields",
    "erratum": "Erratum — where the notebook is wrong",
})


@dataclass
class ClaimResult:
    """One checked claim: a test and its parameters, with what it measured and how it ended."""

    id: str  # pytest node id, unique and stable
    claim: str  # the test function: one claim
    block: str  # "1" to "4", or "erratum"
    sentence: str  # the notebook sentence the claim checks
    subject: str  # model, layer or weights the claim was checked on ("" when none)
    outcome: str  # passed, failed, skipped, xfailed, xpassed
    measured: float | None = None
    threshold: str | None = None
    expected: str | None = None  # the claims matrix's recorded verdict
    verdict: str | None = None  # CONFIRMED, REFUTED, INCONCLUSIVE or NOT MEASURED, for claims-matrix claims
    detail: str = ""
    reason: str = ""  # why it failed, was skipped or is expected to fail
    series: list[float] = field(default_factory=list)


def write_report(results: list[ClaimResult], folder: Path, figures: dict[str, list[Callable[[], object]]] | None,
                 environment: dict, verdicts: list[dict] | None = None) -> Path:
    """Write claims.json, the figures and index.html into ``folder``; return the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: r.id)
    drawn, missing = _draw(figures or {}, folder)
    (folder / "claims.json").write_text(json.dumps({
        "schema": SCHEMA_VERSION,
        "environment": environment,
        "summary": _counts(results),
        "verdicts": verdicts or [],
        "claims": [{**asdict(r), "figures": drawn.get(r.block, [])} for r in results],
    }, indent=2, sort_keys=True) + "\n")
    page = folder / "index.html"
    page.write_text(_html(results, folder, drawn, missing, environment, verdicts or []))
    return page


def _counts(results: list[ClaimResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return dict(sorted(counts.items()))


def _draw(figures: dict[str, list[Callable[[], object]]], folder: Path) -> tuple[dict[str, list[str]], str]:
    """Render each block's figures to PNG; without matplotlib, say how to get figures."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}, "Figures need matplotlib: pip install '.[report]' (or pip install matplotlib)."
    drawn: dict[str, list[str]] = {}
    for block, makers in figures.items():
        for index, make in enumerate(makers, start=1):
            figure = make()
            name = f"block{block}-{index}.png"
            figure.savefig(folder / name, dpi=80, bbox_inches="tight")
            plt.close(figure)
            drawn.setdefault(block, []).append(name)
    return drawn, ""


STATUS_COLOURS = MappingProxyType({"CONFIRMED": "#1a7f37", "REFUTED": "#cf222e", "INCONCLUSIVE": "#9a6700",
                                   "NOT MEASURED": "#6e7781"})


def _verdict_table(verdicts: list[dict]) -> str:
    """The notebook's sentences, one row per sentence and subject, grouped by block."""
    rows, block = [], None
    for v in verdicts:
        if v["block"] != block:
            block = v["block"]
            rows.append(f'<tr><th colspan=5 style="text-align:left">{html.escape(BLOCKS.get(block, block))}</th></tr>')
        value = "" if v["measured"] is None else f"{v['measured']:.4g}" + (
            f" [{v['low']:.4g}, {v['high']:.4g}] (n={v['images']})" if v.get("low") is not None else "")
        rows.append(f"<tr><td>{html.escape(v['sentence'])}</td><td>{html.escape(v['subject'])}</td>"
                    f'<td style="color:{STATUS_COLOURS[v["status"]]};font-weight:bold">{v["status"]}</td>'
                    f"<td>{value}</td><td class=note>{html.escape(v['rule'])}{' · ' + html.escape(v['detail']) if v['detail'] else ''}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Verdicts</h2><table class=fit><tr><th>notebook sentence</th><th>model.weights</th><th>verdict</th>"
            "<th>value [95% interval over photos]</th><th>rule (random null, α per verdict)</th></tr>" + "\n".join(rows) + "</table><h2>Every test</h2>")


def _html(results, folder: Path, drawn: dict[str, str], missing: str, environment: dict, verdicts: list[dict]) -> str:
    colours = {"passed": "#1a7f37", "failed": "#cf222e", "skipped": "#9a6700", "xfailed": "#6e7781", "xpassed": "#cf222e"}
    rows = []
    for r in results:
        figure = f'<a href="#block-{r.block}">figure</a>' if drawn.get(r.block) else ""
        measured = "" if r.measured is None else f"{r.measured:.4g}"
        note = html.escape(r.reason or r.detail)
        rows.append(
            f"<tr><td>{html.escape(r.claim)}</td><td>{html.escape(r.sentence)}</td><td>{html.escape(r.subject)}</td>"
            f"<td>{measured}</td><td>{html.escape(r.threshold or '')}{' · expected ' + r.expected if r.expected else ''}</td>"
            f'<td style="color:{colours.get(r.outcome, "#000")};font-weight:bold">{r.outcome}</td>'
            f"<td>{figure}</td><td class=note>{note}</td></tr>")
    sections = []
    for block, title in BLOCKS.items():
        picture = ""
        for name in drawn.get(block, []):
            data = base64.b64encode((folder / name).read_bytes()).decode()
            picture += f'<p><img alt="{html.escape(title)} ({name})" src="data:image/png;base64,{data}"></p>'
        if not picture and missing:
            picture = f"<p>{html.escape(missing)}</p>"
        count = _counts([r for r in results if r.block == block])
        sections.append(f'<h2 id="block-{block}">{html.escape(title)}</h2><p>{html.escape(str(count))}</p>{picture}')
    counts = ", ".join(f"{n} {k}" for k, n in _counts(results).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cnn-claims report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1400px; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }}
th {{ background: #f3f3f3; position: sticky; top: 0; }} td.note {{ color: #555; max-width: 30em; overflow-wrap: anywhere; }}
table.fit {{ width: 100%; table-layout: fixed; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
</style></head><body>
<h1>cnn-claims: the notebook's claims, checked</h1>
<p>{html.escape(counts)} · {html.escape(json.dumps(environment))}</p>
{_verdict_table(verdicts)}
<table><tr><th>claim</th><th>notebook sentence</th><th>model / layer / weights</th><th>measured</th>
<th>threshold · expectation</th><th>verdict</th><th>figure</th><th>note</th></tr>
{chr(10).join(rows)}
</table>
{chr(10).join(sections)}
</body></html>
"""


# --- the figures ----------------------------------------------------------------------------------

def _panels(rows: int, cols: int, width: float = 3.0):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, cols, figsize=(cols * width, rows * width), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    return figure, axes


def _show_image(axis, x: torch.Tensor, normalization, title: str) -> None:

    axis.imshow(denormalize(x, normalization)[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    axis.set_title(title, fontsize=9)


def figure_first_maps(model, x, normalization):
    """Block 1: the input and the first nine maps of the first conv (its true output)."""

    path = first_conv(model)
    maps = capture(model, x, path)[path][0].cpu()
    figure, axes = _panels(2, 5)
    _show_image(axes[0, 0], x, normalization, f"input {list(x.shape)}")
    for i in range(9):
        axis = axes[(i + 1) // 5, (i + 1) % 5]
        axis.imshow(maps[i].numpy(), cmap="viridis")
        axis.set_title(f"{path} map {i}", fontsize=9)
    figure.suptitle(f"First conv: the image becomes {maps.shape[0]} filtered maps of {tuple(maps.shape[1:])}")
    return figure


def figure_filters(model, x, normalization):
    """Block 2: first-layer filters, where each responds, and an overlay normalised before colouring."""

    path = first_conv(model)
    weight = model.get_submodule(path).weight.detach().cpu()
    maps = capture(model, x, path)[path][0].cpu()
    figure, axes = _panels(4, 3)
    for i in range(4):
        kernel = weight[i].permute(1, 2, 0)
        axes[i, 0].imshow(((kernel - kernel.min()) / (kernel.max() - kernel.min() + 1e-12)).numpy())
        axes[i, 0].set_title(f"filter {i} ({weight.shape[-1]}x{weight.shape[-1]})", fontsize=9)
        axes[i, 1].imshow(maps[i].numpy(), cmap="hot")
        axes[i, 1].set_title(f"where filter {i} responds", fontsize=9)
        response = maps[i]
        scaled = ((response - response.min()) / (response.max() - response.min() + 1e-12)).numpy()
        _show_image(axes[i, 2], x, normalization, "overlay (normalised to [0, 1], no wrap)")
        axes[i, 2].imshow(scaled, cmap="hot", alpha=0.5, extent=(0, x.shape[-1], x.shape[-2], 0))
    figure.suptitle("Filters as pattern detectors")
    return figure


def figure_depth(model, x, probes: dict[str, str]):
    """Block 3: the four highest-variance channels at early, middle and deep probes, with shapes."""

    maps = capture(model, x, list(probes.values()))
    figure, axes = _panels(len(probes), 5)
    for row, (label, layer) in enumerate(probes.items()):
        activation = maps[layer][0].cpu()
        axes[row, 0].text(0.5, 0.5, f"{label}\n{layer}\n{list(maps[layer].shape)}", ha="center", va="center", fontsize=10)
        for col, channel in enumerate(torch.argsort(activation.var(dim=(1, 2)), descending=True)[:4].tolist()):
            axes[row, col + 1].imshow(activation[channel].numpy(), cmap="viridis")
            axes[row, col + 1].set_title(f"channel {channel}", fontsize=9)
    figure.suptitle("Depth: more channels, lower resolution (conv outputs before their ReLU)")
    return figure


def figure_occlusion(model, x, normalization, box, layers: list[str]):
    """Block 4: the notebook's grey patch and true black, with early and deep difference maps."""

    figure, axes = _panels(2, 1 + len(layers))
    for row, fill in enumerate(("mean", "black")):
        _show_image(axes[row, 0], occlude(x, box, fill, normalization), normalization,
                    "notebook's 'black out' (mean grey)" if fill == "mean" else "true black")
        differences = occlusion_diff(model, x, box, layers, fill=fill)
        for col, layer in enumerate(layers, start=1):
            axes[row, col].imshow(differences[layer][0].cpu().numpy(), cmap="hot")
            axes[row, col].set_title(f"|difference| at {layer} {tuple(differences[layer].shape[1:])}", fontsize=9)
    figure.suptitle("Occlusion: early change is local, deep change broader but in place")
    return figure


def figure_receptive_fields(model, effective: dict[str, float]):
    """Block 4: theoretical field size, effective (gradient) field size and jump, layer by layer."""
    import matplotlib.pyplot as plt


    fields = [(name, f) for name, f in receptive_fields(model).items() if not f.is_global and "." in name]
    figure, axis = plt.subplots(figsize=(10, 4))
    positions = range(len(fields))
    axis.plot(positions, [f.size[0] for _, f in fields], marker="o", label="theoretical field (px)")
    axis.plot(positions, [f.jump[0] for _, f in fields], marker=".", label="jump (px)")
    measured = [(i, effective[name]) for i, (name, _) in enumerate(fields) if name in effective]
    if measured:
        axis.plot(*zip(*measured), marker="s", label="effective field, 90% of |gradient| (px)")
    axis.set_xticks(list(positions), [name for name, _ in fields], rotation=90, fontsize=7)
    axis.set_ylabel("pixels")
    axis.legend()
    axis.set_title("Receptive fields grow with depth")
    return figure


def figure_sparsity(sparsity: dict[str, list[float]]):
    """Block 3: inactive share by stage for each measured model (the L3 measurements)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for subject, values in sorted(sparsity.items()):
        axis.plot(range(1, len(values) + 1), values, marker="o", label=subject,
                  linestyle="--" if "random" in subject else "-")
    axis.set_xlabel("stage (a stretch of equal resolution)")
    axis.set_xticks(range(1, 1 + max((len(v) for v in sparsity.values()), default=1)))
    axis.set_ylabel("inactive share of the activations (<= 0)")
    axis.set_title("Sparsity by depth")
    if sparsity:
        axis.legend(fontsize=8)
    return figure


def figure_sensitivity(model, x, normalization, target, title: str):
    """Block 4: Zeiler and Fergus's occlusion sensitivity over the photo, for its class."""
    import matplotlib.pyplot as plt

    from .occlusion import occlusion_map

    size = x.shape[-1]
    sensitivity = occlusion_map(model, x, window=size // 4, stride=size // 16, target=target, batch_size=16)
    figure, axis = plt.subplots(figsize=(5, 5))
    _show_image(axis, x, normalization, title)
    axis.imshow(sensitivity.pixel_map(size, size).cpu().numpy(), cmap="jet", alpha=0.45, extent=(0, size, size, 0))
    axis.axis("off")
    return figure
