"""The fixture files from their public sources, each checked against the manifest, into a cache folder.

    python -m claims fetch                   # what a default `pytest claims` reads, into the cache folder
    python -m claims fetch --all             # all 1000 ImageNet sample photos (110 MB) and Tiny VGG
    python -m claims fetch --into DIR        # into DIR instead of the cache folder
    python -m claims fetch --mirror URL      # from a mirror with GitHub raw's layout (also $CNN_CLAIMS_MIRROR)
    python -m claims fetch --fixtures-dir DIR   # verify DIR against the manifest; download nothing

Without ``--into``, a folder named by ``--fixtures-dir`` or ``$CNN_CLAIMS_FIXTURES`` is verified instead
of filled: every file the run reads must be there with the manifest's size and sha256.

Downloads go through pooch (the fetcher scikit-image and SciPy use for their data): each file is
written to a temporary name beside its place and moved there only once its sha256 is the manifest's,
so nothing is ever left half-written; a file already there and unchanged is not downloaded again, so
an interrupted fetch picks up where it stopped. A few files download at once, each retried with
backoff when the connection fails, and one progress bar counts files and megabytes.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import pooch
import requests
from tqdm import tqdm

from claims.judging.probes import default_run_photos
from cnn_core import fixtures
from cnn_core.errors import InputError
from cnn_core.fixtures import FixtureFile

MIRROR_ENV = "CNN_CLAIMS_MIRROR"
WORKERS = 4  # files at once: enough to hide a round trip, few enough to be polite to GitHub
RETRIES = 3  # per file, after the first try
BACKOFF_S = 1.0  # the wait before the first retry, doubled before each next one
TIMEOUT_S = 30
# pooch's temporary files (tempfile's names), which a killed fetch can leave beside the files.
LEFTOVER = re.compile(r"tmp[a-z0-9_]{8}")


class FetchError(Exception):
    """One file could not be fetched; the message is the one line the command prints."""


def default_files() -> list[FixtureFile]:
    """What a default ``pytest claims`` reads: the grouped, boxed and top-1 photos, and Tiny VGG."""
    return default_run_photos() + fixtures.tiny_vgg_files()


def all_files() -> list[FixtureFile]:
    return list(fixtures.manifest().values())


def url_of(entry: FixtureFile, mirror: str | None) -> str:
    """``entry``'s URL: its public one, or the same path under a mirror of GitHub raw's layout."""
    return f"{mirror.rstrip('/')}/{entry.source}" if mirror else entry.url


def megabytes(files: Sequence[FixtureFile]) -> str:
    return f"{sum(entry.size for entry in files) / 1e6:.1f} MB"


class _FileProgress:
    """What pooch's downloader reports of one file, added to the run's one bar; pooch sets ``total`` as each
    try starts, so the bytes of a failed try are taken back."""

    def __init__(self, bar: tqdm, lock: threading.Lock):
        self._bar, self._lock, self._counted = bar, lock, 0

    @property
    def total(self) -> int:
        return self._counted

    @total.setter
    def total(self, _size: int) -> None:
        self.reset()

    def update(self, count: int) -> None:
        with self._lock:
            self._bar.update(count)
            self._counted += count

    def reset(self) -> None:
        self.update(-self._counted)

    def close(self) -> None:
        """The bar belongs to the whole fetch."""


class _SizeMismatch(ValueError):
    """pooch retries and reports a ValueError as a file that is not the one asked for."""


@dataclass
class _Download:
    """pooch's HTTP download of one manifest file, its bytes counted on the shared bar and its size checked."""

    entry: FixtureFile
    bar: tqdm
    lock: threading.Lock

    def __call__(self, url: str, output_file: str, pup: pooch.Pooch) -> None:
        progress = _FileProgress(self.bar, self.lock)
        pooch.HTTPDownloader(progressbar=progress, chunk_size=1 << 16, timeout=TIMEOUT_S)(url, output_file, pup)
        size = os.path.getsize(output_file)
        progress.reset()  # pooch counts whole chunks, and a server may send no length: count what came
        progress.update(size)
        if size != self.entry.size:
            raise _SizeMismatch(f"{size:,} bytes came, the public file has {self.entry.size:,}")


def _transient(error: Exception) -> bool:
    """Worth another try: a connection that failed or broke off, a server error, a body that came wrong."""
    if isinstance(error, requests.HTTPError):
        return error.response is not None and (error.response.status_code >= 500 or error.response.status_code == 429)
    return isinstance(error, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                              ValueError))


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL."""
    return re.sub(r"^(\w+://[^/]+).*", r"\1", url)


def _errno_text(error: Exception) -> str:
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", str(error))
    return found.group(0) if found else type(error).__name__


def _describe(error: Exception, entry: FixtureFile, url: str, target: Path, tries: int) -> str:
    """One line for a file that could not be fetched."""
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code} {error.response.reason} for {entry.path} ({url})"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return f"the connection broke off while {entry.path} was downloading ({url}; {tries} tries)"
    if isinstance(error, requests.Timeout):
        return f"{url} did not answer within {TIMEOUT_S} s ({tries} tries)"
    if isinstance(error, requests.ConnectionError):
        return f"cannot reach {_origin(url)} for {entry.path}: {_errno_text(error)} ({tries} tries)"
    if isinstance(error, ValueError):
        detail = str(error) if isinstance(error, _SizeMismatch) else f"its sha256 is not the manifest's {entry.sha256[:12]}..."
        return f"{entry.path} from {url} is not the public file ({detail}); it was not kept"
    if isinstance(error, OSError):
        return f"cannot write {entry.path} into {target}: {error.strerror or error}"
    raise error


@dataclass
class Fetched:
    target: Path
    files: list[FixtureFile]
    present: int  # there already, unchanged
    fetched: int
    seconds: float

    def summary(self) -> str:
        return (f"cnn-claims fetch: {len(self.files)} files ({megabytes(self.files)}) in {self.target}: "
                f"{self.fetched} fetched, {self.present} already there ({self.seconds:.1f} s)")


def remove_leftovers(target: Path, files: Sequence[FixtureFile]) -> list[Path]:
    """pooch's temporary files that a killed fetch left beside the files, or in ``target`` itself (where pooch
    checks that it may write), never a manifest file."""
    wanted = {target / entry.path for entry in files}
    folders = {target} | {(target / entry.path).parent for entry in files}
    found = [path for folder in folders if folder.is_dir()
             for path in folder.iterdir() if LEFTOVER.fullmatch(path.name) and path not in wanted and path.is_file()]
    for path in found:
        path.unlink()
    return found


def fetch(files: Sequence[FixtureFile], target: Path, mirror: str | None = None, workers: int = WORKERS,
          backoff: float = BACKOFF_S, progress: bool = True) -> Fetched:
    """Downloads every file of ``files`` that ``target`` lacks (or holds changed); :class:`FetchError` on the
    first that cannot be fetched, after the downloads under way have finished."""
    start = time.perf_counter()
    remove_leftovers(target, files)
    missing = [entry for entry in files if fixtures.difference(target / entry.path, entry) is not None]
    try:
        # Made here, once: pooch makes a file's folder without exist_ok, which parallel downloads would race on.
        for folder in sorted({(target / entry.path).parent for entry in missing}):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FetchError(f"cannot make {error.filename}: {error.strerror}") from error
    pup = pooch.create(path=target, base_url="", registry={e.path: f"sha256:{e.sha256}" for e in missing},
                       urls={e.path: url_of(e, mirror) for e in missing})
    pooch.get_logger().setLevel("WARNING")
    lock = threading.Lock()
    done = 0
    with tqdm(total=sum(entry.size for entry in missing), unit="B", unit_scale=True, disable=not progress or not missing,
              desc=f"0/{len(missing)} files", file=sys.stderr, mininterval=0.5) as bar:
        def one(entry: FixtureFile) -> None:
            nonlocal done
            url = url_of(entry, mirror)
            for attempt in range(RETRIES + 1):
                try:
                    pup.fetch(entry.path, downloader=_Download(entry, bar, lock))
                    break
                except Exception as error:  # requests, pooch (ValueError) and the disk (OSError) each raise their own
                    if attempt == RETRIES or not _transient(error):
                        raise FetchError(_describe(error, entry, url, target, attempt + 1)) from error
                    time.sleep(backoff * 2 ** attempt)
            with lock:
                done += 1
                bar.set_description(f"{done}/{len(missing)} files", refresh=False)

        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = [pool.submit(one, entry) for entry in missing]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((future.exception() for future in futures if future in finished and future.exception()), None)
        finally:
            # On a failure or Ctrl-C, what has not started is dropped and what is downloading finishes.
            pool.shutdown(wait=True, cancel_futures=True)
    if failed is not None and not isinstance(failed, FetchError):
        raise failed  # a bug, not a file that could not be fetched
    if failed is not None:
        fetched = sum(1 for entry in missing if fixtures.difference(target / entry.path, entry) is None)
        raise FetchError(f"{failed}; {fetched} of {len(missing)} files fetched, nothing half-written "
                         f"(run the same command again to fetch the rest)")
    return Fetched(target, list(files), len(files) - len(missing), len(missing), time.perf_counter() - start)


def verify(found: fixtures.Fixtures, files: Sequence[FixtureFile], write: Callable[[str], None]) -> bool:
    """Checks every file in ``found``'s folder against the manifest and names each one missing or different."""
    problems = [(entry, fixtures.difference(found.folder / entry.path, entry)) for entry in files]
    problems = [(entry, problem) for entry, problem in problems if problem is not None]
    for entry, problem in problems[:20]:
        write(f"  {entry.path} {problem}")
    if len(problems) > 20:
        write(f"  ... and {len(problems) - 20} more")
    where = found.describe()
    if problems:
        write(f"cnn-claims fetch: {where}: {len(problems)} of {len(files)} files missing or different (listed above); "
              f"fetch them with `{found.fetch_command}`")
        return False
    write(f"cnn-claims fetch: {where}: all {len(files)} files ({megabytes(files)}) there and unchanged; nothing downloaded")
    return True


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m claims fetch", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--all", action="store_true", help="all 1000 ImageNet sample photos, not only those the default run reads")
    parser.add_argument("--into", type=Path, default=None,
                        help=f"download into this folder (default: the cache folder, {fixtures.cache_folder()})")
    parser.add_argument("--mirror", default=environ.get(MIRROR_ENV) or None, metavar="URL",
                        help=f"a mirror with GitHub raw's layout, <URL>/<owner>/<repo>/<commit>/<path> (default: ${MIRROR_ENV}, "
                             f"else {fixtures.GITHUB_RAW})")
    parser.add_argument("--fixtures-dir", default=None, metavar="DIR",
                        help=f"verify this folder instead of downloading (also ${fixtures.ENV} when --into is not given)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.mirror and not re.match(r"^https?://[^/]+", args.mirror):
        parser.error(f"--mirror {args.mirror}: not an http:// or https:// URL")
    files = all_files() if args.all else default_files()
    if args.into is None and (args.fixtures_dir or environ.get(fixtures.ENV)):
        try:
            found = fixtures.locate(args.fixtures_dir, named_by="--fixtures-dir", environ=environ)
        except InputError as error:
            parser.error(str(error))
        return 0 if verify(found, files, print) else 1
    target = (args.into or fixtures.cache_folder()).expanduser().resolve()
    try:
        result = fetch(files, target, args.mirror, progress=not args.quiet)
    except FetchError as error:
        print(f"cnn-claims fetch: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cnn-claims fetch: interrupted; the files fetched are kept, none is half-written: run the same command "
              "again to fetch the rest", file=sys.stderr)
        return 130
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
