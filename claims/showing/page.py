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
import functools
import html
import io
import json
import re
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import torch
from PIL import Image

from claims.judging.rules import (
    CONFIRMED,
    INCONCLUSIVE,
    NOT_MEASURED,
    NULL_SEEDS,
    REFUTED,
    RULES,
    Verdict,
)
from claims.judging import sequential
from claims.judging.statistics import ALPHA
from claims.showing.verdict_matrix import bar_text, value_text, verdict_matrix
from cnn_core import (
    capture,
    denormalize,
    first_conv,
    occlude,
    occlusion_diff,
    occlusion_map,
    receptive_fields,
)

SCHEMA_VERSION = 2  # 2: a verdict's subject, rule and recorded status are fields of their own
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
MAX_TICKS = 12  # layer names along a figure's axis, at the smallest text size
# Figures are drawn at the size they are shown: a column figure is COLUMN_IN wide (400 px at 100 dpi; the
# page's grid shows it 360 to about 410 px wide), so the smallest text, TEXT_PT (12.5 px), reaches the screen
# at 11 px or more. Wide figures (the verdicts) are shown at their own size, scrolling sideways inside their strip.
FIGURE_DPI, COLUMN_IN, TEXT_PT, TITLE_PT, JPEG_QUALITY = 100, 4.0, 9, 10, 82
MIN_SCREEN_TEXT_PX = 10
TEXT_SIZES = MappingProxyType({"font.size": TEXT_PT, "axes.titlesize": TEXT_PT, "axes.labelsize": TEXT_PT,
                               "xtick.labelsize": TEXT_PT, "ytick.labelsize": TEXT_PT, "legend.fontsize": TEXT_PT,
                               "figure.titlesize": TITLE_PT})
STATUS_COLOURS = MappingProxyType({CONFIRMED: "#1a7f37", REFUTED: "#cf222e", INCONCLUSIVE: "#9a6700",
                                   NOT_MEASURED: "#6e7781"})


@dataclass
class ClaimResult:
    """One checked claim: a test and its parameters, with what it measured and how it ended."""

    id: str  # pytest node id, unique and stable
    claim: str  # the test function: one claim
    block: str  # "1" to "4", or "erratum"
    sentence: str  # the notebook sentence the claim checks
    subject: str  # model, layer or weights the claim was checked on ("" when none)
    outcome: str  # passed, failed, skipped, xfailed, xpassed
    verdict: Verdict | None = None  # a claims-matrix test's verdict on the model (its random control's is in the matrix)
    reason: str = ""  # why it failed, was skipped or is expected to fail


@dataclass(frozen=True)
class Figure:
    """One of the notebook's figures, drawn from one model, illustrating one claim of the matrix."""

    block: str  # "1" to "4", or VERDICTS: the verdict figure under the matrix
    model: str  # the model's label ("mobilenet_v2.imagenet"), or what a figure of several shows
    claim: str  # the RULES claim it illustrates: its sentence is the caption, its verdict beside it
    make: Callable[[], object]  # draws the matplotlib figure
    photo: bool = True  # a photograph or colour map (JPEG); a plot of lines and text is a PNG

    @property
    def file_name(self) -> str:
        return (f"block{self.block}-{re.sub(r'[^a-z0-9]+', '-', self.model.lower()).strip('-')}-{self.claim}."
                + ("jpg" if self.photo else "png"))


@dataclass(frozen=True)
class Drawn:
    """A figure as saved: its smallest text in the image's own pixels (what the page's layout scales)."""

    figure: Figure
    text_px: float


VERDICTS = "verdicts"  # the block of the verdict figure's rows


def write_report(results: list[ClaimResult], folder: Path, figures: list[Figure] | None,
                 environment: dict, verdicts: list[Verdict] | None = None,
                 references: dict[str, dict[str, Verdict]] | None = None) -> Path:
    """Write claims.json, the figures and index.html into ``folder``; return the page's path.
    ``references``: recorded verdicts (subject -> claim -> row) to stand beside the run's trained models."""
    folder.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: r.id)
    verdicts = sorted(verdicts or [], key=lambda v: (RULES[v.claim].block, v.claim, v.subject.label))
    matrix = verdict_matrix(verdicts or [], environment.get("models", "").split(","), references)
    drawn, missing = _draw(verdict_figures(matrix) + list(figures or []), folder)
    _stack([folder / d.figure.file_name for d in drawn if d.figure.block == VERDICTS], folder / "verdicts.png")
    by_block: dict[str, list[str]] = {}
    for done in drawn:
        by_block.setdefault(done.figure.block, []).append(done.figure.file_name)
    (folder / "claims.json").write_text(json.dumps({
        "schema": SCHEMA_VERSION,
        "environment": environment,
        "summary": _counts(results),
        "registry": {claim: rule.to_dict() for claim, rule in RULES.items()},
        "verdicts": [verdict.to_dict() for verdict in verdicts],
        "references": {subject: {claim: verdict.to_dict() for claim, verdict in claims.items()}
                       for subject, claims in (references or {}).items()},
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


def verdict_figures(matrix) -> list[Figure]:
    """The verdict figure: a row per learned claim in the notebook's order, a panel per trained model."""
    return [Figure(VERDICTS, "trained models", row.rule.claim, functools.partial(
                figure_verdict_row, row.rule,
                [(subject, row.cells.get(subject), _control_of(row, subject)) for subject in matrix.trained]), photo=False)
            for row in matrix.rows if row.rule.threshold is None and matrix.trained]


def _control_of(row, subject: str) -> Verdict | None:
    return next((control for control in row.controls if control.subject.model == subject), None)


def _stack(pictures: list[Path], target: Path) -> None:
    """The verdict figure's rows, one under the other, in one picture beside the report."""
    if not pictures:
        return
    images = [Image.open(picture).convert("RGB") for picture in pictures]
    sheet = Image.new("RGB", (max(image.width for image in images), sum(image.height for image in images)), "white")
    top = 0
    for image in images:
        sheet.paste(image, (0, top))
        top += image.height
    sheet.quantize(colors=64).save(target, "PNG", optimize=True)


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


def _draw(figures: list[Figure], folder: Path) -> tuple[list[Drawn], str]:
    """Render each figure at FIGURE_DPI with the report's text sizes (a photo to a JPEG, a plot to a PNG),
    noting its smallest text; without matplotlib, say how to get figures."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.text import Text
    except ImportError:
        return [], "Figures need matplotlib: pip install '.[report]' (or pip install matplotlib)."
    drawn = []
    for figure in figures:
        with matplotlib.rc_context(dict(TEXT_SIZES)):
            drawing = figure.make()
            buffer = io.BytesIO()
            drawing.savefig(buffer, dpi=FIGURE_DPI, bbox_inches="tight")
            sizes = [text.get_fontsize() for text in drawing.findobj(Text) if text.get_visible() and text.get_text().strip()]
            plt.close(drawing)
        with Image.open(buffer) as picture:
            if figure.photo:
                picture.convert("RGB").save(folder / figure.file_name, "JPEG", quality=JPEG_QUALITY, optimize=True)
            else:  # lines and text in few colours: a palette keeps them sharp at a fraction of the bytes
                picture.convert("RGB").quantize(colors=64).save(folder / figure.file_name, "PNG", optimize=True)
        drawn.append(Drawn(figure, min(sizes, default=TEXT_PT) * FIGURE_DPI / 72))
    return drawn, ""


STATUS_CLASSES = MappingProxyType({CONFIRMED: "yes", REFUTED: "no", INCONCLUSIVE: "maybe", NOT_MEASURED: "na"})


def _matrix_cell(cell: Verdict | None, link: str | None = None, reference: bool = False) -> str:
    """A verdict in words and colour, its rule on hover; a learned one links to its row of the verdict figure."""
    if cell is None:
        return '<td class=na title="this claim does not run on this model">—</td>'
    rule = REFERENCE_RULE if reference else cell.rule_text
    rule = html.escape(rule + (f" · {cell.detail}" if cell.detail else ""), quote=True)
    if cell.status == NOT_MEASURED:
        return f'<td class=na title="{rule}"><b>NOT MEASURED</b><br><small>{html.escape(textwrap.shorten(cell.detail, 48, placeholder=" …"))}</small></td>'
    text = f"<b>{cell.status}</b><br><small>{html.escape(value_text(cell))} · {html.escape(bar_text(cell, reference))}</small>"
    return f'<td class={STATUS_CLASSES[cell.status]} title="{rule}">' + (f'<a href="{link}">{text}</a>' if link else text) + "</td>"


REFERENCE_RULE = "the verdict recorded in claims/expectations.toml (not measured in this run)"


STATUS_LEGEND = (f"{CONFIRMED}: the trained value clears the bar (a structural claim: its exact rule holds). "
                 f"{REFUTED}: its whole 95% interval over photos lies short of the bar (the rule fails). "
                 f"{INCONCLUSIVE}: the interval reaches the bar; more photos would decide. "
                 f"{NOT_MEASURED}: the run lacks what the claim needs (weights, a trained head, the photos); hover for why.")


def _matrix(verdicts: list[Verdict], models: list[str], references: dict[str, dict[str, Verdict]]) -> str:
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
        spanned = sum(1 + bool(matrix.agreement(other)) for other in matrix.rows if other.rule.block == row.rule.block)
        block = "" if index and matrix.rows[index - 1].rule.block == row.rule.block else \
            f'<td class=block rowspan={spanned}>{row.rule.block}</td>'
        cells = "".join(_matrix_cell(row.cells.get(subject), f"#verdict-{row.rule.claim}"
                                     if row.rule.learned and subject in matrix.trained else None, subject in matrix.references)
                        for subject in matrix.columns)
        instrument = f" <small>[{html.escape(row.rule.instrument_text)}]</small>" if row.rule.instrument else ""
        rows.append(f'<tr>{block}<td title="{row.rule.claim}">“{html.escape(row.rule.sentence)}”{instrument}</td>{cells}'
                    f'<td class=others title="{html.escape(row.why, quote=True)}"><small>{html.escape(row.others)}</small></td></tr>')
        said = matrix.agreement(row)
        if said:
            rows.append('<tr><td><small>the two instruments agree?</small></td>'
                        + "".join(f"<td><small>{html.escape(str(said.get(subject, '—')))}</small></td>" for subject in matrix.columns)
                        + "<td></td></tr>")
    return (f'<table class=matrix><tr><th>block</th><th>the notebook says</th>{head}<th>other models</th></tr>'
            + "\n".join(rows) + f"</table>\n<p class=legend>A cell: the verdict, the value [95% interval over photos] · "
            f"the bar (learned claims: the random null's one-sided 99% prediction bound from {len(NULL_SEEDS)} random "
            f"initialisations, α = {ALPHA:g} per verdict, or, {sequential.in_words()}; structural claims: the exact rule). "
            f"Hover a cell for its rule; "
            f"a learned verdict links to its row of the verdict figure.</p><p class=legend>{html.escape(STATUS_LEGEND)}</p>")


def _findings(verdicts: list[Verdict], models: list[str], references: dict[str, dict[str, Verdict]],
              compared: list[str]) -> str:
    """What the run found, in words (below the verdict figure), and what changed between compared checkpoints."""
    found = verdict_matrix(verdicts, models, references, compared).findings()
    if not verdicts:
        return ""
    items = "".join(f"<li>{html.escape(title)}:<ul>{''.join(f'<li>{html.escape(item)}</li>' for item in items)}</ul></li>"
                    for title, items in found.items())
    return f"<h2>What the run found</h2><ul>{items}</ul>"


def _verdict_of(verdicts: list[Verdict], figure: Figure) -> str:
    found = next((v for v in verdicts if v.claim == figure.claim and v.subject.label == figure.model), None)
    return "" if found is None else f" — {found.status}" + (
        f" ({value_text(found)}, {bar_text(found)})" if found.measured is not None else "")


def _image(folder: Path, done: Drawn, alt: str) -> str:
    """An embedded figure, with its smallest text (image pixels) for the layout test to scale."""
    data = base64.b64encode((folder / done.figure.file_name).read_bytes()).decode()
    kind = "jpeg" if done.figure.photo else "png"
    return (f'<img alt="{html.escape(alt, quote=True)}" data-text-px="{done.text_px:.1f}" '
            f'src="data:image/{kind};base64,{data}">')


def _figures_html(block: str, drawn: list[Drawn], folder: Path, verdicts: list[Verdict]) -> str:
    items = []
    for done in (d for d in drawn if d.figure.block == block):
        figure = done.figure
        caption = f"{figure.model}: “{RULES[figure.claim].sentence}”{_verdict_of(verdicts, figure)}"
        items.append(f"<figure>{_image(folder, done, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>")
    return f"<div class=figures>{''.join(items)}</div>" if items else ""


def _verdicts_html(drawn: list[Drawn], folder: Path) -> str:
    """Under the matrix: why each learned verdict is what it is, a row per claim (the matrix's cells link here)."""
    rows = [f'<div class=wide id="verdict-{done.figure.claim}">'
            f"{_image(folder, done, 'the verdicts on: ' + RULES[done.figure.claim].sentence)}</div>"
            for done in drawn if done.figure.block == VERDICTS]
    if not rows:
        return ""
    return ("<h2 id=verdicts>Why each verdict: the trained value against its random null</h2>"
            f"<p class=legend>Each panel: the {len(NULL_SEEDS)} random initialisations of the architecture (grey dots; "
            f"{sequential.FIRST_SEEDS} where a null measured now decided at its first look), the bar they set (dashed: "
            "their one-sided prediction bound), the random control (hollow diamond), "
            "and the trained model's value with its 95% interval over photos, coloured by its verdict "
            "(green CONFIRMED, red REFUTED, amber INCONCLUSIVE: the interval reaches the bar).</p>" + "".join(rows))


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


def _html(results, folder: Path, drawn: list[Drawn], missing: str, environment: dict, verdicts: list[Verdict],
          references: dict[str, dict[str, Verdict]]) -> str:
    colours = {"passed": "#1a7f37", "failed": "#cf222e", "skipped": "#9a6700", "xfailed": "#6e7781", "xpassed": "#cf222e"}
    rows = []
    for r in results:
        v = r.verdict
        measured = "" if v is None or v.measured is None else f"{v.measured:.4g}"
        rule = "" if v is None else v.rule_text + (f" · expected {v.recorded}" if v.recorded else "")
        rows.append(
            f"<tr><td>{html.escape(r.claim)}</td><td>{html.escape(r.subject)}</td>"
            f"<td>{measured}</td><td>{html.escape(rule)}</td>"
            f'<td style="color:{colours.get(r.outcome, "#000")};font-weight:bold">{r.outcome}</td>'
            f"<td class=note>{html.escape(r.reason or (v.detail if v else ''))}</td></tr>")
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
div.wide {{ overflow-x: auto; }} div.wide img {{ max-width: none; border: 0; }}
td a {{ color: inherit; text-decoration: none; }}
</style></head><body>
<h1>cnn-claims: which of the notebook's sentences hold, on which network</h1>
<p class=meta>{html.escape(header(environment))}</p>
{_matrix(verdicts, models, references)}
{_verdicts_html(drawn, folder)}
{_findings(verdicts, models, references, environment.get("compared", []))}
{chr(10).join(sections)}
<details><summary><b>Every claim test</b> ({html.escape(counts)})</summary>
<table><tr><th>claim</th><th>model / layer / weights</th><th>measured</th>
<th>threshold · expectation</th><th>outcome</th><th>note</th></tr>
{chr(10).join(rows)}
</table></details>
</body></html>
"""


# --- the figures ----------------------------------------------------------------------------------

def _panels(rows: int, cols: int, title_lines: int = 1):
    """A grid of image panels filling a column figure's width, with room above for a title of so many lines
    (placed by matplotlib's constrained layout, so that it never runs into the panels)."""
    import matplotlib.pyplot as plt

    side = COLUMN_IN / cols
    figure, axes = plt.subplots(rows, cols, figsize=(COLUMN_IN, rows * (side + 0.25) + 0.2 * title_lines), squeeze=False,
                                layout="constrained")
    for axis in axes.flat:
        axis.axis("off")
    return figure, axes


def _show_image(axis, x: torch.Tensor, normalization, title: str) -> None:

    axis.imshow(denormalize(x, normalization)[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    axis.set_title(title)


def figure_first_maps(model, x, normalization):
    """Block 1: the input and the first nine maps of the first conv (its true output)."""

    path = first_conv(model)
    maps = capture(model, x, path)[path][0].cpu()
    figure, axes = _panels(3, 4, title_lines=2)
    _show_image(axes[0, 0], x, normalization, f"input {x.shape[-2]}×{x.shape[-1]}")
    for i in range(9):
        axis = axes.flat[i + 1]
        axis.imshow(maps[i].numpy(), cmap="viridis")
        axis.set_title(f"map {i}")
    figure.suptitle(f"First conv ({path}): the image becomes\n{maps.shape[0]} filtered maps of "
                    f"{maps.shape[1]}×{maps.shape[2]}")
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
        axes[i, 0].set_title(f"filter {i} ({weight.shape[-1]}×{weight.shape[-1]})")
        axes[i, 1].imshow(maps[i].numpy(), cmap="hot")
        axes[i, 1].set_title("where it responds")
        response = maps[i]
        scaled = ((response - response.min()) / (response.max() - response.min() + 1e-12)).numpy()
        _show_image(axes[i, 2], x, normalization, "overlay, no wrap")
        axes[i, 2].imshow(scaled, cmap="hot", alpha=0.5, extent=(0, x.shape[-1], x.shape[-2], 0))
    figure.suptitle("Filters as pattern detectors")
    return figure


def figure_depth(model, x, probes: dict[str, str]):
    """Block 3: the four highest-variance channels at early, middle and deep probes, with shapes."""

    maps = capture(model, x, list(probes.values()))
    figure, axes = _panels(len(probes), 4, title_lines=1 + len(probes))
    for row, (label, layer) in enumerate(probes.items()):
        activation = maps[layer][0].cpu()
        for col, channel in enumerate(torch.argsort(activation.var(dim=(1, 2)), descending=True)[:4].tolist()):
            axes[row, col].imshow(activation[channel].numpy(), cmap="viridis")
            axes[row, col].set_title(f"{label}: ch {channel}" if col == 0 else f"ch {channel}")
    shapes = "\n".join(f"{label} {layer}: {list(maps[layer].shape[1:])}" for label, layer in probes.items())
    figure.suptitle(f"Depth: more channels, lower resolution\n(conv outputs before their ReLU)\n{shapes}")
    return figure


def figure_occlusion(model, x, normalization, box, layers: list[str]):
    """Block 4: the notebook's grey patch and true black, with early and deep difference maps."""

    figure, axes = _panels(2, 1 + len(layers), title_lines=2)
    for row, fill in enumerate(("mean", "black")):
        _show_image(axes[row, 0], occlude(x, box, fill, normalization), normalization,
                    "notebook's grey" if fill == "mean" else "true black")
        differences = occlusion_diff(model, x, box, layers, fill=fill)
        for col, layer in enumerate(layers, start=1):
            axes[row, col].imshow(differences[layer][0].cpu().numpy(), cmap="hot")
            axes[row, col].set_title(f"|difference| at\n{layer}")
    figure.suptitle("Occlusion: early change is local,\ndeep change broader but in place")
    return figure


def figure_receptive_fields(model, effective: dict[str, float]):
    """Block 4: theoretical field size, effective (gradient) field size and jump, layer by layer."""
    import matplotlib.pyplot as plt

    fields = [(name, f) for name, f in receptive_fields(model).items() if name and not f.is_global]
    figure, axis = plt.subplots(figsize=(COLUMN_IN, 4.2))
    positions = range(len(fields))
    axis.plot(positions, [f.size[0] for _, f in fields], marker="o", ms=3, label="theoretical field")
    axis.plot(positions, [f.jump[0] for _, f in fields], marker=".", label="jump")
    measured = [(i, effective[name]) for i, (name, _) in enumerate(fields) if name in effective]
    if measured:
        axis.plot(*zip(*measured), marker="s", ms=4, label="effective field (90% of |gradient|)")
    every = max(1, -(-len(fields) // MAX_TICKS))  # MobileNetV2 has 150 layers: a readable subset of names
    axis.set_xticks(list(positions)[::every], [name for name, _ in fields][::every], rotation=90)
    axis.set_ylabel("pixels")
    axis.legend()
    axis.set_title(f"Receptive fields grow with depth ({len(fields)} layers)")
    return figure


def figure_sparsity(series: dict[str, tuple[list[float], list[list[float]]]]):
    """Block 3: inactive share by stage for each trained model (a line) against its architecture's
    random initialisations (a band from their lowest to their highest, in the line's colour)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(COLUMN_IN, 3.4))
    for index, (subject, (values, randoms)) in enumerate(sorted(series.items())):
        colour = f"C{index}"
        stages = range(1, len(values) + 1)
        axis.plot(stages, values, marker="o", color=colour, label=subject)
        if randoms:
            axis.fill_between(stages, [min(r[k] for r in randoms) for k in range(len(values))],
                              [max(r[k] for r in randoms) for k in range(len(values))], color=colour, alpha=0.2,
                              label=f"its {len(randoms)} random inits")
    axis.set_xlabel("stage (a stretch of equal resolution)")
    axis.set_xticks(range(1, 1 + max((len(values) for values, _ in series.values()), default=1)))
    axis.set_ylabel("inactive share (≤ 0)")
    axis.set_title("Sparsity by depth: trained against random")
    if series:
        axis.legend(loc="upper left", bbox_to_anchor=(0, -0.22), ncol=2, frameon=False)
    return figure


def figure_sensitivity(model, x, normalization, target, title: str):
    """Block 4: Zeiler and Fergus's occlusion sensitivity over the photo, for its class."""
    import matplotlib.pyplot as plt

    size = x.shape[-1]
    sensitivity = occlusion_map(model, x, window=size // 4, stride=size // 16, target=target, batch_size=16)
    figure, axis = plt.subplots(figsize=(COLUMN_IN, COLUMN_IN))
    _show_image(axis, x, normalization, textwrap.fill(title, 48))
    axis.imshow(sensitivity.pixel_map(size, size).cpu().numpy(), cmap="jet", alpha=0.45, extent=(0, size, size, 0))
    axis.axis("off")
    return figure


VERDICT_PANEL_IN = (3.0, 1.5)  # a panel per trained model: three side by side fill the page's width


def figure_verdict_row(rule, panels: list[tuple[str, Verdict | None, Verdict | None]]):
    """A learned claim's verdicts, a panel per trained model (subject, verdict row, its control's row)."""
    import matplotlib.pyplot as plt

    width_in = VERDICT_PANEL_IN[0] * max(len(panels), 2)  # room for the sentence on a line or two
    title = textwrap.fill(f"{rule.claim}: “{rule.sentence}”", int(width_in * FIGURE_DPI / 7.5))  # TITLE_PT: ~7.5 px a character
    lines = title.count("\n") + 1
    figure, axes = plt.subplots(1, len(panels), figsize=(width_in, VERDICT_PANEL_IN[1] + 0.2 * lines), squeeze=False,
                                layout="constrained")
    for axis, (subject, row, control) in zip(axes[0], panels):
        _verdict_panel(axis, subject, row, control)
    figure.suptitle(title, x=0.01, ha="left")
    return figure


def _verdict_panel(axis, subject: str, row: Verdict | None, control: Verdict | None) -> None:
    """The null's values as dots, the bar as a dashed line, the control as a hollow diamond, the trained
    value with its interval over photos, in its verdict's colour."""
    if row is None or row.status == NOT_MEASURED:
        axis.axis("off")
        reason = "this claim does not run on this model" if row is None else row.detail
        axis.set_title(subject, loc="left")
        axis.text(0, 0.5, textwrap.fill(f"NOT MEASURED: {reason}", 44, max_lines=4, placeholder=" ..."),
                  color=STATUS_COLOURS[NOT_MEASURED], va="center", transform=axis.transAxes)
        return
    colour = STATUS_COLOURS[row.status]
    random = list(row.random)
    axis.scatter(random, [0.18 * ((i % 5) - 2) for i in range(len(random))], s=12, color="#8c959f", zorder=2)
    if control is not None and control.measured is not None:
        axis.scatter([control.measured], [1], marker="D", s=32, facecolors="none", edgecolors="#57606a", zorder=3)
    value, low, high = row.measured, row.low, row.high
    if low is not None:
        axis.errorbar([value], [2], xerr=[[value - low], [high - value]], fmt="o", color=colour, capsize=4, ms=6, zorder=4)
    else:
        axis.plot([value], [2], "o", color=colour, ms=7, zorder=4)
    axis.axvline(row.bar, color="#24292f", linestyle="--", linewidth=1, zorder=1)
    axis.set_yticks([0, 1, 2], [f"{len(random)} random", "control", "trained"])
    axis.set_ylim(-0.6, 2.6)
    values = random + [row.bar, value] + [v for v in (low, high, control and control.measured) if v is not None]
    spread = (max(values) - min(values)) or abs(value) or 1.0
    axis.set_xlim(min(values) - 0.08 * spread, max(values) + 0.08 * spread)
    axis.locator_params(axis="x", nbins=4)
    axis.spines[["top", "right"]].set_visible(False)
    note = " (interval reaches the bar)" if row.status == INCONCLUSIVE else ""
    axis.set_title(f"{subject}\n{row.status}{note}", loc="left", color=colour)
