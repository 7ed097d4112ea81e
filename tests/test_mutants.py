"""The mutation check's list stays applicable: each mutant's text occurs once in today's code."""
from __future__ import annotations

from pathlib import Path

import pytest

from claims.tools.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.name)
def test_each_mutant_applies_to_the_current_code(mutant, tmp_path):
    (tmp_path / mutant.file).parent.mkdir(parents=True)
    (tmp_path / mutant.file).write_text((ROOT / mutant.file).read_text())
    mutant.apply(tmp_path)
    assert (tmp_path / mutant.file).read_text() != (ROOT / mutant.file).read_text()


def test_a_mutant_whose_text_is_gone_says_so(tmp_path):
    (tmp_path / "cnn_core").mkdir()
    (tmp_path / MUTANTS[0].file).write_text("nothing to mutate\n")
    with pytest.raises(ValueError, match="occurs 0 times"):
        MUTANTS[0].apply(tmp_path)
