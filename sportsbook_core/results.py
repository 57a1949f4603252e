"""Settlement instructions: a market's result, and every bet's return from it.

A :class:`SettlementInstruction` is what the feed (a Betfair market that closes)
or a trader says about a market: each runner's outcome, who tied for which
place (never inferred from a bare winner count: FIELD_CASES B01, B02's kind),
withdrawals with their time and reduction, the each-way terms. ``version``
orders corrections: version 1 is the first result, each correction is the next.

:func:`settle_slip` turns the instructions for a bet's markets into its
settlement, pure and exact (rules in :mod:`sportsbook_core.settlement`).

Reductions for withdrawn runners (RULES.md §3), chosen per instruction:

* ``RULE4`` (the default, a fixed-odds book): Tattersalls Rule 4 by the
  withdrawn runner's price at withdrawal, summed, capped at 90p, off winnings
  only, only for bets struck before the withdrawal. Betfair's ``adjustmentFactor``
  is the runner's win chance in percent when it was removed, so the price at
  withdrawal is ``100 / adjustmentFactor`` unless the instruction states one.
* ``EXCHANGE`` (markets mirrored at exchange terms): the price itself is cut by
  the adjustment factor, ``P·(1 − RF/100)`` rounded to 2 dp, once per later
  removal, so it comes off the whole return (8.6 with RF 16.2 % → 7.21).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction

from sportsbook_core.bets import BetSlip
from sportsbook_core.catalogue import (
    EachWayTerms,
    MarketDefinition,
    MarketStatus,
    SelectionStatus,
)
from sportsbook_core.prices import Price
from sportsbook_core.settlement import (
    DeadHeat,
    InvalidSettlement,
    LegOutcome,
    LegResult,
    Withdrawal,
    dead_heat_factor,
    rule4_deduction,
    rule4_for_bet,
    settle_bet,
)


class RunnerOutcome(StrEnum):
    """A runner's result as a feed or trader states it."""

    WINNER = "WINNER"
    LOSER = "LOSER"
    PLACED = "PLACED"  # placed, not won (each-way place part wins)
    REMOVED = "REMOVED"  # non-runner: void, and a reduction for the others
    VOID = "VOID"
    PUSH = "PUSH"
    HALF_WIN = "HALF_WIN"
    HALF_LOSE = "HALF_LOSE"


class Reduction(StrEnum):
    RULE4 = "RULE4"
    EXCHANGE = "EXCHANGE"


_LEG_RESULT: dict[RunnerOutcome, LegResult] = {
    RunnerOutcome.WINNER: LegResult.WIN,
    RunnerOutcome.LOSER: LegResult.LOSE,
    RunnerOutcome.PLACED: LegResult.PLACE,
    RunnerOutcome.REMOVED: LegResult.VOID,
    RunnerOutcome.VOID: LegResult.VOID,
    RunnerOutcome.PUSH: LegResult.PUSH,
    RunnerOutcome.HALF_WIN: LegResult.HALF_WIN,
    RunnerOutcome.HALF_LOSE: LegResult.HALF_LOSE,
}

_CENT = Decimal("0.01")
_MIN_PRICE = Fraction(101, 100)


@dataclass(frozen=True, slots=True)
class RunnerResult:
    """One runner's result. ``dead_heat``: the position it shared and how many tied there."""

    selection_id: str
    outcome: RunnerOutcome
    dead_heat: DeadHeat | None = None
    removed_at: datetime | None = None
    adjustment_factor: Decimal | None = None
    price_at_removal: Price | None = None

    def __post_init__(self) -> None:
        if self.outcome is RunnerOutcome.REMOVED and self.removed_at is None:
            raise InvalidSettlement(f"removed runner {self.selection_id} needs removed_at")

    def withdrawal_price(self) -> Price | None:
        """The price Rule 4 reads: stated, else ``100 / adjustmentFactor``."""
        if self.price_at_removal is not None:
            return self.price_at_removal
        factor = self.adjustment_factor
        if factor is None or factor <= 0 or factor >= 100:
            return None
        return Price(Fraction(100) / Fraction(factor))


@dataclass(frozen=True, slots=True)
class SettlementInstruction:
    """A market's result (version 1) or a correction of it (version 2, 3 …)."""

    market_id: str
    version: int
    runners: tuple[RunnerResult, ...]
    settled_at: datetime
    number_of_winners: int | None = 1
    each_way: EachWayTerms | None = None
    reduction: Reduction = Reduction.RULE4
    post_official: bool = False
    source: str = "feed"
    _by_id: dict[str, RunnerResult] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise InvalidSettlement(f"version starts at 1, got {self.version}")
        by_id = {r.selection_id: r for r in self.runners}
        if len(by_id) != len(self.runners):
            raise InvalidSettlement(f"market {self.market_id}: a runner is listed twice")
        object.__setattr__(self, "_by_id", by_id)

    def runner(self, selection_id: str) -> RunnerResult:
        try:
            return self._by_id[selection_id]
        except KeyError:
            raise InvalidSettlement(
                f"market {self.market_id} result has no runner {selection_id}"
            ) from None

    @property
    def runners_count(self) -> int:
        """Runners that came under orders (every runner not removed)."""
        return sum(1 for r in self.runners if r.outcome is not RunnerOutcome.REMOVED)

    def removals(self) -> tuple[RunnerResult, ...]:
        """Withdrawn runners in the order they were removed."""
        removed = [r for r in self.runners if r.outcome is RunnerOutcome.REMOVED]
        return tuple(sorted(removed, key=lambda r: (r.removed_at is None, r.removed_at or 0)))

    def same_result(self, other: SettlementInstruction) -> bool:
        """Whether ``other`` states the same result: every field but when it was issued
        (``settled_at``), by whom (``source``) and its version number."""
        return (
            replace(self, settled_at=other.settled_at, source=other.source, version=other.version)
            == other
        )

    def review_reason(self) -> str | None:
        """Why this result must not be settled automatically (a trader settles it)."""
        winners = sum(1 for r in self.runners if r.outcome is RunnerOutcome.WINNER)
        tied = any(r.dead_heat is not None for r in self.runners)
        paying = self.number_of_winners
        if paying and winners > paying and not tied:
            return (
                f"{winners} winners for {paying} paying place(s) and no dead heat stated: "
                "settle by hand with --dead-heat"
            )
        return None


def instruction_from_definition(
    definition: MarketDefinition, version: int, settled_at: datetime
) -> SettlementInstruction | None:
    """A closed Betfair market's definition as a settlement instruction (None if not closed
    or no runner has a result yet)."""
    if definition.status is not MarketStatus.CLOSED:
        return None
    runners: list[RunnerResult] = []
    for sel in definition.selections:
        outcome = _FROM_STATUS.get(sel.status)
        if outcome is None:
            return None  # still ACTIVE: the market closed without a result
        removed_at = sel.removal_date
        if outcome is RunnerOutcome.REMOVED and removed_at is None:
            removed_at = settled_at
        runners.append(
            RunnerResult(
                selection_id=sel.selection_id,
                outcome=outcome,
                removed_at=removed_at if outcome is RunnerOutcome.REMOVED else None,
                adjustment_factor=sel.adjustment_factor,
            )
        )
    if not any(r.outcome is not RunnerOutcome.REMOVED for r in runners):
        return None
    return SettlementInstruction(
        market_id=definition.market_id,
        version=version,
        runners=tuple(runners),
        settled_at=settled_at,
        number_of_winners=definition.number_of_winners,
        each_way=definition.each_way,
    )


_FROM_STATUS: dict[SelectionStatus, RunnerOutcome] = {
    SelectionStatus.WINNER: RunnerOutcome.WINNER,
    SelectionStatus.LOSER: RunnerOutcome.LOSER,
    SelectionStatus.PLACED: RunnerOutcome.PLACED,
    SelectionStatus.REMOVED: RunnerOutcome.REMOVED,
    SelectionStatus.VOID: RunnerOutcome.VOID,
}


# --- Bets -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettledLeg:
    """A leg's result as the receipt shows it (PROTOCOL.md ``settlement.legs``)."""

    result: LegResult
    dead_heat_factor: Fraction | None = None
    reduction_factor: Fraction | None = None

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"result": self.result.value}
        if self.dead_heat_factor is not None:
            wire["deadHeatFactor"] = _fraction_text(self.dead_heat_factor)
        if self.reduction_factor is not None:
            wire["reductionFactor"] = _fraction_text(self.reduction_factor)
        return wire


@dataclass(frozen=True, slots=True)
class BetSettlement:
    """A bet's return (minor units, rounded down once) and its legs' results."""

    amount: int
    legs: tuple[SettledLeg, ...]

    @property
    def void(self) -> bool:
        """Every leg void: the bet is VOID (its stake refunded), not SETTLED."""
        return all(leg.result in (LegResult.VOID, LegResult.PUSH) for leg in self.legs)


@dataclass(frozen=True, slots=True)
class _Leg:
    outcome: LegOutcome
    price: Price
    shown: SettledLeg


def settle_slip(
    slip: BetSlip,
    struck_at: datetime,
    results: Mapping[str, SettlementInstruction],
    *,
    payout_cap: int | None = None,
) -> BetSettlement | None:
    """The bet's settlement, or None while any leg's market has no result.

    ``payout_cap``: the cap in force when the bet was accepted; the return is
    ``min(return, cap)`` (FIELD_CASES B14).
    """
    legs: list[_Leg] = []
    for leg in slip.legs:
        instruction = results.get(leg.market_id)
        if instruction is None:
            return None
        legs.append(settle_leg(leg.selection_id, leg.price, struck_at, instruction))
    terms = [results[leg.market_id].each_way for leg in slip.legs]
    priced = BetSlip(
        request_id=slip.request_id,
        bet_type=slip.bet_type,
        system=slip.system,
        legs=tuple(
            type(leg)(leg.market_id, leg.selection_id, settled.price, leg.seq)
            for leg, settled in zip(slip.legs, legs, strict=True)
        ),
        stake_per_line=slip.stake_per_line,
        each_way=slip.each_way,
        accept_price_change=slip.accept_price_change,
    )
    amount = settle_bet(priced, [leg.outcome for leg in legs], terms)
    if payout_cap is not None:
        amount = min(amount, payout_cap)
    return BetSettlement(amount=amount, legs=tuple(leg.shown for leg in legs))


def settle_leg(
    selection_id: str, price: Price, struck_at: datetime, instruction: SettlementInstruction
) -> _Leg:
    runner = instruction.runner(selection_id)
    result = _LEG_RESULT[runner.outcome]
    if result is LegResult.VOID:
        return _Leg(LegOutcome(LegResult.VOID), price, SettledLeg(LegResult.VOID))
    later = [
        r for r in instruction.removals() if r.removed_at is not None and struck_at < r.removed_at
    ]
    rule4 = Fraction(0)
    reduced = price
    if instruction.reduction is Reduction.RULE4:
        rule4 = rule4_for_bet(_withdrawals(later), struck_at)
    else:
        reduced = exchange_reduced_price(price, later)
    outcome = LegOutcome(
        result,
        dead_heat=runner.dead_heat,
        rule4=rule4,
        winners=instruction.number_of_winners,
        runners=instruction.runners_count if instruction.each_way is not None else None,
    )
    places = instruction.each_way.places if instruction.each_way is not None else None
    paying = places if result is LegResult.PLACE else instruction.number_of_winners
    return _Leg(outcome, reduced, _shown(outcome, paying, price, reduced))


def _withdrawals(removed: Sequence[RunnerResult]) -> list[Withdrawal]:
    out: list[Withdrawal] = []
    for runner in removed:
        withdrawn = runner.withdrawal_price()
        if withdrawn is not None and runner.removed_at is not None:
            out.append(Withdrawal(rule4_deduction(withdrawn), runner.removed_at))
    return out


def exchange_reduced_price(price: Price, removed: Sequence[RunnerResult]) -> Price:
    """Betfair's reduction: ``P·(1 − RF/100)`` to 2 dp per removal, never below 1.01."""
    odds = price.odds
    for runner in removed:  # in removal order: each cut applies to the price left
        factor = runner.adjustment_factor
        if not factor:
            continue
        cut = Decimal(odds.numerator) / Decimal(odds.denominator) * (1 - factor / 100)
        odds = max(Fraction(cut.quantize(_CENT, rounding=ROUND_HALF_UP)), _MIN_PRICE)
    return Price(odds)


def _shown(outcome: LegOutcome, paying: int | None, price: Price, reduced: Price) -> SettledLeg:
    """The leg as the receipt shows it; a placed leg's dead heat is over the place terms."""
    heat: Fraction | None = None
    if outcome.dead_heat is not None:
        heat = dead_heat_factor(outcome.dead_heat, paying)
        heat = None if heat == 1 else heat
    reduction: Fraction | None = None
    if outcome.rule4:
        reduction = outcome.rule4
    elif reduced.odds != price.odds:
        reduction = 1 - reduced.odds / price.odds
    return SettledLeg(outcome.result, heat, reduction)


def _fraction_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"
