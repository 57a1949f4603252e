"""The durable ledger (issue #4) on both backends, embedded SQLite and a real PostgreSQL.

Every test that takes ``ledger_store`` or ``ledger_url`` runs once per backend;
nothing is mocked. PostgreSQL is ``$SPORTSBOOK_TEST_DATABASE`` (``make test`` sets
it), else the session runs ``infra/postgres/pg.sh start`` (and ``stop`` at the end
if it started it); each test gets a fresh schema, dropped afterwards.

After every scenario the ledger's invariants are checked: balance == SUM of the
entries (:func:`assert_consistent`), never negative, one STAKE per bet.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from ledger_store import (
    AccountExists,
    LedgerStore,
    Outcome,
    Placement,
    ReferenceConflict,
    StoreBusy,
    UnknownAccount,
    open_store,
)
from ledger_store.sqlite import SqliteLedgerStore
from ledger_store.store import BETS_TOPIC
from sportsbook_core.ledger import EntryKind, balance_of, ledger_violations

REPO = Path(__file__).resolve().parents[2]
PG_SH = REPO / "infra" / "postgres" / "pg.sh"
DATABASE_ENV = "SPORTSBOOK_TEST_DATABASE"


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
async def ledger_store(ledger_url: str) -> AsyncIterator[LedgerStore]:
    store = await open_store(ledger_url)
    try:
        yield store
    finally:
        await store.close()


# --- builders ---------------------------------------------------------------------------


def bet(
    account_id: str,
    request_id: str,
    stake: int,
    *,
    market: str = "1.100",
    selection: str = "11",
    price: str = "2.0",
    status: str = "ACCEPTED",
    liability_limit: int | None = None,
) -> Placement:
    """A single at ``price``; its exposure is the book's liability (stake × (price − 1))."""
    body = {
        "type": "SINGLE",
        "legs": [{"marketId": market, "selectionId": selection, "price": price}],
        "stake": stake,
    }
    body_hash = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    liability = int(stake * (Fraction(price) - 1))

    def receipt_for(bet_id: str, balance_after: int) -> dict[str, Any]:
        return {
            "betId": bet_id,
            "requestId": request_id,
            "status": status,
            "legs": body["legs"],
            "totalStake": stake,
            "currency": "GBP",
            "balanceAfter": balance_after,
        }

    return Placement(
        account_id=account_id,
        request_id=request_id,
        body_hash=body_hash,
        total_stake=stake,
        status=status,
        exposures=[(market, selection, liability)],
        liability_limit=liability_limit,
        receipt_for=receipt_for,
    )


async def funded(store: LedgerStore, account_id: str = "acc-1", balance: int = 10_000) -> str:
    await store.create_account(account_id, "GBP", f"hash-of-{account_id}", {"maxStake": 50_000})
    if balance:
        assert await store.deposit(account_id, balance, f"seed-{account_id}") == balance
    return account_id


async def assert_consistent(store: LedgerStore, *account_ids: str) -> list[int]:
    """Each account's balance == SUM(entries), never negative on the way; store audit clean."""
    balances = []
    for account_id in account_ids:
        account = await store.account(account_id)
        assert account is not None
        entries = await store.entries(account_id)
        assert account.balance == balance_of(entries)
        assert ledger_violations(entries) == []
        balances.append(account.balance)
    assert await store.audit() == []
    return balances


async def bet_count(store: LedgerStore, account_id: str) -> int:
    bets, _ = await store.list_bets(account_id, "ALL", 10_000, None)
    return len(bets)


# --- field cases ------------------------------------------------------------------------


async def test_b12_idempotency_key_not_body(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store)
    first = await store.place_bet(bet(acc, "K1", 1000))
    second = await store.place_bet(bet(acc, "K2", 1000))  # same body, new key: a new bet
    assert (first.outcome, second.outcome) == (Outcome.PLACED, Outcome.PLACED)
    assert first.bet_id != second.bet_id
    assert (first.balance, second.balance) == (9000, 8000)
    assert await assert_consistent(store, acc) == [8000]

    retry = await store.place_bet(bet(acc, "K1", 1000))  # client timed out and retried
    assert retry.outcome == Outcome.REPLAYED
    assert retry.bet_id == first.bet_id
    assert retry.receipt == first.receipt
    assert retry.receipt is not None and retry.receipt["balanceAfter"] == 9000
    assert await assert_consistent(store, acc) == [8000]

    changed = await store.place_bet(bet(acc, "K1", 1500))  # same key, another body
    assert changed.outcome == Outcome.CONFLICT
    assert changed.code == "IDEMPOTENCY_CONFLICT"
    assert await assert_consistent(store, acc) == [8000]
    assert await bet_count(store, acc) == 2
    assert len([e for e in await store.entries(acc) if e.kind is EntryKind.STAKE]) == 2


async def test_b13_two_concurrent_bets_one_balance(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store)
    outcomes = await asyncio.gather(
        store.place_bet(bet(acc, "on-A", 8000, selection="A")),
        store.place_bet(bet(acc, "on-B", 8000, selection="B")),
    )
    kinds = sorted(o.outcome for o in outcomes)
    assert kinds == sorted([Outcome.PLACED, Outcome.INSUFFICIENT_FUNDS])
    refused = next(o for o in outcomes if o.outcome is Outcome.INSUFFICIENT_FUNDS)
    assert refused.code == "INSUFFICIENT_FUNDS"
    assert refused.detail == {"balance": 2000, "required": 8000}
    assert await assert_consistent(store, acc) == [2000]
    assert await bet_count(store, acc) == 1


async def test_b13_200_concurrent_small_bets_never_overdraw(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store)
    outcomes = await asyncio.gather(
        *(store.place_bet(bet(acc, f"r{i}", 100, selection=f"s{i % 7}")) for i in range(200))
    )
    placed = [o for o in outcomes if o.outcome is Outcome.PLACED]
    refused = [o for o in outcomes if o.outcome is Outcome.INSUFFICIENT_FUNDS]
    assert (len(placed), len(refused)) == (100, 100)
    assert len({o.bet_id for o in placed}) == 100
    assert sorted(o.balance for o in placed if o.balance is not None) == list(range(0, 10_000, 100))
    assert await assert_consistent(store, acc) == [0]
    assert await bet_count(store, acc) == 100
    assert len(await store.outbox_pending(1000)) == 100


# --- placement --------------------------------------------------------------------------


async def test_same_request_raced_twice_places_once(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store)
    outcomes = await asyncio.gather(*(store.place_bet(bet(acc, "dup", 700)) for _ in range(5)))
    assert sorted(o.outcome for o in outcomes) == sorted([Outcome.PLACED] + [Outcome.REPLAYED] * 4)
    assert len({o.bet_id for o in outcomes}) == 1
    assert all(o.receipt == outcomes[0].receipt for o in outcomes)
    assert await assert_consistent(store, acc) == [9300]


async def test_a_refusal_is_never_written(ledger_store: LedgerStore) -> None:
    """Insufficient funds leaves no bet, entry or event, so the same request id can
    succeed after a deposit."""
    store = ledger_store
    acc = await funded(store, balance=500)
    refused = await store.place_bet(bet(acc, "R1", 800))
    assert refused.outcome is Outcome.INSUFFICIENT_FUNDS
    assert refused.bet_id is None and refused.receipt is None
    assert await bet_count(store, acc) == 0
    assert await store.outbox_pending(10) == []
    assert len(await store.entries(acc)) == 1  # the deposit only
    await store.deposit(acc, 500, "top-up")
    placed = await store.place_bet(bet(acc, "R1", 800))
    assert placed.outcome is Outcome.PLACED
    assert placed.bet_id == "B-000001"
    assert await assert_consistent(store, acc) == [200]


async def test_placement_writes_bet_stake_entry_and_receipt(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store)
    placed = await store.place_bet(bet(acc, "Q1", 1234))
    assert placed.outcome is Outcome.PLACED and placed.ok and placed.code is None
    assert placed.bet_id == "B-000001"
    assert placed.receipt == {
        "betId": "B-000001",
        "requestId": "Q1",
        "status": "ACCEPTED",
        "legs": [{"marketId": "1.100", "selectionId": "11", "price": "2.0"}],
        "totalStake": 1234,
        "currency": "GBP",
        "balanceAfter": 8766,
    }
    stored = await store.get_bet(acc, "B-000001")
    assert stored is not None
    assert (stored.status, stored.total_stake, stored.request_id) == ("ACCEPTED", 1234, "Q1")
    assert stored.receipt == placed.receipt
    assert stored.placed_at.tzinfo is not None
    stake = [e for e in await store.entries(acc) if e.kind is EntryKind.STAKE]
    assert [(e.amount, e.bet_id) for e in stake] == [(-1234, "B-000001")]
    account = await store.account(acc)
    assert account is not None and (account.balance, account.open_bets) == (8766, 1)


async def test_unknown_account_cannot_bet(ledger_store: LedgerStore) -> None:
    with pytest.raises(UnknownAccount):
        await ledger_store.place_bet(bet("nobody", "X", 100))
    with pytest.raises(UnknownAccount):
        await ledger_store.deposit("nobody", 100, "d1")


async def test_liability_limit_per_selection(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store, "acc-1", 20_000)
    other = await funded(store, "acc-2", 20_000)
    limit = 5000
    first = await store.place_bet(bet(acc, "L1", 2000, liability_limit=limit))  # liability 2000
    assert first.outcome is Outcome.PLACED
    over = await store.place_bet(bet(other, "L2", 4000, liability_limit=limit))  # 6000 > 5000
    assert over.outcome is Outcome.LIABILITY_LIMIT
    assert over.code == "LIABILITY_LIMIT"
    assert over.detail == {
        "marketId": "1.100",
        "selectionId": "11",
        "exposure": 2000,
        "limit": limit,
    }
    elsewhere = await store.place_bet(bet(other, "L3", 4000, selection="12", liability_limit=limit))
    assert elsewhere.outcome is Outcome.PLACED
    exact = await store.place_bet(bet(other, "L4", 3000, liability_limit=limit))  # exactly 5000
    assert exact.outcome is Outcome.PLACED
    assert (await store.place_bet(bet(acc, "L5", 1, liability_limit=limit))).outcome is (
        Outcome.LIABILITY_LIMIT
    )
    assert await assert_consistent(store, acc, other) == [18_000, 13_000]
    assert await bet_count(store, other) == 2
    assert len(await store.outbox_pending(100)) == 3


async def test_liability_limit_holds_under_concurrency(ledger_store: LedgerStore) -> None:
    store = ledger_store
    accounts = [await funded(store, f"acc-{i}", 10_000) for i in range(10)]
    outcomes = await asyncio.gather(
        *(store.place_bet(bet(a, "L", 3000, liability_limit=10_000)) for a in accounts)
    )
    assert sum(o.outcome is Outcome.PLACED for o in outcomes) == 3  # 3 × 3000 ≤ 10000
    assert sum(o.outcome is Outcome.LIABILITY_LIMIT for o in outcomes) == 7
    assert sorted(await assert_consistent(store, *accounts)) == [7000] * 3 + [10_000] * 7


async def test_multi_leg_exposures_and_none(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store)
    limit = 1000
    first = await store.place_bet(bet(acc, "m0", 300, market="1.200", selection="21"))
    assert first.outcome is Outcome.PLACED  # 1.200/21 now owes 300
    legs = [("1.100", "11", 500), ("1.200", "21", 800), ("1.100", "11", 100)]
    acca = replace(bet(acc, "m1", 100, liability_limit=limit), exposures=legs)
    refused = await store.place_bet(acca)
    assert refused.outcome is Outcome.LIABILITY_LIMIT
    assert refused.detail == {
        "marketId": "1.200",
        "selectionId": "21",
        "exposure": 300,
        "limit": limit,
    }
    fits = replace(acca, request_id="m2", exposures=[("1.100", "11", 1000), ("1.200", "21", 700)])
    assert (await store.place_bet(fits)).outcome is Outcome.PLACED  # nothing was held back
    over = replace(acca, request_id="m3", exposures=[("1.100", "11", 1)])
    assert (await store.place_bet(over)).outcome is Outcome.LIABILITY_LIMIT
    free = replace(acca, request_id="m4", exposures=[])
    placed = await store.place_bet(free)
    assert (placed.outcome, placed.bet_id) == (Outcome.PLACED, "B-000003")
    assert await assert_consistent(store, acc) == [10_000 - 300 - 100 - 100]


# --- in-play delay ----------------------------------------------------------------------


async def test_resolve_pending_accepted(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store)
    placed = await store.place_bet(bet(acc, "P1", 2500, status="PENDING"))
    assert placed.outcome is Outcome.PLACED and placed.bet_id is not None
    assert await assert_consistent(store, acc) == [7500]  # debited when placed
    account = await store.account(acc)
    assert account is not None and account.open_bets == 1

    receipt = {**(placed.receipt or {}), "status": "ACCEPTED"}
    done = await store.resolve_pending(placed.bet_id, True, receipt)
    assert (done.outcome, done.receipt, done.balance) == (Outcome.RESOLVED, receipt, 7500)
    again = await store.resolve_pending(placed.bet_id, True, receipt)
    assert (again.outcome, again.receipt) == (Outcome.REPLAYED, receipt)
    late_reject = await store.resolve_pending(placed.bet_id, False, {**receipt, "status": "X"})
    assert late_reject.outcome is Outcome.CONFLICT
    stored = await store.get_bet(acc, placed.bet_id)
    assert stored is not None and (stored.status, stored.receipt) == ("ACCEPTED", receipt)
    assert await assert_consistent(store, acc) == [7500]
    assert [e.kind for e in await store.entries(acc)] == [EntryKind.DEPOSIT, EntryKind.STAKE]
    events = await store.outbox_pending(10)
    assert [e.payload["kind"] for e in events] == ["PLACED", "ACCEPTED"]


async def test_resolve_pending_rejected_refunds_once(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store)
    limit = 2500
    placed = await store.place_bet(bet(acc, "P1", 2500, status="PENDING", liability_limit=limit))
    assert placed.bet_id is not None
    blocked = await store.place_bet(bet(acc, "P2", 1, liability_limit=limit))
    assert blocked.outcome is Outcome.LIABILITY_LIMIT

    receipt = {**(placed.receipt or {}), "status": "REJECTED", "code": "PRICE_CHANGED"}
    done = await store.resolve_pending(placed.bet_id, False, receipt)
    assert (done.outcome, done.balance) == (Outcome.RESOLVED, 10_000)
    again = await store.resolve_pending(placed.bet_id, False, receipt)
    assert (again.outcome, again.receipt) == (Outcome.REPLAYED, receipt)
    assert (await store.resolve_pending(placed.bet_id, True, receipt)).outcome is Outcome.CONFLICT
    assert (await store.resolve_pending("B-999999", True, receipt)).outcome is Outcome.NOT_FOUND

    entries = await store.entries(acc)
    assert [(e.kind, e.amount, e.bet_id) for e in entries[1:]] == [
        (EntryKind.STAKE, -2500, placed.bet_id),
        (EntryKind.REFUND, 2500, placed.bet_id),
    ]
    assert await assert_consistent(store, acc) == [10_000]
    account = await store.account(acc)
    assert account is not None and account.open_bets == 0
    retry = await store.place_bet(bet(acc, "P1", 2500, status="PENDING"))  # the client retries
    assert (retry.outcome, retry.receipt) == (Outcome.REPLAYED, receipt)
    # the rejected bet's liability is released
    assert (await store.place_bet(bet(acc, "P3", 2500, liability_limit=limit))).ok


# --- reads ------------------------------------------------------------------------------


async def test_list_bets_pages_newest_first(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store)
    other = await funded(store, "acc-2")
    for i in range(1, 6):
        await store.place_bet(
            bet(acc, f"r{i}", 100 * i, status="PENDING" if i == 2 else "ACCEPTED")
        )
        await store.place_bet(bet(other, f"r{i}", 100))
    mine = ["B-000001", "B-000003", "B-000005", "B-000007", "B-000009"]

    page, cursor = await store.list_bets(acc, "ALL", 2, None)
    assert [b.bet_id for b in page] == ["B-000009", "B-000007"] and cursor is not None
    page, cursor = await store.list_bets(acc, "ALL", 2, cursor)
    assert [b.bet_id for b in page] == ["B-000005", "B-000003"] and cursor is not None
    page, cursor = await store.list_bets(acc, "ALL", 2, cursor)
    assert [b.bet_id for b in page] == ["B-000001"] and cursor is None
    page, cursor = await store.list_bets(acc, "ALL", 5, None)
    assert [b.bet_id for b in page] == mine[::-1] and cursor is None

    await store.resolve_pending("B-000003", False, {"betId": "B-000003", "status": "REJECTED"})
    open_bets, _ = await store.list_bets(acc, "OPEN", 10, None)
    assert [b.bet_id for b in open_bets] == ["B-000009", "B-000007", "B-000005", "B-000001"]
    closed, _ = await store.list_bets(acc, "SETTLED", 10, None)
    assert [b.bet_id for b in closed] == ["B-000003"]
    page, cursor = await store.list_bets(acc, "OPEN", 3, None)
    assert [b.bet_id for b in page] == ["B-000009", "B-000007", "B-000005"]
    page, cursor = await store.list_bets(acc, "OPEN", 3, cursor)
    assert [b.bet_id for b in page] == ["B-000001"] and cursor is None
    assert all(b.account_id == acc for b in open_bets)

    for bad in ("garbage", "c1.zz", "c1.0", ""):
        with pytest.raises(ValueError, match="cursor"):
            await store.list_bets(acc, "ALL", 2, bad)
    with pytest.raises(ValueError, match="status"):
        await store.list_bets(acc, "WON", 2, None)
    with pytest.raises(ValueError, match="limit"):
        await store.list_bets(acc, "ALL", 0, None)


async def test_get_bet_never_returns_another_accounts_bet(ledger_store: LedgerStore) -> None:
    store = ledger_store
    alice = await funded(store, "alice")
    bob = await funded(store, "bob")
    placed = await store.place_bet(bet(alice, "x", 100))
    assert placed.bet_id is not None
    assert await store.get_bet(bob, placed.bet_id) is None
    mine = await store.get_bet(alice, placed.bet_id)
    assert mine is not None and mine.account_id == alice
    assert await store.get_bet(alice, "B-424242") is None
    assert (await store.list_bets(bob, "ALL", 10, None)) == ([], None)
    # bob's request id "x" is his own: no conflict with alice's
    assert (await store.place_bet(bet(bob, "x", 999))).outcome is Outcome.PLACED


# --- accounts and deposits --------------------------------------------------------------


async def test_accounts(ledger_store: LedgerStore) -> None:
    store = ledger_store
    created = await store.create_account("acc-9", "EUR", "h9", {"maxStake": 500, "tags": ["vip"]})
    assert (created.account_id, created.currency, created.balance, created.open_bets) == (
        "acc-9",
        "EUR",
        0,
        0,
    )
    assert created.limits == {"maxStake": 500, "tags": ["vip"]}
    assert await store.account_for_token("h9") == created
    assert await store.account("acc-9") == created
    assert await store.account_for_token("nope") is None
    assert await store.account("nope") is None
    terms = await store.account_terms("acc-9")
    assert terms is not None
    assert (terms.account_id, terms.currency, terms.limits) == ("acc-9", "EUR", created.limits)
    assert await store.account_terms("nope") is None
    with pytest.raises(AccountExists):
        await store.create_account("acc-9", "EUR", None, {})
    with pytest.raises(AccountExists):
        await store.create_account("acc-10", "EUR", "h9", {})  # a token names one account
    anonymous = await store.create_account("acc-11", "GBP", None, {})
    assert anonymous.limits == {}
    assert await store.create_account("acc-12", "GBP", None, {}) is not None  # many without


async def test_deposit_idempotent_per_reference(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store, balance=0)
    assert await store.deposit(acc, 5000, "card-1") == 5000
    assert await store.deposit(acc, 5000, "card-1") == 5000  # a retry: nothing written
    assert await store.deposit(acc, 3000, "card-2") == 8000
    with pytest.raises(ReferenceConflict):
        await store.deposit(acc, 4000, "card-1")
    other = await funded(store, "acc-2", balance=0)
    assert await store.deposit(other, 100, "card-1") == 100  # references are per account
    for amount in (0, -5):
        with pytest.raises(ValueError, match="positive"):
            await store.deposit(acc, amount, "card-3")
    entries = await store.entries(acc)
    assert [(e.kind, e.amount, e.reference) for e in entries] == [
        (EntryKind.DEPOSIT, 5000, "card-1"),
        (EntryKind.DEPOSIT, 3000, "card-2"),
    ]
    assert await assert_consistent(store, acc, other) == [8000, 100]


async def test_deposits_raced_with_one_reference_count_once(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store, balance=0)
    results = await asyncio.gather(*(store.deposit(acc, 700, "same") for _ in range(8)))
    assert results == [700] * 8
    assert await assert_consistent(store, acc) == [700]


# --- outbox -----------------------------------------------------------------------------


async def test_outbox_one_event_per_placed_bet(ledger_store: LedgerStore) -> None:
    store = ledger_store
    acc = await funded(store, balance=3000)
    ids = []
    for i in range(3):
        placed = await store.place_bet(bet(acc, f"o{i}", 1000))
        ids.append(placed.bet_id)
    await store.place_bet(bet(acc, "o0", 1000))  # replay: no event
    await store.place_bet(bet(acc, "o9", 1000))  # insufficient funds: no event
    events = await store.outbox_pending(100)
    assert [e.payload["betId"] for e in events] == ids
    assert {(e.topic, e.key, e.payload["kind"], e.payload["accountId"]) for e in events} == {
        (BETS_TOPIC, acc, "PLACED", acc)
    }
    assert [e.payload["bet"]["balanceAfter"] for e in events] == [2000, 1000, 0]
    assert events == sorted(events, key=lambda e: e.event_id)
    assert [e.event_id for e in await store.outbox_pending(2)] == [e.event_id for e in events[:2]]

    await store.outbox_done([events[0].event_id, events[1].event_id])
    await store.outbox_done([events[0].event_id])  # at-least-once: marking twice is harmless
    await store.outbox_done([])
    assert [e.event_id for e in await store.outbox_pending(100)] == [events[2].event_id]


# --- durability and the database's own guards -----------------------------------------


async def test_bet_ids_and_balances_survive_reopen(ledger_url: str) -> None:
    store = await open_store(ledger_url)
    try:
        acc = await funded(store)
        placed = [await store.place_bet(bet(acc, f"d{i}", 1000)) for i in range(3)]
    finally:
        await store.close()
    assert [p.bet_id for p in placed] == ["B-000001", "B-000002", "B-000003"]

    store = await open_store(ledger_url)  # migrations again: a no-op
    try:
        assert await assert_consistent(store, acc) == [7000]
        for p in placed:
            assert p.bet_id is not None
            stored = await store.get_bet(acc, p.bet_id)
            assert stored is not None and stored.receipt == p.receipt
        replay = await store.place_bet(bet(acc, "d1", 1000))
        assert (replay.outcome, replay.bet_id) == (Outcome.REPLAYED, "B-000002")
        fourth = await store.place_bet(bet(acc, "d3", 1000))
        assert fourth.bet_id == "B-000004"
        assert len(await store.outbox_pending(100)) == 4
    finally:
        await store.close()


_KILLED_PLACER = """
import asyncio, os, sys
from ledger_store import Placement, open_store

async def main():
    store = await open_store(sys.argv[1])
    for i in range(5):
        outcome = await store.place_bet(Placement(
            account_id="acc-1", request_id=f"k{i}", body_hash="h", total_stake=100,
            status="ACCEPTED", exposures=[], liability_limit=None,
            receipt_for=lambda bet_id, balance: {"betId": bet_id, "balanceAfter": balance}))
        print(outcome.bet_id, flush=True)
    os._exit(0)  # no close(): as if the process were killed right after the receipts

asyncio.run(main())
"""


async def test_acknowledged_placements_survive_a_killed_process(ledger_url: str) -> None:
    store = await open_store(ledger_url)
    try:
        acc = await funded(store)
    finally:
        await store.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _KILLED_PLACER,
        ledger_url,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    acknowledged = out.decode().split()
    assert acknowledged == [f"B-00000{i}" for i in range(1, 6)]
    store = await open_store(ledger_url)
    try:
        for bet_id in acknowledged:
            assert await store.get_bet(acc, bet_id) is not None
        assert await assert_consistent(store, acc) == [9500]
        assert (await store.place_bet(bet(acc, "next", 100))).bet_id == "B-000006"
    finally:
        await store.close()


async def test_entries_are_immutable_and_balances_cannot_go_negative(ledger_url: str) -> None:
    store = await open_store(ledger_url)
    try:
        acc = await funded(store, balance=1000)
    finally:
        await store.close()
    refused = ("immutable", "balance", "check")
    statements = [
        "UPDATE ledger_entries SET amount = 99999",
        "DELETE FROM ledger_entries",
        "UPDATE accounts SET balance = -1",
        "INSERT INTO ledger_entries (account_id, kind, amount, reference, created_at)"
        " VALUES ('acc-1', 'DEPOSIT', -5, 'x', '2026-01-01T00:00:00+00:00')",
        "INSERT INTO ledger_entries (account_id, kind, amount, reference, created_at)"
        " VALUES ('acc-1', 'STAKE', -5, 'no bet', '2026-01-01T00:00:00+00:00')",
    ]
    if ledger_url.startswith("sqlite:"):
        conn = sqlite3.connect(ledger_url.removeprefix("sqlite:///"))
        try:
            for statement in statements:
                with pytest.raises(sqlite3.IntegrityError) as failure:
                    conn.execute(statement)
                assert any(word in str(failure.value).lower() for word in refused)
        finally:
            conn.close()
    else:
        pg = await asyncpg.connect(ledger_url)
        try:
            for statement in statements:
                with pytest.raises(asyncpg.PostgresError) as failure:
                    await pg.execute(statement)
                assert any(word in str(failure.value).lower() for word in refused)
        finally:
            await pg.close()
    store = await open_store(ledger_url)
    try:
        assert await assert_consistent(store, acc) == [1000]
    finally:
        await store.close()


# --- bounded queues, SQLite group commit, URLs ------------------------------------------


async def test_sqlite_group_commit_batches_concurrent_placements(tmp_path: Path) -> None:
    store = await SqliteLedgerStore.open(tmp_path / "ledger.db")
    try:
        acc = await funded(store, balance=100_000)
        before = store.batches
        outcomes = await asyncio.gather(
            *(store.place_bet(bet(acc, f"g{i}", 100)) for i in range(64))
        )
        assert all(o.outcome is Outcome.PLACED for o in outcomes)
        assert store.batches - before < 64 // 4  # far fewer commits than placements
        assert await assert_consistent(store, acc) == [100_000 - 6400]
    finally:
        await store.close()


async def test_store_busy_when_queue_full(ledger_url: str) -> None:
    """Bounded: a tiny queue (SQLite: the writer's queue; PostgreSQL: placements in
    flight) refuses the excess at once with StoreBusy and writes nothing for it."""
    store = await open_store(ledger_url, queue_size=2, max_batch=2)
    try:
        acc = await funded(store)
        results = await asyncio.gather(
            *(store.place_bet(bet(acc, f"b{i}", 100)) for i in range(40)),
            return_exceptions=True,
        )
        busy = [r for r in results if isinstance(r, StoreBusy)]
        placed = [r for r in results if not isinstance(r, BaseException)]
        assert len(busy) + len(placed) == 40
        assert busy and placed
        assert all(p.outcome is Outcome.PLACED for p in placed)
        assert await bet_count(store, acc) == len(placed)
        assert await assert_consistent(store, acc) == [10_000 - 100 * len(placed)]
        again = await store.place_bet(bet(acc, "after", 100))  # room again once drained
        assert again.outcome is Outcome.PLACED
    finally:
        await store.close()


async def test_open_store_urls(tmp_path: Path) -> None:
    store = await open_store(None, default_path=tmp_path / "default.db")
    await store.close()
    assert (tmp_path / "default.db").exists()
    with pytest.raises(ValueError, match="default"):
        await open_store(None)
    with pytest.raises(ValueError, match="unsupported"):
        await open_store("mysql://x")
    with pytest.raises(ValueError, match="memory"):
        await open_store("sqlite:///:memory:")
