"""Bet acceptance: an ordered pipeline of small checks (STYLE.md 7).

Each check takes the slip and the live context and returns a :class:`Rejection`
or None; the first rejection wins and a rejection is a result, never an
exception. Prices are checked against the LIVE books in the context, never a
snapshot the client saw (FIELD_CASES.md B09). Order:

1. shape (INVALID_BET), each-way offered (EACH_WAY_NOT_OFFERED)
2. market exists, selection exists
3. market OPEN and the feed healthy, selection ACTIVE with a price
4. no material change since the customer's ``seq`` (MARKET_CHANGED, B10)
5. price-change policy (PRICE_CHANGED, RULES.md §10)
6. related legs in a multiple (RELATED_LEGS)
7. stake limits, then the payout cap (MAX_PAYOUT, B14)

Funds, liability, idempotency and account restrictions need the ledger's
state: :func:`check_funds`, :func:`check_liability`, :func:`check_idempotency`
and :func:`check_account` are pure too, and the store calls them inside its
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from fractions import Fraction
from types import MappingProxyType

from sportsbook_core.bets import (
    BetLeg,
    BetSlip,
    BetType,
    Line,
    PriceChangePolicy,
    expand_lines,
    line_count,
    line_odds,
    max_stake_for_payout,
    potential_return,
    shape_problem,
)
from sportsbook_core.catalogue import EachWayTerms, MarketStatus, SelectionStatus
from sportsbook_core.market_book import MarketBook
from sportsbook_core.prices import Price

_NO_DETAILS: Mapping[str, object] = MappingProxyType({})


class RejectCode(Enum):
    """Exactly the reject codes of PROTOCOL.md, Bet receipt."""

    MARKET_NOT_FOUND = "MARKET_NOT_FOUND"
    SELECTION_NOT_FOUND = "SELECTION_NOT_FOUND"
    MARKET_SUSPENDED = "MARKET_SUSPENDED"
    MARKET_CLOSED = "MARKET_CLOSED"
    SELECTION_NOT_ACTIVE = "SELECTION_NOT_ACTIVE"
    PRICE_CHANGED = "PRICE_CHANGED"
    STAKE_TOO_LOW = "STAKE_TOO_LOW"
    STAKE_TOO_HIGH = "STAKE_TOO_HIGH"
    MARKET_CHANGED = "MARKET_CHANGED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    LIABILITY_LIMIT = "LIABILITY_LIMIT"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    MAX_PAYOUT = "MAX_PAYOUT"
    RELATED_LEGS = "RELATED_LEGS"
    INVALID_BET = "INVALID_BET"
    EACH_WAY_NOT_OFFERED = "EACH_WAY_NOT_OFFERED"
    ACCOUNT_RESTRICTED = "ACCOUNT_RESTRICTED"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused bet. ``details`` is read-only and JSON-ready (wire names, wire prices)."""

    code: RejectCode
    message: str
    details: Mapping[str, object] = field(default_factory=lambda: _NO_DETAILS)


def _reject(code: RejectCode, message: str, **details: object) -> Rejection:
    return Rejection(code, message, MappingProxyType(details) if details else _NO_DETAILS)


@dataclass(frozen=True, slots=True)
class BettingLimits:
    """Per-currency limits, minor units.

    ``min_stake`` is per line; ``max_stake`` bounds the total stake of the slip;
    ``max_payout`` caps one bet's potential return; ``liability_per_selection``
    bounds the book's net exposure on one selection.
    """

    min_stake: int
    max_stake: int
    max_payout: int
    liability_per_selection: int


@dataclass(frozen=True, slots=True)
class AcceptanceContext:
    """The live state a bet is checked against: every market's current book."""

    books: Mapping[str, MarketBook]
    now: datetime
    limits: BettingLimits
    feed_healthy: bool = True
    default_in_play_delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class Accepted:
    """A bet that passed: its legs at the accepted live prices, lines and money.

    ``legs[i].seq`` is the market's ``seq`` at acceptance; ``place_terms[i]`` the
    each-way terms the bet was struck at (None when not each-way);
    ``max_payout`` the cap in force at acceptance, which settlement pays at most
    (FIELD_CASES.md B14). ``delay_ms`` > 0 means hold the bet PENDING that long,
    then :func:`recheck_after_delay`.
    """

    legs: tuple[BetLeg, ...]
    lines: tuple[Line, ...]
    stake_per_line: int
    total_stake: int
    potential_return: int
    delay_ms: int
    place_terms: tuple[EachWayTerms | None, ...]
    max_payout: int

    @property
    def line_count(self) -> int:
        return len(self.lines)

    @property
    def prices(self) -> tuple[Price, ...]:
        return tuple(leg.price for leg in self.legs)


Check = Callable[[BetSlip, AcceptanceContext], Rejection | None]


# ------------------------------------------------------------------- helpers


def _legs_with_books(slip: BetSlip, ctx: AcceptanceContext) -> Iterator[tuple[BetLeg, MarketBook]]:
    """Each leg whose market is known; the earlier checks reject the others."""
    for leg in slip.legs:
        book = ctx.books.get(leg.market_id)
        if book is not None:
            yield leg, book


def _legs_with_prices(slip: BetSlip, ctx: AcceptanceContext) -> Iterator[tuple[BetLeg, Price]]:
    """Each leg with its live price, where the market has one for it."""
    for leg, book in _legs_with_books(slip, ctx):
        live = book.price_of(leg.selection_id)
        if live is not None:
            yield leg, live


def _live_prices(slip: BetSlip, ctx: AcceptanceContext) -> tuple[Price, ...] | None:
    """Every leg's live price, or None when any is missing."""
    found = tuple(live for _, live in _legs_with_prices(slip, ctx))
    return found if len(found) == len(slip.legs) else None


def _place_terms(slip: BetSlip, ctx: AcceptanceContext) -> tuple[EachWayTerms | None, ...]:
    """Each leg's each-way terms when the slip is each-way, else all None."""
    if not slip.each_way:
        return (None,) * len(slip.legs)
    return tuple(
        None if leg.market_id not in ctx.books else ctx.books[leg.market_id].definition.each_way
        for leg in slip.legs
    )


def _where(leg: BetLeg) -> str:
    return f"{leg.market_id}/{leg.selection_id}"


# -------------------------------------------------------------------- checks


def check_shape(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    """Legs fit the type and system, selections are distinct, stake ≥ 1 (INVALID_BET)."""
    problem = shape_problem(slip)
    if problem is None and len({leg.key for leg in slip.legs}) != len(slip.legs):
        problem = "the same selection appears twice"
    if problem is None and slip.stake_per_line < 1:
        problem = f"stake must be at least 1 minor unit, got {slip.stake_per_line}"
    return None if problem is None else _reject(RejectCode.INVALID_BET, problem)


def check_each_way(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    """Each-way only on markets with each-way terms (RULES.md §2)."""
    if not slip.each_way:
        return None
    for leg, book in _legs_with_books(slip, ctx):
        if book.definition.each_way is None:
            return _reject(
                RejectCode.EACH_WAY_NOT_OFFERED,
                f"market {leg.market_id} does not offer each-way",
                marketId=leg.market_id,
            )
    return None


def check_markets_exist(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    for leg in slip.legs:
        if leg.market_id not in ctx.books:
            return _reject(
                RejectCode.MARKET_NOT_FOUND,
                f"no market {leg.market_id}",
                marketId=leg.market_id,
            )
    return None


def check_selections_exist(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    for leg, book in _legs_with_books(slip, ctx):
        if book.definition.selection(leg.selection_id) is None:
            return _reject(
                RejectCode.SELECTION_NOT_FOUND,
                f"no selection {leg.selection_id} in market {leg.market_id}",
                marketId=leg.market_id,
                selectionId=leg.selection_id,
            )
    return None


def check_markets_open(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    """OPEN markets only; while the feed is unhealthy every market counts as suspended."""
    for leg, book in _legs_with_books(slip, ctx):
        rejection = _market_status_rejection(leg, book.status, ctx.feed_healthy)
        if rejection is not None:
            return rejection
    return None


def _market_status_rejection(
    leg: BetLeg, status: MarketStatus, feed_healthy: bool
) -> Rejection | None:
    market = leg.market_id
    if status in (MarketStatus.CLOSED, MarketStatus.SETTLED):
        return _reject(
            RejectCode.MARKET_CLOSED, f"market {market} is {status.value}", marketId=market
        )
    if status is MarketStatus.SUSPENDED:
        return _reject(
            RejectCode.MARKET_SUSPENDED, f"market {market} is suspended", marketId=market
        )
    if not feed_healthy:
        return _reject(
            RejectCode.MARKET_SUSPENDED,
            f"market {market}: prices are stale (the price feed is behind); try again shortly",
            marketId=market,
        )
    return None


def check_selections_active(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    """The selection is ACTIVE and offered at a price."""
    for leg, book in _legs_with_books(slip, ctx):
        runner = book.definition.selection(leg.selection_id)
        if runner is None:
            continue
        if runner.status is not SelectionStatus.ACTIVE:
            reason = f"selection {_where(leg)} is {runner.status.value}"
        elif book.price_of(leg.selection_id) is None:
            reason = f"selection {_where(leg)} has no price"
        else:
            continue
        return _reject(
            RejectCode.SELECTION_NOT_ACTIVE,
            reason,
            marketId=leg.market_id,
            selectionId=leg.selection_id,
        )
    return None


def check_material_change(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    """A leg priced on a ``seq`` older than the market's last material change (B10)."""
    for leg, book in _legs_with_books(slip, ctx):
        if leg.seq is not None and leg.seq < book.material_seq:
            return _reject(
                RejectCode.MARKET_CHANGED,
                f"market {leg.market_id} changed materially at seq {book.material_seq}, "
                f"after the seq {leg.seq} the bet was priced on",
                marketId=leg.market_id,
                seq=book.seq,
            )
    return None


def policy_allows(requested: Price, live: Price, policy: PriceChangePolicy) -> bool:
    """RULES.md §10: NONE any difference rejects; HIGHER same or higher; ANY anything."""
    if policy is PriceChangePolicy.ANY:
        return True
    if policy is PriceChangePolicy.HIGHER:
        return live.odds >= requested.odds
    return live.odds == requested.odds


def check_price_policy(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    """Against the LIVE price (B09); the rejection carries every leg's current price."""
    priced = list(_legs_with_prices(slip, ctx))
    moved = [
        leg for leg, live in priced if not policy_allows(leg.price, live, slip.accept_price_change)
    ]
    if not moved:
        return None
    current = tuple(
        {
            "marketId": leg.market_id,
            "selectionId": leg.selection_id,
            "price": live.to_wire(),
            "requested": leg.price.to_wire(),
        }
        for leg, live in priced
    )
    names = ", ".join(_where(leg) for leg in moved)
    return _reject(RejectCode.PRICE_CHANGED, f"price changed on {names}", prices=current)


def check_related_legs(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    """Two legs of one event in a multiple or system bet."""
    if slip.bet_type is BetType.SINGLE:
        return None
    seen: dict[str, BetLeg] = {}
    for leg, book in _legs_with_books(slip, ctx):
        event = book.definition.event_id
        if event in seen:
            return _reject(
                RejectCode.RELATED_LEGS,
                f"{_where(seen[event])} and {_where(leg)} are both on event {event}",
                eventId=event,
            )
        seen[event] = leg
    return None


def check_stake_limits(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    """``min_stake`` per line; ``max_stake`` on the total. ``maxStake`` is per line."""
    limits = ctx.limits
    if slip.stake_per_line < limits.min_stake:
        return _reject(
            RejectCode.STAKE_TOO_LOW,
            f"the minimum stake is {limits.min_stake} per line",
            minStake=limits.min_stake,
        )
    lines = line_count(slip)
    if slip.stake_per_line * lines > limits.max_stake:
        return _reject(
            RejectCode.STAKE_TOO_HIGH,
            f"the maximum total stake is {limits.max_stake}",
            maxStake=limits.max_stake // lines,
            maxTotalStake=limits.max_stake,
            lines=lines,
        )
    return None


def check_max_payout(slip: BetSlip, ctx: AcceptanceContext) -> Rejection | None:
    """The potential return at live prices may not exceed the payout cap (B14)."""
    prices = _live_prices(slip, ctx)
    if prices is None:
        return None
    lines, terms, cap = expand_lines(slip), _place_terms(slip, ctx), ctx.limits.max_payout
    payout = potential_return(lines, prices, slip.stake_per_line, terms)
    if payout <= cap:
        return None
    return _reject(
        RejectCode.MAX_PAYOUT,
        f"the potential return {payout} exceeds the maximum payout {cap}",
        maxPayout=cap,
        potentialReturn=payout,
        suggestedMaxStake=max_stake_for_payout(lines, prices, cap, terms),
    )


CHECKS: tuple[Check, ...] = (
    check_shape,
    check_each_way,
    check_markets_exist,
    check_selections_exist,
    check_markets_open,
    check_selections_active,
    check_material_change,
    check_price_policy,
    check_related_legs,
    check_stake_limits,
    check_max_payout,
)


# ----------------------------------------------------------------- the pipeline


def in_play_delay_ms(book: MarketBook, now: datetime, default_ms: int) -> int:
    """The market's bet delay; once live (in-play, or past the start time even if the
    feed has not said in-play yet) at least ``default_ms``."""
    definition = book.definition
    delay = definition.bet_delay_ms
    if definition.in_play or now >= definition.start_time:
        return max(delay, default_ms)
    return delay


def bet_delay_ms(slip: BetSlip, ctx: AcceptanceContext) -> int:
    """The longest delay of the slip's markets."""
    return max(
        (
            in_play_delay_ms(book, ctx.now, ctx.default_in_play_delay_ms)
            for _, book in _legs_with_books(slip, ctx)
        ),
        default=0,
    )


def check_bet(slip: BetSlip, ctx: AcceptanceContext) -> Accepted | Rejection:
    """Run every check in order; the first rejection wins, else the bet at live prices."""
    for check in CHECKS:
        rejection = check(slip, ctx)
        if rejection is not None:
            return rejection
    return _accepted(slip, ctx)


def _accepted(slip: BetSlip, ctx: AcceptanceContext) -> Accepted:
    legs = tuple(
        BetLeg(leg.market_id, leg.selection_id, live, ctx.books[leg.market_id].seq)
        for leg, live in _legs_with_prices(slip, ctx)
    )
    lines, terms = expand_lines(slip), _place_terms(slip, ctx)
    prices = tuple(leg.price for leg in legs)
    return Accepted(
        legs=legs,
        lines=lines,
        stake_per_line=slip.stake_per_line,
        total_stake=slip.stake_per_line * len(lines),
        potential_return=potential_return(lines, prices, slip.stake_per_line, terms),
        delay_ms=bet_delay_ms(slip, ctx),
        place_terms=terms,
        max_payout=ctx.limits.max_payout,
    )


def recheck_after_delay(
    accepted: Accepted, slip: BetSlip, ctx: AcceptanceContext
) -> Accepted | Rejection:
    """After the in-play delay, check the bet again against the market as it is now.

    RULES.md §10: the customer's policy applies to the price at the end of the
    delay, against the price they asked for. A material change during the delay
    (a goal: suspended and reopened) refuses the bet MARKET_CHANGED. The result,
    if accepted, carries ``delay_ms`` 0: it is final.
    """
    legs = tuple(
        replace(leg, seq=held.seq) for leg, held in zip(slip.legs, accepted.legs, strict=True)
    )
    result = check_bet(replace(slip, legs=legs), ctx)
    return replace(result, delay_ms=0) if isinstance(result, Accepted) else result


# ------------------------------------------------ checks the store runs in its transaction


def check_funds(balance: int, total_stake: int) -> Rejection | None:
    """The stake is debited at placement, so the balance must cover it (B13)."""
    if balance >= total_stake:
        return None
    return _reject(
        RejectCode.INSUFFICIENT_FUNDS,
        f"the total stake {total_stake} exceeds the balance {balance}",
        balance=balance,
        totalStake=total_stake,
    )


def check_liability(current_exposure: int, added: int, limit: int) -> Rejection | None:
    """The book's exposure on one selection, with this bet's, stays within ``limit``."""
    if current_exposure + added <= limit:
        return None
    return _reject(
        RejectCode.LIABILITY_LIMIT,
        "the bet would take the book's liability on a selection over its limit",
        limit=limit,
        available=max(limit - current_exposure, 0),
    )


def check_idempotency(previous: BetSlip | None, slip: BetSlip) -> Rejection | None:
    """The same ``requestId`` with a different body (B12); the same body is a retry."""
    if previous is None or previous == slip:
        return None
    return _reject(
        RejectCode.IDEMPOTENCY_CONFLICT,
        f"requestId {slip.request_id} was already used for a different bet",
        requestId=slip.request_id,
    )


def check_account(restricted: bool) -> Rejection | None:
    """An account barred from betting (self-exclusion, a trading restriction)."""
    if not restricted:
        return None
    return _reject(RejectCode.ACCOUNT_RESTRICTED, "this account may not place bets")


def selection_liability(accepted: Accepted) -> Mapping[tuple[str, str], int]:
    """The book's net loss if each selection wins: Σ stake × (odds − 1) over the lines
    that contain it, exact and rounded down once per selection. What the store adds
    to a selection's exposure for :func:`check_liability`."""
    prices, legs, stake = accepted.prices, accepted.legs, accepted.stake_per_line
    lines = accepted.lines
    if len(lines) == 1 and not lines[0].place and len(lines[0].legs) == 1:
        # A single: floor(stake × (n/d − 1)) in integers, the same exact value.
        index = lines[0].legs[0]
        odds = prices[index].odds
        numerator, denominator = odds.numerator, odds.denominator
        single = {leg.key: 0 for leg in legs}
        single[legs[index].key] = (numerator - denominator) * stake // denominator
        return MappingProxyType(single)
    exposure: dict[tuple[str, str], Fraction | int] = {leg.key: 0 for leg in legs}
    for line in lines:
        amount = (line_odds(line, prices, accepted.place_terms) - 1) * stake
        for index in line.legs:
            key = legs[index].key
            exposure[key] += amount
    return MappingProxyType(
        {
            key: value if isinstance(value, int) else value.numerator // value.denominator
            for key, value in exposure.items()
        }
    )
