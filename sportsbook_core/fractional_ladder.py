"""The customary UK fractional ladder (RULES.md §7: snap, don't reduce).

Bookmakers quote 4/6 and 6/4, not 2/3 and 3/2; fractional books price on
these rungs only, and a fraction is written in its customary form.
"""

from __future__ import annotations

import bisect
from fractions import Fraction

from sportsbook_core.prices import Price

_CUSTOMARY: tuple[tuple[int, int], ...] = (
    (1, 100),
    (1, 66),
    (1, 50),
    (1, 40),
    (1, 33),
    (1, 25),
    (1, 20),
    (1, 16),
    (1, 14),
    (1, 12),
    (1, 10),
    (1, 9),
    (1, 8),
    (2, 15),
    (1, 7),
    (2, 13),
    (1, 6),
    (2, 11),
    (1, 5),
    (2, 9),
    (1, 4),
    (2, 7),
    (3, 10),
    (1, 3),
    (4, 11),
    (3, 8),
    (2, 5),
    (4, 9),
    (1, 2),
    (8, 15),
    (4, 7),
    (8, 13),
    (4, 6),
    (8, 11),
    (4, 5),
    (5, 6),
    (10, 11),
    (20, 21),
    (1, 1),
    (21, 20),
    (11, 10),
    (6, 5),
    (5, 4),
    (11, 8),
    (6, 4),
    (13, 8),
    (7, 4),
    (15, 8),
    (2, 1),
    (85, 40),
    (9, 4),
    (5, 2),
    (11, 4),
    (3, 1),
    (10, 3),
    (7, 2),
    (4, 1),
    (9, 2),
    (5, 1),
    (11, 2),
    (6, 1),
    (13, 2),
    (7, 1),
    (15, 2),
    (8, 1),
    (17, 2),
    (9, 1),
    (10, 1),
    (11, 1),
    (12, 1),
    (14, 1),
    (16, 1),
    (18, 1),
    (20, 1),
    (22, 1),
    (25, 1),
    (28, 1),
    (33, 1),
    (40, 1),
    (50, 1),
    (66, 1),
    (80, 1),
    (100, 1),
    (125, 1),
    (150, 1),
    (200, 1),
    (250, 1),
    (300, 1),
    (400, 1),
    (500, 1),
)

# Profit fractions (odds − 1), ascending, and their customary spelling.
RUNGS: tuple[Fraction, ...] = tuple(Fraction(n, d) for n, d in _CUSTOMARY)
_SPELLING: dict[Fraction, str] = {Fraction(n, d): f"{n}/{d}" for n, d in _CUSTOMARY}


def customary_text(profit: Fraction) -> str:
    """``2/3`` → ``"4/6"``; a fraction off the ladder is written reduced."""
    return _SPELLING.get(profit, f"{profit.numerator}/{profit.denominator}")


def snap_down(odds: Fraction) -> Price | None:
    """The highest customary fraction at or below decimal ``odds`` (book's favour)."""
    index = bisect.bisect_right(RUNGS, odds - 1) - 1
    if index < 0:
        return None
    return Price(1 + RUNGS[index], fractional=True)


def snap_nearest(odds: Fraction) -> Fraction:
    """The customary profit fraction nearest decimal ``odds`` (for display only)."""
    profit = odds - 1
    index = bisect.bisect_left(RUNGS, profit)
    candidates = [RUNGS[i] for i in (index - 1, index) if 0 <= i < len(RUNGS)]
    return min(candidates, key=lambda rung: (abs(rung - profit), rung))
