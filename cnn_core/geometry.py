"""Boxes in pixel coordinates, shared by occlusion and receptive fields."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Box:
    """Rows ``top:bottom`` and columns ``left:right`` (half-open, like tensor slicing).

    The notebook's occluded region ``x[:, :, 50:150, 60:160]`` is ``Box(50, 60, 150, 160)``.
    """

    top: int
    left: int
    bottom: int
    right: int

    def __post_init__(self):
        for name in ("top", "left", "bottom", "right"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"box {name} must be an integer, got {value!r}")
        if self.bottom <= self.top or self.right <= self.left:
            raise InputError(f"box {self} is empty: it needs top < bottom and left < right")

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def scaled(self, factor: float) -> Box:
        """The same region of an image resized by ``factor`` (the notebook's box on a 64 px input)."""
        return Box(*(round(edge * factor) for edge in (self.top, self.left, self.bottom, self.right)))

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    @property
    def centre(self) -> tuple[float, float]:
        """Centre in pixel-index coordinates (the centre of a 1-pixel box is that pixel's index)."""
        return (self.top + self.bottom - 1) / 2, (self.left + self.right - 1) / 2

    def contains_point(self, row: float, col: float) -> bool:
        return self.top - 0.5 <= row <= self.bottom - 0.5 and self.left - 0.5 <= col <= self.right - 0.5

    def intersects(self, other: Box) -> bool:
        return self.top < other.bottom and other.top < self.bottom and self.left < other.right and other.left < self.right

    def intersection(self, other: Box) -> Box | None:
        """The part shared with ``other``; None when they do not overlap."""
        top, left = max(self.top, other.top), max(self.left, other.left)
        bottom, right = min(self.bottom, other.bottom), min(self.right, other.right)
        if bottom <= top or right <= left:
            return None
        return Box(top, left, bottom, right)

    def require_inside(self, height: int, width: int, what: str = "box") -> Box:
        if self.top < 0 or self.left < 0 or self.bottom > height or self.right > width:
            raise InputError(f"{what} {self} reaches outside the {height}x{width} image; keep it within rows 0:{height} and columns 0:{width}")
        return self


def as_pair(value) -> tuple[int, int]:
    """A layer's size argument per axis: ``3`` -> ``(3, 3)``, ``(3, 5)`` unchanged."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)
