"""``python -m claims fetch`` against a mirror on the loopback address that serves the public files'
bytes (tests/helpers/mirror.py): the happy path, a second run, wrong bytes, a 404, a connection that
breaks off, no server, a write that fails, an interrupted fetch resumed, a folder verified; then
``pytest claims`` on the folder fetched. Nothing here reaches the internet."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claims.judging.subjects import LEARNED
from claims.session import fetch
from cnn_core import fixtures
from tests.helpers.mirror import HALF_ONCE, HALF_THEN_CLOSE, NOT_FOUND, WRONG_BYTES, Mirror

ROOT = Path(__file__).resolve().parents[1]
FAST = 0.01  # backoff: the retries' waits, shortened for the tests


@pytest.fixture(scope="module")
def source(fixtures_with_photos, tiny_vgg_folder) -> Path:
    """The fixtures folder the mirror serves from: every file a default run reads, checked."""
    return fixtures_with_photos.folder


@pytest.fixture(scope="module")
def few() -> list[fixtures.FixtureFile]:
    """A handful of files: two photos and Tiny VGG's model."""
    return fetch.default_files()[:2] + [fixtures.manifest()[f"{fixtures.TINY_VGG}/model.json"]]


def fetched_correctly(folder: Path, files) -> bool:
    return all(fixtures.difference(folder / entry.path, entry) is None for entry in files)


def leftovers(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and fixtures.manifest().get(
        path.relative_to(folder).as_posix()) is None]


def test_the_default_fetch_then_a_second_run_that_downloads_nothing(source, tmp_path, capsys):
    target = tmp_path / "cache"
    files = fetch.default_files()
    with Mirror(source) as mirror:
        assert fetch.main(["--into", str(target), "--mirror", mirror.url, "--quiet"], environ={}) == 0
        first = capsys.readouterr().out.strip().splitlines()
        assert sum(mirror.requests.values()) == len(files) == 322 and set(mirror.requests.values()) == {1}
        assert fetch.main(["--into", str(target), "--mirror", mirror.url, "--quiet"], environ={}) == 0
        second = capsys.readouterr().out.strip().splitlines()
        assert sum(mirror.requests.values()) == len(files), "the second run downloaded again"
    assert fetched_correctly(target, files) and leftovers(target) == []
    assert first == [f"cnn-claims fetch: 322 files (32.5 MB) in {target}: 322 fetched, 0 already there "
                     f"({first[0].rsplit('(', 1)[1]}"]
    assert second[0].startswith(f"cnn-claims fetch: 322 files (32.5 MB) in {target}: 0 fetched, 322 already there")


def test_the_mirror_comes_from_the_environment_and_the_cache_folder_is_the_default(source, tmp_path, monkeypatch, few,
                                                                                      capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(fetch, "default_files", lambda: few)
    with Mirror(source) as mirror:
        assert fetch.main(["--quiet"], environ={fetch.MIRROR_ENV: mirror.url}) == 0
        assert sum(mirror.requests.values()) == len(few)
    assert fetched_correctly(tmp_path / fixtures.CACHE_NAME, few)
    assert f"in {tmp_path / fixtures.CACHE_NAME}: 3 fetched" in capsys.readouterr().out


@pytest.mark.parametrize("fault, message, tries", [
    (WRONG_BYTES, r"(?P<path>\S+) from http://127\.0\.0\.1:\d+/\S+ is not the public file \(its sha256 is not the "
                  r"manifest's [0-9a-f]{12}\.\.\.\); it was not kept", fetch.RETRIES + 1),
    (NOT_FOUND, r"HTTP 404 Not Found for (?P<path>\S+) \(http://127\.0\.0\.1:\d+/\S+\)", 1),
    (HALF_THEN_CLOSE, r"the connection broke off while (?P<path>\S+) was downloading \(http://127\.0\.0\.1:\d+/\S+; "
                      rf"{fetch.RETRIES + 1} tries\)", fetch.RETRIES + 1),
], ids=["wrong-bytes", "404", "half-then-close"])
def test_a_file_that_cannot_be_fetched_is_named_and_nothing_of_it_is_left(source, tmp_path, few, fault, message, tries):
    broken = few[-1]
    with Mirror(source, faults={broken.path: fault}) as mirror:
        with pytest.raises(fetch.FetchError) as raised:
            fetch.fetch(few, tmp_path, mirror.url, backoff=FAST, progress=False)
        assert mirror.requests[broken.path] == tries  # a 404 is final; a broken transfer or wrong bytes are retried
    found = re.match(message, str(raised.value))
    assert found and found.group("path") == broken.path, str(raised.value)
    assert str(raised.value).endswith("; 2 of 3 files fetched, nothing half-written (run the same command again to fetch the rest)")
    assert not (tmp_path / broken.path).exists() and leftovers(tmp_path) == []
    assert fetched_correctly(tmp_path, few[:-1])  # the other files are kept


def test_a_killed_fetchs_temporary_files_are_removed_wherever_pooch_left_them(source, tmp_path, few):
    """SIGKILL leaves pooch's temporary files: a download's beside its file, and the write check's in the folder
    itself (pooch's make_local_storage); the next fetch removes both, and keeps a file of one's own."""
    (tmp_path / few[0].path).parent.mkdir(parents=True)
    left = [tmp_path / "tmpab12cd34", (tmp_path / few[0].path).parent / "tmp_x9y8z7w"]
    for path in left:
        path.write_bytes(b"half")
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    with Mirror(source) as mirror:
        fetch.fetch(few, tmp_path, mirror.url, backoff=FAST, progress=False)
    assert not any(path.exists() for path in left) and leftovers(tmp_path) == [mine]


def test_a_connection_that_breaks_once_is_retried(source, tmp_path, few):
    with Mirror(source, faults={few[0].path: HALF_ONCE}) as mirror:
        result = fetch.fetch(few, tmp_path, mirror.url, backoff=FAST, progress=False)
        assert mirror.requests[few[0].path] == 2
    assert result.fetched == len(few) and fetched_correctly(tmp_path, few) and leftovers(tmp_path) == []


def test_no_server_is_named_with_its_error(tmp_path, few):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(fetch.FetchError) as raised:
        fetch.fetch(few, tmp_path, f"http://127.0.0.1:{port}", backoff=FAST, progress=False)
    assert re.match(rf"cannot reach http://127\.0\.0\.1:{port} for \S+: \[Errno \d+\] Connection refused "
                    rf"\({fetch.RETRIES + 1} tries\); 0 of 3 files fetched", str(raised.value)), str(raised.value)
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_the_command_fails_with_one_line_and_a_non_zero_exit(source, tmp_path, few, monkeypatch, capsys):
    monkeypatch.setattr(fetch, "default_files", lambda: few)
    with Mirror(source, faults={few[0].path: NOT_FOUND}) as mirror:
        assert fetch.main(["--into", str(tmp_path), "--mirror", mirror.url, "--quiet"], environ={}) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"cnn-claims fetch: error: HTTP 404 Not Found for {few[0].path} "), error


# Writes beyond 40 kB fail (EFBIG), as writes fail on a full disk (Python ignores SIGXFSZ); set in the child
# itself, since a preexec_fn is unsafe while the mirror's thread runs.
LIMITED_FETCH = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000)); "
                 "sys.argv = ['claims.session.fetch', *sys.argv[1:]]; runpy.run_module('claims.session.fetch', run_name='__main__')")


def test_a_write_that_fails_names_the_file_and_leaves_nothing_half_written(source, tmp_path):
    """A full disk, as the process sees it: the write fails midway (here the file-size limit's EFBIG)."""
    with Mirror(source) as mirror:
        result = subprocess.run([sys.executable, "-c", LIMITED_FETCH, "--into", str(tmp_path), "--mirror", mirror.url,
                                 "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert re.match(rf"cnn-claims fetch: error: cannot write \S+ into {re.escape(str(tmp_path))}: File too large; ", lines[0])
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written and all(fixtures.difference(path, fixtures.manifest()[path.relative_to(tmp_path).as_posix()]) is None
                           for path in written), "a file was left half-written"


def test_an_interrupted_fetch_picks_up_where_it_stopped(source, tmp_path, capsys):
    """Killed (SIGKILL: no clean-up) midway, the fetch is run again: it downloads only what is not there."""
    files = fetch.default_files()
    with Mirror(source, delay_s=0.03) as first_mirror:
        process = subprocess.Popen([sys.executable, "-m", "claims", "fetch", "--into", str(tmp_path), "--mirror",
                                    first_mirror.url, "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while sum(first_mirror.requests.values()) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    before = sum(1 for entry in files if fixtures.difference(tmp_path / entry.path, entry) is None)
    assert 0 < before < len(files), before
    # A second mirror: requests the killed process left in flight still reach the first one, not this count.
    with Mirror(source) as mirror:
        assert fetch.main(["--into", str(tmp_path), "--mirror", mirror.url, "--quiet"], environ={}) == 0
    assert sum(mirror.requests.values()) == len(files) - before
    assert f"{len(files) - before} fetched, {before} already there" in capsys.readouterr().out
    assert fetched_correctly(tmp_path, files) and leftovers(tmp_path) == []


def _links(folder: Path, source: Path, files) -> Path:
    """A fixtures folder of links to ``source``'s files: nothing is copied."""
    for entry in files:
        (folder / entry.path).parent.mkdir(parents=True, exist_ok=True)
        (folder / entry.path).symlink_to(source / entry.path)
    return folder


def test_a_named_folder_is_verified_and_a_changed_file_named(source, tmp_path, capsys):
    files = fetch.default_files()
    folder = _links(tmp_path / "mine", source, files)
    assert fetch.main(["--fixtures-dir", str(folder)], environ={}) == 0
    assert capsys.readouterr().out.strip() == (f"cnn-claims fetch: {folder} (--fixtures-dir): all 322 files (32.5 MB) "
                                               f"there and unchanged; nothing downloaded")
    changed = folder / files[5].path
    data = changed.read_bytes()
    changed.unlink()
    changed.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    (folder / files[7].path).unlink()
    assert fetch.main([], environ={fixtures.ENV: str(folder)}) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"  {files[5].path} is not the public file (sha256 {out[0].split('sha256 ')[1]}",
                   f"  {files[7].path} is missing",
                   f"cnn-claims fetch: {folder} ($CNN_CLAIMS_FIXTURES): 2 of 322 files missing or different (listed above); "
                   f"fetch them with `python -m claims fetch --into {folder}`"]


def test_pytest_claims_reads_the_folder_fetched(source, tmp_path, pytester, monkeypatch):
    """The learned claims on Tiny VGG from a fetched folder: every verdict is measured (none NOT MEASURED
    for want of photos) and equals the recorded one (the run's gate)."""
    target = tmp_path / "fetched"
    with Mirror(source) as mirror:
        assert fetch.main(["--into", str(target), "--mirror", mirror.url, "--quiet"], environ={}) == 0
    monkeypatch.delenv(fixtures.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = pytester.runpytest_inprocess(str(ROOT / "claims"), "-q", "-p", "no:cacheprovider", "-m", "learned",
                                          "--model", "tiny-vgg", "--fixtures-dir", str(target), "-k", "not folder")
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    assert "NOT MEASURED on" not in out and re.search(r"\b15 passed\b", out), out[-3000:]


def test_pytest_claims_without_fixtures_names_the_fetch(pytester, monkeypatch, tmp_path):
    """No fixtures anywhere (a user's CI before its fetch): the photo claims of a trained model and every claim of
    Tiny VGG are NOT MEASURED, the reason naming the command that fetches them; the grey-fill claim leaves Tiny VGG
    out and Tiny VGG's own-weights benchmark skips, naming it too (at 0368532 both failed with WeightsError)."""
    monkeypatch.delenv(fixtures.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = pytester.runpytest_inprocess(str(ROOT / "claims"), "-p", "no:cacheprovider", "-rs",
                                          "--model", "mobilenet_v2,tiny-vgg",
                                          "-k", "(learned and not folder) or occlusion_paints_the_mean_grey or own_weights")
    out = result.stdout.str()
    assert result.ret == 0 and not result.parseoutcomes().get("failed"), out[-3000:]
    lines = [line for line in out.splitlines() if "NOT MEASURED on" in line]
    tiny = [line for line in lines if "tiny-vgg.trained" in line]
    photos = [line for line in lines if "mobilenet_v2.imagenet" in line and "photos" in line]
    assert len(tiny) == len(LEARNED) and photos, out[-3000:]
    assert all("fetch the files with `python -m claims fetch`" in line for line in tiny + photos), lines
    assert re.search(r"SKIPPED \[1\] .*test_benchmarks.py:\d+: NOT MEASURED: Tiny VGG: .*python -m claims fetch", out), out[-3000:]
