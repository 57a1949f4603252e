"""A looped replay settles every pass (issue #5, `make run`): a real server replaying a
real greyhound race in loop mode; the feed's result settles the bets of each pass.

The recording (flumine_1.197931750, Sheffield, 6 runners, winner 37947503) is replayed
at 16x as `make run` does (concurrent, looped, quiet gaps cut to 1 s, 5 s between
passes): a pass is OPEN for ~10 s, closes at ~11 s, and relists the market OPEN ~16 s
after it started. A bet on the winner in the first pass is settled by the result the
feed publishes then (version 1); the hub marks the market SETTLED; the next pass
reopens it and a second bet is placed and accepted; the market closes again with the
same result, the feed publishes version 1 again, and the ledger settles the bet still
open. Each return is computed here from the struck price alone: a winning single pays
stake × price, rounded down to the penny (RULES.md, "Round payouts down to the
currency's minor unit"); there is no withdrawal in this race, so no Rule 4.
SQLite and PostgreSQL (``ledger_url``).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
import pytest

from clients.client import OddsStream, SportsbookClient
from rsocket_server.auth import token_hash
from sportsbook_core.catalogue import MarketStatus
from tests.testkit.data import betfair_market
from tests.testkit.live_server import LiveServer, live_server

RECORDING = "flumine_1.197931750.jsonl"
MARKET = "1.197931750"
SPEED = 16.0
STAKE = 500  # £5.00
DEPOSIT = 100_000


def _winner_in_the_recording() -> str:
    """The runner the raw recording's closing definition marks WINNER (read here, not
    through the product's adapter)."""
    winners: set[str] = set()
    for line in betfair_market(RECORDING).read_text(encoding="utf-8").splitlines():
        for change in json.loads(line).get("mc") or ():
            definition = change.get("marketDefinition") or {}
            if definition.get("status") == "CLOSED":
                winners = {str(r["id"]) for r in definition["runners"] if r["status"] == "WINNER"}
    assert len(winners) == 1
    return winners.pop()


@pytest.fixture
async def looping(ledger_url: str) -> AsyncIterator[LiveServer]:
    async with live_server(
        database=ledger_url,
        replay_files=[betfair_market(RECORDING)],
        speed=SPEED,
        loop_replay=True,
    ) as server:
        assert server.server.betting is not None
        store = server.server.betting.store
        await store.create_account("punter", "GBP", token_hash("punter-token"), {})
        await store.deposit("punter", DEPOSIT, "seed")
        yield server


async def _status(live: LiveServer, wanted: MarketStatus, timeout: float) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while True:
            book = live.hub.book(MARKET)
            if book is not None and book.status is wanted:
                return
            await asyncio.sleep(0.01)


async def _bet(client: SportsbookClient, selection: str, request_id: str) -> dict[str, Any]:
    """A single at the live price, ANY price change accepted (held 5 s: the race's start
    time is past, so it counts as in play)."""
    market = await client.market(MARKET)
    assert market["status"] == "OPEN"
    [price] = [s["price"] for s in market["selections"] if s["selectionId"] == selection]
    leg = {"marketId": MARKET, "selectionId": selection, "price": price}
    body = {
        "requestId": request_id,
        "type": "SINGLE",
        "legs": [leg],
        "stake": STAKE,
        "acceptPriceChange": "ANY",
    }
    receipt: dict[str, Any] = await client.request("bets.place", body)
    assert receipt["status"] == "ACCEPTED", receipt
    return receipt


def _decimal_odds(wire: str) -> Fraction:
    """A wire price: decimal odds ("3.5"), or UK fractional odds ("5/2" = 1 + 5/2)."""
    if "/" in wire:
        numerator, denominator = wire.split("/")
        return 1 + Fraction(int(numerator), int(denominator))
    return Fraction(Decimal(wire))


def _return_of(receipt: dict[str, Any]) -> int:
    """Stake × struck price, rounded down to the penny (a winning single, no Rule 4)."""
    return math.floor(receipt["totalStake"] * _decimal_odds(receipt["legs"][0]["price"]))


async def _settled_events(stream: OddsStream, bet_id: str, timeout: float) -> list[Any]:  # noqa: ASYNC109
    """account.stream events up to and including the BALANCE after ``bet_id`` settled."""
    seen: list[Any] = []
    async with asyncio.timeout(timeout):
        async for raw in stream:
            event = orjson.loads(raw)
            if event["kind"] == "heartbeat":
                continue
            seen.append(event)
            if (event["kind"], event.get("reason"), event.get("betId")) == (
                "BALANCE",
                "SETTLEMENT",
                bet_id,
            ):
                return seen
    raise AssertionError(f"no settlement of {bet_id}: {seen}")


async def test_a_bet_placed_after_the_replay_loops_is_settled_by_the_same_result(
    looping: LiveServer,
) -> None:
    winner = _winner_in_the_recording()
    assert winner == "37947503"
    async with SportsbookClient.connect(looping.url("tcp"), "punter-token") as client:
        stream = client.stream("account.stream", b"{}", window=64, raw=True)
        await _status(looping, MarketStatus.OPEN, 5)

        # Pass 1: a bet on the winner while the market is open; settled by the feed (v1).
        first = await _bet(client, winner, "pass-1")
        first_return = _return_of(first)
        events = await _settled_events(stream, first["betId"], 20)
        settled = [
            e["bet"] for e in events if e["kind"] == "BET" and e["bet"]["status"] == "SETTLED"
        ]
        assert [(b["betId"], b["settlement"]["return"]) for b in settled] == [
            (first["betId"], first_return)
        ]
        balance = DEPOSIT - STAKE + first_return
        assert events[-1]["balance"] == balance
        await _status(looping, MarketStatus.SETTLED, 5)

        # Pass 2: the loop relists the market: OPEN again, and it takes bets.
        await _status(looping, MarketStatus.OPEN, 15)
        second = await _bet(client, winner, "pass-2")
        assert second["balanceAfter"] == balance - STAKE
        second_return = _return_of(second)
        events = await _settled_events(stream, second["betId"], 25)
        settled = [
            e["bet"] for e in events if e["kind"] == "BET" and e["bet"]["status"] == "SETTLED"
        ]
        # Only the second bet: the first is not settled (nor paid) again.
        assert [(b["betId"], b["settlement"]["return"]) for b in settled] == [
            (second["betId"], second_return)
        ]
        assert [leg["result"] for leg in settled[0]["legs"]] == ["WIN"]
        balance = balance - STAKE + second_return
        assert events[-1] == {
            "kind": "BALANCE",
            "balance": balance,
            "currency": "GBP",
            "reason": "SETTLEMENT",
            "betId": second["betId"],
        }
        await _status(looping, MarketStatus.SETTLED, 5)
        stream.cancel()

        assert (await client.request("account.get"))["balance"] == balance
        bets = (await client.request("bets.list", {"status": "SETTLED"}))["bets"]
        assert sorted((b["betId"], b["settlement"]["return"]) for b in bets) == sorted(
            [(first["betId"], first_return), (second["betId"], second_return)]
        )
    results = looping.server.results
    assert results is not None and not results.unsettled
