"""``account.stream`` MARKET events (PROTOCOL.md): a market the account has open bets on
is suspended, resumed or closed → ``{"kind": "MARKET", "marketId", "status"}``.

Real RSocket connections on a real ledger (SQLite and PostgreSQL). Account A's bet
is placed *before* it subscribes (found by reading the ledger); B's bet on another
market *after* (found from the BET event the stream relays).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clients.client import OddsStream, SportsbookClient
from rsocket_server.account_stream import AccountEvents
from rsocket_server.auth import token_hash
from sportsbook_core.catalogue import MarketStatus
from tests.testkit.builders import definition_change, market_definition
from tests.testkit.live_server import LiveServer, live_server

FUTURE = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


@pytest.fixture
async def live(ledger_url: str) -> AsyncIterator[LiveServer]:
    async with live_server(database=ledger_url) as server:
        yield server


def _events(live: LiveServer) -> AccountEvents:
    assert live.server.betting is not None
    return live.server.betting.events


async def _account(live: LiveServer, account_id: str) -> str:
    assert live.server.betting is not None
    store = live.server.betting.store
    token = f"token-{account_id}"
    await store.create_account(account_id, "GBP", token_hash(token), {})
    await store.deposit(account_id, 10_000, "seed")
    return token


async def _market(live: LiveServer, market_id: str, status: MarketStatus) -> None:
    definition = replace(market_definition(market_id), start_time=FUTURE, status=status)
    await live.publish(definition_change(definition, s11="2"))
    await live.settled()


def _bet(request_id: str, market_id: str) -> dict[str, Any]:
    leg = {"marketId": market_id, "selectionId": "11", "price": "2"}
    return {"requestId": request_id, "type": "SINGLE", "legs": [leg], "stake": 1000}


async def _watched(live: LiveServer, *account_ids: str) -> None:
    """Until each account is subscribed and its open bets were read from the ledger."""
    async with asyncio.timeout(5):
        while not all(_events(live).open_markets.ready(a) for a in account_ids):
            await asyncio.sleep(0.005)


async def _next_event(stream: OddsStream, timeout: float = 5.0) -> bytes:  # noqa: ASYNC109
    """The next frame that is not a heartbeat, as the exact bytes sent."""
    while True:
        frame: bytes = await stream.next_frame(timeout)
        if frame != b'{"kind":"heartbeat"}':
            return frame


def _market_frame(market_id: str, status: str) -> bytes:
    return f'{{"kind":"MARKET","marketId":"{market_id}","status":"{status}"}}'.encode()


async def test_market_events_reach_only_accounts_with_open_bets_on_it(live: LiveServer) -> None:
    token_a, token_b = await _account(live, "A"), await _account(live, "B")
    await _market(live, "1.1", MarketStatus.OPEN)
    await _market(live, "1.2", MarketStatus.OPEN)
    async with (
        SportsbookClient.connect(live.url("tcp"), token_a) as client_a,
        SportsbookClient.connect(live.url("tcp"), token_b) as client_b,
    ):
        placed = await client_a.request("bets.place", _bet("a1", "1.1"))
        assert placed["status"] == "ACCEPTED"
        stream_a = client_a.stream("account.stream", b"{}", window=64, raw=True)
        stream_b = client_b.stream("account.stream", b"{}", window=64, raw=True)
        await _watched(live, "A", "B")
        placed_b = await client_b.request("bets.place", _bet("b1", "1.2"))
        assert placed_b["status"] == "ACCEPTED"
        for status in (MarketStatus.SUSPENDED, MarketStatus.OPEN, MarketStatus.CLOSED):
            await _market(live, "1.1", status)
        assert [await _next_event(stream_a) for _ in range(3)] == [
            _market_frame("1.1", "SUSPENDED"),
            _market_frame("1.1", "OPEN"),
            _market_frame("1.1", "CLOSED"),
        ]
        # B saw its own BET and BALANCE, then nothing of 1.1: its next MARKET is 1.2's.
        assert b'"kind":"BET"' in await _next_event(stream_b)
        assert b'"kind":"BALANCE"' in await _next_event(stream_b)
        await _market(live, "1.2", MarketStatus.SUSPENDED)
        assert await _next_event(stream_b) == _market_frame("1.2", "SUSPENDED")
        with pytest.raises(TimeoutError):
            await _next_event(stream_a, timeout=0.3)  # and A hears nothing of 1.2
