"""load_image, preprocess and fills: every source and mode, and a clear error for every bad input."""
from __future__ import annotations

import http.server
import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

import cnn_core
from cnn_core import ImageError


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_the_default_sample_is_the_cat_photo():
    image = cnn_core.load_image()
    assert image.mode == "RGB" and image.size == (451, 300)


@pytest.mark.parametrize("kind", ["path", "bytes", "array", "pil", "pathlib"])
def test_every_kind_of_source_gives_the_same_rgb_image(tmp_path, kind):
    original = Image.fromarray(np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3))
    path = tmp_path / "small.png"
    original.save(path)
    source = {"path": str(path), "pathlib": path, "bytes": path.read_bytes(),
              "array": np.asarray(original), "pil": original}[kind]
    loaded = cnn_core.load_image(source)
    assert loaded.mode == "RGB"
    assert np.array_equal(np.asarray(loaded), np.asarray(original))


def test_rgba_is_composited_on_white():
    pixels = np.zeros((2, 2, 4), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    pixels[1, 1] = (0, 0, 0, 0)  # transparent black becomes white
    loaded = np.asarray(cnn_core.load_image(pixels))
    assert tuple(loaded[0, 0]) == (255, 0, 0) and tuple(loaded[1, 1]) == (255, 255, 255)


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    loaded = np.asarray(cnn_core.load_image(encode(image)))
    assert tuple(loaded[0, 0]) == (255, 255, 255) and tuple(loaded[0, 1]) == (0, 255, 0)


def test_grayscale_becomes_three_equal_channels():
    loaded = np.asarray(cnn_core.load_image(np.full((3, 3), 77, dtype=np.uint8)))
    assert loaded.shape == (3, 3, 3) and (loaded == 77).all()


def test_sixteen_bit_png_is_scaled_not_clipped():
    deep = np.array([[0, 32896, 65535]], dtype=np.uint16)
    loaded = np.asarray(cnn_core.load_image(encode(Image.fromarray(deep))))
    assert loaded[0, :, 0].tolist() == [0, 128, 255]
    assert np.asarray(cnn_core.load_image(deep))[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_jpeg_is_converted():
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # red in CMYK
    loaded = np.asarray(cnn_core.load_image(encode(cmyk, "JPEG", quality=100)))
    assert loaded[..., 0].min() > 200 and loaded[..., 1:].max() < 60


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (4, 2), (0, 0, 255))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    loaded = cnn_core.load_image(encode(image, "JPEG", exif=exif))
    assert loaded.size == (2, 4)


def test_float_arrays_in_unit_range_are_accepted():
    loaded = np.asarray(cnn_core.load_image(np.full((2, 2, 3), 0.5)))
    assert (loaded == 128).all()


NOISE_PNG = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)))


@pytest.mark.parametrize("data, problem", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (NOISE_PNG[: len(NOISE_PNG) // 2], "truncated or corrupt"),
], ids=["empty", "text", "truncated-png"])
def test_bad_bytes_raise_image_error(data, problem):
    with pytest.raises(ImageError, match=problem):
        cnn_core.load_image(data)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="missing.jpg.*no such file"):
        cnn_core.load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="is a directory"):
        cnn_core.load_image(tmp_path)
    fake = tmp_path / "cat.jpg"
    fake.write_text("<html>not found</html>")
    with pytest.raises(ImageError, match=r"cat\.jpg.*not an image"):
        cnn_core.load_image(fake)


def test_decompression_bombs_are_refused_before_decoding():
    huge = encode(Image.new("L", (4000, 4000)))
    with pytest.raises(ImageError, match="more than the limit"):
        cnn_core.load_image(huge, max_pixels=1_000_000)


@pytest.mark.parametrize("array, problem", [
    (np.zeros((2, 2, 5), dtype=np.uint8), "HxW"),
    (np.zeros((2, 2), dtype=np.int32), "dtype int32"),
    (np.full((2, 2), 2.0), r"\[0, 1\]"),
    (np.full((2, 2), np.nan), "NaN"),
    (np.zeros((0, 3), dtype=np.uint8), "no pixels"),
], ids=["five-channels", "int32", "float-above-1", "nan", "empty"])
def test_bad_arrays_raise_image_error(array, problem):
    with pytest.raises(ImageError, match=problem):
        cnn_core.load_image(array)


def test_unknown_sample_and_source_type():
    with pytest.raises(ImageError, match="no sample image"):
        cnn_core.load_image("sample:unicorn")
    with pytest.raises(ImageError, match="unsupported source type"):
        cnn_core.load_image(42)


def test_unreachable_url_says_what_to_do():
    with pytest.raises(ImageError, match="download it yourself"):
        cnn_core.load_image("http://127.0.0.1:9/cat.jpg")


class EndlessBody(http.server.BaseHTTPRequestHandler):
    """Streams a body far larger than the limit under test, 64 KiB at a time, until the client hangs up."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        chunk = b"\x00" * 65536
        try:
            for _ in range(1024):  # 64 MiB at most: the loop ends by itself
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


def test_an_oversized_url_body_stops_at_the_byte_limit():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EndlessBody)  # loopback only
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/huge.png"
    try:
        with pytest.raises(ImageError, match=r"larger than the limit of 1,000,000 bytes; stopped downloading") as error:
            cnn_core.load_image(url, max_bytes=1_000_000)
        assert url in str(error.value)
    finally:
        server.shutdown()
        server.server_close()


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(encode(Image.new("RGB", (64, 64))) + b"\x00" * 2000)
    with pytest.raises(ImageError, match="larger than the limit of 1,000 bytes"):
        cnn_core.load_image(path, max_bytes=1000)


def test_preprocess_is_exactly_the_notebook_transform():
    image = cnn_core.load_image()
    notebook = transforms.Compose([
        transforms.Resize(224), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    assert torch.equal(cnn_core.preprocess(image), notebook(image).unsqueeze(0))


def test_preprocess_refuses_absurd_aspect_ratios():
    with pytest.raises(ImageError, match="aspect ratio"):
        cnn_core.preprocess(Image.new("RGB", (20000, 1)))


def test_denormalize_inverts_normalize():
    pixels = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(cnn_core.denormalize(cnn_core.normalize(pixels)), pixels, rtol=0, atol=1e-12)


def test_mean_fill_is_grey_and_black_fill_is_black():
    like = torch.zeros(1, 3, 4, 4)
    grey = cnn_core.denormalize(cnn_core.fill_value("mean", like))
    black = cnn_core.denormalize(cnn_core.fill_value("black", like))
    torch.testing.assert_close(grey.flatten(), torch.tensor(cnn_core.IMAGENET_MEAN))
    # float32 round trip through (0 - mean) / std * std + mean: a few ulps of 1
    torch.testing.assert_close(black.flatten(), torch.zeros(3), rtol=0, atol=1e-6)
    with pytest.raises(cnn_core.InputError, match="fill"):
        cnn_core.fill_value("white", like)
