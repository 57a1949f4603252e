"""sportsbook_core.ladder: the Betfair CLASSIC ladder (RULES.md §8) and rounding onto it."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from sportsbook_core.ladder import (
    CLASSIC,
    LINE_RANGE,
    LadderType,
    ladder_for,
    price_from_hundredths,
)
from sportsbook_core.prices import Price

# RULES.md §8, as printed: (price range from, to, tick), in decimal odds.
RULES_8_BANDS = [
    ("1.01", "2", "0.01"),
    ("2", "3", "0.02"),
    ("3", "4", "0.05"),
    ("4", "6", "0.1"),
    ("6", "10", "0.2"),
    ("10", "20", "0.5"),
    ("20", "30", "1"),
    ("30", "50", "2"),
    ("50", "100", "5"),
    ("100", "1000", "10"),
]


def _hundredths(text: str) -> int:
    value = Fraction(text) * 100
    assert value.denominator == 1
    return value.numerator


def test_classic_has_350_rungs_from_1_01_to_1000() -> None:
    rungs = CLASSIC.rungs
    assert len(CLASSIC) == 350
    assert len(rungs) == 350
    assert rungs[0] == 101
    assert rungs[-1] == 100000
    assert all(low < high for low, high in itertools.pairwise(rungs))


@pytest.mark.parametrize(("start", "stop", "tick"), RULES_8_BANDS)
def test_every_band_steps_by_its_tick_at_both_edges(start: str, stop: str, tick: str) -> None:
    """RULES.md §8: the tick leaving each band's lower edge and arriving at its upper edge."""
    rungs = CLASSIC.rungs
    low, high, step = _hundredths(start), _hundredths(stop), _hundredths(tick)
    low_index, high_index = rungs.index(low), rungs.index(high)
    assert rungs[low_index + 1] - rungs[low_index] == step
    assert rungs[high_index] - rungs[high_index - 1] == step
    # Every step inside the band is the band's tick.
    inside = rungs[low_index : high_index + 1]
    assert {b - a for a, b in itertools.pairwise(inside)} == {step}


def test_band_sizes_add_up_to_350() -> None:
    counts = [
        (_hundredths(stop) - _hundredths(start)) // _hundredths(tick)
        for start, stop, tick in RULES_8_BANDS
    ]
    assert counts == [99, 50, 20, 20, 20, 20, 10, 10, 10, 90]
    assert sum(counts) + 1 == 350  # + the top rung, 1000


@pytest.mark.parametrize(
    ("odds", "expected"),
    [
        ("8.61", "8.6"),
        ("2.03", "2.02"),
        ("3.33", "3.3"),
        ("1000.5", "1000"),
        ("1000", "1000"),
        ("1.01", "1.01"),
        ("1.019", "1.01"),
        ("1.999", "1.99"),
        ("2", "2"),
        ("5.99", "5.9"),
        ("9.99", "9.8"),
        ("19.99", "19.5"),
        ("49.9", "48"),
        ("99", "95"),
        ("999.99", "990"),
    ],
)
def test_round_down(odds: str, expected: str) -> None:
    """Round the customer's odds down onto the ladder: in the book's favour."""
    assert CLASSIC.round_down(Fraction(odds)) == Price(Fraction(expected))


@pytest.mark.parametrize("odds", ["1.005", "1", "1.0099"])
def test_round_down_below_the_first_rung_is_none(odds: str) -> None:
    assert CLASSIC.round_down(Fraction(odds)) is None


@pytest.mark.parametrize(
    ("odds", "expected"),
    [
        ("8.61", "8.8"),
        ("2.03", "2.04"),
        ("3.33", "3.35"),
        ("1.005", "1.01"),
        ("1000", "1000"),
        ("2", "2"),
        ("990.1", "1000"),
    ],
)
def test_round_up(odds: str, expected: str) -> None:
    assert CLASSIC.round_up(Fraction(odds)) == Price(Fraction(expected))


def test_round_up_above_the_top_rung_is_none() -> None:
    assert CLASSIC.round_up(Fraction("1000.5")) is None


@pytest.mark.parametrize(
    ("odds", "on_ladder"),
    [
        ("1.01", True),
        ("2.02", True),
        ("2.03", False),
        ("3.35", True),
        ("3.33", False),
        ("8.6", True),
        ("8.7", False),
        ("1000", True),
        ("1010", False),
        ("1", False),
        ("1.011", False),
        ("1/3", False),
    ],
)
def test_contains(odds: str, on_ladder: bool) -> None:
    """RULES.md §8: a price off the ladder is rejected (INVALID_ODDS)."""
    assert CLASSIC.contains(Fraction(odds)) is on_ladder


def test_ticks_between() -> None:
    assert CLASSIC.ticks_between(Fraction(2), Fraction("2.1")) == 5
    assert CLASSIC.ticks_between(Fraction("1.99"), Fraction("2.02")) == 2
    assert CLASSIC.ticks_between(Fraction("2.1"), Fraction(2)) == -5
    assert CLASSIC.ticks_between(Fraction("1.01"), Fraction(1000)) == 349


def test_line_range_ladder() -> None:
    """RULES.md §8: Asian handicap and totals tick in 0.01 from 1.01 to 1000."""
    assert len(LINE_RANGE) == 99900
    assert LINE_RANGE.contains(Fraction("2.03"))
    assert LINE_RANGE.contains(Fraction("999.99"))
    assert not LINE_RANGE.contains(Fraction("2.031"))
    assert LINE_RANGE.round_down(Fraction("2.039")) == Price(Fraction("2.03"))


def test_ladder_for() -> None:
    assert ladder_for(LadderType.CLASSIC) is CLASSIC
    assert ladder_for(LadderType.LINE_RANGE) is LINE_RANGE
    assert ladder_for(LadderType.FINEST) is LINE_RANGE


def test_price_from_hundredths() -> None:
    assert price_from_hundredths(250) == Price(Fraction(5, 2))
    assert price_from_hundredths(250).to_wire() == "2.5"
    assert price_from_hundredths(100000).to_wire() == "1000"
