"""Fuzzing load_image: any bytes give an RGB image or an ImageError that names the source."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import cnn_core
from cnn_core import ImageError

MODES = ["RGB", "RGBA", "L", "LA", "P", "PA", "1", "CMYK", "I;16", "I", "F", "YCbCr"]
FORMATS = {"PNG": ("RGB", "RGBA", "L", "LA", "P", "1", "I;16", "I"), "JPEG": ("RGB", "L", "CMYK", "YCbCr"),
           "TIFF": ("RGB", "RGBA", "L", "CMYK", "I;16", "F", "P"), "GIF": ("P", "L"), "BMP": ("RGB", "L", "P", "1"),
           "WEBP": ("RGB", "RGBA")}


def check_loads_or_explains(data: bytes) -> None:
    """The property: an RGB image with pixels, or an ImageError naming the source."""
    try:
        image = cnn_core.load_image(data)
    except ImageError as error:
        assert str(error).startswith(f"image <{len(data)} bytes>: "), str(error)
        return
    assert image.mode == "RGB" and min(image.size) >= 1
    assert np.asarray(image).dtype == np.uint8


@st.composite
def encoded_images(draw) -> bytes:
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[fmt]))
    width, height = draw(st.sampled_from([(1, 1), (10000, 10), (10, 10000)]) | st.tuples(st.integers(1, 48), st.integers(1, 48)))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert("RGBA" if mode == "PA" else mode if mode not in ("I;16", "I", "F") else "L")
    if mode in ("I;16", "I", "F"):
        image = image.convert("I" if mode != "F" else "F") if mode != "I;16" else Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)
    if mode == "P" and draw(st.booleans()):
        image.info["transparency"] = 0
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


@st.composite
def damaged(draw, data: bytes) -> bytes:
    how = draw(st.sampled_from(["intact", "truncated", "flipped", "empty", "garbage-prefix"]))
    if how == "truncated":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if how == "flipped":
        position = draw(st.integers(0, len(data) - 1))
        return data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1:]
    if how == "empty":
        return b""
    if how == "garbage-prefix":
        return draw(st.binary(min_size=1, max_size=16)) + data
    return data


@given(data=encoded_images().flatmap(damaged))
def test_any_bytes_load_as_rgb_or_raise_image_error(data):
    check_loads_or_explains(data)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that announces ``width x height`` pixels and holds almost none: a decompression bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height, problem", [
    (100_000, 100_000, "too large to decode safely"),  # Pillow's own bomb check
    (10_000, 7_000, "more than the limit of 64,000,000"),  # under Pillow's limit, over ours
], ids=["10-gigapixel", "70-megapixel"])
def test_decompression_bombs_are_refused_from_the_header(width, height, problem):
    with pytest.raises(ImageError, match=problem):
        cnn_core.load_image(png_header_only(width, height))


def test_the_fuzz_property_catches_a_dropped_mode_conversion(monkeypatch):
    """Break: a load_image that forgets to convert modes must fail the property."""
    monkeypatch.setattr(cnn_core.images, "_to_rgb", lambda image, source, max_pixels: image)
    buffer = io.BytesIO()
    Image.new("CMYK", (4, 4)).save(buffer, format="JPEG")
    with pytest.raises(AssertionError):
        check_loads_or_explains(buffer.getvalue())
