"""The claims report: the verdict matrix on the first screen, the findings in words, the
notebook's figures for every trained model side by side, and every test, folded.

``write_report`` writes ``claims.json`` (machine-readable, stable keys), JPEG figures (when
matplotlib is installed) and a self-contained ``index.html`` (figures
embedded, no JavaScript, no network; verdicts in words, so readable without colour), and where
headless Chromium is installed, ``screenshot.png``: the page's first screen at 1280 x 800. The
verdicts and measured values come from the test run itself; the figures are drawn from the
same models and image the claims used.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

import torch
from PIL import Image

from claims.rules import (
    CONFIRMED,
    INCONCLUSIVE,
    NOT_MEASURED,
    NULL_SEEDS,
    REFUTED,
    RULES,
)
from claims.statistics import ALPHA
from claims.verdict_matrix import bar_text, value_text, verdict_matrix
from cnn_core import (
    capture,
    denormalize,
    first_conv,
    occlude,
    occlusion_diff,
    occlusion_map,
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
SCREEN = (1280, 800)  # the first screen a reader sees: the verdict matrix must fit it
# Headless Chromium offline: without these flags it keeps trying Google's hosts.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")
MAX_TICKS = 24  # layer names along a figure's axis
FIGURE_DPI, JPEG_QUALITY = 60, 80  # shown about 400 px wide: this keeps a default report's page under 1.5 MB


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


@dataclass(frozen=True)
class Figure:
    """One of the notebook's figures, drawn from one model, illustrating one claim of the matrix."""

    block: str
    model: str  # the model's label ("mobilenet_v2.imagenet"), or what a figure of several shows
    claim: str  # the RULES claim it illustrates: its sentence is the caption, its verdict beside it
    make: Callable[[], object]  # draws the matplotlib figure

    @property
    def file_name(self) -> str:
        return f"block{self.block}-{re.sub(r'[^a-z0-9]+', '-', self.model.lower()).strip('-')}-{self.claim}.jpg"


def write_report(results: list[ClaimResult], folder: Path, figures: list[Figure] | None,
                 environment: dict, verdicts: list[dict] | None = None,
                 references: dict[str, dict[str, dict]] | None = None) -> Path:
    """Write claims.json, the figures and index.html into ``folder``; return the page's path.
    ``references``: recorded verdicts (subject -> claim -> row) to stand beside the run's trained models."""
    folder.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: r.id)
    drawn, missing = _draw(figures or [], folder)
    by_block: dict[str, list[str]] = {}
    for figure in drawn:
        by_block.setdefault(figure.block, []).append(figure.file_name)
    (folder / "claims.json").write_text(json.dumps({
        "schema": SCHEMA_VERSION,
        "environment": environment,
        "summary": _counts(results),
        "verdicts": verdicts or [],
        "references": references or {},
        "claims": [{**asdict(r), "figures": by_block.get(r.block, [])} for r in results],
    }, indent=2, sort_keys=True) + "\n")
    page = folder / "index.html"
    page.write_text(_html(results, folder, drawn, missing, environment, verdicts or [], references or {}))
    if chromium() is not None:
        try:
            browse(page, f"--screenshot={folder / 'screenshot.png'}")
        except (subprocess.SubprocessError, OSError):
            pass  # the screenshot is a convenience: a browser that fails to start must not lose the report
    return page


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browse(page: Path, *arguments: str, size: tuple[int, int] = SCREEN) -> str:
    """Open ``page`` in headless Chromium at ``size`` with ``arguments`` (``--screenshot=PATH``,
    ``--dump-dom``); what it printed."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                               *arguments, page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout


def _counts(results: list[ClaimResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return dict(sorted(counts.items()))


def _draw(figures: list[Figure], folder: Path) -> tuple[list[Figure], str]:
    """Render each figure to a JPEG; without matplotlib, say how to get figures."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "Figures need matplotlib: pip install '.[report]' (or pip install matplotlib)."
    for figure in figures:
        drawing = figure.make()
        buffer = io.BytesIO()
        drawing.savefig(buffer, dpi=FIGURE_DPI, bbox_inches="tight")
        plt.close(drawing)
        with Image.open(buffer) as picture:
            # Photos and colour maps: a palette PNG of them is twice the size of a JPEG that reads the same.
            picture.convert("RGB").save(folder / figure.file_name, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return list(figures), ""


STATUS_CLASSES = MappingProxyType({CONFIRMED: "yes", REFUTED: "no", INCONCLUSIVE: "maybe", NOT_MEASURED: "na"})


def _matrix_cell(row: dict | None) -> str:
    if row is None:
        return '<td class=na title="this claim does not run on this model">—</td>'
    rule = html.escape(row["rule"] + (f" · {row['detail']}" if row.get("detail") else ""), quote=True)
    if row["status"] == NOT_MEASURED:
        reason = row["detail"].split(":", 1)[0]
        return f'<td class=na title="{rule}"><b>NOT MEASURED</b><br><small>{html.escape(reason)}</small></td>'
    return (f'<td class={STATUS_CLASSES[row["status"]]} title="{rule}"><b>{row["status"]}</b><br>'
            f"<small>{html.escape(value_text(row))} · {html.escape(bar_text(row))}</small></td>")


def _matrix(verdicts: list[dict], models: list[str], references: dict[str, dict[str, dict]]) -> str:
    """The first screen: one row per notebook sentence in the notebook's order, one column per
    trained model (then the recorded references the run did not measure), and the random-init models
    and random controls collapsed into one cell."""
    matrix = verdict_matrix(verdicts, models, references)
    if not matrix.rows:
        return ""
    head = "".join(f"<th>{html.escape(subject)}{'<br><small>recorded, not run</small>' if subject in matrix.references else ''}</th>"
                   for subject in matrix.columns)
    rows = []
    for index, row in enumerate(matrix.rows):
        block = "" if index and matrix.rows[index - 1].rule.block == row.rule.block else \
            f'<td class=block rowspan={sum(r.rule.block == row.rule.block for r in matrix.rows)}>{row.rule.block}</td>'
        cells = "".join(_matrix_cell(row.cells.get(subject)) for subject in matrix.columns)
        rows.append(f'<tr>{block}<td title="{row.rule.claim}">“{html.escape(row.rule.sentence)}”</td>{cells}'
                    f'<td class=others title="{html.escape(row.why, quote=True)}"><small>{html.escape(row.others)}</small></td></tr>')
    findings = "".join(f"<li>{html.escape(title)}:<ul>{''.join(f'<li>{html.escape(item)}</li>' for item in items)}</ul></li>"
                       for title, items in matrix.findings().items())
    return (f'<table class=matrix><tr><th>block</th><th>the notebook says</th>{head}<th>other models</th></tr>'
            + "\n".join(rows) + f"</table>\n<p class=legend>A cell: the verdict, the value [95% interval over photos] · "
            f"the bar (learned claims: the random null's one-sided 99% prediction bound from {len(NULL_SEEDS)} random "
            f"initialisations, α = {ALPHA:g} per verdict; structural claims: the exact rule). Hover a cell for its rule.</p>"
            f"<h2>What the run found</h2><ul>{findings}</ul>")


def _verdict_of(verdicts: list[dict], figure: Figure) -> str:
    found = next((v for v in verdicts if v["claim"] == figure.claim and v["subject"] == figure.model), None)
    return "" if found is None else f" — {found['status']}" + (
        f" ({value_text(found)}, {bar_text(found)})" if found["measured"] is not None else "")


def _figures_html(block: str, drawn: list[Figure], folder: Path, verdicts: list[dict]) -> str:
    items = []
    for figure in (f for f in drawn if f.block == block):
        data = base64.b64encode((folder / figure.file_name).read_bytes()).decode()
        caption = f"{figure.model}: “{RULES[figure.claim].sentence}”{_verdict_of(verdicts, figure)}"
        items.append(f'<figure><img alt="{html.escape(caption, quote=True)}" src="data:image/jpeg;base64,{data}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return f"<div class=figures>{''.join(items)}</div>" if items else ""


def header(environment: dict) -> str:
    """The run in a sentence: versions, device, models, weights, photos, and pytest's counts."""
    tests = ", ".join(f"{count} {outcome}" for outcome, count in environment.get("tests", {}).items())
    models = environment.get("models", "").replace(",", ", ")
    also = f", learned claims also on {environment['learned_also'].replace(',', ', ')}" if environment.get("learned_also") else ""
    stated = f", fed as stated ({environment['preprocessing']})" if environment.get("preprocessing") else ""
    return (f"torch {environment.get('torch', '?')} and torchvision {environment.get('torchvision', '?')} on "
            f"{environment.get('device', '?')}; models {models} with weights {environment.get('weights', '?')}{stated}{also}; "
            f"image {environment.get('image', '?')}; fixtures {environment.get('fixtures', '?')}"
            + (f". pytest: {tests}." if tests else "."))


def _html(results, folder: Path, drawn: list[Figure], missing: str, environment: dict, verdicts: list[dict],
          references: dict[str, dict[str, dict]]) -> str:
    colours = {"passed": "#1a7f37", "failed": "#cf222e", "skipped": "#9a6700", "xfailed": "#6e7781", "xpassed": "#cf222e"}
    rows = []
    for r in results:
        measured = "" if r.measured is None else f"{r.measured:.4g}"
        rows.append(
            f"<tr><td>{html.escape(r.claim)}</td><td>{html.escape(r.subject)}</td>"
            f"<td>{measured}</td><td>{html.escape(r.threshold or '')}{' · expected ' + r.expected if r.expected else ''}</td>"
            f'<td style="color:{colours.get(r.outcome, "#000")};font-weight:bold">{r.outcome}</td>'
            f"<td class=note>{html.escape(r.reason or r.detail)}</td></tr>")
    sections = []
    for block, title in BLOCKS.items():
        pictures = _figures_html(block, drawn, folder, verdicts) or (f"<p>{html.escape(missing)}</p>" if missing else "")
        count = ", ".join(f"{n} {k}" for k, n in _counts([r for r in results if r.block == block]).items())
        sections.append(f'<h2 id="block-{block}">{html.escape(title)}</h2><p>tests: {html.escape(count)}</p>{pictures}')
    counts = ", ".join(f"{n} {k}" for k, n in _counts(results).items())
    models = environment.get("models", "").split(",")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cnn-claims report</title>
<style>
body {{ font-family: sans-serif; margin: 8px 12px; max-width: 1250px; font-size: 13px; }}
h1 {{ font-size: 18px; margin: 4px 0; }} h2 {{ font-size: 16px; margin: 14px 0 4px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 5px; vertical-align: top; }}
th {{ background: #f3f3f3; }} td.note {{ color: #555; max-width: 40em; overflow-wrap: anywhere; }}
table.matrix {{ width: 100%; table-layout: fixed; font-size: 12px; line-height: 1.2; }}
table.matrix th:nth-child(1) {{ width: 3em; }} table.matrix th:nth-child(2) {{ width: 24%; }}
td.block {{ text-align: center; font-weight: bold; }}
td.yes {{ background: #dafbe1; }} td.no {{ background: #ffebe9; }} td.maybe {{ background: #fff8c5; }}
td.na {{ color: #57606a; }} td.others {{ color: #444; }}
p.meta, p.legend {{ color: #555; font-size: 11px; margin: 2px 0; }}
div.figures {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 8px; }}
figure {{ margin: 0; }} figcaption {{ font-size: 12px; color: #333; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
</style></head><body>
<h1>cnn-claims: which of the notebook's sentences hold, on which network</h1>
<p class=meta>{html.escape(header(environment))}</p>
{_matrix(verdicts, models, references)}
{chr(10).join(sections)}
<details><summary><b>Every claim test</b> ({html.escape(counts)})</summary>
<table><tr><th>claim</th><th>model / layer / weights</th><th>measured</th>
<th>threshold · expectation</th><th>outcome</th><th>note</th></tr>
{chr(10).join(rows)}
</table></details>
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


    fields = [(name, f) for name, f in receptive_fields(model).items() if name and not f.is_global]
    figure, axis = plt.subplots(figsize=(10, 4))
    positions = range(len(fields))
    axis.plot(positions, [f.size[0] for _, f in fields], marker="o", label="theoretical field (px)")
    axis.plot(positions, [f.jump[0] for _, f in fields], marker=".", label="jump (px)")
    measured = [(i, effective[name]) for i, (name, _) in enumerate(fields) if name in effective]
    if measured:
        axis.plot(*zip(*measured), marker="s", label="effective field, 90% of |gradient| (px)")
    every = max(1, len(fields) // MAX_TICKS)  # MobileNetV2 has 150 layers: a readable subset of names
    axis.set_xticks(list(positions)[::every], [name for name, _ in fields][::every], rotation=90, fontsize=7)
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

    size = x.shape[-1]
    sensitivity = occlusion_map(model, x, window=size // 4, stride=size // 16, target=target, batch_size=16)
    figure, axis = plt.subplots(figsize=(5, 5))
    _show_image(axis, x, normalization, title)
    axis.imshow(sensitivity.pixel_map(size, size).cpu().numpy(), cmap="jet", alpha=0.45, extent=(0, size, size, 0))
    axis.axis("off")
    return figure
