"""Settlement through a real server (issue #5): ``trader.settle``, account.stream BET and
BALANCE frames, odds.stream status SETTLED, B17, the ``sportsbook settle`` CLI.

Real RSocket connections on a real ledger, SQLite and PostgreSQL (``ledger_url``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from clients.client import OddsStream, SportsbookClient, SportsbookError
from rsocket_server.account_stream import AccountEvents
from rsocket_server.auth import token_hash
from sportsbook_core.results import RunnerOutcome, RunnerResult, SettlementInstruction
from tests.testkit.builders import definition_change, market_definition
from tests.testkit.live_server import REPO, LiveServer, live_server

FUTURE = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
TRADER = "trader-token"


@pytest.fixture
async def live(ledger_url: str) -> AsyncIterator[LiveServer]:
    async with live_server(database=ledger_url) as server:
        assert server.server.betting is not None
        store = server.server.betting.store
        await store.create_account("T", "GBP", token_hash(TRADER), {"trader": True})
        definition = replace(market_definition("1.1"), start_time=FUTURE)
        await server.publish(definition_change(definition, s11="3", s12="2", s13="5"))
        await server.settled()
        yield server


def _events(live: LiveServer) -> AccountEvents:
    assert live.server.betting is not None
    return live.server.betting.events


async def _account(live: LiveServer, account_id: str, balance: int = 10_000) -> str:
    assert live.server.betting is not None
    store = live.server.betting.store
    token = f"token-{account_id}"
    await store.create_account(account_id, "GBP", token_hash(token), {})
    await store.deposit(account_id, balance, "seed")
    return token


def _bet(request_id: str, selection: str = "11", price: str = "3") -> dict[str, Any]:
    leg = {"marketId": "1.1", "selectionId": selection, "price": price}
    return {"requestId": request_id, "type": "SINGLE", "legs": [leg], "stake": 1000}


async def _next_event(stream: OddsStream, timeout: float = 5.0) -> bytes:  # noqa: ASYNC109
    while True:
        frame: bytes = await stream.next_frame(timeout)
        if frame != b'{"kind":"heartbeat"}':
            return frame


async def _settle(live: LiveServer, **body: Any) -> dict[str, Any]:
    async with SportsbookClient.connect(live.url("tcp"), TRADER) as trader:
        return dict(await trader.request("trader.settle", {"marketId": "1.1", **body}))


async def test_settlement_sends_bet_and_balance_frames_and_odds_status_settled(
    live: LiveServer,
) -> None:
    """A won bet (10 at 3.0): account.stream gets BET (SETTLED, return 30.00, the stored
    receipt exactly) then BALANCE reason SETTLEMENT 12,000; odds.stream gets status SETTLED."""
    token = await _account(live, "A")
    async with SportsbookClient.connect(live.url("tcp"), token) as client:
        placed = await client.request("bets.place", _bet("a1"))
        assert (placed["status"], placed["maxPayout"]) == ("ACCEPTED", 25_000_000)
        stream = client.stream("account.stream", b"{}", window=64, raw=True)
        odds = client.odds_stream(market_ids=["1.1"], window=64)
        assert (await odds.next_frame(5))["kind"] == "snapshot"
        async with asyncio.timeout(5):
            while not _events(live).open_markets.ready("A"):
                await asyncio.sleep(0.005)
        report = await _settle(live, winners=["11"])
        assert report == {
            "marketId": "1.1",
            "version": 1,
            "outcome": "settled",
            "betsSettled": 1,
            "betsOpen": 0,
            "detail": None,
        }
        stored = await client.request("bets.get", {"betId": placed["betId"]})
        assert stored["status"] == "SETTLED"
        assert stored["settlement"]["return"] == 3000
        # The BET frame carries the stored receipt exactly (key order aside: jsonb sorts).
        assert orjson.loads(await _next_event(stream)) == {"kind": "BET", "bet": stored}
        assert await _next_event(stream) == orjson.dumps(
            {
                "kind": "BALANCE",
                "balance": 12_000,
                "currency": "GBP",
                "reason": "SETTLEMENT",
                "betId": placed["betId"],
            }
        )
        statuses = []
        async with asyncio.timeout(5):
            while "SETTLED" not in statuses:
                frame = await odds.next_frame(5)
                for market in frame.get("markets", ()):
                    statuses.append(market["changes"].get("status"))
        # CLOSED then SETTLED, applied together: one merged change (PROTOCOL.md, conflation).
        assert statuses == ["SETTLED"]
        assert _events(live).open_markets.accounts_on("1.1") == []  # the bet is closed
        assert (await client.request("account.get"))["balance"] == 12_000


async def test_b17_settled_while_disconnected_shows_settled_on_reconnect(
    live: LiveServer,
) -> None:
    """B17: bet #7 open, the client away, #7 settled WON 30.00; on reconnect bets.get and
    bets.list show it SETTLED 30.00 and account.stream's load no longer counts it open."""
    token = await _account(live, "A")
    async with SportsbookClient.connect(live.url("tcp"), token) as client:
        placed = await client.request("bets.place", _bet("b17"))
    await _settle(live, winners=["11"])
    async with SportsbookClient.connect(live.url("tcp"), token) as client:
        got = await client.request("bets.get", {"betId": placed["betId"]})
        assert (got["status"], got["settlement"]["return"]) == ("SETTLED", 3000)
        listed = await client.request("bets.list", {"status": "SETTLED"})
        assert [(b["betId"], b["settlement"]["return"]) for b in listed["bets"]] == [
            (placed["betId"], 3000)
        ]
        assert (await client.request("bets.list", {"status": "OPEN"}))["bets"] == []
        client.stream("account.stream", b"{}", window=8, raw=True)
        async with asyncio.timeout(5):
            while not _events(live).open_markets.ready("A"):
                await asyncio.sleep(0.005)
        assert _events(live).open_markets.accounts_on("1.1") == []


async def test_trader_settle_is_refused_for_non_traders(live: LiveServer) -> None:
    token = await _account(live, "A")
    async with SportsbookClient.connect(live.url("tcp"), token) as client:
        with pytest.raises(SportsbookError) as refused:
            await client.request("trader.settle", {"marketId": "1.1", "winners": ["11"]})
    assert refused.value.code == "FORBIDDEN"
    async with SportsbookClient.connect(live.url("tcp"), None) as anonymous:
        with pytest.raises(SportsbookError) as anon:
            await anonymous.request("trader.settle", {"marketId": "1.1", "winners": ["11"]})
    assert anon.value.code == "UNAUTHENTICATED"


async def test_trader_settle_bad_requests_and_a_held_result(live: LiveServer) -> None:
    async with SportsbookClient.connect(live.url("tcp"), TRADER) as trader:
        for body, code in (
            ({"marketId": "9.9", "winners": ["11"]}, "NOT_FOUND"),
            ({"marketId": "1.1", "winners": ["99"]}, "INVALID_REQUEST"),
            ({"marketId": "1.1", "winners": "11"}, "INVALID_REQUEST"),
        ):
            with pytest.raises(SportsbookError) as refused:
                await trader.request("trader.settle", body)
            assert refused.value.code == code
        held = await trader.request("trader.settle", {"marketId": "1.1", "winners": ["11", "12"]})
        assert held["outcome"] == "held"
        tie = await trader.request(
            "trader.settle",
            {"marketId": "1.1", "winners": ["11", "12"], "deadHeat": {"11": 2, "12": 2}},
        )
        assert (tie["outcome"], tie["version"]) == ("settled", 1)
        again = await trader.request("trader.settle", {"marketId": "1.1", "winners": ["12"]})
        assert (again["outcome"], again["version"]) == ("resettled", 2)


async def test_the_same_correction_again_is_replayed_and_a_used_version_refused(
    live: LiveServer,
) -> None:
    """A trader re-sending a correction (a retry) changes nothing and says `replayed`;
    the same version with another result is refused with a clear INVALID_REQUEST and
    changes nothing. 10.00 at 3.0 on 11: v1 (11 won) pays 30.00 → 12,000; v2 (12 won)
    reverses it → 9,000 (RULES.md win single; docs/SETTLEMENT.md corrections)."""
    token = await _account(live, "A")
    async with SportsbookClient.connect(live.url("tcp"), token) as client:
        assert (await client.request("bets.place", _bet("c1")))["status"] == "ACCEPTED"
        assert (await _settle(live, winners=["11"]))["outcome"] == "settled"
        assert (await client.request("account.get"))["balance"] == 12_000
        corrected = await _settle(live, winners=["12"], version=2)
        assert (corrected["outcome"], corrected["betsSettled"]) == ("resettled", 1)
        again = await _settle(live, winners=["12"], version=2)
        assert (again["outcome"], again["version"], again["betsSettled"]) == ("replayed", 2, 0)
        with pytest.raises(SportsbookError) as refused:
            await _settle(live, winners=["13"], version=2)
        assert refused.value.code == "INVALID_REQUEST"
        assert str(refused.value.message) == (
            "market 1.1 v2 was recorded with another result: "
            "leave out --version to send the next one"
        )
        assert (await client.request("account.get"))["balance"] == 9_000


def _feed_result(winner: str, version: int = 1) -> SettlementInstruction:
    runners = tuple(
        RunnerResult(s, RunnerOutcome.WINNER if s == winner else RunnerOutcome.LOSER)
        for s in ("11", "12", "13")
    )
    return SettlementInstruction("1.1", version, runners, datetime.now(UTC), source="feed")


async def test_a_feed_result_after_a_trader_settled_is_held_unless_it_agrees(
    live: LiveServer,
) -> None:
    """The trader settled first (12 won: A's 10.00 on 11 lost → 9,000). The feed then
    closes the market with 11 winning: held for a trader, nothing changes (never silently
    dropped, never applied over the trader). The feed agreeing with the trader's result
    in force (v1, or after a v2 correction) is `replayed`: nothing to do."""
    assert live.server.betting is not None
    service = live.server.betting.settlement
    token = await _account(live, "A")
    async with SportsbookClient.connect(live.url("tcp"), token) as client:
        placed = await client.request("bets.place", _bet("f1"))
        assert (await _settle(live, winners=["12"]))["outcome"] == "settled"
        held = await service.settle(_feed_result("11"))
        assert (held.outcome, held.version) == ("held", 1)
        assert held.detail == (
            "the feed's result differs from the one recorded: "
            "market 1.1 v1 was recorded with another result"
        )
        agrees = await service.settle(_feed_result("12"))
        assert (agrees.outcome, agrees.bets_settled) == ("replayed", 0)
        assert (await _settle(live, winners=["13"]))["outcome"] == "resettled"  # v2
        differs = await service.settle(_feed_result("11"))
        assert (differs.outcome, differs.detail) == (
            "held",
            "the feed's result differs from the trader's v2 in force: settle by hand to apply it",
        )
        same = await service.settle(_feed_result("13"))
        assert (same.outcome, same.version) == ("replayed", 2)
        stored = await client.request("bets.get", {"betId": placed["betId"]})
        assert (stored["status"], stored["settlement"]["return"]) == ("SETTLED", 0)
        assert (await client.request("account.get"))["balance"] == 9_000


async def test_sportsbook_settle_cli_end_to_end(live: LiveServer) -> None:
    """``sportsbook settle 1.1 --winner 11``: one line, exit 0; a non-trader: one error
    line, exit 2 (the server refused)."""
    token = await _account(live, "A")
    async with SportsbookClient.connect(live.url("tcp"), token) as client:
        await client.request("bets.place", _bet("cli"))

    async def cli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "clients.cli",
            "settle",
            "1.1",
            "--url",
            live.url("tcp"),
            *args,
            cwd=REPO,
            env=dict(os.environ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    refused = await cli("--winner", "11", "--token", token)
    assert refused == (
        2,
        "",
        "error: FORBIDDEN: trader.settle is for trader accounts only\n",
    )
    done = await cli("--winner", "11", "--token", TRADER)
    assert done == (0, "SETTLED 1.1 v1: 1 bet settled\n", "")
    assert (await cli("--token", TRADER))[0] == 2  # no runner named
