"""Bets: slips, their lines and their exact potential returns (RULES.md §2, §4).

A slip is what the customer asked for (PROTOCOL.md, Bet request). It expands
into *lines*: one per combination of legs its type covers, twice over when
each-way (a win line and a place line per combination). Every line carries the
same stake, so a slip's total stake is ``stake_per_line × line_count``.

Returns are ``Σ stake × ∏ leg odds`` over the lines, place lines at
``1 + (O−1)·fraction`` (RULES.md §2), computed as an exact Fraction and rounded
down to the minor unit **once**, at the end (PROTOCOL.md, Numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from functools import lru_cache
from itertools import combinations
from math import comb, prod

from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.prices import Price
from sportsbook_core.returns import potential_return as _floor_return

MAX_LEGS = 20
"""The most legs one slip may carry (a house setting; bounds DOUBLES/TREBLES lines)."""


class InvalidBet(ValueError):
    """A slip whose shape its type does not allow (wrong leg count, missing system …)."""


class BetType(Enum):
    SINGLE = "SINGLE"
    ACCUMULATOR = "ACCUMULATOR"
    SYSTEM = "SYSTEM"


class SystemBet(Enum):
    """Full-cover and k-fold system bets (RULES.md §4)."""

    DOUBLES = "DOUBLES"
    TREBLES = "TREBLES"
    TRIXIE = "TRIXIE"
    PATENT = "PATENT"
    YANKEE = "YANKEE"
    LUCKY15 = "LUCKY15"
    CANADIAN = "CANADIAN"
    LUCKY31 = "LUCKY31"
    HEINZ = "HEINZ"
    LUCKY63 = "LUCKY63"
    SUPER_HEINZ = "SUPER_HEINZ"
    GOLIATH = "GOLIATH"

    @property
    def selections(self) -> int | None:
        """The fixed number of selections, or None for DOUBLES/TREBLES (any n ≥ k)."""
        return _SHAPES[self][0]

    @property
    def min_selections(self) -> int:
        fixed = self.selections
        return _SHAPES[self][1] if fixed is None else fixed

    def accepts(self, selections: int) -> bool:
        """Whether ``selections`` legs make this bet (and no more than MAX_LEGS)."""
        fixed = self.selections
        if fixed is not None:
            return selections == fixed
        return self.min_selections <= selections <= MAX_LEGS

    def fold_sizes(self, selections: int) -> tuple[int, ...]:
        """The k of every k-fold the bet covers with ``selections`` legs."""
        if not self.accepts(selections):
            raise InvalidBet(f"{self.value} does not take {selections} selections")
        low = _SHAPES[self][1]
        high = low if self.selections is None else selections
        return tuple(range(low, high + 1))


# system → (fixed selections or None, smallest fold); full covers run to the n-fold.
_SHAPES: dict[SystemBet, tuple[int | None, int]] = {
    SystemBet.DOUBLES: (None, 2),
    SystemBet.TREBLES: (None, 3),
    SystemBet.TRIXIE: (3, 2),
    SystemBet.PATENT: (3, 1),
    SystemBet.YANKEE: (4, 2),
    SystemBet.LUCKY15: (4, 1),
    SystemBet.CANADIAN: (5, 2),
    SystemBet.LUCKY31: (5, 1),
    SystemBet.HEINZ: (6, 2),
    SystemBet.LUCKY63: (6, 1),
    SystemBet.SUPER_HEINZ: (7, 2),
    SystemBet.GOLIATH: (8, 2),
}


class PriceChangePolicy(Enum):
    """What the customer accepts if the price moved (RULES.md §10)."""

    NONE = "NONE"
    HIGHER = "HIGHER"
    ANY = "ANY"


@dataclass(frozen=True, slots=True)
class BetLeg:
    """One selection at the price the customer saw; ``seq`` the market seq they saw."""

    market_id: str
    selection_id: str
    price: Price
    seq: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.market_id, self.selection_id)


@dataclass(frozen=True, slots=True)
class BetSlip:
    """A bet request as decoded from the wire; its shape is checked, not assumed."""

    request_id: str
    bet_type: BetType
    system: SystemBet | None
    legs: tuple[BetLeg, ...]
    stake_per_line: int
    each_way: bool = False
    accept_price_change: PriceChangePolicy = PriceChangePolicy.NONE

    def __post_init__(self) -> None:
        if isinstance(self.stake_per_line, bool) or not isinstance(self.stake_per_line, int):
            kind = type(self.stake_per_line).__name__
            raise TypeError(f"stake must be an int of minor units, got {kind}")


@dataclass(frozen=True, slots=True)
class Line:
    """One bet of a slip: the indices of its legs, and whether it is a place line."""

    legs: tuple[int, ...]
    place: bool = False


def shape_problem(slip: BetSlip) -> str | None:
    """Why the slip's legs do not fit its type and system, or None when they do."""
    n = len(slip.legs)
    if n > MAX_LEGS:
        return f"at most {MAX_LEGS} legs, got {n}"
    if slip.bet_type is BetType.SYSTEM:
        return _system_problem(slip.system, n)
    if slip.system is not None:
        return f"{slip.bet_type.value} bets take no system"
    if slip.bet_type is BetType.SINGLE and n != 1:
        return f"a SINGLE has exactly 1 leg, got {n}"
    if slip.bet_type is BetType.ACCUMULATOR and n < 2:
        return f"an ACCUMULATOR needs at least 2 legs, got {n}"
    return None


def _system_problem(system: SystemBet | None, n: int) -> str | None:
    if system is None:
        return "a SYSTEM bet needs a system"
    if not system.accepts(n):
        return f"{system.value} needs {_needed(system)} selections, got {n}"
    return None


def _needed(system: SystemBet) -> str:
    fixed = system.selections
    return f"{system.min_selections}+" if fixed is None else str(fixed)


def fold_sizes(slip: BetSlip) -> tuple[int, ...]:
    """The k of every k-fold the slip covers; raises InvalidBet for a bad shape."""
    problem = shape_problem(slip)
    if problem is not None:
        raise InvalidBet(problem)
    n = len(slip.legs)
    if slip.bet_type is BetType.SYSTEM:
        assert slip.system is not None  # shape_problem checked it
        return slip.system.fold_sizes(n)
    return (n,)


def expand_lines(slip: BetSlip) -> tuple[Line, ...]:
    """Every line, smallest folds first; each-way gives a win then a place line per combination."""
    return _lines(slip.bet_type, slip.system, len(slip.legs), slip.each_way)


def line_count(slip: BetSlip) -> int:
    """``Σ C(n, k)`` over the slip's fold sizes, doubled each-way (RULES.md §4)."""
    return _line_count(slip.bet_type, slip.system, len(slip.legs), slip.each_way)


def _shape_of(bet_type: BetType, system: SystemBet | None, n: int) -> BetSlip:
    """A stand-in slip with the shape (type, system, legs) that lines depend on."""
    leg = BetLeg("", "", Price(Fraction(2)))
    return BetSlip("", bet_type, system, (leg,) * n, 1)


@lru_cache(maxsize=1024)
def _lines(bet_type: BetType, system: SystemBet | None, n: int, each_way: bool) -> tuple[Line, ...]:
    """The lines depend only on the slip's shape: computed once per shape (the same
    InvalidBet as :func:`fold_sizes` for a bad one; exceptions are not cached)."""
    lines: list[Line] = []
    for k in fold_sizes(_shape_of(bet_type, system, n)):
        for legs in combinations(range(n), k):
            lines.append(Line(legs))
            if each_way:
                lines.append(Line(legs, place=True))
    return tuple(lines)


@lru_cache(maxsize=1024)
def _line_count(bet_type: BetType, system: SystemBet | None, n: int, each_way: bool) -> int:
    count = sum(comb(n, k) for k in fold_sizes(_shape_of(bet_type, system, n)))
    return count * 2 if each_way else count


def total_stake(slip: BetSlip) -> int:
    """Unit stake × lines (each-way lines included): what the customer is charged."""
    return slip.stake_per_line * line_count(slip)


def place_odds(price: Price, terms: EachWayTerms) -> Fraction:
    """Place odds ``1 + (O−1)·fraction`` (RULES.md §2), exact."""
    return 1 + (price.odds - 1) * terms.fraction


def line_odds(
    line: Line, prices: Sequence[Price], terms: Sequence[EachWayTerms | None] = ()
) -> Fraction:
    """The exact product of the line's leg odds (place odds on a place line)."""
    if not line.place:
        if len(line.legs) == 1:  # a single: its odds (a Fraction), no multiplication
            return prices[line.legs[0]].odds
        return prod((prices[i].odds for i in line.legs), start=Fraction(1))
    factors: list[Fraction] = []
    for i in line.legs:
        leg_terms = terms[i] if i < len(terms) else None
        if leg_terms is None:
            raise InvalidBet(f"leg {i} has no each-way terms for a place line")
        factors.append(place_odds(prices[i], leg_terms))
    return prod(factors, start=Fraction(1))


def combined_odds(
    lines: Sequence[Line], prices: Sequence[Price], terms: Sequence[EachWayTerms | None] = ()
) -> Fraction:
    """``Σ ∏`` over the lines: the exact return per unit of stake per line."""
    if len(lines) == 1:
        return line_odds(lines[0], prices, terms)
    return sum((line_odds(line, prices, terms) for line in lines), start=Fraction(0))


def potential_return(
    lines: Sequence[Line],
    prices: Sequence[Price],
    stake_per_line: int,
    terms: Sequence[EachWayTerms | None] = (),
) -> int:
    """``Σ stake × ∏ odds`` over the lines, exact, rounded down once at the end.

    ``prices[i]`` and ``terms[i]`` belong to leg ``i``; ``terms`` is needed only
    for place lines.
    """
    return _floor_return(stake_per_line, combined_odds(lines, prices, terms))


def max_stake_for_payout(
    lines: Sequence[Line],
    prices: Sequence[Price],
    cap: int,
    terms: Sequence[EachWayTerms | None] = (),
) -> int:
    """The largest stake per line whose potential return is at most ``cap`` (FIELD_CASES B14).

    ``floor(s·F) ≤ cap ⇔ s·F < cap + 1 ⇔ s < (cap + 1)/F``, so the answer is
    ``ceil((cap + 1)/F) − 1``, with ``F`` the exact combined odds.
    """
    if cap < 0:
        return 0
    factor = combined_odds(lines, prices, terms)
    if factor <= 0:
        raise InvalidBet("a bet with no lines has no maximum stake")
    bound = (cap + 1) / factor
    return -(-bound.numerator // bound.denominator) - 1
