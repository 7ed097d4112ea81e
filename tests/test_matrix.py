"""The claims matrix: a verdict that moves, either way, fails the run and says what was measured."""
from __future__ import annotations

import pytest

from claims.matrix import EXPECTATIONS, Verdict, check_expectation, load_expectations
from claims.subjects import ALL_SUBJECTS, CNN_SUBJECTS

VERDICT = Verdict("L3-sparser-with-depth", "tiny-vgg.trained", holds=False, measured=0.011, threshold=">= 0.05",
                  detail="zeros per block: 0.28, 0.29")


def test_an_agreeing_verdict_passes_and_carries_its_expectation():
    checked = check_expectation(VERDICT, {"L3-sparser-with-depth": {"tiny-vgg.trained": {"holds": False}}})
    assert checked.expected is False


@pytest.mark.parametrize("recorded", [True, False], ids=["expected-to-hold", "expected-to-fail"])
def test_a_flipped_expectation_fails_with_the_measured_numbers(recorded):
    verdict = Verdict(**{**VERDICT.__dict__, "holds": not recorded})
    expectations = {"L3-sparser-with-depth": {"tiny-vgg.trained": {"holds": recorded, "measured": 0.5}}}
    with pytest.raises(pytest.fail.Exception, match=r"measured 0\.011 \(holds if >= 0\.05\).*zeros per block"):
        check_expectation(verdict, expectations)


def test_a_missing_expectation_fails_and_says_what_to_record():
    with pytest.raises(pytest.fail.Exception, match="no expectation in expectations.toml; measured 0.011"):
        check_expectation(VERDICT, {})


def test_the_recorded_matrix_covers_every_claim_and_subject():
    expectations = load_expectations(EXPECTATIONS)
    for claim, entries in expectations.items():
        subjects = ALL_SUBJECTS if claim.startswith("S-") else CNN_SUBJECTS
        assert set(entries) == set(subjects), claim
        assert all({"holds", "measured"} <= set(entry) for entry in entries.values()), claim
    # the transformer is the proof that the structural claims can fail
    assert not any(expectations[claim]["vit_b_16.random"]["holds"] for claim in expectations if claim.startswith("S-"))
