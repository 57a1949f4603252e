"""Crash drill (issue 4): ``kill -9`` the server mid-burst; nothing acknowledged is lost.

A client fires bets flat out at a server subprocess; the server is killed with
SIGKILL while bets are in flight; it is started again on the same ledger and
the client retries (same requestId, same body) every bet it had no answer for.
Then: every ACCEPTED receipt is in the ledger exactly once, every bet in the
ledger was acknowledged (first time or on retry), and the ledger balances.
Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

from clients.client import SportsbookClient, SportsbookError
from ledger_store import open_store
from ledger_store.store import LedgerStore
from rsocket_server.auth import token_hash
from sportsbook_core.ledger import EntryKind, balance_of
from tests.testkit.live_server import server_process

TOKEN = "drill-token"
DEPOSIT = 100_000_000
STAKE = 100
PLACERS = 32


def _body(request_id: str) -> dict[str, Any]:
    leg = {"marketId": "9.000000", "selectionId": "1", "price": "2"}
    return {
        "requestId": request_id,
        "type": "SINGLE",
        "legs": [leg],
        "stake": STAKE,
        "acceptPriceChange": "ANY",  # the simulator moves the price: take the live one
    }


async def _seed(url: str) -> None:
    store = await open_store(url)
    try:
        await store.create_account("drill", "GBP", token_hash(TOKEN), {"betsPerSecond": 100_000})
        await store.deposit("drill", DEPOSIT, "seed")
    finally:
        await store.close()


async def _all_bets(store: LedgerStore) -> list[Any]:
    bets, cursor = await store.list_bets("drill", "ALL", 100, None)
    while cursor is not None:
        more, cursor = await store.list_bets("drill", "ALL", 100, cursor)
        bets += more
    return bets


async def _burst(url: str, acked: dict[str, str], unanswered: set[str], kill: Any) -> None:
    """Bets flat out from PLACERS tasks until the server dies under them."""
    ids = (f"r{i}" for i in itertools.count())
    async with SportsbookClient.connect(url, TOKEN) as client:

        async def placer() -> None:
            while True:
                request_id = next(ids)
                unanswered.add(request_id)
                try:
                    receipt = await client.request("bets.place", _body(request_id))
                except SportsbookError as error:
                    if error.code != "RATE_LIMITED":
                        raise
                    unanswered.discard(request_id)  # refused before anything was written
                    await asyncio.sleep(0.02)
                    continue
                unanswered.discard(request_id)
                assert receipt["status"] == "ACCEPTED", receipt
                acked[request_id] = receipt["betId"]
                if len(acked) == 500:
                    kill()

        with contextlib.suppress(Exception):
            await asyncio.gather(*(placer() for _ in range(PLACERS)))


async def test_kill_9_mid_burst_loses_no_acknowledged_bet_and_duplicates_none(
    ledger_url: str,
) -> None:
    await _seed(ledger_url)
    acked: dict[str, str] = {}
    unanswered: set[str] = set()
    args = ("--simulate", "1:5", "--database", ledger_url)
    with server_process(*args) as server:
        await asyncio.wait_for(
            _burst(server.url("tcp"), acked, unanswered, server.process.kill), 120
        )
        assert server.process.wait(10) == -9
    assert len(acked) >= 500 and unanswered  # killed mid-burst, with bets in flight
    retried: dict[str, str] = {}
    with server_process(*args) as server:
        async with SportsbookClient.connect(server.url("tcp"), TOKEN) as client:
            for request_id in sorted(unanswered):
                try:
                    receipt = await client.request("bets.place", _body(request_id))
                except SportsbookError as error:  # pragma: no cover - shown if it happens
                    raise AssertionError(f"retry of {request_id} failed: {error}") from None
                assert receipt["status"] == "ACCEPTED"
                retried[request_id] = receipt["betId"]
    store = await open_store(ledger_url)
    try:
        bets = await _all_bets(store)
        entries = await store.entries("drill")
        account = await store.account("drill")
    finally:
        await store.close()
    in_ledger = {bet.request_id: bet.bet_id for bet in bets}
    assert len(in_ledger) == len(bets)  # one bet per request id
    assert {**acked, **retried} == in_ledger  # every acknowledged bet, and only those
    stakes = [e for e in entries if e.kind is EntryKind.STAKE]
    assert sorted(e.bet_id or "" for e in stakes) == sorted(in_ledger.values())
    assert account is not None
    assert account.balance == balance_of(entries) == DEPOSIT - STAKE * len(bets)
