"""sportsbook_core.fractional_ladder: the customary UK ladder (RULES.md §7: snap, don't
reduce)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from sportsbook_core.fractional_ladder import RUNGS, customary_text, snap_down, snap_nearest
from sportsbook_core.prices import Price


def test_rungs_strictly_ascending_and_distinct() -> None:
    assert all(low < high for low, high in itertools.pairwise(RUNGS))
    assert len(RUNGS) == len(set(RUNGS)) == 90
    assert RUNGS[0] == Fraction(1, 100)
    assert RUNGS[-1] == 500


def test_rules_7_customary_examples_are_rungs() -> None:
    """RULES.md §7 lists 11/10, 6/5, 5/4, 11/8, 6/4, 13/8, 7/4, 15/8, 2/1 as customary."""
    examples = ["11/10", "6/5", "5/4", "11/8", "6/4", "13/8", "7/4", "15/8", "2/1"]
    assert [customary_text(Fraction(text)) for text in examples] == examples
    assert all(Fraction(text) in RUNGS for text in examples)


@pytest.mark.parametrize(
    ("profit", "text"),
    [
        (Fraction(2, 3), "4/6"),
        (Fraction(3, 2), "6/4"),
        (Fraction(17, 8), "85/40"),
        (Fraction(1), "1/1"),
        (Fraction(5, 2), "5/2"),
        (Fraction(10, 11), "10/11"),
        (Fraction(7, 3), "7/3"),  # off the ladder: written reduced
        (Fraction(100, 67), "100/67"),
    ],
)
def test_customary_text(profit: Fraction, text: str) -> None:
    """4/6 and 6/4, not 2/3 and 3/2."""
    assert customary_text(profit) == text


@pytest.mark.parametrize(
    ("odds", "profit", "wire"),
    [
        ("2.5", Fraction(3, 2), "6/4"),
        ("2.55", Fraction(3, 2), "6/4"),
        ("2.62", Fraction(3, 2), "6/4"),
        ("2.625", Fraction(13, 8), "13/8"),
        ("1.7", Fraction(2, 3), "4/6"),
        ("1.6666", Fraction(8, 13), "8/13"),
        ("3.5", Fraction(5, 2), "5/2"),
        ("2", Fraction(1), "1/1"),
        ("1.01", Fraction(1, 100), "1/100"),
        ("1000", Fraction(500), "500/1"),
    ],
)
def test_snap_down(odds: str, profit: Fraction, wire: str) -> None:
    """The highest customary fraction at or below the odds (book's favour)."""
    price = snap_down(Fraction(odds))
    assert price == Price(1 + profit, fractional=True)
    assert price is not None
    assert price.to_wire() == wire


@pytest.mark.parametrize("odds", ["1.005", "1.0099", "1"])
def test_snap_down_below_the_ladder_is_none(odds: str) -> None:
    assert snap_down(Fraction(odds)) is None


@pytest.mark.parametrize(
    ("odds", "profit"),
    [
        ("2.5", Fraction(3, 2)),
        ("1.91", Fraction(10, 11)),
        ("2.1", Fraction(11, 10)),
        ("1.67", Fraction(2, 3)),
        ("3.4", Fraction(5, 2)),
        ("1000", Fraction(500)),
        ("1.001", Fraction(1, 100)),
        ("2.025", Fraction(1)),  # exactly halfway between 1/1 and 21/20: the lower rung
    ],
)
def test_snap_nearest(odds: str, profit: Fraction) -> None:
    """Nearest customary profit fraction; a tie goes to the lower (shorter) rung."""
    assert snap_nearest(Fraction(odds)) == profit
