"""Images in, normalised tensors out: the notebook's preprocessing, made safe for any input.

``load_image`` accepts a path, a URL, raw bytes, a numpy array, a PIL image or a
``"sample:NAME"`` (``sample:cat`` is scikit-image's photo of Chelsea the cat) and always
returns an RGB image, or raises :class:`ImageError` that names the source.
"""
from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision import transforms

from .errors import ImageError, InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalization:
    """How a model expects pixels in [0, 1] to be shifted and scaled, per RGB channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET = Normalization(IMAGENET_MEAN, IMAGENET_STD)  # torchvision's models, and the notebook
UNIT = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # pixels in [0, 1] as they are (Tiny VGG)
DEFAULT_IMAGE = "sample:cat"
# Far beyond any photo a CNN is shown, well below what would exhaust memory when decoded.
MAX_PIXELS = 64_000_000
# Resize(224) scales the shorter side; a 1-pixel-high strip would become a gigapixel image.
MAX_RESIZED_PIXELS = 100_000_000
# A compressed photo is a few MB; 256 MB is far beyond any image a CNN is shown. Files and URLs alike.
MAX_BYTES = 256 * 1024 * 1024
URL_TIMEOUT_S = 30
SAMPLE_ALIASES = {"cat": "chelsea"}


def load_image(source=DEFAULT_IMAGE, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> Image.Image:
    """An RGB ``PIL.Image`` from any supported source (see the module docstring); a file or URL body of
    more than ``max_bytes`` is refused before it is read whole."""
    if isinstance(source, Image.Image):
        return _to_rgb(source, source, max_pixels)
    if isinstance(source, np.ndarray):
        return _to_rgb(_array_to_image(source), source, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source), source, max_pixels)
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith("sample:"):
            return _to_rgb(_array_to_image(_sample_array(text)), source, max_pixels)
        if text.startswith(("http://", "https://")):
            return _decode(_fetch(text, max_bytes), source, max_pixels)
        return _decode(_read_file(Path(text), source, max_bytes), source, max_pixels)
    raise ImageError(
        source, f"unsupported source type {type(source).__name__}; pass a path, URL, bytes, numpy array or PIL image"
    )


def preprocess(img, size: int = 224, normalization: Normalization = IMAGENET, resize: int | None = None,
               interpolation: str = "bilinear") -> torch.Tensor:
    """``[1, 3, size, size]`` float32: the notebook's Resize(size), CenterCrop(size), ToTensor, Normalize.

    ``resize`` (default ``size``) and ``interpolation`` give a model's own preprocessing, such as
    torchvision's Resize(256) before CenterCrop(224).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"size must be a positive integer, got {size!r}")
    resize = size if resize is None else resize
    image = img if isinstance(img, Image.Image) and img.mode == "RGB" else load_image(img)
    width, height = image.size
    scale = resize / min(width, height)
    if width * scale * height * scale > MAX_RESIZED_PIXELS:
        raise ImageError(
            img, f"aspect ratio {width}x{height} is too extreme: resizing the shorter side to {resize} "
            f"would make an image of more than {MAX_RESIZED_PIXELS:,} pixels; crop it first"
        )
    transform = transforms.Compose([
        transforms.Resize(resize, interpolation=transforms.InterpolationMode(interpolation)),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(mean=normalization.mean, std=normalization.std),
    ])
    return transform(image).unsqueeze(0)


def _channel_stats(like: torch.Tensor, normalization: Normalization) -> tuple[torch.Tensor, torch.Tensor]:
    def shaped(values):
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)

    return shaped(normalization.mean), shaped(normalization.std)


def denormalize(x: torch.Tensor, normalization: Normalization = IMAGENET) -> torch.Tensor:
    """Undo the normalisation: back to pixel values in [0, 1] (not clipped)."""
    mean, std = _channel_stats(x, normalization)
    return x * std + mean


def normalize(pixels: torch.Tensor, normalization: Normalization = IMAGENET) -> torch.Tensor:
    """Normalise pixel values in [0, 1] the way a model expects."""
    mean, std = _channel_stats(pixels, normalization)
    return (pixels - mean) / std


def fill_value(fill, like: torch.Tensor, normalization: Normalization = IMAGENET) -> torch.Tensor:
    """The normalised-space value that paints an occluded patch, shaped ``[1, C, 1, 1]``.

    ``"mean"`` paints the ImageNet mean colour, a grey: with ImageNet normalisation it is 0,
    which is what the notebook's "black out" (``tensor[...] = 0``) really paints. ``"black"``
    paints true black pixels, ``(0 - mean) / std`` per channel. A number is taken as a value
    in normalised space, for every channel.
    """
    if isinstance(fill, str):
        if fill not in ("mean", "black"):
            raise InputError(f"fill {fill!r} is not 'mean', 'black' or a number")
        if like.shape[1] != 3:
            raise InputError(f"fill={fill!r} needs 3 colour channels, got {like.shape[1]}")
        colour = IMAGENET_MEAN if fill == "mean" else (0.0, 0.0, 0.0)
        return normalize(torch.tensor(colour, dtype=like.dtype, device=like.device).view(1, 3, 1, 1), normalization)
    if isinstance(fill, (int, float)) and not isinstance(fill, bool) and np.isfinite(fill):
        return torch.full((1, like.shape[1], 1, 1), float(fill), dtype=like.dtype, device=like.device)
    raise InputError(f"fill {fill!r} is not 'mean', 'black' or a finite number")


def _sample_array(text: str) -> np.ndarray:
    name = text.removeprefix("sample:")
    try:
        from skimage import data
    except ImportError:
        raise ImageError(text, "sample images need scikit-image: pip install scikit-image") from None
    loader = getattr(data, SAMPLE_ALIASES.get(name, name), None)
    if not callable(loader) or name.startswith("_"):
        raise ImageError(text, f"no sample image {name!r}; try 'sample:cat' or a skimage.data photo name")
    try:
        return np.asarray(loader())
    except Exception as error:  # skimage may need pooch for remote samples
        raise ImageError(text, f"scikit-image could not provide it offline ({error})") from None


def _fetch(url: str, max_bytes: int = MAX_BYTES) -> bytes:
    """The body at ``url``, read at most ``max_bytes + 1`` bytes far: a larger body is refused, not buffered."""
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            data = response.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ImageError(url, f"could not download it ({error}); download it yourself and pass the file path") from None
    if len(data) > max_bytes:
        raise ImageError(url, f"is larger than the limit of {max_bytes:,} bytes; stopped downloading")
    return data


def _read_file(path: Path, source, max_bytes: int = MAX_BYTES) -> bytes:
    if not path.exists():
        raise ImageError(source, "no such file")
    if path.is_dir():
        raise ImageError(source, "is a directory, not an image file")
    try:
        if path.stat().st_size > max_bytes:
            raise ImageError(source, f"is larger than the limit of {max_bytes:,} bytes")
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(source, f"cannot be read ({error.strerror or error})") from None
    return data


def _decode(data: bytes, source, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageError(source, "is empty (0 bytes)")
    with warnings.catch_warnings():
        # Pillow's notes on damaged metadata (it skips the tag and decodes the pixels) are not ours to repeat;
        # its warning about decompression bombs below twice its own limit becomes an error.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            _check_size(image, source, max_pixels)
            image.load()
        except ImageError:
            raise
        except UnidentifiedImageError:
            raise ImageError(source, "is not an image in a format Pillow can read") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageError(source, f"is too large to decode safely ({error})") from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageError(source, f"is truncated or corrupt ({error})") from None
    return _to_rgb(image, source, max_pixels)


def _check_size(image: Image.Image, source, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(source, f"has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(source, f"has {width}x{height} = {width * height:,} pixels, more than the limit of {max_pixels:,}")


def _array_to_image(array: np.ndarray) -> Image.Image:
    source = array
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(source, "must be HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA)")
    if array.size == 0:
        raise ImageError(source, "has no pixels")
    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.uint16:
        pixels = (array.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif array.dtype == np.bool_:
        pixels = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageError(source, "contains NaN or infinite values")
        if array.min() < 0 or array.max() > 1:
            raise ImageError(source, "float pixels must lie in [0, 1]")
        pixels = np.round(array * 255).astype(np.uint8)
    else:
        raise ImageError(source, f"dtype {array.dtype} is not uint8, uint16, bool or float in [0, 1]")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[pixels.ndim if pixels.ndim == 2 else pixels.shape[2]]
    return Image.fromarray(np.ascontiguousarray(pixels), mode=mode)


def _to_rgb(image: Image.Image, source, max_pixels: int) -> Image.Image:
    _check_size(image, source, max_pixels)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not lose the picture itself
        pass
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        image = _sixteen_bit_to_grey(image)
    elif mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = _composite_on_white(image.convert("RGBA"))
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as error:
        raise ImageError(source, f"mode {mode} cannot be converted to RGB ({error})") from None


def _sixteen_bit_to_grey(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.int64)
    # Mode "I" holds 16-bit PNGs too; anything beyond 16 bits is clipped.
    return Image.fromarray((np.clip(values, 0, 65535) * 255 // 65535).astype(np.uint8), mode="L")


def _composite_on_white(image: Image.Image) -> Image.Image:
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, image).convert("RGB")


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def image_files(pattern: str | os.PathLike) -> list[Path]:
    """The image files of a folder (recursively) or of a glob such as ``photos/*.jpg``, sorted."""
    text = os.fspath(pattern)
    folder = Path(text)
    if folder.is_dir():
        files = [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    else:
        files = [p for p in Path().glob(text) if p.is_file()] if not folder.is_absolute() else \
            [p for p in Path(folder.anchor).glob(str(folder.relative_to(folder.anchor))) if p.is_file()]
    if not files:
        raise ImageError(text, "matches no image files (give a folder or a glob such as 'photos/*.jpg')")
    return sorted(files)


class ImageFolder(torch.utils.data.Dataset):
    """A folder's images, preprocessed for a model, for a DataLoader.

    An unreadable file is not fatal: it yields None, which :func:`collate_images` drops, and is
    listed in ``skipped`` with the reason, so that nothing is lost silently.
    """

    def __init__(self, pattern, size: int = 224, normalization: Normalization = IMAGENET):
        self.files = image_files(pattern)
        self.size, self.normalization = size, normalization
        self.skipped: list[tuple[Path, str]] = []

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        try:
            return preprocess(self.files[index], self.size, self.normalization)[0], index
        except ImageError as error:
            self.skipped.append((self.files[index], error.problem))
            return None


def collate_images(items):
    """Stack the readable images of a batch with their indices; unreadable ones were None."""
    kept = [item for item in items if item is not None]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.stack([image for image, _ in kept]), torch.tensor([index for _, index in kept])
