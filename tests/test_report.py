"""The claims report: written from a real run, readable by machines, rendered by a browser."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from claims.report import ClaimResult, write_report

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report_folder(tmp_path_factory) -> Path:
    """``pytest claims --report DIR`` on a few claims, in a separate process, as a user runs it."""
    folder = tmp_path_factory.mktemp("report")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "claims", "-q", "-p", "no:cacheprovider", "--report", str(folder),
         "-k", "erratum or test_first_conv_gives or test_any_image or test_vgg16_receptive"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "CI": "true"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"report: {folder / 'index.html'}" in run.stdout
    assert "ok   block erratum  test_the_overlay_cast_wraps_around" in run.stdout
    return folder


def test_the_report_has_every_claim_and_stable_keys(report_folder):
    data = json.loads((report_folder / "claims.json").read_text())
    assert data["schema"] == 1 and data["summary"] == {"passed": 18}
    keys = {"id", "claim", "block", "sentence", "subject", "outcome", "measured", "threshold", "expected", "verdict",
            "detail", "reason", "series", "figures"}
    assert all(set(claim) == keys for claim in data["claims"])
    overlay = next(c for c in data["claims"] if c["claim"] == "test_the_overlay_cast_wraps_around")
    assert overlay["block"] == "erratum" and "astype(np.uint8)" in overlay["sentence"]


def test_every_figure_opens(report_folder):
    pictures = sorted(report_folder.glob("*.png"))
    # VGG16's packaged ImageNet features come without their classifier: no cat-class sensitivity map,
    # and this run measures no sparsity series to plot.
    assert [p.name for p in pictures] == ["block1-1.png", "block2-1.png", "block3-1.png", "block4-1.png", "block4-2.png"]
    for picture in pictures:
        with Image.open(picture) as image:
            image.verify()


def test_the_page_is_self_contained(report_folder):
    page = (report_folder / "index.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") == 5 and page.count("<tr>") == 19  # a header and 18 claims


def test_the_page_renders_in_headless_chromium(report_folder, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    shot = tmp_path / "page.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400",
                    f"--screenshot={shot}", (report_folder / "index.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as image:
        colours = image.convert("RGB").resize((60, 120)).getcolors(maxcolors=60 * 120)
    assert image.size == (1200, 2400) and len(colours) > 50  # table and figures, not a blank page


def test_without_matplotlib_the_page_says_how_to_get_figures(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = ClaimResult("claims/x.py::test_x", "test_x", "1", "a sentence", "", "failed", reason="measured 3")
    page = write_report([result], tmp_path, {"1": [lambda: None]}, {}).read_text()
    assert "pip install" in page and "measured 3" in page and not list(tmp_path.glob("*.png"))
