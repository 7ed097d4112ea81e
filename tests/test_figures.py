"""The report's figures draw what their captions name, from the run's own numbers, at sizes a person can read."""
from __future__ import annotations

import io
from dataclasses import replace

import pytest

import cnn_core
from claims.judging.notebook import NOTEBOOK_BOX, NOTEBOOK_SIZE
from claims.judging.probes import depth_probes
from claims.judging.rules import INCONCLUSIVE, RULES, SubjectId, Verdict
from claims.showing.page import (
    STATUS_COLOURS,
    TEXT_PT,
    TEXT_SIZES,
    figure_depth,
    figure_filters,
    figure_first_maps,
    figure_occlusion,
    figure_receptive_fields,
    figure_sensitivity,
    figure_sparsity,
    figure_verdict_row,
)

matplotlib = pytest.importorskip("matplotlib", reason="the report's figures need matplotlib")
matplotlib.use("Agg")
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.text import Text  # noqa: E402

RULE = RULES["L3-sparser-with-depth"]
RANDOM = [0.01 * k for k in range(20)]


def row(status=INCONCLUSIVE, random=RANDOM, detail="") -> Verdict:
    return Verdict(RULE.claim, SubjectId("m", "imagenet"), status, 0.25, ">=", resolution=RULE.resolution, bar=0.28,
                   random=tuple(random), detail=detail, low=0.2, high=0.3)


def control() -> Verdict:
    return replace(row(), subject=SubjectId("m", "imagenet", control=True), status="REFUTED", measured=0.05, low=0.04, high=0.06)


def drawn(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=50)
    matplotlib.pyplot.close(figure)
    return buffer.getvalue()


def smallest_text(figure) -> float:
    return min(text.get_fontsize() for text in figure.findobj(Text) if text.get_visible() and text.get_text().strip())


@pytest.fixture(autouse=True)
def report_text_sizes():
    with matplotlib.rc_context(dict(TEXT_SIZES)):
        yield


def test_a_verdict_row_draws_the_null_the_bar_the_control_and_the_interval():
    figure = figure_verdict_row(RULE, [("m.imagenet", row(), control())])
    axis = figure.axes[0]
    dots, diamond = [c for c in axis.collections if isinstance(c, PathCollection)][:2]
    assert sorted(x for x, _ in dots.get_offsets()) == pytest.approx(RANDOM)  # the 20 random inits
    assert diamond.get_offsets()[0][0] == pytest.approx(0.05)  # the control
    assert [line.get_xdata()[0] for line in axis.lines if line.get_linestyle() == "--"] == [0.28]  # the bar
    bars = [c for c in axis.collections if c not in (dots, diamond)]
    assert any(sorted(segment[:, 0]) == pytest.approx([0.2, 0.3]) for c in bars for segment in c.get_segments())
    assert "INCONCLUSIVE (interval reaches the bar)" in axis.get_title(loc="left")
    assert matplotlib.colors.to_hex(axis._left_title.get_color()) == STATUS_COLOURS[INCONCLUSIVE]  # coloured by verdict
    assert smallest_text(figure) >= TEXT_PT
    matplotlib.pyplot.close(figure)


def test_a_verdict_row_is_drawn_from_the_runs_numbers():
    """Break: move one of the null's values and the row's picture changes."""
    before = drawn(figure_verdict_row(RULE, [("m.imagenet", row(), control())]))
    again = drawn(figure_verdict_row(RULE, [("m.imagenet", row(), control())]))
    moved = drawn(figure_verdict_row(RULE, [("m.imagenet", row(random=[*RANDOM[:-1], 0.5]), control())]))
    assert before == again and moved != before


def test_a_not_measured_panel_says_why():
    figure = figure_verdict_row(RULE, [("m.imagenet", row("NOT MEASURED", detail="no photos"), None)])
    assert any("NOT MEASURED: no photos" in text.get_text() for text in figure.findobj(Text))
    matplotlib.pyplot.close(figure)


def test_the_sparsity_figure_draws_each_trained_line_and_its_random_band():
    """Its caption says "trained models against their random inits": a line and a band for each."""
    figure = figure_sparsity({"a.imagenet": ([0.1, 0.3], [[0.0, 0.1], [0.05, 0.2]]), "b.imagenet": ([0.2, 0.4], [])})
    axis = figure.axes[0]
    assert [line.get_label() for line in axis.lines] == ["a.imagenet", "b.imagenet"]
    bands = [c for c in axis.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1 and bands[0].get_label() == "its 2 random inits"
    heights = bands[0].get_paths()[0].vertices[:, 1]
    assert min(heights) == pytest.approx(0.0) and max(heights) == pytest.approx(0.2)  # lowest to highest random init
    matplotlib.pyplot.close(figure)


@pytest.fixture(scope="module")
def tiny(tiny_vgg_folder):
    model = cnn_core.load_model("tiny-vgg", weights="auto", fixtures_dir=tiny_vgg_folder.parent)
    card = cnn_core.model_card(model)
    return model, card, card.preprocess(cnn_core.load_image("sample:cat"))


def images_in(figure) -> int:
    return sum(isinstance(artist, AxesImage) for axis in figure.axes for artist in axis.get_children())


def test_each_notebook_figure_draws_what_its_title_names(tiny):
    model, card, x = tiny
    probes = depth_probes(model)
    first = figure_first_maps(model, x, card.normalization)
    assert images_in(first) == 10 and "10 filtered maps" in first._suptitle.get_text()  # the input and nine maps
    filters = figure_filters(model, x, card.normalization)
    assert images_in(filters) == 4 * 4  # kernel, response, and the overlay's photo and heat map, for 4 filters
    depth = figure_depth(model, x, probes)
    assert images_in(depth) == 3 * 4 and all(f"{label} {layer}" in depth._suptitle.get_text() for label, layer in probes.items())
    occlusion = figure_occlusion(model, x, card.normalization, NOTEBOOK_BOX.scaled(64 / NOTEBOOK_SIZE),
                                 [probes["early"], probes["deep"]])
    titles = [axis.get_title() for axis in occlusion.axes]
    assert "notebook's grey" in titles and "true black" in titles and images_in(occlusion) == 2 * 3
    fields = figure_receptive_fields(model, {probes["deep"]: 20.0})
    assert [line.get_label() for line in fields.axes[0].lines] == ["theoretical field", "jump",
                                                                   "effective field (90% of |gradient|)"]
    sensitivity = figure_sensitivity(model, x, card.normalization, 0, "occlusion sensitivity of lifeboat")
    assert images_in(sensitivity) == 2  # the photo and the sensitivity over it
    for figure in (first, filters, depth, occlusion, fields, sensitivity):
        assert smallest_text(figure) >= TEXT_PT
        matplotlib.pyplot.close(figure)


def test_a_long_layer_list_gets_a_readable_number_of_ticks():
    model = cnn_core.load_model("mobilenet_v2", "none")
    figure = figure_receptive_fields(model, {})
    assert len(figure.axes[0].get_xticks()) <= 12 and smallest_text(figure) >= TEXT_PT
    matplotlib.pyplot.close(figure)
