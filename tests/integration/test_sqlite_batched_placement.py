"""SQLite's batched placements (one ``executemany`` per table per group commit,
balances/exposures/bet counter kept by the writer): the same outcomes as placing
one by one, also when another process writes the same file, holds its write
lock, or a batched write fails."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from ledger_store import Outcome
from ledger_store import sqlite as sqlite_store
from ledger_store.sqlite import SqliteLedgerStore
from tests.integration.test_ledger_store import assert_consistent, bet, funded


async def test_one_batch_replays_conflicts_and_refuses_in_order(tmp_path: Path) -> None:
    store = await SqliteLedgerStore.open(tmp_path / "ledger.db")
    try:
        acc = await funded(store, balance=1000)
        before = store.batches
        outcomes = await asyncio.gather(
            store.place_bet(bet(acc, "r1", 400)),
            store.place_bet(bet(acc, "r1", 400)),  # the same request: replayed
            store.place_bet(bet(acc, "r1", 500)),  # another body: conflict
            store.place_bet(bet(acc, "r2", 500)),
            store.place_bet(bet(acc, "r3", 200)),  # 100 left: refused
            store.place_bet(bet("nobody", "r4", 100)),
            return_exceptions=True,
        )
        assert store.batches - before == 1
        kinds = [
            o.outcome if not isinstance(o, BaseException) else type(o).__name__ for o in outcomes
        ]
        assert kinds == [
            Outcome.PLACED,
            Outcome.REPLAYED,
            Outcome.CONFLICT,
            Outcome.PLACED,
            Outcome.INSUFFICIENT_FUNDS,
            "UnknownAccount",
        ]
        first, replay = outcomes[0], outcomes[1]
        assert not isinstance(first, BaseException) and not isinstance(replay, BaseException)
        assert replay.bet_id == first.bet_id and replay.receipt == first.receipt
        assert await assert_consistent(store, acc) == [100]
        # After the commit, from the database: the same answers.
        again = await store.place_bet(bet(acc, "r1", 400))
        assert again.outcome is Outcome.REPLAYED and again.bet_id == first.bet_id
    finally:
        await store.close()


async def test_liability_is_shared_across_a_batch(tmp_path: Path) -> None:
    store = await SqliteLedgerStore.open(tmp_path / "ledger.db")
    try:
        acc = await funded(store, balance=100_000)
        outcomes = await asyncio.gather(
            *(store.place_bet(bet(acc, f"l{i}", 1000, liability_limit=2500)) for i in range(4))
        )
        assert [o.outcome for o in outcomes] == [Outcome.PLACED] * 2 + [Outcome.LIABILITY_LIMIT] * 2
        assert dict(outcomes[2].detail)["exposure"] == 2000
    finally:
        await store.close()


async def test_another_process_writing_the_file_is_seen(tmp_path: Path) -> None:
    """Two stores on one file (as ``serve --workers`` with SQLite): each sees the
    other's commits (``PRAGMA data_version``), so no overdraft, no liability over
    the limit, no bet id twice."""
    one = await SqliteLedgerStore.open(tmp_path / "ledger.db")
    two = await SqliteLedgerStore.open(tmp_path / "ledger.db")
    try:
        acc = await funded(one, balance=1000)
        a = await one.place_bet(bet(acc, "a", 600, liability_limit=950))
        b = await two.place_bet(bet(acc, "b", 300, liability_limit=950))
        c = await one.place_bet(bet(acc, "c", 200, liability_limit=950))
        d = await one.place_bet(bet(acc, "d", 100, liability_limit=950))
        e = await two.place_bet(bet(acc, "a", 600))  # placed by the other one: replayed
        assert [o.outcome for o in (a, b, c, d, e)] == [
            Outcome.PLACED,
            Outcome.PLACED,
            Outcome.INSUFFICIENT_FUNDS,
            Outcome.LIABILITY_LIMIT,
            Outcome.REPLAYED,
        ]
        assert c.balance == 100
        assert (a.bet_id, b.bet_id, e.bet_id) == ("B-000001", "B-000002", "B-000001")
        await two.deposit(acc, 1000, "more")
        f = await one.place_bet(bet(acc, "f", 1050, liability_limit=10_000))
        assert f.outcome is Outcome.PLACED and f.balance == 50 and f.bet_id == "B-000003"
        assert await assert_consistent(one, acc) == [50]
    finally:
        await one.close()
        await two.close()


async def test_waits_for_another_process_write_lock(tmp_path: Path) -> None:
    store = await SqliteLedgerStore.open(tmp_path / "ledger.db")
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        acc = await funded(store)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        placing = asyncio.create_task(store.place_bet(bet(acc, "w", 100)))
        await asyncio.sleep(0.3)
        assert not placing.done()
        other.execute("ROLLBACK")
        outcome = await asyncio.wait_for(placing, 5)
        assert outcome.outcome is Outcome.PLACED
        assert await assert_consistent(store, acc) == [9900]
    finally:
        other.close()
        await store.close()


async def test_a_failed_batched_write_is_placed_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await SqliteLedgerStore.open(tmp_path / "ledger.db")
    try:
        acc = await funded(store, balance=1000)
        write = sqlite_store._RunRows.write
        failures = []

        def failing_write(rows: sqlite_store._RunRows, conn: sqlite3.Connection) -> None:
            write(rows, conn)  # rows written, then a constraint "fails": all rolled back
            if not failures:
                failures.append(1)
                raise sqlite3.IntegrityError("CHECK constraint failed: simulated")

        monkeypatch.setattr(sqlite_store._RunRows, "write", failing_write)
        outcomes = await asyncio.gather(
            *(store.place_bet(bet(acc, f"f{i}", 300)) for i in range(4))
        )
        assert failures == [1]
        assert [o.outcome for o in outcomes] == [Outcome.PLACED] * 3 + [Outcome.INSUFFICIENT_FUNDS]
        assert [o.bet_id for o in outcomes[:3]] == ["B-000001", "B-000002", "B-000003"]
        assert await assert_consistent(store, acc) == [100]
        later = await store.place_bet(bet(acc, "later", 100))
        assert later.outcome is Outcome.PLACED and later.bet_id == "B-000004"
        assert await assert_consistent(store, acc) == [0]
    finally:
        await store.close()


async def test_copies_bounded_only_between_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound the copies start over, never inside a run (they hold its debits
    and exposures until its rows are written)."""
    monkeypatch.setattr(sqlite_store, "_STATE_LIMIT", 2)
    store = await SqliteLedgerStore.open(tmp_path / "ledger.db")
    try:
        accounts = [await funded(store, f"acc-{i}", balance=500) for i in range(4)]
        placed = []
        for attempt in range(2):
            outcomes = await asyncio.gather(
                *(
                    store.place_bet(
                        bet(acc, f"{k}-{attempt}", 300, selection=f"s{k}", liability_limit=400)
                    )
                    for k in range(3)
                    for acc in accounts
                )
            )
            placed.append(sum(o.outcome is Outcome.PLACED for o in outcomes))
        # One bet a selection (300 of its 400), each from the first account with funds.
        assert placed == [3, 0]
        assert await assert_consistent(store, *accounts) == [200, 200, 200, 500]
    finally:
        await store.close()
