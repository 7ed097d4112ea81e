"""The claims report: written from a real run, readable by machines, rendered by a browser."""
from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from claims.judging.expectations import load_expectations, recorded_references
from claims.judging.rules import NOT_MEASURED, RULES, SubjectId, Verdict
from claims.showing.page import MIN_SCREEN_TEXT_PX, SCREEN, ClaimResult, Figure, browse, chromium, write_report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report_run(tmp_path_factory) -> tuple[Path, str]:
    """``pytest claims --report DIR`` on a few claims, in a separate process, as a user runs it: the
    folder and what pytest printed."""
    folder = tmp_path_factory.mktemp("report")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "claims", "-q", "-p", "no:cacheprovider", "--report", str(folder),
         "-k", "erratum or test_first_conv_gives or test_any_image or test_vgg16_receptive"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "CI": "true"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"report: {folder / 'index.html'}" in run.stdout
    assert "ok   block erratum  test_the_overlay_cast_wraps_around" in run.stdout
    return folder, run.stdout


@pytest.fixture(scope="module")
def report_folder(report_run) -> Path:
    return report_run[0]


def test_the_header_is_a_sentence_with_pytests_own_counts(report_run):
    folder, printed = report_run
    last = printed.strip().splitlines()[-1]  # pytest's: "18 passed, 349 deselected in 12.3s"
    counts = last.strip("= ").split(" in ")[0]
    meta = html.unescape(folder.joinpath("index.html").read_text().split("<p class=meta>")[1].split("</p>")[0])
    assert meta.startswith("torch ") and " and torchvision " in meta and "; models vgg11, vgg16" in meta, meta
    assert meta.endswith(f". pytest: {counts}.") and "{" not in meta, (meta, last)
    assert json.loads((folder / "claims.json").read_text())["environment"]["tests"] == {
        outcome: int(count) for count, outcome in (part.split() for part in counts.split(", "))}


def test_the_report_has_every_claim_and_stable_keys(report_folder):
    data = json.loads((report_folder / "claims.json").read_text())
    assert data["schema"] == 2 and data["summary"] == {"passed": 18}
    keys = {"id", "claim", "block", "sentence", "subject", "outcome", "verdict", "reason", "figures"}
    assert all(set(claim) == keys for claim in data["claims"])
    verdict_keys = {"claim", "subject", "status", "measured", "op", "threshold", "resolution", "bar", "random", "detail",
                    "series", "recorded", "low", "high", "images", "random_series"}
    assert all(set(claim["verdict"]) == verdict_keys for claim in data["claims"] if claim["verdict"])
    overlay = next(c for c in data["claims"] if c["claim"] == "test_the_overlay_cast_wraps_around")
    assert overlay["block"] == "erratum" and "astype(np.uint8)" in overlay["sentence"]


TRAINED = ("vgg16.imagenet-features", "mobilenet_v2.imagenet", "tiny-vgg.trained")
FIGURE_BLOCKS = {"L1-maps-differ": "1", "L1-filters-detect-edges": "2", "S-channels-grow-resolution-falls": "3",
                 "S-occlusion-stays-local": "4", "S-fields-grow-gradually": "4"}
# Loaded with the page: what a reader's browser laid out, written into the title for --dump-dom.
LAYOUT_PROBE = """<script>window.addEventListener("load", () => {
  const matrix = document.querySelector("table.matrix"), images = [...document.images];
  document.title = "LAYOUT" + JSON.stringify({scrollWidth: document.documentElement.scrollWidth,
    matrixBottom: matrix ? matrix.getBoundingClientRect().bottom : null,
    images: images.length, decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    smallestText: Math.min(...images.map(i => parseFloat(i.dataset.textPx) * i.width / i.naturalWidth))}) + "LAYOUT";
});</script>"""
NARROW = (400, 800)  # the page's narrowest layout: its figure grid down to one column


def layout(page: Path, size: tuple[int, int] = SCREEN) -> dict:
    """How headless Chromium lays ``page`` out (a copy with LAYOUT_PROBE added): the page's width, where the
    matrix ends, the images decoded, and the smallest figure text on screen (each image's smallest text,
    in its own pixels, scaled as the page shows it)."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    dom = browse(probe, "--dump-dom", "--virtual-time-budget=10000", size=size)
    return json.loads(dom.split("LAYOUT", 2)[1])


needs_chromium = pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed "
                                    "(Debian: apt-get install chromium); the page's layout is not checked")


def test_every_figure_opens(report_folder):
    """The notebook's figures for each trained model of the default run, and the photo's occlusion
    sensitivity from each with a trained head (VGG16's packaged features come without theirs)."""
    pictures = sorted([*report_folder.glob("block*.jpg"), *report_folder.glob("block*.png")])
    expected = [Figure(block, model, claim, lambda: None, photo=claim != "S-fields-grow-gradually")
                for model in TRAINED for claim, block in FIGURE_BLOCKS.items()]
    expected += [Figure("4", model, "L5-occluding-the-object-matters", lambda: None) for model in TRAINED[1:]]
    assert {picture.name for picture in pictures} == {figure.file_name for figure in expected}
    for picture in pictures:
        with Image.open(picture) as image:
            image.verify()


def test_the_page_is_self_contained_and_light(report_folder):
    page = (report_folder / "index.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("data:image/jpeg;base64,") == 14 and page.count("data:image/png;base64,") == 3  # the field plots
    assert page.count("<tr>") == 19  # a header and 18 claims
    assert len(page.encode()) <= 1.5e6
    assert page.index("<details>") > page.index("Block 4")  # the per-test list, folded, below the figures


@needs_chromium
def test_the_page_renders_in_headless_chromium(report_folder):
    seen = layout(report_folder / "index.html")
    assert seen["scrollWidth"] <= SCREEN[0] and seen["images"] == seen["decoded"] == 17
    narrow = layout(report_folder / "index.html", NARROW)
    assert min(seen["smallestText"], narrow["smallestText"]) >= MIN_SCREEN_TEXT_PX, (seen, narrow)
    with Image.open(report_folder / "screenshot.png") as shot:
        colours = shot.convert("RGB").resize((64, 40)).getcolors(maxcolors=64 * 40)
    assert shot.size == SCREEN and len(colours) > 50  # figures, not a blank page


def recorded_verdict_rows() -> list[Verdict]:
    """The verdicts of the default run as claims/expectations.toml records them, with intervals, bars and
    reasons as long as a run's."""
    verdicts = []
    for claim, subjects in load_expectations().items():
        rule = RULES[claim]
        for label, entry in subjects.items():
            model, _, control = label.partition("/")  # the file's keys are labels: this test knows how they are made
            architecture, weights = model.split(".", 1)
            subject = SubjectId(architecture, weights, bool(control))
            learned = rule.learned
            verdicts.append(rule.not_measured(subject, "no trained weights offline, so --weights auto fell back to "
                                                       "random init (--weights none measures random inits)")
                            if entry["status"] == NOT_MEASURED else
                            Verdict(claim, subject, entry["status"], entry["measured"], rule.op, rule.threshold,
                                    rule.resolution, random=(0.1, 0.2) if learned else (),
                                    low=entry["measured"] - 0.01 if learned else None,
                                    high=entry["measured"] + 0.01 if learned else None, images=100, bar=0.5 if learned else None))
    return verdicts


@needs_chromium
def test_the_verdict_matrix_fills_the_first_screen_and_no_more(tmp_path):
    rows = recorded_verdict_rows()
    page = write_report([], tmp_path, None, {"models": "vgg11,vgg16,vgg19,alexnet,resnet18,mobilenet_v2"}, rows)
    text = page.read_text()
    assert all(f"<th>{subject}</th>" in text for subject in TRAINED)
    seen = layout(page)
    assert seen["scrollWidth"] <= SCREEN[0] and seen["matrixBottom"] <= SCREEN[1], seen
    # Right under the matrix: the verdict figure, a row per learned claim, at readable sizes on any width.
    learned = [rule.claim for rule in RULES.values() if rule.learned]
    assert [text.index(f'id="verdict-{claim}"') for claim in learned] == sorted(text.index(f'id="verdict-{claim}"')
                                                                                  for claim in learned)
    assert text.index("</table>") < text.index("id=verdicts") < text.index("What the run found")
    assert all(f'href="#verdict-{claim}"' in text for claim in learned)
    assert seen["smallestText"] >= MIN_SCREEN_TEXT_PX and layout(page, NARROW)["smallestText"] >= MIN_SCREEN_TEXT_PX
    assert (tmp_path / "verdicts.png").is_file() and len(text.encode()) <= 1.5e6


def test_the_matrix_quotes_the_notebook_in_its_order(tmp_path):
    """Rows in the notebook's order, one per sentence; the random-init models collapse into one cell."""
    page = write_report([], tmp_path, None, {"models": "vgg16,resnet18,mobilenet_v2"}, recorded_verdict_rows()).read_text()
    matrix = page.split("<table class=matrix>", 1)[1].split("</table>", 1)[0]
    positions = [matrix.index(f"“{html.escape(rule.sentence)}”") for rule in RULES.values()]
    blocks = [rule.block for rule in RULES.values()]
    assert [p for _, p in sorted(zip(blocks, positions))] == sorted(positions)
    agreement_rows = sum(bool(rule.second_opinion_of) for rule in RULES.values())  # one per sentence with two instruments
    assert matrix.count("<tr>") == 1 + len(RULES) + agreement_rows
    assert "random-init models" in matrix and "random controls" in matrix and "the two instruments agree?" in matrix


def test_without_matplotlib_the_page_says_how_to_get_figures(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = ClaimResult("claims/x.py::test_x", "test_x", "1", "a sentence", "", "failed", reason="measured 3")
    page = write_report([result], tmp_path, [Figure("1", "m", "L1-maps-differ", lambda: None)], {}).read_text()
    assert "pip install" in page and "measured 3" in page and not list(tmp_path.glob("*.jpg"))


def test_a_one_model_page_lists_its_sentences_beside_the_recorded_references(tmp_path):
    """A user's own model: its CONFIRMED and REFUTED sentences in the findings, and the suite's offline
    ImageNet CNNs' recorded verdicts as columns beside it, marked as not run."""
    mine, claims = "mobilenet_v2.file-mine", ("L1-filters-detect-colours", "L1-filters-detect-edges")
    tested = SubjectId("mobilenet_v2", "file-mine")
    verdicts = [Verdict(claims[0], tested, "CONFIRMED", 0.9, ">=", random=(0.8, 0.82), bar=0.85),
                Verdict(claims[1], tested, "REFUTED", 0.17, ">=", random=(0.2, 0.21), bar=0.27),
                *(Verdict(claim, tested.random_control(), "REFUTED", 0.1, ">=", random=(0.2, 0.21), bar=0.3) for claim in claims)]
    page = write_report([], tmp_path, None, {"models": "mobilenet_v2"}, verdicts, recorded_references()).read_text()
    head = page.split("<table class=matrix>", 1)[1].split("</tr>", 1)[0]
    assert head.count("recorded, not run") == 2 and "vgg16.imagenet-features" in head and "mobilenet_v2.imagenet" in head
    confirmed, refuted = html.unescape(page.split("<h2>What the run found</h2>", 1)[1]).split("</ul></li>")[:2]
    assert confirmed.startswith(f"<ul><li>{mine} bears out:") and RULES[claims[0]].sentence in confirmed
    assert refuted.startswith(f"<li>{mine} does not bear out:") and RULES[claims[1]].sentence in refuted
