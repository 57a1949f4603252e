"""The hot path's shortcuts (lines cached per slip shape, a single's odds without
multiplying, a single's liability in integers) give exactly what the general
Fraction arithmetic gives."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations
from math import floor, prod

import pytest

from sportsbook_core.acceptance import Accepted, selection_liability
from sportsbook_core.bets import (
    BetLeg,
    BetSlip,
    BetType,
    InvalidBet,
    Line,
    SystemBet,
    combined_odds,
    expand_lines,
    line_count,
    line_odds,
    potential_return,
)
from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.prices import Price

PRICES = ["1.01", "1.5", "2", "2.38", "3.1", "7", "1000", "1/3", "5/2", "21/11", "100/30"]
STAKES = [1, 3, 7, 100, 333, 10_001]


def _slip(n: int, bet_type: BetType, system: SystemBet | None, each_way: bool) -> BetSlip:
    legs = tuple(BetLeg(f"1.{i}", "11", Price.parse("2")) for i in range(n))
    return BetSlip("r", bet_type, system, legs, 100, each_way)


def _reference_lines(slip: BetSlip, folds: tuple[int, ...]) -> tuple[Line, ...]:
    lines: list[Line] = []
    for k in folds:
        for legs in combinations(range(len(slip.legs)), k):
            lines.append(Line(legs))
            if slip.each_way:
                lines.append(Line(legs, place=True))
    return tuple(lines)


@pytest.mark.parametrize("each_way", [False, True])
def test_cached_lines_are_the_lines_of_the_shape(each_way: bool) -> None:
    assert expand_lines(_slip(1, BetType.SINGLE, None, each_way)) == _reference_lines(
        _slip(1, BetType.SINGLE, None, each_way), (1,)
    )
    acca = _slip(4, BetType.ACCUMULATOR, None, each_way)
    assert expand_lines(acca) == _reference_lines(acca, (4,))
    yankee = _slip(4, BetType.SYSTEM, SystemBet.YANKEE, each_way)
    assert expand_lines(yankee) == _reference_lines(yankee, (2, 3, 4))
    assert line_count(yankee) == len(expand_lines(yankee)) == (22 if each_way else 11)


def test_a_bad_shape_still_raises_every_time() -> None:
    for _ in range(2):  # not cached as a result
        with pytest.raises(InvalidBet):
            expand_lines(_slip(2, BetType.SINGLE, None, False))
        with pytest.raises(InvalidBet):
            line_count(_slip(3, BetType.SYSTEM, SystemBet.YANKEE, False))


@pytest.mark.parametrize("text", PRICES)
def test_a_single_is_exact(text: str) -> None:
    price = Price.parse(text)
    win = Line((0,))
    assert line_odds(win, [price]) == price.odds
    assert isinstance(line_odds(win, [price]), Fraction)
    assert combined_odds([win], [price]) == price.odds
    for stake in STAKES:
        assert potential_return([win], [price], stake) == floor(stake * price.odds)
        leg = BetLeg("1.1", "11", price, 1)
        accepted = Accepted((leg,), (win,), stake, stake, 0, 0, (None,), 10**12)
        expected = floor(stake * (price.odds - 1))
        assert selection_liability(accepted) == {("1.1", "11"): expected}


@pytest.mark.parametrize("pair", list(combinations(PRICES, 2)))
def test_multiples_and_each_way_are_exact(pair: tuple[str, str]) -> None:
    prices = [Price.parse(t) for t in pair]
    terms = [EachWayTerms(3, Fraction(1, 5)), EachWayTerms(2, Fraction(1, 4))]
    lines = (Line((0,)), Line((0,), place=True), Line((0, 1)), Line((0, 1), place=True))
    places = [1 + (p.odds - 1) * t.fraction for p, t in zip(prices, terms, strict=True)]
    reference = [prices[0].odds, places[0], prod(p.odds for p in prices), prod(places)]
    for line, expected in zip(lines, reference, strict=True):
        assert line_odds(line, prices, terms) == expected
    assert combined_odds(lines, prices, terms) == sum(reference)
    for stake in STAKES:
        assert potential_return(lines, prices, stake, terms) == floor(stake * sum(reference))
