"""The claims registry (``claims/judging/rules.py``: RULES) against the suite's tests: every claim of the
verdict table is stated by exactly one test (``@pytest.mark.claim(ID)``) in its notebook block's file, and
has exactly one deliberate break: a structural claim a test marked ``@pytest.mark.breaks(ID)``, a learned
claim its random control, which the ``subject`` fixture's verdicts judge beside every trained model."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from claims.judging.rules import RULES, Rule, marked_claims

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ClaimTest:
    """What the registry check needs of one collected test function."""

    name: str
    block: str | None
    states: tuple[str, ...]
    breaks: tuple[str, ...]
    fixtures: tuple[str, ...]


def gaps(rules: Mapping[str, Rule], tests: Iterable[ClaimTest]) -> list[str]:
    """What keeps the registry and the tests from being one-to-one: each a line naming the claim."""
    tests = list(tests)
    problems = []
    for claim, rule in rules.items():
        stating = [test for test in tests if claim in test.states]
        if len(stating) != 1:
            problems.append(f"{claim}: {len(stating)} claim tests ({', '.join(test.name for test in stating) or 'none'})")
        elif stating[0].block != rule.block:
            problems.append(f"{claim}: the registry says block {rule.block}, its test {stating[0].name} is in block "
                            f"{stating[0].block}'s file")
        if rule.learned:
            if stating and "subject" not in stating[0].fixtures:
                problems.append(f"{claim}: its test judges no random control (no subject fixture)")
        else:
            breaking = [test.name for test in tests if claim in test.breaks]
            if len(breaking) != 1:
                problems.append(f"{claim}: {len(breaking)} breaks ({', '.join(breaking) or 'none'})")
    return problems


@pytest.fixture(scope="module")
def claim_tests() -> list[ClaimTest]:
    """The claims folder's test functions as pytest collects them (in this process, default options)."""
    collected: list[pytest.Item] = []

    class Keep:
        def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
            collected.extend(items)

    assert pytest.main([str(ROOT / "claims"), "--collect-only", "-q", "-p", "no:cacheprovider"],
                       plugins=[Keep()]) == pytest.ExitCode.OK
    found = {}
    for item in collected:
        block = item.get_closest_marker("block")
        found[(item.path.name, item.originalname)] = ClaimTest(
            item.originalname, block.args[0] if block else None, marked_claims(item), marked_claims(item, "breaks"),
            tuple(item.fixturenames))
    return list(found.values())


def test_every_claim_has_one_test_and_one_break(claim_tests):
    assert not gaps(RULES, claim_tests), "\n".join(gaps(RULES, claim_tests))


def test_the_check_fails_when_a_claim_lacks_its_test_or_its_break(claim_tests):
    """Break: a claim the registry holds but no test states; a structural claim's break unmarked; a claim
    stated twice."""
    added = {**RULES, "S-new-claim": replace(RULES["S-occlusion-stays-local"], claim="S-new-claim")}
    assert gaps(added, claim_tests) == ["S-new-claim: 0 claim tests (none)", "S-new-claim: 0 breaks (none)"]
    unbroken = [replace(test, breaks=()) if test.breaks == ("S-deep-change-centred",) else test for test in claim_tests]
    assert gaps(RULES, unbroken) == ["S-deep-change-centred: 0 breaks (none)"]
    twice = claim_tests + [replace(next(test for test in claim_tests if test.states), name="test_again")]
    assert len(gaps(RULES, twice)) == 1
