"""The fixtures folder (cnn_core.fixtures): the manifest is the public files' own, the folder is looked
for in the stated order, and a file that is missing or changed is named with the command that fetches it."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import cnn_core
from cnn_core import fixtures


@pytest.fixture(scope="module")
def shared(run_fixtures) -> Path:
    """The run's fixtures folder when it holds every file (CI's ../shared/fixtures), else a skip."""
    missing = [entry.path for entry in fixtures.manifest().values() if run_fixtures.folder is None
               or not (run_fixtures.folder / entry.path).is_file()]
    if missing:
        pytest.skip(f"the fixtures folder ({run_fixtures.describe()}) does not hold every file, e.g. {missing[0]}")
    return run_fixtures.folder


def test_every_manifest_row_is_the_file_in_the_fixtures_folder(shared):
    """Each of the manifest's files lies in the fixtures folder with the manifest's size and sha256,
    and every row of the folder's own sources.csv is in the manifest, unchanged."""
    rows = fixtures.manifest()
    assert len(rows) == 1023 and len(fixtures.photos()) == 1000 and len(fixtures.tiny_vgg_files()) == 23
    assert {path: fixtures.difference(shared / path, entry) for path, entry in rows.items()
            if fixtures.difference(shared / path, entry) is not None} == {}
    sources = shared / "sources.csv"
    if sources.is_file():
        with sources.open(newline="") as handle:
            theirs = {row["path"]: row for row in csv.DictReader(handle)}
        with fixtures.MANIFEST.open(newline="") as handle:
            ours = {row["path"]: row for row in csv.DictReader(handle)}
        assert {path: row for path, row in theirs.items() if ours.get(path) != row} == {}


def test_each_photo_is_named_by_its_class_and_fetched_from_the_pinned_commit():
    for index, entry in fixtures.photos().items():
        assert entry.path == f"{fixtures.PHOTOS}/{entry.synset}_{entry.name}.JPEG", entry
        assert entry.source == f"EliSchwartz/imagenet-sample-images/bc69043e2862758a1906c6a24a792bb28c6bb2ff/" \
                               f"{entry.synset}_{entry.name}.JPEG"
    # ImageNet-1k's class index is the synset's place in sorted WordNet-id order.
    synsets = [entry.synset for _, entry in sorted(fixtures.photos().items())]
    assert synsets == sorted(synsets) and len(set(synsets)) == 1000
    assert all(entry.url.startswith(f"{fixtures.GITHUB_RAW}/poloclub/cnn-explainer/d0971f9447ed9806022a3d47587b62394682bc51/")
               for entry in fixtures.tiny_vgg_files())


def _folder_with(root: Path) -> Path:
    """A folder that is a fixtures folder by its layout (an empty tiny-vgg/)."""
    (root / fixtures.TINY_VGG).mkdir(parents=True)
    return root


def test_the_folder_is_looked_for_named_then_environment_then_cache(tmp_path, monkeypatch):
    named, env, cache = (_folder_with(tmp_path / name) for name in ("named", "env", "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / fixtures.CACHE_NAME).symlink_to(cache)
    assert fixtures.cache_folder() == tmp_path / fixtures.CACHE_NAME
    environ = {fixtures.ENV: str(env)}
    assert fixtures.locate(named, environ=environ) == fixtures.Fixtures(named, "fixtures_dir")
    assert fixtures.locate(None, environ=environ) == fixtures.Fixtures(env, f"${fixtures.ENV}")
    assert fixtures.locate(None, environ={}).origin == "the cache folder"
    (tmp_path / fixtures.CACHE_NAME).unlink()
    found = fixtures.locate(None, environ={})
    assert found.folder is None and "nothing fetched into" in found.origin


def test_a_named_folder_that_is_not_a_fixtures_folder_is_an_error(tmp_path):
    with pytest.raises(cnn_core.InputError, match="no such folder"):
        fixtures.locate(tmp_path / "absent", named_by="--fixtures-dir")
    with pytest.raises(cnn_core.InputError, match=r"holds neither imagenet-sample-images/ nor tiny-vgg/.*python -m claims fetch"):
        fixtures.locate(tmp_path, environ={fixtures.ENV: str(tmp_path)})


def test_a_missing_or_changed_file_is_named_with_the_command_that_fetches_it(tmp_path, tiny_vgg_folder):
    entry = fixtures.manifest()[f"{fixtures.TINY_VGG}/images/boat_1.jpeg"]
    folder = _folder_with(tmp_path / "mine")
    found = fixtures.Fixtures(folder, "--fixtures-dir")
    with pytest.raises(cnn_core.FixtureMissing, match=rf"boat_1.jpeg is missing; fetch it with `python -m claims fetch --into {folder}`"):
        found.file(entry)
    good = (tiny_vgg_folder / "images" / "boat_1.jpeg").read_bytes()
    (folder / entry.path).parent.mkdir(parents=True)
    (folder / entry.path).write_bytes(good[:-1])
    with pytest.raises(cnn_core.FixtureMissing, match="has 1,566 bytes, not the public file's 1,567"):
        found.file(entry)
    # Break: one byte changed keeps the size; the sha256 still tells it from the public file.
    (folder / entry.path).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(cnn_core.FixtureMissing, match=r"is not the public file \(sha256"):
        found.file(entry)
    (folder / entry.path).write_bytes(good)
    assert found.file(entry) == folder / entry.path and found.has(entry)
    with pytest.raises(cnn_core.FixtureMissing, match=r"no fixtures folder was found \(nowhere\); fetch the files with `python -m claims fetch`$"):
        fixtures.Fixtures(None, "nowhere").file(entry)
