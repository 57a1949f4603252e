"""Betfair price ladders (RULES.md §8) and rounding onto them.

Prices on a ladder are held as integer hundredths ("ticks of 0.01"), so every
comparison and step is integer arithmetic. Rounding *in the book's favour*
means rounding the customer's odds **down** to the next rung.
"""

from __future__ import annotations

import bisect
from enum import Enum
from fractions import Fraction

from sportsbook_core.prices import Price

# (from, to, step) in hundredths: RULES.md §8 CLASSIC table.
_CLASSIC_BANDS: tuple[tuple[int, int, int], ...] = (
    (101, 200, 1),
    (200, 300, 2),
    (300, 400, 5),
    (400, 600, 10),
    (600, 1000, 20),
    (1000, 2000, 50),
    (2000, 3000, 100),
    (3000, 5000, 200),
    (5000, 10000, 500),
    (10000, 100000, 1000),
)


def _rungs(bands: tuple[tuple[int, int, int], ...]) -> tuple[int, ...]:
    rungs: list[int] = []
    for start, stop, step in bands:
        rungs.extend(range(start, stop, step))
    rungs.append(bands[-1][1])
    return tuple(rungs)


class LadderType(Enum):
    """Which tick table a market prices on."""

    CLASSIC = "CLASSIC"
    LINE_RANGE = "LINE_RANGE"  # Asian handicap / totals: 0.01 steps 1.01..1000
    FINEST = "FINEST"


class Ladder:
    """An ordered set of legal prices, in hundredths."""

    def __init__(self, rungs: tuple[int, ...]) -> None:
        self._rungs = rungs

    @property
    def rungs(self) -> tuple[int, ...]:
        return self._rungs

    def __len__(self) -> int:
        return len(self._rungs)

    def contains(self, odds: Fraction) -> bool:
        """True when ``odds`` is exactly a rung of this ladder."""
        hundredths = odds * 100
        if hundredths.denominator != 1:
            return False
        index = bisect.bisect_left(self._rungs, hundredths.numerator)
        return index < len(self._rungs) and self._rungs[index] == hundredths.numerator

    def round_down(self, odds: Fraction) -> Price | None:
        """The highest rung at or below ``odds`` (book's favour); None below the first rung."""
        index = bisect.bisect_right(self._rungs, odds * 100) - 1
        if index < 0:
            return None
        return price_from_hundredths(self._rungs[index])

    def round_up(self, odds: Fraction) -> Price | None:
        """The lowest rung at or above ``odds``; None above the top rung."""
        index = bisect.bisect_left(self._rungs, odds * 100)
        if index >= len(self._rungs):
            return None
        return price_from_hundredths(self._rungs[index])

    def ticks_between(self, low: Fraction, high: Fraction) -> int:
        """How many rungs separate two on-ladder prices (positive when high > low)."""
        return bisect.bisect_left(self._rungs, high * 100) - bisect.bisect_left(
            self._rungs, low * 100
        )


def price_from_hundredths(hundredths: int) -> Price:
    return Price(Fraction(hundredths, 100))


CLASSIC = Ladder(_rungs(_CLASSIC_BANDS))
LINE_RANGE = Ladder(tuple(range(101, 100001)))

_LADDERS = {
    LadderType.CLASSIC: CLASSIC,
    LadderType.LINE_RANGE: LINE_RANGE,
    LadderType.FINEST: LINE_RANGE,
}


def ladder_for(kind: LadderType) -> Ladder:
    return _LADDERS[kind]
