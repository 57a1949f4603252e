"""Settlement in the ledger (issue #5): ``settle_market`` on SQLite and PostgreSQL.

Every test runs on both backends (``ledger_store``). Values are exact, in minor
units; the cases cite RULES.md and FIELD_CASES.md.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import orjson
import pytest

from ledger_store import LedgerStore, Outcome, Placement, SettleOutcome, open_store
from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.ledger import EntryKind, balance_of
from sportsbook_core.results import RunnerOutcome, RunnerResult, SettlementInstruction
from sportsbook_core.settlement import DeadHeat

W, L, PL, RM, V = (
    RunnerOutcome.WINNER,
    RunnerOutcome.LOSER,
    RunnerOutcome.PLACED,
    RunnerOutcome.REMOVED,
    RunnerOutcome.VOID,
)
OFF = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
LINES = {"SINGLE": 1, "ACCUMULATOR": 1}


@pytest.fixture
async def store(ledger_url: str) -> AsyncIterator[LedgerStore]:
    opened = await open_store(ledger_url)
    try:
        yield opened
    finally:
        await opened.close()


async def account(store: LedgerStore, account_id: str, balance: int) -> str:
    await store.create_account(account_id, "GBP", f"hash-{account_id}", {})
    if balance:
        await store.deposit(account_id, balance, "seed")
    return account_id


def placement(
    account_id: str,
    request_id: str,
    legs: Sequence[tuple[str, str, str]],
    stake: int,
    *,
    each_way: bool = False,
    status: str = "ACCEPTED",
    max_payout: int | None = None,
) -> Placement:
    """A bet as rsocket_server.betting writes it: the receipt keeps what settling needs."""
    kind = "SINGLE" if len(legs) == 1 else "ACCUMULATOR"
    lines = 2 if each_way else 1
    wire_legs = [{"marketId": m, "selectionId": s, "price": p, "result": None} for m, s, p in legs]
    body_hash = hashlib.sha256(orjson.dumps([request_id, wire_legs, stake])).hexdigest()

    def receipt_for(bet_id: str, balance: int) -> dict[str, Any]:
        receipt: dict[str, Any] = {
            "betId": bet_id,
            "requestId": request_id,
            "type": kind,
            "system": None,
            "eachWay": each_way,
            "status": status,
            "legs": wire_legs,
            "lines": lines,
            "stakePerLine": stake,
            "totalStake": stake * lines,
            "currency": "GBP",
            "balanceAfter": balance,
            "settlement": None,
        }
        if max_payout is not None:
            receipt["maxPayout"] = max_payout
        return receipt

    return Placement(
        account_id=account_id,
        request_id=request_id,
        body_hash=body_hash,
        total_stake=stake * lines,
        status=status,
        exposures=[(m, s, stake) for m, s, _ in legs],
        liability_limit=None,
        receipt_for=receipt_for,
    )


async def place(store: LedgerStore, p: Placement) -> str:
    outcome = await store.place_bet(p)
    assert outcome.outcome is Outcome.PLACED, outcome
    assert outcome.bet_id is not None
    return outcome.bet_id


def result(
    market_id: str, *runners: RunnerResult, version: int = 1, **kw: Any
) -> SettlementInstruction:
    return SettlementInstruction(market_id, version, runners, OFF, **kw)


def r(selection: str, outcome: RunnerOutcome, **kw: Any) -> RunnerResult:
    if outcome is RM:
        kw.setdefault("removed_at", datetime.now(UTC) - timedelta(days=1))
    return RunnerResult(selection, outcome, **kw)


async def entries_of(store: LedgerStore, account_id: str) -> list[tuple[str, int, str | None]]:
    return [(e.kind.value, e.amount, e.bet_id) for e in await store.entries(account_id)]


async def balance(store: LedgerStore, account_id: str) -> int:
    acc = await store.account(account_id)
    assert acc is not None
    assert acc.balance == balance_of(await store.entries(account_id))
    return acc.balance


async def receipt(store: LedgerStore, account_id: str, bet_id: str) -> dict[str, Any]:
    bet = await store.get_bet(account_id, bet_id)
    assert bet is not None
    return {**bet.receipt, "status": bet.status}


# --- singles ---------------------------------------------------------------------------


async def test_singles_win_lose_void_with_exact_entries_and_a_bet_on_the_credit(
    store: LedgerStore,
) -> None:
    """Win pays stake × odds (RETURN), a loser nothing, a removed runner's bet is VOID with
    its stake refunded (RULES.md §3); then a new bet can spend the credited return."""
    acc = await account(store, "A", 3000)
    win = await place(store, placement(acc, "w", [("1.1", "11", "2.5")], 1000))
    lose = await place(store, placement(acc, "l", [("1.1", "12", "3")], 1000))
    void = await place(store, placement(acc, "v", [("1.1", "13", "4")], 1000))
    report = await store.settle_market(result("1.1", r("11", W), r("12", L), r("13", RM)))
    assert (report.outcome, report.bets_settled, report.bets_open) == ("settled", 3, 0)
    assert await entries_of(store, acc) == [
        ("DEPOSIT", 3000, None),
        ("STAKE", -1000, win),
        ("STAKE", -1000, lose),
        ("STAKE", -1000, void),
        ("RETURN", 2500, win),
        ("REFUND", 1000, void),
    ]
    assert await balance(store, acc) == 3500
    won = await receipt(store, acc, win)
    assert won["status"] == "SETTLED"
    assert won["legs"][0]["result"] == "WIN"
    assert won["settlement"]["return"] == 2500
    assert won["settlement"]["legs"] == [{"result": "WIN"}]
    assert (await receipt(store, acc, lose))["settlement"]["return"] == 0
    voided = await receipt(store, acc, void)
    assert (voided["status"], voided["settlement"]["return"]) == ("VOID", 1000)
    changed = {c.bet_id: (c.balance_after, c.reason, c.moved) for c in report.changed}
    assert changed[lose][1:] == ("SETTLEMENT", False)
    assert changed[win] == (2500, "SETTLEMENT", True)
    assert changed[void] == (3500, "SETTLEMENT", True)
    # The writer's copies saw the credit: 3500 covers a 3000 stake at once.
    assert await place(store, placement(acc, "after", [("1.9", "11", "2")], 3000))
    assert await balance(store, acc) == 500
    assert await store.audit() == []


async def test_each_way_place_terms_and_dead_heat_b04a_b04d(store: LedgerStore) -> None:
    """B04(a): 10 EW at 2/1, 1/4 odds, 3 places, 2nd → 15.00 (staked 20).
    B04(d): 10 EW at 7/1, 1/4, 3 places, dead heat for 3rd with one other → 13.75."""
    acc = await account(store, "A", 4000)
    second = await place(store, placement(acc, "a", [("2.1", "21", "2/1")], 1000, each_way=True))
    tied = await place(store, placement(acc, "d", [("2.1", "23", "7/1")], 1000, each_way=True))
    terms = EachWayTerms(3, Fraction(1, 4))
    instruction = result(
        "2.1",
        r("20", W),
        r("21", PL),
        r("22", PL, dead_heat=DeadHeat(3, 2)),
        r("23", PL, dead_heat=DeadHeat(3, 2)),
        *(r(f"3{i}", L) for i in range(5)),
        each_way=terms,
    )
    await store.settle_market(instruction)
    assert (await receipt(store, acc, second))["settlement"]["return"] == 1500
    heat = await receipt(store, acc, tied)
    assert heat["settlement"]["return"] == 1375
    assert heat["settlement"]["legs"] == [{"result": "PLACE", "deadHeatFactor": "1/2"}]
    assert await balance(store, acc) == 4000 - 4000 + 1500 + 1375


async def test_win_market_dead_heat_divides_the_stake_rules_5(store: LedgerStore) -> None:
    """RULES.md §5: two tie for 1st, £10 at 4/1 returns £25, not £30."""
    acc = await account(store, "A", 1000)
    bet = await place(store, placement(acc, "dh", [("3.1", "31", "4/1")], 1000))
    await store.settle_market(
        result("3.1", r("31", W, dead_heat=DeadHeat(1, 2)), r("32", W, dead_heat=DeadHeat(1, 2)))
    )
    assert (await receipt(store, acc, bet))["settlement"]["return"] == 2500
    assert await balance(store, acc) == 2500


# --- multiples, idempotency ------------------------------------------------------------


async def test_b05_treble_waits_for_its_last_market_then_pays_30(store: LedgerStore) -> None:
    """B05: treble 10: A 2.00 won, B 3.00 void, C 1.50 — open until C settles, then 30.00."""
    acc = await account(store, "A", 1000)
    legs = [("5.1", "1", "2"), ("5.2", "1", "3"), ("5.3", "1", "1.5")]
    treble = await place(store, placement(acc, "t", legs, 1000))
    first = await store.settle_market(result("5.1", r("1", W), r("2", L)))
    second = await store.settle_market(result("5.2", r("1", V), r("2", V)))
    assert (first.bets_settled, first.bets_open, second.bets_open) == (0, 1, 1)
    assert (await receipt(store, acc, treble))["status"] == "ACCEPTED"
    last = await store.settle_market(result("5.3", r("1", W), r("2", L)))
    assert (last.bets_settled, last.bets_open) == (1, 0)
    settled = await receipt(store, acc, treble)
    assert settled["status"] == "SETTLED"
    assert [leg["result"] for leg in settled["legs"]] == ["WIN", "VOID", "WIN"]
    assert settled["settlement"]["return"] == 3000
    assert await balance(store, acc) == 3000


async def test_settling_the_same_result_twice_changes_nothing(store: LedgerStore) -> None:
    acc = await account(store, "A", 1000)
    await place(store, placement(acc, "w", [("1.1", "11", "2")], 1000))
    instruction = result("1.1", r("11", W), r("12", L))
    assert (await store.settle_market(instruction)).outcome is SettleOutcome.SETTLED
    before = await entries_of(store, acc)
    again = await store.settle_market(instruction)
    assert (again.outcome, again.bets_settled, again.changed) == ("replayed", 0, ())
    assert await entries_of(store, acc) == before
    assert await balance(store, acc) == 2000
    assert await store.market_result("1.1") == instruction


async def test_a_result_run_again_settles_bets_struck_after_the_market_reopened(
    store: LedgerStore,
) -> None:
    """A replayed race reopens, takes a bet and closes with the same result: the feed
    sends the same (market, version) again and the bets still open are settled by it
    (1000 at 3.0 pays 3000, RULES.md win single); those already settled are untouched,
    and a third run with nothing open changes nothing."""
    acc = await account(store, "A", 5000)
    first = await place(store, placement(acc, "first", [("1.1", "11", "2")], 1000))
    instruction = result("1.1", r("11", W), r("12", L))
    assert (await store.settle_market(instruction)).bets_settled == 1
    assert await balance(store, acc) == 6000  # 5000 − 1000 + 2000
    second = await place(store, placement(acc, "second", [("1.1", "11", "3")], 1000))
    again = await store.settle_market(instruction)
    assert (again.outcome, again.bets_settled) == (SettleOutcome.SETTLED, 1)
    assert [b.bet_id for b in again.changed] == [second]
    assert await balance(store, acc) == 8000  # 6000 − 1000 + 3000
    kinds = [(k, a, b) for k, a, b in await entries_of(store, acc) if k == "RETURN"]
    assert sorted(kinds) == sorted([("RETURN", 2000, first), ("RETURN", 3000, second)])
    third = await store.settle_market(instruction)
    assert (third.outcome, third.bets_settled) == (SettleOutcome.REPLAYED, 0)
    assert await balance(store, acc) == 8000


async def test_a_superseded_result_run_again_settles_nothing(store: LedgerStore) -> None:
    """Once v2 corrects v1, v1 arriving again (a late redelivery) must not settle a bet
    struck since; v2 run again does: 1000 on 12 at 4.0 pays 4000 by v2's result."""
    acc = await account(store, "A", 5000)
    await place(store, placement(acc, "w", [("1.1", "11", "2")], 1000))
    v1 = result("1.1", r("11", W), r("12", L))
    v2 = result("1.1", r("11", L), r("12", W), version=2)
    await store.settle_market(v1)
    await store.settle_market(v2)
    assert await balance(store, acc) == 4000  # 5000 − 1000, the return reversed
    late = await place(store, placement(acc, "late", [("1.1", "12", "4")], 1000))
    stale = await store.settle_market(v1)
    assert (stale.outcome, stale.bets_settled) == (SettleOutcome.REPLAYED, 0)
    assert (await receipt(store, acc, late))["status"] == "ACCEPTED"
    rerun = await store.settle_market(v2)
    assert (rerun.outcome, rerun.bets_settled) == (SettleOutcome.SETTLED, 1)
    assert await balance(store, acc) == 7000  # 4000 − 1000 + 4000


# --- corrections -----------------------------------------------------------------------


async def test_correction_reverses_and_restates_and_a_negative_balance_blocks_bets(
    store: LedgerStore,
) -> None:
    """A result corrected (v2): the ledger keeps the RETURN, a CORRECTION −2500 reverses it,
    the bet is SETTLED again at 0 and marked resettled; the balance goes to −1500, which
    refuses the next bet (INSUFFICIENT_FUNDS). The same correction again changes nothing."""
    acc = await account(store, "A", 1000)
    bet = await place(store, placement(acc, "w", [("1.1", "11", "2.5")], 1000))
    await store.settle_market(result("1.1", r("11", W), r("12", L)))
    assert await place(store, placement(acc, "spend", [("1.2", "11", "2")], 2000))
    assert await balance(store, acc) == 500
    correction = result("1.1", r("11", L), r("12", W), version=2)
    report = await store.settle_market(correction)
    assert (report.outcome, report.bets_settled) == ("resettled", 1)
    assert [(c.bet_id, c.balance_after, c.reason) for c in report.changed] == [
        (bet, -2000, "CORRECTION")
    ]
    assert await entries_of(store, acc) == [
        ("DEPOSIT", 1000, None),
        ("STAKE", -1000, bet),
        ("RETURN", 2500, bet),
        ("STAKE", -2000, (await store.list_bets(acc, "OPEN", 1, None))[0][0].bet_id),
        ("CORRECTION", -2500, bet),
    ]
    assert await balance(store, acc) == -2000
    restated = await receipt(store, acc, bet)
    assert restated["status"] == "SETTLED"
    assert restated["legs"][0]["result"] == "LOSE"
    assert restated["settlement"]["return"] == 0
    assert (restated["settlement"]["resettled"], restated["settlement"]["previousReturn"]) == (
        True,
        2500,
    )
    refused = await store.place_bet(placement(acc, "blocked", [("1.3", "11", "2")], 100))
    assert refused.outcome is Outcome.INSUFFICIENT_FUNDS
    again = await store.settle_market(correction)
    assert again.outcome is SettleOutcome.REPLAYED
    assert len(await entries_of(store, acc)) == 5
    assert await store.audit() == []
    assert await store.market_result("1.1") == correction


async def test_post_official_change_is_recorded_but_does_not_resettle(store: LedgerStore) -> None:
    acc = await account(store, "A", 1000)
    await place(store, placement(acc, "w", [("1.1", "11", "2")], 1000))
    first = result("1.1", r("11", W), r("12", L))
    await store.settle_market(first)
    late = result("1.1", r("11", L), r("12", W), version=2, post_official=True)
    report = await store.settle_market(late)
    assert (report.outcome, report.bets_settled) == ("post_official_ignored", 0)
    assert await balance(store, acc) == 2000
    assert await store.market_result("1.1") == first
    assert await store.market_result("1.1", effective=False) == late


async def test_b04c_stake_booked_ten_times_over_is_restated(store: LedgerStore) -> None:
    """B04(c): 13,000 EW at 16/1 (1/4, 3 places) booked instead of 1,300 EW; the horse won:
    286,000 credited. Restated: stake refund +23,400, payout −286,000 + 28,600; net
    −234,000 against the wrong booking. Twice changes nothing further."""
    acc = await account(store, "A", 2_600_000)
    bet = await place(
        store, placement(acc, "b04", [("4.1", "41", "16/1")], 1_300_000, each_way=True)
    )
    terms = EachWayTerms(3, Fraction(1, 4))
    others = [r(f"4{i}", L) for i in range(2, 9)]
    await store.settle_market(result("4.1", r("41", W), *others, each_way=terms))
    assert await balance(store, acc) == 28_600_000
    corrected = await store.correct_bet_stake(bet, 130_000, "ops-ticket-7")
    assert corrected is not None and corrected.balance_after == 28_600_000 - 23_400_000
    assert (await entries_of(store, acc))[-3:] == [
        ("CORRECTION", 2_340_000, bet),
        ("CORRECTION", -28_600_000, bet),
        ("RETURN", 2_860_000, bet),
    ]
    assert await balance(store, acc) == 5_200_000  # the correct bet's net: +2,600,000 … +2,860,000
    restated = await receipt(store, acc, bet)
    assert (restated["totalStake"], restated["settlement"]["return"]) == (260_000, 2_860_000)
    again = await store.correct_bet_stake(bet, 130_000, "ops-ticket-7")
    assert again is not None and not again.moved
    assert await balance(store, acc) == 5_200_000
    assert await store.audit() == []


# --- B13, B14, PENDING, totals -----------------------------------------------------------


async def test_b13_two_settlements_at_once_lose_no_update(store: LedgerStore) -> None:
    """B13 (second part): 100, 50 on A at 2.0 and 50 on B at 2.0 (balance 0); A loses and B
    wins, settled concurrently → 100."""
    acc = await account(store, "A", 10_000)
    await place(store, placement(acc, "a", [("6.1", "1", "2.0")], 5000))
    await place(store, placement(acc, "b", [("6.2", "1", "2.0")], 5000))
    assert await balance(store, acc) == 0
    await asyncio.gather(
        store.settle_market(result("6.1", r("1", L), r("2", W))),
        store.settle_market(result("6.2", r("1", W), r("2", L))),
    )
    assert await balance(store, acc) == 10_000
    assert await store.audit() == []


async def test_b14_pays_at_most_the_cap_in_force_at_acceptance(store: LedgerStore) -> None:
    """B14: cap 250,000 at acceptance; a double at 50,000 for 6.00 would return 300,000:
    pays 250,000.00 (and 5.00 returns exactly 250,000.00)."""
    acc = await account(store, "A", 1100)
    legs = [("7.1", "1", "250"), ("7.2", "1", "200")]
    capped = await place(store, placement(acc, "c", legs, 600, max_payout=25_000_000))
    exact = await place(store, placement(acc, "e", legs, 500, max_payout=25_000_000))
    await store.settle_market(result("7.1", r("1", W)))
    await store.settle_market(result("7.2", r("1", W)))
    assert (await receipt(store, acc, capped))["settlement"]["return"] == 25_000_000
    assert (await receipt(store, acc, exact))["settlement"]["return"] == 25_000_000
    assert await balance(store, acc) == 50_000_000


async def test_pending_bet_on_a_settled_market_is_rejected_and_refunded(
    store: LedgerStore,
) -> None:
    """A bet still held by its in-play delay when its market settles: REJECTED
    MARKET_CLOSED, stake refunded (docs/SETTLEMENT.md)."""
    acc = await account(store, "A", 1000)
    bet = await place(store, placement(acc, "p", [("8.1", "1", "2")], 1000, status="PENDING"))
    report = await store.settle_market(result("8.1", r("1", W)))
    assert [(c.bet_id, c.reason, c.balance_after) for c in report.changed] == [
        (bet, "REJECTED", 1000)
    ]
    rejected = await receipt(store, acc, bet)
    assert (rejected["status"], rejected["code"]) == ("REJECTED", "MARKET_CLOSED")
    assert await entries_of(store, acc) == [
        ("DEPOSIT", 1000, None),
        ("STAKE", -1000, bet),
        ("REFUND", 1000, bet),
    ]


async def test_book_totals_per_market(store: LedgerStore) -> None:
    acc = await account(store, "A", 5000)
    await place(store, placement(acc, "w", [("9.1", "1", "2.5")], 1000))
    await place(store, placement(acc, "l", [("9.1", "2", "3")], 1000))
    await place(store, placement(acc, "o", [("9.2", "1", "3")], 500))
    await store.settle_market(result("9.1", r("1", W), r("2", L)))
    assert await store.book_totals() == {"9.1": (2000, 2500), "9.2": (500, 0)}
    assert await store.book_totals("9.1") == {"9.1": (2000, 2500)}


async def test_held_result_is_not_settled(store: LedgerStore) -> None:
    """Three winners for one paying place and no dead heat stated (B01/B02's kind)."""
    acc = await account(store, "A", 1000)
    await place(store, placement(acc, "w", [("1.1", "11", "2")], 1000))
    report = await store.settle_market(result("1.1", r("11", W), r("12", W), r("13", W)))
    assert report.outcome is SettleOutcome.HELD and report.detail
    assert await store.market_result("1.1") is None
    assert await balance(store, acc) == 0


async def test_chunks_settle_every_bet_once(store: LedgerStore) -> None:
    acc = await account(store, "A", 100_000)
    for i in range(23):
        await place(store, placement(acc, f"c{i}", [("1.1", "11" if i % 2 else "12", "2")], 100))
    seen: list[int] = []
    report = await store.settle_market(
        result("1.1", r("11", W), r("12", L)), chunk_size=5, on_chunk=lambda c: seen.append(len(c))
    )
    assert (report.bets_settled, sum(seen), report.changed) == (23, 23, ())
    returns = [e for e in await store.entries(acc) if e.kind is EntryKind.RETURN]
    assert len(returns) == 11
    assert await balance(store, acc) == 100_000 - 2300 + 11 * 200
