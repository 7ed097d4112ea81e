"""Hypothesis strategies shared by the claims."""
from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st

from cnn_core import Box


@st.composite
def boxes(draw, image_size: int = 224, min_side: int = 1, max_side: int | None = None) -> Box:
    """A box that lies inside an ``image_size`` square, with sides in ``[min_side, max_side]``."""
    max_side = min(max_side or image_size, image_size)
    height = draw(st.integers(min_side, max_side))
    width = draw(st.integers(min_side, max_side))
    top = draw(st.integers(0, image_size - height))
    left = draw(st.integers(0, image_size - width))
    return Box(top, left, top + height, left + width)


def few_examples():
    """A third of the active profile's examples (at least one), for claims that run a deep float64
    forward per example; the thorough profile runs 33."""
    return settings(max_examples=max(1, settings.default.max_examples // 3))
