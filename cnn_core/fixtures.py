"""The fixtures folder: what it holds, where each file lies, and where it is looked for.

The learned claims read public files, each a byte-identical copy of a file in a GitHub repository
at a pinned commit: one ImageNet photo per class (``imagenet-sample-images/<synset>_<name>.JPEG``,
from EliSchwartz/imagenet-sample-images) and CNN Explainer's trained Tiny VGG with its demo images
(``tiny-vgg/``, from poloclub/cnn-explainer). The manifest, ``fixtures.csv`` beside this module (the
rows of the fixtures' own ``sources.csv``), gives each file's place in the folder, its URL, sha256,
size and, for a photo, its ImageNet class.

A folder is looked for in this order: the one named (the suite's ``--fixtures-dir``), then
``$CNN_CLAIMS_FIXTURES``, then the per-user cache folder (``$XDG_CACHE_HOME/cnn-claims`` on Linux,
its platform's equivalent elsewhere) that ``python -m claims fetch`` fills. A file is read only when
its size and sha256 are the manifest's; otherwise :class:`FixtureMissing` names it and the command
that fetches it.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import platformdirs

from .errors import CnnCoreError, InputError

ENV = "CNN_CLAIMS_FIXTURES"
FETCH = "python -m claims fetch"
PHOTOS = "imagenet-sample-images"
TINY_VGG = "tiny-vgg"
PARTS = (PHOTOS, TINY_VGG)  # the folder's top-level folders
GITHUB_RAW = "https://raw.githubusercontent.com"
MANIFEST = Path(__file__).with_name("fixtures.csv")
CACHE_NAME = "cnn-claims"


class FixtureMissing(CnnCoreError, LookupError):
    """A fixture file is not in the folder, or is not the public file; the message says how to fetch it."""

    def __str__(self) -> str:  # LookupError would repr() the message
        return self.args[0]


@dataclass(frozen=True)
class FixtureFile:
    """One row of the manifest."""

    path: str  # its place in the fixtures folder
    url: str
    sha256: str
    size: int
    class_index: int | None = None  # a photo's ImageNet-1k class: the synset's place in sorted WordNet-id order
    synset: str = ""
    name: str = ""

    @property
    def source(self) -> str:
        """``owner/repo/commit/path``: where GitHub raw serves the file, and where a mirror keeps it."""
        return self.url.removeprefix(GITHUB_RAW + "/")


@functools.cache
def manifest() -> Mapping[str, FixtureFile]:
    """Every fixture file by its place in the folder."""
    with MANIFEST.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return MappingProxyType({row["path"]: FixtureFile(
        row["path"], row["url"], row["sha256"], int(row["bytes"]),
        int(row["class_index"]) if row["class_index"] else None, row["synset"], row["name"]) for row in rows})


def photos() -> dict[int, FixtureFile]:
    """The ImageNet photos by class index."""
    return {entry.class_index: entry for entry in manifest().values() if entry.class_index is not None}


def tiny_vgg_files() -> list[FixtureFile]:
    """CNN Explainer's files: the model, its weights, its licence and its demo images."""
    return [entry for path, entry in manifest().items() if path.startswith(TINY_VGG + "/")]


def cache_folder() -> Path:
    """Where ``python -m claims fetch`` puts the files unless told otherwise."""
    return platformdirs.user_cache_path(CACHE_NAME, appauthor=False)


@functools.lru_cache(maxsize=None)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """A file's sha256, computed once per version of the file (the size and time are part of the key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def difference(file: Path, entry: FixtureFile) -> str | None:
    """How ``file`` differs from ``entry``'s public file (missing, another size, other bytes), or None."""
    try:
        stat = file.stat()
    except FileNotFoundError:
        return "is missing"
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if not file.is_file():
        return "is not a file"
    if stat.st_size != entry.size:
        return f"has {stat.st_size:,} bytes, not the public file's {entry.size:,}"
    digest = _sha256(os.fspath(file), stat.st_size, stat.st_mtime_ns)
    if digest != entry.sha256:
        return f"is not the public file (sha256 {digest[:12]}..., expected {entry.sha256[:12]}...)"
    return None


@dataclass(frozen=True)
class Fixtures:
    """The fixtures folder that was found (``folder`` None when none was) and how it was found."""

    folder: Path | None
    origin: str  # "--fixtures-dir", "$CNN_CLAIMS_FIXTURES", "the cache folder", or where none was found

    @property
    def fetch_command(self) -> str:
        """The command that puts the missing files into this folder."""
        return FETCH if self.folder is None or self.folder == cache_folder() else f"{FETCH} --into {self.folder}"

    def file(self, entry: FixtureFile | str) -> Path:
        """The path of a manifest file, once its size and sha256 are checked; else :class:`FixtureMissing`."""
        entry = manifest()[entry] if isinstance(entry, str) else entry
        if self.folder is None:
            raise FixtureMissing(f"no fixtures folder was found ({self.origin}); fetch the files with `{FETCH}`")
        path = self.folder / entry.path
        problem = difference(path, entry)
        if problem is not None:
            raise FixtureMissing(f"{path} {problem}; fetch it with `{self.fetch_command}`")
        return path

    def has(self, entry: FixtureFile | str) -> bool:
        try:
            self.file(entry)
        except FixtureMissing:
            return False
        return True

    def describe(self) -> str:
        return f"{self.folder} ({self.origin})" if self.folder is not None else f"none: {self.origin}"


FixturesDir = str | os.PathLike | Fixtures | None  # a folder to look in, or one already located


def locate(named: FixturesDir = None, named_by: str = "fixtures_dir",
           environ: Mapping[str, str] = os.environ) -> Fixtures:
    """The fixtures folder: ``named`` (``named_by`` says by what, for messages), else ``$CNN_CLAIMS_FIXTURES``,
    else the cache folder once something was fetched into it. A named folder that holds none of the parts is an
    error; a folder already located (:class:`Fixtures`) is taken as it is."""
    if isinstance(named, Fixtures):
        return named
    for origin, value in ((named_by, named), (f"${ENV}", environ.get(ENV))):
        if value:
            folder = Path(value).expanduser()
            problem = ("no such folder" if not folder.is_dir() else None if any((folder / part).is_dir() for part in PARTS)
                       else f"holds neither {' nor '.join(part + '/' for part in PARTS)}")
            if problem is not None:
                raise InputError(f"{origin} {os.fspath(value)}: {problem} (give the folder that holds them; "
                                 f"`{FETCH}` fetches them)")
            return Fixtures(folder.resolve(), origin)
    cache = cache_folder()
    if cache.is_dir():
        return Fixtures(cache, "the cache folder")
    return Fixtures(None, f"none named by {named_by} or ${ENV}, and nothing fetched into {cache}")
