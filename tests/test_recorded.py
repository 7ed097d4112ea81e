"""``python -m claims recorded``: a recorded entry re-measured without a change passes; one whose check value
was moved (recorded again by the code, so its digest holds) is named and fails the command."""
from __future__ import annotations

import json
from dataclasses import replace

from claims.judging import nulls, recorded
from claims.judging.subjects import LEARNED


def test_a_recorded_entry_is_fed_as_recorded_and_re_measured(fixtures_with_photos, tiny_vgg_folder, capsys):
    assert recorded.main(["--model", "tiny-vgg", "--fixtures-dir", str(fixtures_with_photos.folder)]) == 0
    assert f"ok     tiny-vgg @64px-resize64-bilinear-0/0/0/1/1/1: {len(LEARNED)} claims unchanged" in capsys.readouterr().out


def test_a_moved_check_value_fails_it(fixtures_with_photos, tiny_vgg_folder, tmp_path, capsys):
    """Break: the control's L3 value moved by 1% (beyond the check's 1e-3), written by the code itself."""
    data = next(d for d in nulls.load().values() if d["architecture"] == "tiny-vgg")
    entry = nulls.NullEntry.from_json("tiny-vgg", {k: v for k, v in data.items() if k != "architecture"})
    moved = replace(entry, check={**entry.check, "L3-sparser-with-depth": entry.check["L3-sparser-with-depth"] * 1.01})
    path = tmp_path / "nulls.json"
    nulls.write([{"architecture": "tiny-vgg", **moved.to_json()}], path)
    assert json.loads(path.read_text())["schema"] == nulls.SCHEMA
    assert recorded.main(["--nulls", str(path), "--fixtures-dir", str(fixtures_with_photos.folder)]) == 1
    assert "MOVED  tiny-vgg" in capsys.readouterr().out
