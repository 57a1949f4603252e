"""Settlement: exact returns of bet lines and whole bets from leg results.

Each leg of a line contributes an exact factor to the line's product (RULES.md §6,
the UOF form): ``v + (1 − v)·(won ? d·O′ : 0)`` with void share ``v``, dead-heat
factor ``d`` (RULES.md §5: the stake is reduced, not the odds) and ``O′`` the leg's
odds, place odds ``1 + (O−1)·fraction`` on a place line (RULES.md §2), with any
Rule 4 deduction ``R`` taken off the winnings only: ``O′ = 1 + (O−1)·(1−R)``
(RULES.md §3). A void leg is 1.00, a losing leg 0 (so its line returns 0).

A bet's return is ``Σ stake × ∏ factors`` over its lines, exact, rounded down to
the minor unit **once** at the end (PROTOCOL.md, Numbers; :mod:`sportsbook_core.returns`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from math import prod

from sportsbook_core.bets import BetSlip, InvalidBet, Line, expand_lines
from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.prices import Price
from sportsbook_core.returns import potential_return as _floor_return

RULE4_CAP = Fraction(9, 10)
"""The most Rule 4 can take in total: 90p in the pound (RULES.md §3)."""

WIN_ONLY_RUNNERS = 4
"""Races of 1–4 runners pay win only: the place part is settled as a win bet (RULES.md §2)."""


class InvalidSettlement(ValueError):
    """Leg results that do not fit the bet (wrong count, a half result on a place line …)."""


class LegResult(Enum):
    """How one leg finished (RULES.md §1, §2, §6)."""

    WIN = "WIN"
    LOSE = "LOSE"
    VOID = "VOID"  # refund; a removed runner is void (RULES.md §3)
    PUSH = "PUSH"  # whole-line Asian handicap / total landing on the line: stake back
    PLACE = "PLACE"  # placed but did not win: the win part loses, the place part wins
    HALF_WIN = "HALF_WIN"  # quarter line: half won, half refunded
    HALF_LOSE = "HALF_LOSE"  # quarter line: half lost, half refunded


@dataclass(frozen=True, slots=True)
class DeadHeat:
    """``tied`` competitors share the finishing ``position`` (1 = first)."""

    position: int
    tied: int

    def __post_init__(self) -> None:
        if self.position < 1 or self.tied < 1:
            raise ValueError(f"dead heat needs position ≥ 1 and tied ≥ 1, got {self}")


@dataclass(frozen=True, slots=True)
class LegOutcome:
    """A leg's result and everything that scales its payout.

    ``winners``: the win market's paying places (1 for a race); ``None`` or 0
    means unknown, and then no dead-heat reduction is applied (FIELD_CASES B01).
    ``rule4``: the total Rule 4 deduction for *this bet* (only withdrawals after
    the bet was struck; see :func:`rule4_for_bet`), at most 90p in the pound.
    ``runners``: runners that came under starter's orders; 1–4 pays win only.
    """

    result: LegResult
    dead_heat: DeadHeat | None = None
    rule4: Fraction = Fraction(0)
    winners: int | None = 1
    runners: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rule4, Fraction):
            raise TypeError(f"rule4 must be an exact Fraction, got {type(self.rule4).__name__}")
        if not 0 <= self.rule4 <= RULE4_CAP:
            raise ValueError(f"rule4 must be within 0 and 9/10, got {self.rule4}")


WIN = LegOutcome(LegResult.WIN)
LOSE = LegOutcome(LegResult.LOSE)
VOID = LegOutcome(LegResult.VOID)
PLACE = LegOutcome(LegResult.PLACE)


# --- Dead heat (RULES.md §5) -------------------------------------------------


def dead_heat_factor(dead_heat: DeadHeat | None, paying_places: int | None) -> Fraction:
    """Paying places the tied group shares ÷ number tied; 1 without a tie.

    ``paying_places`` None or 0 (unknown number of winners) → 1: no reduction
    (FIELD_CASES B01). A tie wholly outside the paying places → 0.
    """
    if dead_heat is None or dead_heat.tied == 1 or not paying_places:
        return Fraction(1)
    shared = min(dead_heat.tied, paying_places - dead_heat.position + 1)
    return Fraction(max(shared, 0), dead_heat.tied)


# --- Rule 4 (RULES.md §3) ------------------------------------------------------

# (longest fractional odds of the band, deduction in pence per pound); the
# fractional column is the authority (RULES.md §3). A price between two bands'
# limits falls in the longer band.
_RULE4_BANDS: tuple[tuple[Fraction, int], ...] = (
    (Fraction(1, 9), 90),
    (Fraction(2, 11), 85),
    (Fraction(1, 4), 80),
    (Fraction(3, 10), 75),
    (Fraction(2, 5), 70),
    (Fraction(8, 15), 65),
    (Fraction(8, 13), 60),
    (Fraction(4, 5), 55),
    (Fraction(20, 21), 50),
    (Fraction(6, 5), 45),
    (Fraction(6, 4), 40),
    (Fraction(7, 4), 35),
    (Fraction(9, 4), 30),
    (Fraction(3, 1), 25),
    (Fraction(4, 1), 20),
    (Fraction(11, 2), 15),
    (Fraction(9, 1), 10),
    (Fraction(14, 1), 5),
)


def rule4_deduction(withdrawn: Price) -> Fraction:
    """The Tattersalls Rule 4(c) deduction per £1 of winnings for one withdrawn runner."""
    fractional = withdrawn.odds - 1
    for longest, pence in _RULE4_BANDS:
        if fractional <= longest:
            return Fraction(pence, 100)
    return Fraction(0)


def rule4_total(deductions: Iterable[Fraction]) -> Fraction:
    """Several withdrawals: the deductions added, capped at 90p in the pound."""
    return min(sum(deductions, start=Fraction(0)), RULE4_CAP)


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A runner withdrawn at ``at`` carrying ``deduction`` (see :func:`rule4_deduction`)."""

    deduction: Fraction
    at: datetime


def rule4_for_bet(withdrawals: Iterable[Withdrawal], struck_at: datetime) -> Fraction:
    """The deduction for a bet: only withdrawals after it was struck count (RULES.md §3)."""
    return rule4_total(w.deduction for w in withdrawals if struck_at < w.at)


# --- Asian handicap and totals (RULES.md §1) -----------------------------------


def _whole_or_half(adjusted: Fraction) -> LegResult:
    if adjusted > 0:
        return LegResult.WIN
    if adjusted < 0:
        return LegResult.LOSE
    return LegResult.PUSH


_QUARTER_RESULTS: dict[tuple[LegResult, LegResult], LegResult] = {
    (LegResult.WIN, LegResult.PUSH): LegResult.HALF_WIN,
    (LegResult.PUSH, LegResult.WIN): LegResult.HALF_WIN,
    (LegResult.LOSE, LegResult.PUSH): LegResult.HALF_LOSE,
    (LegResult.PUSH, LegResult.LOSE): LegResult.HALF_LOSE,
}


def asian_handicap_result(margin: int, handicap: Decimal | Fraction) -> LegResult:
    """Result of a bet on a team that won by ``margin`` (negative: lost) at ``handicap``.

    Quarter lines split into the two neighbouring lines 0.25 either side.
    """
    line = Fraction(handicap)
    if (line * 4).denominator != 1:
        raise ValueError(f"handicap must be in quarter steps, got {handicap}")
    if (line * 2).denominator == 1:  # whole or half line
        return _whole_or_half(margin + line)
    low = _whole_or_half(margin + line - Fraction(1, 4))
    high = _whole_or_half(margin + line + Fraction(1, 4))
    if low is high:
        return low
    return _QUARTER_RESULTS[(low, high)]


def total_result(goals: int, line: Decimal | Fraction, *, over: bool) -> LegResult:
    """Over/under ``line`` with ``goals`` scored; quarter lines as for handicaps."""
    if over:
        return asian_handicap_result(goals, -Fraction(line))
    return asian_handicap_result(-goals, Fraction(line))


# --- Each-way terms (RULES.md §2) ---------------------------------------------


def uk_place_terms(runners: int, *, handicap: bool) -> EachWayTerms | None:
    """The UK standard place terms by runners; None for 1–4 runners (win only)."""
    if runners <= WIN_ONLY_RUNNERS:
        return None
    if runners <= 7:
        return EachWayTerms(2, Fraction(1, 4))
    if not handicap or runners <= 11:
        return EachWayTerms(3, Fraction(1, 5))
    if runners <= 15:
        return EachWayTerms(3, Fraction(1, 4))
    return EachWayTerms(4, Fraction(1, 4))


# --- Legs, lines, bets ----------------------------------------------------------

# result → (void share v, won); the factor is v + (1 − v)·(won ? d·O′ : 0).
_SHARES: dict[LegResult, tuple[Fraction, bool]] = {
    LegResult.WIN: (Fraction(0), True),
    LegResult.LOSE: (Fraction(0), False),
    LegResult.VOID: (Fraction(1), False),
    LegResult.PUSH: (Fraction(1), False),
    LegResult.HALF_WIN: (Fraction(1, 2), True),
    LegResult.HALF_LOSE: (Fraction(1, 2), False),
}


def leg_factor(
    price: Price, outcome: LegOutcome, *, place: bool = False, terms: EachWayTerms | None = None
) -> Fraction:
    """The leg's exact factor in its line's product (return per unit of stake)."""
    result = outcome.result
    win_only = outcome.runners is not None and outcome.runners <= WIN_ONLY_RUNNERS
    if place and not win_only:
        return _place_factor(price, outcome, terms)
    if result is LegResult.PLACE:  # placed, not won: the win part loses
        return Fraction(0)
    void, won = _SHARES[result]
    if not won:
        return void
    odds = 1 + (price.odds - 1) * (1 - outcome.rule4)
    return void + (1 - void) * dead_heat_factor(outcome.dead_heat, outcome.winners) * odds


def _place_factor(price: Price, outcome: LegOutcome, terms: EachWayTerms | None) -> Fraction:
    result = outcome.result
    if result in (LegResult.VOID, LegResult.PUSH):
        return Fraction(1)
    if result in (LegResult.HALF_WIN, LegResult.HALF_LOSE):
        raise InvalidSettlement(f"{result.value} has no place part")
    if terms is None:
        raise InvalidSettlement("a place line needs each-way terms")
    if result is LegResult.LOSE:
        return Fraction(0)
    odds = 1 + (price.odds - 1) * terms.fraction * (1 - outcome.rule4)
    return dead_heat_factor(outcome.dead_heat, terms.places) * odds


def line_factor(
    line: Line,
    prices: Sequence[Price],
    outcomes: Sequence[LegOutcome],
    terms: Sequence[EachWayTerms | None] = (),
) -> Fraction:
    """The exact return per unit of stake of one line: the product of its legs' factors."""
    if len(outcomes) != len(prices):
        raise InvalidSettlement(f"{len(prices)} legs but {len(outcomes)} results")
    factors: list[Fraction] = []
    for i in line.legs:
        leg_terms = terms[i] if i < len(terms) else None
        factors.append(leg_factor(prices[i], outcomes[i], place=line.place, terms=leg_terms))
    return prod(factors, start=Fraction(1))


def settle_line(
    line: Line,
    prices: Sequence[Price],
    outcomes: Sequence[LegOutcome],
    stake: int,
    terms: Sequence[EachWayTerms | None] = (),
) -> int:
    """One line's return in minor units, exact, rounded down once."""
    return _floor_return(stake, line_factor(line, prices, outcomes, terms))


def settle_lines(
    lines: Sequence[Line],
    prices: Sequence[Price],
    outcomes: Sequence[LegOutcome],
    stake_per_line: int,
    terms: Sequence[EachWayTerms | None] = (),
) -> int:
    """``Σ stake × ∏ factors`` over the lines, exact, rounded down once at the end."""
    if len(outcomes) != len(prices):
        raise InvalidSettlement(f"{len(prices)} legs but {len(outcomes)} results")

    def factor(i: int, place: bool) -> Fraction:
        leg_terms = terms[i] if i < len(terms) else None
        return leg_factor(prices[i], outcomes[i], place=place, terms=leg_terms)

    return _floor_return(stake_per_line, sum_of_lines(lines, factor))


def sum_of_lines(lines: Sequence[Line], factor: Callable[[int, bool], Fraction]) -> Fraction:
    """Σ over ``lines`` of the product of their legs' factors, exact; ``factor(i, place)``
    is leg ``i``'s factor on a win line (``place`` False) or a place line."""
    return sum(
        (prod((factor(i, line.place) for i in line.legs), start=Fraction(1)) for line in lines),
        start=Fraction(0),
    )


def settle_bet(
    slip: BetSlip, outcomes: Sequence[LegOutcome], terms: Sequence[EachWayTerms | None] = ()
) -> int:
    """A whole slip's return from its legs' results (``outcomes[i]`` for ``slip.legs[i]``).

    Every line is settled on its own (RULES.md §4, §6), summed exactly, and the
    total rounded down to the minor unit once. Each-way slips need ``terms``
    for their place lines unless the leg's race had 1–4 runners.
    """
    prices = [leg.price for leg in slip.legs]
    if len(outcomes) != len(prices):
        raise InvalidSettlement(f"{len(prices)} legs but {len(outcomes)} results")
    try:
        lines = expand_lines(slip)
    except InvalidBet as exc:
        raise InvalidSettlement(str(exc)) from exc
    return settle_lines(lines, prices, outcomes, slip.stake_per_line, terms)
