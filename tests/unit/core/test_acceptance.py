"""sportsbook_core.acceptance: the ordered acceptance pipeline against live books (STYLE.md 7).

Every reject code of PROTOCOL.md (Bet receipt) has a test; FIELD_CASES.md B09, B10,
B12, B13 and B14 run with their numbers (money in minor units: 10.00 is 1000).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from fractions import Fraction

import pytest

from sportsbook_core.acceptance import (
    CHECKS,
    AcceptanceContext,
    Accepted,
    BettingLimits,
    Check,
    RejectCode,
    Rejection,
    bet_delay_ms,
    check_account,
    check_bet,
    check_funds,
    check_idempotency,
    check_liability,
    check_markets_open,
    check_price_policy,
    in_play_delay_ms,
    policy_allows,
    recheck_after_delay,
    selection_liability,
)
from sportsbook_core.bets import BetLeg, BetSlip, BetType, Line, PriceChangePolicy, SystemBet
from sportsbook_core.catalogue import EachWayTerms, MarketDefinition, MarketStatus
from sportsbook_core.changes import MarketChange
from sportsbook_core.market_book import MarketBook, apply_change
from sportsbook_core.prices import Price
from tests.testkit.builders import START, definition_change, market_definition, price_change

NONE, HIGHER, ANY = PriceChangePolicy.NONE, PriceChangePolicy.HIGHER, PriceChangePolicy.ANY
NOW = START - timedelta(hours=1)  # pre-match unless a test says otherwise
LIMITS = BettingLimits(
    min_stake=10, max_stake=100_000, max_payout=25_000_000, liability_per_selection=1_000_000
)
FIFTH = EachWayTerms(3, Fraction(1, 5))


# --- builders -------------------------------------------------------------------------------------


def book(defn: MarketDefinition | None = None, **price_texts: str | None) -> MarketBook:
    """A new market from its definition: seq 1."""
    result = apply_change(None, definition_change(defn or market_definition(), 0, **price_texts))
    assert result.book is not None
    return result.book


def then(current: MarketBook, change: MarketChange) -> MarketBook:
    result = apply_change(current, change)
    assert result.rejected is None and result.book is not None
    return result.book


def ctx(
    *books: MarketBook,
    now: datetime = NOW,
    limits: BettingLimits = LIMITS,
    feed_healthy: bool = True,
    default_delay_ms: int = 0,
) -> AcceptanceContext:
    return AcceptanceContext(
        {b.market_id: b for b in books}, now, limits, feed_healthy, default_delay_ms
    )


def leg(price: str, market: str = "1.100", selection: str = "11", seq: int | None = None) -> BetLeg:
    return BetLeg(market, selection, Price.parse(price), seq)


def bet(
    *legs: BetLeg,
    kind: BetType | None = None,
    system: SystemBet | None = None,
    stake: int = 1000,
    each_way: bool = False,
    policy: PriceChangePolicy = NONE,
    request_id: str = "K1",
) -> BetSlip:
    if kind is None:
        kind = (
            BetType.SYSTEM if system else BetType.SINGLE if len(legs) == 1 else BetType.ACCUMULATOR
        )
    return BetSlip(request_id, kind, system, legs, stake, each_way, policy)


def accepted(result: Accepted | Rejection) -> Accepted:
    assert isinstance(result, Accepted), result
    return result


def rejected(result: Accepted | Rejection | None, code: RejectCode) -> Rejection:
    assert isinstance(result, Rejection), result
    assert result.code is code, result
    return result


def each_way_market(market_id: str = "1.300", event_id: str = "R1") -> MarketDefinition:
    return replace(market_definition(market_id, event_id=event_id), each_way=FIFTH)


def markets(n: int) -> tuple[MarketBook, ...]:
    """``n`` markets on ``n`` events, selection "11" at 2.0 in each: 1.101, 1.102 …"""
    return tuple(
        book(market_definition(f"1.{100 + i}", event_id=f"E{i}"), s11="2") for i in range(1, n + 1)
    )


# --- the codes and the order ----------------------------------------------------------------------


def test_reject_codes_are_exactly_protocols() -> None:
    """PROTOCOL.md Bet receipt: the reject codes, no more, no fewer."""
    assert {code.value for code in RejectCode} == {
        "MARKET_NOT_FOUND",
        "SELECTION_NOT_FOUND",
        "MARKET_SUSPENDED",
        "MARKET_CLOSED",
        "SELECTION_NOT_ACTIVE",
        "PRICE_CHANGED",
        "STAKE_TOO_LOW",
        "STAKE_TOO_HIGH",
        "MARKET_CHANGED",
        "INSUFFICIENT_FUNDS",
        "LIABILITY_LIMIT",
        "IDEMPOTENCY_CONFLICT",
        "MAX_PAYOUT",
        "RELATED_LEGS",
        "INVALID_BET",
        "EACH_WAY_NOT_OFFERED",
        "ACCOUNT_RESTRICTED",
    }


def test_checks_run_in_the_documented_order() -> None:
    assert [check.__name__ for check in CHECKS] == [
        "check_shape",
        "check_each_way",
        "check_markets_exist",
        "check_selections_exist",
        "check_markets_open",
        "check_selections_active",
        "check_material_change",
        "check_price_policy",
        "check_related_legs",
        "check_stake_limits",
        "check_max_payout",
    ]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_every_check_passes_a_good_bet(check: Check) -> None:
    good = ctx(book(s11="2.5", s12="3"))
    assert check(bet(leg("2.5", seq=1)), good) is None


def test_first_failing_check_wins() -> None:
    """Suspended and repriced: MARKET_SUSPENDED (status before price)."""
    suspended = then(
        book(s11="2.5"),
        definition_change(market_definition(status=MarketStatus.SUSPENDED), s11="3"),
    )
    rejected(check_bet(bet(leg("2.5")), ctx(suspended)), RejectCode.MARKET_SUSPENDED)


# --- a plain acceptance ---------------------------------------------------------------------------


def test_accepted_single_carries_live_price_lines_and_money() -> None:
    """PROTOCOL.md Bet receipt example: 1000 at 2.5 → potential 2500, one line."""
    live = then(book(s11="2.5"), price_change("1.100", s12="3"))  # seq 2, material 1
    result = accepted(check_bet(bet(leg("2.5", seq=1)), ctx(live)))
    assert result.legs == (BetLeg("1.100", "11", Price.parse("2.5"), 2),)
    assert result.lines == (Line((0,)),)
    assert (result.line_count, result.stake_per_line, result.total_stake) == (1, 1000, 1000)
    assert result.potential_return == 2500
    assert result.delay_ms == 0
    assert result.place_terms == (None,)
    assert result.max_payout == 25_000_000


def test_rules_2_each_way_single_at_one_fifth_through_the_pipeline() -> None:
    """10 EW at 10/1, 1/5 terms: total stake 20.00, potential 110.00 + 30.00 = 140.00."""
    race = book(each_way_market(), s11="10/1")
    result = accepted(check_bet(bet(leg("10/1", "1.300"), each_way=True), ctx(race)))
    assert result.total_stake == 2000
    assert result.potential_return == 14000
    assert result.place_terms == (FIFTH,)
    assert result.line_count == 2


def test_rules_4_yankee_accepted_with_total_stake_and_return() -> None:
    """Yankee at 2.0 × 4 on four events, 100 per line: 11 lines, stake 1100,
    return 100 × (6·4 + 4·8 + 16) = 7200."""
    books = markets(4)
    slip = bet(*(leg("2", b.market_id) for b in books), system=SystemBet.YANKEE, stake=100)
    result = accepted(check_bet(slip, ctx(*books)))
    assert (result.line_count, result.total_stake, result.potential_return) == (11, 1100, 7200)


# --- one test per reject code ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slip", "message"),
    [
        (
            bet(leg("2.5"), leg("3", selection="12"), kind=BetType.SINGLE),
            "a SINGLE has exactly 1 leg, got 2",
        ),
        (bet(leg("2.5"), kind=BetType.ACCUMULATOR), "an ACCUMULATOR needs at least 2 legs, got 1"),
        (
            bet(leg("2.5"), leg("3", selection="12"), system=SystemBet.TRIXIE),
            "TRIXIE needs 3 selections, got 2",
        ),
        (
            bet(
                leg("2.5"), leg("3", selection="12"), leg("4", selection="13"), kind=BetType.SYSTEM
            ),
            "a SYSTEM bet needs a system",
        ),
        (bet(leg("2.5"), leg("2.5"), kind=BetType.ACCUMULATOR), "the same selection appears twice"),
        (bet(leg("2.5"), stake=0), "stake must be at least 1 minor unit, got 0"),
        (bet(leg("2.5"), stake=-100), "stake must be at least 1 minor unit, got -100"),
    ],
)
def test_invalid_bet(slip: BetSlip, message: str) -> None:
    """PROTOCOL.md Bet request: leg count per type/system, distinct selections, stake ≥ 1."""
    result = rejected(
        check_bet(slip, ctx(book(s11="2.5", s12="3", s13="4"))), RejectCode.INVALID_BET
    )
    assert result.message == message


def test_each_way_not_offered() -> None:
    """RULES.md §2: each-way only where the market has place terms."""
    result = check_bet(bet(leg("2.5"), each_way=True), ctx(book(s11="2.5")))
    assert rejected(result, RejectCode.EACH_WAY_NOT_OFFERED).details == {"marketId": "1.100"}


def test_market_not_found() -> None:
    result = rejected(
        check_bet(bet(leg("2.5", "9.999")), ctx(book(s11="2.5"))), RejectCode.MARKET_NOT_FOUND
    )
    assert result.details == {"marketId": "9.999"}


def test_selection_not_found() -> None:
    result = check_bet(bet(leg("2.5", selection="99")), ctx(book(s11="2.5")))
    assert rejected(result, RejectCode.SELECTION_NOT_FOUND).details == {
        "marketId": "1.100",
        "selectionId": "99",
    }


def test_market_suspended() -> None:
    suspended = then(
        book(s11="2.5"), definition_change(market_definition(status=MarketStatus.SUSPENDED))
    )
    result = rejected(check_bet(bet(leg("2.5")), ctx(suspended)), RejectCode.MARKET_SUSPENDED)
    assert result.message == "market 1.100 is suspended"


def test_market_suspended_while_the_feed_is_unhealthy() -> None:
    """B19/B25: while the feed is behind, prices are stale and betting is refused."""
    result = check_bet(bet(leg("2.5")), ctx(book(s11="2.5"), feed_healthy=False))
    assert "prices are stale" in rejected(result, RejectCode.MARKET_SUSPENDED).message


@pytest.mark.parametrize("status", [MarketStatus.CLOSED, MarketStatus.SETTLED])
def test_market_closed(status: MarketStatus) -> None:
    closed = then(book(s11="2.5"), definition_change(market_definition(status=MarketStatus.CLOSED)))
    if status is MarketStatus.SETTLED:
        closed = then(closed, definition_change(market_definition(status=MarketStatus.SETTLED)))
    result = rejected(check_bet(bet(leg("2.5")), ctx(closed)), RejectCode.MARKET_CLOSED)
    assert result.message == f"market 1.100 is {status.value}"


def test_closed_beats_an_unhealthy_feed() -> None:
    closed = then(book(s11="2.5"), definition_change(market_definition(status=MarketStatus.CLOSED)))
    assert check_markets_open(bet(leg("2.5")), ctx(closed, feed_healthy=False)) == Rejection(
        RejectCode.MARKET_CLOSED, "market 1.100 is CLOSED", {"marketId": "1.100"}
    )


def test_selection_not_active_when_removed() -> None:
    removed = book(market_definition(removed=frozenset({"12"})), s11="2.5", s12="3")
    result = check_bet(bet(leg("3", selection="12")), ctx(removed))
    assert (
        rejected(result, RejectCode.SELECTION_NOT_ACTIVE).message == "selection 1.100/12 is REMOVED"
    )


def test_selection_not_active_without_a_price() -> None:
    result = check_bet(bet(leg("3", selection="12")), ctx(book(s11="2.5", s12=None)))
    assert (
        rejected(result, RejectCode.SELECTION_NOT_ACTIVE).message
        == "selection 1.100/12 has no price"
    )


def test_stake_too_low() -> None:
    result = rejected(
        check_bet(bet(leg("2.5"), stake=9), ctx(book(s11="2.5"))), RejectCode.STAKE_TOO_LOW
    )
    assert result.details == {"minStake": 10}


def test_stake_too_high_single_with_the_maximum() -> None:
    result = check_bet(bet(leg("2.5"), stake=100_001), ctx(book(s11="2.5")))
    assert rejected(result, RejectCode.STAKE_TOO_HIGH).details == {
        "maxStake": 100_000,
        "maxTotalStake": 100_000,
        "lines": 1,
    }
    assert isinstance(check_bet(bet(leg("2.5"), stake=100_000), ctx(book(s11="2.5"))), Accepted)


def test_stake_too_high_counts_every_line() -> None:
    """RULES.md §4: a Yankee's total stake is 11 × unit.

    11 × 10,000 > 100,000 → at most 9090 per line."""
    books = markets(4)
    slip = bet(*(leg("2", b.market_id) for b in books), system=SystemBet.YANKEE, stake=10_000)
    result = rejected(check_bet(slip, ctx(*books)), RejectCode.STAKE_TOO_HIGH)
    assert result.details == {"maxStake": 9090, "maxTotalStake": 100_000, "lines": 11}
    assert isinstance(check_bet(replace(slip, stake_per_line=9090), ctx(*books)), Accepted)


@pytest.mark.parametrize(
    "second",
    [leg("3", "1.100", "12"), leg("3", "1.200", "21")],
    ids=["same market", "another market of the same event"],
)
def test_related_legs(second: BetLeg) -> None:
    """PROTOCOL.md: two legs of one event in a multiple."""
    other = book(market_definition("1.200", event_id="E1", selections=("21", "22")), s21="3")
    result = check_bet(bet(leg("2.5"), second), ctx(book(s11="2.5", s12="3"), other))
    assert rejected(result, RejectCode.RELATED_LEGS).details == {"eventId": "E1"}


def test_related_legs_in_a_system_bet() -> None:
    slip = bet(leg("2.5"), leg("3", selection="12"), system=SystemBet.DOUBLES)
    rejected(check_bet(slip, ctx(book(s11="2.5", s12="3"))), RejectCode.RELATED_LEGS)


def test_insufficient_funds_b13() -> None:
    """B13: balance 100.00, two 80.00 bets: the first debits to 20.00, the second is refused."""
    assert check_funds(10_000, 8_000) is None
    result = rejected(check_funds(2_000, 8_000), RejectCode.INSUFFICIENT_FUNDS)
    assert result.details == {"balance": 2_000, "totalStake": 8_000}
    assert check_funds(8_000, 8_000) is None  # to the penny


def test_liability_limit() -> None:
    assert check_liability(900_000, 100_000, 1_000_000) is None
    result = rejected(check_liability(900_000, 100_001, 1_000_000), RejectCode.LIABILITY_LIMIT)
    assert result.details == {"limit": 1_000_000, "available": 100_000}
    over = rejected(check_liability(1_200_000, 1, 1_000_000), RejectCode.LIABILITY_LIMIT)
    assert over.details["available"] == 0


def test_idempotency_conflict_b12() -> None:
    """B12: a retry of K1 with the same body is the same bet; K1 with another body is refused."""
    first = bet(leg("2"), stake=1000, request_id="K1")
    assert check_idempotency(None, first) is None
    assert check_idempotency(first, bet(leg("2.0"), stake=1000, request_id="K1")) is None
    result = check_idempotency(first, bet(leg("2"), stake=2000, request_id="K1"))
    assert rejected(result, RejectCode.IDEMPOTENCY_CONFLICT).details == {"requestId": "K1"}


def test_account_restricted() -> None:
    assert check_account(False) is None
    rejected(check_account(True), RejectCode.ACCOUNT_RESTRICTED)


def test_selection_liability_is_net_loss_per_selection() -> None:
    """Single 1000 at 2.5 → 1500; EW 1000 at 10/1 1/5 → 10,000 + 2,000;
    double 100 at 2 × 3 → 500 on each selection."""
    single = accepted(check_bet(bet(leg("2.5")), ctx(book(s11="2.5"))))
    assert selection_liability(single) == {("1.100", "11"): 1500}
    race = book(each_way_market(), s11="10/1")
    each_way = accepted(check_bet(bet(leg("10/1", "1.300"), each_way=True), ctx(race)))
    assert selection_liability(each_way) == {("1.300", "11"): 12_000}
    a, b = markets(2)
    b = then(b, price_change(b.market_id, s11="3"))
    double = accepted(
        check_bet(bet(leg("2", a.market_id), leg("3", b.market_id), stake=100), ctx(a, b))
    )
    assert selection_liability(double) == {(a.market_id, "11"): 500, (b.market_id, "11"): 500}


# --- B09: price changed between display and placement (RULES.md §10) ------------------------------


def test_b09_price_moved_down_is_rejected_with_the_live_price() -> None:
    """Displayed 2.10, the feed moves it to 1.95; 10.00 at 2.10 accept-better
    → PRICE_CHANGED with the current price 1.95."""
    live = then(book(s11="2.1"), price_change("1.100", s11="1.95"))
    result = rejected(
        check_bet(bet(leg("2.1", seq=1), policy=HIGHER), ctx(live)), RejectCode.PRICE_CHANGED
    )
    assert result.details == {
        "prices": ({"marketId": "1.100", "selectionId": "11", "price": "1.95", "requested": "2.1"},)
    }
    assert result.message == "price changed on 1.100/11"


def test_b09_retry_at_the_live_price_is_accepted() -> None:
    """Retry at 1.95 → accepted, potential 19.50, debited 10.00."""
    live = then(book(s11="2.1"), price_change("1.100", s11="1.95"))
    result = accepted(check_bet(bet(leg("1.95", seq=2), policy=HIGHER), ctx(live)))
    assert (result.potential_return, result.total_stake) == (1950, 1000)


def test_b09_price_moved_up_with_accept_higher_takes_the_live_price() -> None:
    """The price moves to 2.20 → 10.00 at 2.10 accept-better → accepted at 2.20, potential 22.00."""
    live = then(book(s11="2.1"), price_change("1.100", s11="2.2"))
    result = accepted(check_bet(bet(leg("2.1", seq=1), policy=HIGHER), ctx(live)))
    assert result.legs[0].price == Price.parse("2.2")
    assert result.potential_return == 2200


@pytest.mark.parametrize(
    ("requested", "live", "policy", "allowed"),
    [
        ("2.1", "2.1", NONE, True),
        ("2.1", "2.2", NONE, False),  # any difference rejects, even in the customer's favour
        ("2.1", "1.95", NONE, False),
        ("2.1", "2.10", NONE, True),  # the same odds spelled differently
        ("2.1", "2.2", HIGHER, True),
        ("2.1", "2.1", HIGHER, True),
        ("2.1", "1.95", HIGHER, False),
        ("2.1", "1.95", ANY, True),
        ("2.1", "1000", ANY, True),
        ("5/2", "3.5", NONE, True),  # fractional 5/2 is decimal 3.5
    ],
)
def test_rules_10_price_change_policy(
    requested: str, live: str, policy: PriceChangePolicy, allowed: bool
) -> None:
    assert policy_allows(Price.parse(requested), Price.parse(live), policy) is allowed


def test_rules_10_any_takes_the_live_price() -> None:
    live = then(book(s11="2.1"), price_change("1.100", s11="1.95"))
    result = accepted(check_bet(bet(leg("2.1"), policy=ANY), ctx(live)))
    assert (result.legs[0].price, result.potential_return) == (Price.parse("1.95"), 1950)


def test_price_changed_lists_every_legs_current_price() -> None:
    a, b = markets(2)
    b = then(b, price_change(b.market_id, s11="1.8"))
    slip = bet(leg("2", a.market_id), leg("2", b.market_id))
    result = rejected(check_price_policy(slip, ctx(a, b)), RejectCode.PRICE_CHANGED)
    assert [entry["price"] for entry in result.details["prices"]] == ["2", "1.8"]  # type: ignore[attr-defined]
    assert result.message == "price changed on 1.102/11"


# --- B10: material change -------------------------------------------------------------------------


def b10_market() -> list[MarketBook]:
    """Match odds home 2.50 at seq 5; a goal suspends it (seq 6); it reopens with home 1.60 (seq 7).

    FIELD_CASES calls the reopened version "v6"; here every visible change takes one seq
    (PROTOCOL.md odds.stream), so the suspension is 6 and the reopening 7.
    """
    history = [book(s11="2.5", s12="3")]
    for away in ("3.05", "3.1", "3.15", "3.2"):
        history.append(then(history[-1], price_change("1.100", s12=away)))
    history.append(
        then(history[-1], definition_change(market_definition(status=MarketStatus.SUSPENDED)))
    )
    history.append(then(history[-1], definition_change(market_definition(), s11="1.6")))
    assert [b.seq for b in history] == [1, 2, 3, 4, 5, 6, 7]
    return history


def test_b10_during_the_suspension_is_market_suspended() -> None:
    during = b10_market()[5]
    rejected(check_bet(bet(leg("2.5", seq=5)), ctx(during)), RejectCode.MARKET_SUSPENDED)


def test_b10_stamped_before_the_goal_is_market_changed() -> None:
    """Request B: 10.00 at 2.50 stamped v5 after the reopening → stale, refused."""
    reopened = b10_market()[6]
    result = rejected(check_bet(bet(leg("2.5", seq=5)), ctx(reopened)), RejectCode.MARKET_CHANGED)
    assert result.details == {"marketId": "1.100", "seq": 7}


def test_b10_stale_seq_is_refused_even_at_todays_price() -> None:
    reopened = b10_market()[6]
    rejected(check_bet(bet(leg("1.6", seq=5)), ctx(reopened)), RejectCode.MARKET_CHANGED)


def test_b10_priced_on_the_reopened_market_is_accepted() -> None:
    """Request C: 10.00 at 1.60 on the reopened version → potential 16.00."""
    reopened = b10_market()[6]
    assert accepted(check_bet(bet(leg("1.6", seq=7)), ctx(reopened))).potential_return == 1600


def test_b10_a_price_move_is_not_material() -> None:
    """Seq 2..5 were price moves: a bet priced at seq 1 on the seq-5 book is judged on price."""
    at_5 = b10_market()[4]
    assert at_5.material_seq == 1
    assert isinstance(check_bet(bet(leg("2.5", seq=1)), ctx(at_5)), Accepted)


def _image(defn: MarketDefinition) -> MarketChange:
    return replace(definition_change(defn, s11="2"), image=True)


@pytest.mark.parametrize(
    ("change", "seq", "material_seq"),
    [
        (price_change("1.100", s11="2.02"), 2, 1),
        (
            definition_change(market_definition(bet_delay_ms=5000)),
            2,
            1,
        ),  # delay alone: not material
        (definition_change(market_definition(status=MarketStatus.SUSPENDED)), 2, 2),
        (definition_change(market_definition(in_play=True)), 2, 2),
        (definition_change(market_definition(removed=frozenset({"12"}))), 2, 2),  # a non-runner
        (
            definition_change(market_definition(selections=("11", "12", "13", "14"))),
            2,
            2,
        ),  # structure
        (_image(market_definition()), 2, 2),  # a mid-stream image: resync
        (price_change("1.100", s11="2"), 1, 1),  # no visible change: nothing moves
    ],
    ids=["price", "delay", "suspend", "in-play", "removal", "structure", "image", "no-op"],
)
def test_material_seq_moves_only_on_material_changes(
    change: MarketChange, seq: int, material_seq: int
) -> None:
    """MarketBook.material_seq: suspend/reopen, in-play, runner status, resync (B10)."""
    start = book(s11="2", s12="3", s13="4")
    assert (start.seq, start.material_seq) == (1, 1)
    after = then(start, change)
    assert (after.seq, after.material_seq) == (seq, material_seq)


def test_material_seq_of_a_reopening_is_the_reopening() -> None:
    history = b10_market()
    assert [b.material_seq for b in history] == [1, 1, 1, 1, 1, 6, 7]


# --- B14: max payout ------------------------------------------------------------------------------


def b14_books() -> tuple[MarketBook, MarketBook]:
    return (
        book(market_definition("1.100", event_id="E1"), s11="100"),
        book(market_definition("1.200", event_id="E2", selections=("21", "22")), s21="500"),
    )


def test_b14_over_the_payout_cap_suggests_the_max_stake() -> None:
    """Cap 250,000.00; accumulator 10.00 at combined 50,000 (potential 500,000.00)
    → MAX_PAYOUT with a suggested max stake of 5.00."""
    books = b14_books()
    slip = bet(leg("100"), leg("500", "1.200", "21"), stake=1000)
    result = rejected(check_bet(slip, ctx(*books)), RejectCode.MAX_PAYOUT)
    assert result.details == {
        "maxPayout": 25_000_000,
        "potentialReturn": 50_000_000,
        "suggestedMaxStake": 500,
    }


def test_b14_at_the_suggested_stake_it_is_accepted() -> None:
    """At 5.00 it is accepted, potential 250,000.00; the cap in force rides on the bet."""
    slip = bet(leg("100"), leg("500", "1.200", "21"), stake=500)
    result = accepted(check_bet(slip, ctx(*b14_books())))
    assert (result.potential_return, result.max_payout) == (25_000_000, 25_000_000)


def test_b14_payout_checked_at_the_live_price() -> None:
    """Accept-higher on a price that drifted up: the cap applies to what would be paid."""
    first, second = b14_books()
    second = then(second, price_change("1.200", s21="550"))
    slip = bet(leg("100"), leg("500", "1.200", "21"), stake=500, policy=HIGHER)
    result = rejected(check_bet(slip, ctx(first, second)), RejectCode.MAX_PAYOUT)
    assert result.details["suggestedMaxStake"] == 454  # 25,000,000 / 55,000 = 454.5…


# --- in-play delay --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_play", "bet_delay", "now", "default", "delay"),
    [
        (False, 0, NOW, 3000, 0),  # pre-match
        (False, 2000, NOW, 3000, 2000),  # the market's own delay
        (True, 5000, START, 3000, 5000),  # betDelayMs above the house default
        (True, 1000, START, 3000, 3000),  # the house default is the floor once live
        (True, 0, START, 3000, 3000),
        (False, 0, START, 4000, 4000),  # at the start time, in-play not yet reported
        (False, 0, START + timedelta(minutes=5), 4000, 4000),
        (False, 0, START - timedelta(milliseconds=1), 4000, 0),
    ],
)
def test_in_play_delay(
    in_play: bool, bet_delay: int, now: datetime, default: int, delay: int
) -> None:
    market = book(market_definition(in_play=in_play, bet_delay_ms=bet_delay), s11="2")
    assert in_play_delay_ms(market, now, default) == delay
    slip = bet(leg("2"))
    assert (
        accepted(check_bet(slip, ctx(market, now=now, default_delay_ms=default))).delay_ms == delay
    )


def test_delay_of_a_multiple_is_its_longest_leg() -> None:
    a = book(market_definition("1.101", event_id="E1", in_play=True, bet_delay_ms=5000), s11="2")
    b = book(market_definition("1.102", event_id="E2", in_play=True, bet_delay_ms=8000), s11="2")
    c = book(market_definition("1.103", event_id="E3"), s11="2")
    slip = bet(leg("2", "1.101"), leg("2", "1.102"), leg("2", "1.103"))
    assert bet_delay_ms(slip, ctx(a, b, c)) == 8000


# --- recheck after the delay (RULES.md §10) -------------------------------------------------------


def in_play_market(**price_texts: str | None) -> MarketBook:
    return book(market_definition(in_play=True, bet_delay_ms=5000), **price_texts)


def held(slip: BetSlip, market: MarketBook) -> Accepted:
    result = accepted(check_bet(slip, ctx(market, now=START)))
    assert result.delay_ms == 5000
    return result


def test_recheck_unchanged_is_accepted_and_final() -> None:
    market = in_play_market(s11="2")
    slip = bet(leg("2"))
    result = accepted(recheck_after_delay(held(slip, market), slip, ctx(market, now=START)))
    assert (result.delay_ms, result.potential_return) == (0, 2000)


def test_recheck_suspended_during_the_delay_is_rejected() -> None:
    market = in_play_market(s11="2")
    slip = bet(leg("2"))
    pending = held(slip, market)
    later = then(
        market,
        definition_change(
            market_definition(status=MarketStatus.SUSPENDED, in_play=True, bet_delay_ms=5000)
        ),
    )
    rejected(recheck_after_delay(pending, slip, ctx(later, now=START)), RejectCode.MARKET_SUSPENDED)


def test_recheck_goal_during_the_delay_is_market_changed() -> None:
    """Suspended and reopened at the same price within the delay: a material change."""
    market = in_play_market(s11="2")
    slip = bet(leg("2"))
    pending = held(slip, market)
    live = market_definition(in_play=True, bet_delay_ms=5000)
    later = then(market, definition_change(replace(live, status=MarketStatus.SUSPENDED)))
    later = then(later, definition_change(live))
    rejected(recheck_after_delay(pending, slip, ctx(later, now=START)), RejectCode.MARKET_CHANGED)


def test_recheck_moved_against_none_is_price_changed() -> None:
    market = in_play_market(s11="2")
    slip = bet(leg("2"), policy=NONE)
    pending = held(slip, market)
    later = then(market, price_change("1.100", s11="1.9"))
    result = rejected(
        recheck_after_delay(pending, slip, ctx(later, now=START)), RejectCode.PRICE_CHANGED
    )
    assert result.details["prices"][0]["price"] == "1.9"  # type: ignore[index]


def test_recheck_moved_up_with_higher_takes_the_new_price() -> None:
    market = in_play_market(s11="2")
    slip = bet(leg("2"), policy=HIGHER)
    pending = held(slip, market)
    later = then(market, price_change("1.100", s11="2.2"))
    result = accepted(recheck_after_delay(pending, slip, ctx(later, now=START)))
    assert (result.legs[0].price, result.potential_return, result.delay_ms) == (
        Price.parse("2.2"),
        2200,
        0,
    )


def test_recheck_policy_is_against_the_customers_price_not_the_held_one() -> None:
    """RULES.md §10: HIGHER took 2.20 when placed; at the end of the delay 2.10 — still ≥ the
    2.10 asked for, so accepted at 2.10 (the price at the end of the delay)."""
    market = in_play_market(s11="2.2")
    slip = bet(leg("2.1"), policy=HIGHER)
    pending = held(slip, market)
    assert pending.legs[0].price == Price.parse("2.2")
    later = then(market, price_change("1.100", s11="2.1"))
    result = accepted(recheck_after_delay(pending, slip, ctx(later, now=START)))
    assert (result.legs[0].price, result.potential_return) == (Price.parse("2.1"), 2100)


def test_recheck_with_the_feed_down_is_suspended() -> None:
    market = in_play_market(s11="2")
    slip = bet(leg("2"))
    pending = held(slip, market)
    result = recheck_after_delay(pending, slip, ctx(market, now=START, feed_healthy=False))
    rejected(result, RejectCode.MARKET_SUSPENDED)
