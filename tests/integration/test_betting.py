"""``bets.*`` and ``account.*`` over real RSocket connections, on a real ledger.

Every test runs on SQLite and on PostgreSQL (``ledger_url``). Field cases B09,
B12, B13 end to end; security (PROTOCOL.md Authentication);
the in-play delay; admission control. Prices come from the live hub.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clients.client import SportsbookClient, SportsbookError
from rsocket_server.auth import token_hash
from rsocket_server.betting import BettingConfig
from sportsbook_core.catalogue import MarketDefinition, MarketStatus
from tests.testkit.builders import definition_change, market_definition, price_change
from tests.testkit.live_server import LiveServer, live_server

FUTURE = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


@dataclass
class Book:
    live: LiveServer

    async def account(self, account_id: str, balance: int) -> str:
        """A funded account; returns its token."""
        assert self.live.server.betting is not None
        store = self.live.server.betting.store
        token = f"token-{account_id}"
        await store.create_account(account_id, "GBP", token_hash(token), {})
        await store.deposit(account_id, balance, "seed")
        return token

    async def market(self, market_id: str = "1.1", **prices: str) -> None:
        definition = replace(market_definition(market_id), start_time=FUTURE)
        await self.live.publish(definition_change(definition, **prices))
        await self.live.settled()

    async def move(self, market_id: str = "1.1", **prices: str) -> None:
        await self.live.publish(price_change(market_id, **prices))
        await self.live.settled()

    def url(self) -> str:
        return self.live.url("tcp")


@pytest.fixture
async def book(ledger_url: str) -> AsyncIterator[Book]:
    """A live server on a fresh ledger: SQLite, then PostgreSQL (the same behaviour)."""
    config = BettingConfig(default_in_play_delay_ms=300)
    async with live_server(database=ledger_url, betting=config) as live:
        yield Book(live)


def _single(request_id: str, price: str, stake: int = 1000, **extra: Any) -> dict[str, Any]:
    leg = {"marketId": "1.1", "selectionId": "11", "price": price}
    return {"requestId": request_id, "type": "SINGLE", "legs": [leg], "stake": stake, **extra}


async def _balance(client: SportsbookClient) -> int:
    return int((await client.request("account.get"))["balance"])


async def test_b09_price_changed_then_retry_at_the_live_price(book: Book) -> None:
    """B09: shown 2.10, moved to 1.95: PRICE_CHANGED with 1.95, no debit; retry at 1.95 pays
    19.50 for 10; a move to 2.20 with accept-higher is taken at 2.20, potential 22.00."""
    token = await book.account("A", 10_000)
    await book.market(s11="2.1", s12="3")
    await book.move(s11="1.95")
    async with SportsbookClient.connect(book.url(), token) as client:
        refused = await client.request("bets.place", _single("r1", "2.1"))
        assert (refused["status"], refused["code"], refused["betId"]) == (
            "REJECTED",
            "PRICE_CHANGED",
            None,
        )
        assert [p["price"] for p in refused["details"]["prices"]] == ["1.95"]
        assert await _balance(client) == 10_000
        retry = await client.request("bets.place", _single("r2", "1.95"))
        assert (retry["status"], retry["potentialReturn"], retry["balanceAfter"]) == (
            "ACCEPTED",
            1950,
            9000,
        )
        await book.move(s11="2.2")
        higher = await client.request(
            "bets.place", _single("r3", "2.1", acceptPriceChange="HIGHER")
        )
        assert (higher["status"], higher["legs"][0]["price"], higher["potentialReturn"]) == (
            "ACCEPTED",
            "2.2",
            2200,
        )
        assert await _balance(client) == 8000


async def test_b12_idempotency_keys(book: Book) -> None:
    """B12: same body, keys K1 and K2: two bets, 100 → 80; K1 again: the same bet, still 80;
    K1 with another body: IDEMPOTENCY_CONFLICT."""
    token = await book.account("A", 10_000)
    await book.market(s11="2")
    async with SportsbookClient.connect(book.url(), token) as client:
        first = await client.request("bets.place", _single("K1", "2"))
        second = await client.request("bets.place", _single("K2", "2"))
        assert first["betId"] != second["betId"]
        assert await _balance(client) == 8000
        again = await client.request("bets.place", _single("K1", "2"))
        assert again == first
        assert await _balance(client) == 8000
        conflict = await client.request("bets.place", _single("K1", "2", stake=500))
        assert (conflict["status"], conflict["code"]) == ("REJECTED", "IDEMPOTENCY_CONFLICT")
        assert await _balance(client) == 8000


async def test_b13_two_racing_bets_cannot_overdraw(book: Book) -> None:
    """B13: balance 100, 80 on A and 80 on B at once: exactly one accepted, balance 20."""
    token = await book.account("A", 10_000)
    await book.market(s11="2", s12="3")
    async with SportsbookClient.connect(book.url(), token) as client:
        bodies = [_single("a", "2", 8000), {**_single("b", "3", 8000)}]
        bodies[1]["legs"] = [{"marketId": "1.1", "selectionId": "12", "price": "3"}]
        receipts = await asyncio.gather(*(client.request("bets.place", b) for b in bodies))
        assert sorted((r["status"], r["code"]) for r in receipts) == [
            ("ACCEPTED", None),
            ("REJECTED", "INSUFFICIENT_FUNDS"),
        ]
        assert await _balance(client) == 2000


async def test_anonymous_cannot_bet_and_one_account_never_sees_another(book: Book) -> None:
    """PROTOCOL.md Authentication: anonymous reads odds only; a token is one account."""
    token_a = await book.account("A", 10_000)
    token_b = await book.account("B", 10_000)
    await book.market(s11="2")
    async with SportsbookClient.connect(book.url()) as anonymous:
        for route, body in (("bets.place", _single("x", "2")), ("account.get", {})):
            with pytest.raises(SportsbookError) as error:
                await anonymous.request(route, body)
            assert error.value.code == "UNAUTHENTICATED"
    async with SportsbookClient.connect(book.url(), token_a) as client_a:
        bet = await client_a.request("bets.place", _single("a1", "2"))
    async with SportsbookClient.connect(book.url(), token_b) as client_b:
        with pytest.raises(SportsbookError) as error:
            await client_b.request("bets.get", {"betId": bet["betId"]})
        assert error.value.code == "NOT_FOUND"
        assert (await client_b.request("bets.list", {}))["bets"] == []
        for bad in ({"requestId": "m", "type": "SINGLE", "legs": [], "stake": 10}, {"x": 1}):
            with pytest.raises(SportsbookError) as error:
                await client_b.request("bets.place", bad)
            assert error.value.code == "INVALID_REQUEST"
        with pytest.raises(SportsbookError) as error:  # account.get takes no fields
            await client_b.request("account.get", {"accountId": "A"})
        assert (error.value.code, error.value.message) == (
            "INVALID_REQUEST",
            "account.get takes no fields: ['accountId']",
        )
        assert await _balance(client_b) == 10_000
    async with SportsbookClient.connect(book.url(), token_a) as client_a:
        got = await client_a.request("bets.get", {"betId": bet["betId"]})
        assert (got["betId"], got["status"], got["totalStake"]) == (bet["betId"], "ACCEPTED", 1000)


async def test_a_held_bet_accepted_after_its_delay_sends_no_second_balance(
    book: Book,
) -> None:
    """PROTOCOL.md account.stream: BALANCE "on every ledger movement". The stake moves
    when the bet is PENDING (10,000 → 9,000); its acceptance after the delay moves
    nothing: BET PENDING, BALANCE 9,000, BET ACCEPTED, then only heartbeats."""
    token = await book.account("A", 10_000)
    await _in_play_market(book)
    async with SportsbookClient.connect(book.url(), token) as client:
        events = client.stream("account.stream", b"{}", window=64)
        receipt = await client.request("bets.place", _single("h1", "2"))
        assert receipt["status"] == "ACCEPTED"
        seen = [await events.next_frame(5) for _ in range(3)]
        assert [(e["kind"], e.get("bet", {}).get("status"), e.get("balance")) for e in seen] == [
            ("BET", "PENDING", None),
            ("BALANCE", None, 9000),
            ("BET", "ACCEPTED", None),
        ]
        later: list[Any] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                while True:
                    later.append(await events.next_frame())
        assert [e for e in later if e.get("kind") != "heartbeat"] == []


async def test_in_play_delay_holds_then_rechecks_against_the_market_as_it_is_then(
    book: Book,
) -> None:
    """Issue 4 item 3: betDelayMs > 0 → PENDING, then suspended during the delay → REJECTED,
    the stake refunded; the account stream tells the story (BET PENDING, BALANCE, MARKET
    SUSPENDED, BET REJECTED)."""
    token = await book.account("A", 10_000)
    definition = await _in_play_market(book)
    async with SportsbookClient.connect(book.url(), token) as client:
        events = client.stream("account.stream", b"{}", window=64)
        placing = asyncio.create_task(client.request("bets.place", _single("d1", "2")))
        pending = await events.next_frame(5)
        assert (pending["kind"], pending["bet"]["status"]) == ("BET", "PENDING")
        assert (await events.next_frame(5))["balance"] == 9000
        suspended = replace(definition, status=MarketStatus.SUSPENDED)
        await book.live.publish(definition_change(suspended, s11="2"))
        receipt = await placing
        assert (receipt["status"], receipt["code"], receipt["balanceAfter"]) == (
            "REJECTED",
            "MARKET_SUSPENDED",
            10_000,
        )
        market = {"kind": "MARKET", "marketId": "1.1", "status": "SUSPENDED"}
        assert await events.next_frame(5) == market  # PROTOCOL: the bet is open on 1.1
        final = await events.next_frame(5)
        assert (final["kind"], final["bet"]["status"]) == ("BET", "REJECTED")
        assert await _balance(client) == 10_000
        listed = (await client.request("bets.list", {"status": "ALL"}))["bets"]
        assert [(b["betId"], b["status"]) for b in listed] == [
            (pending["bet"]["betId"], "REJECTED")
        ]


async def test_a_flood_from_one_client_is_rate_limited_and_never_starves_another(
    book: Book,
) -> None:
    """Issue 4 item 7: 5,000 bets at once from one client: each ACCEPTED or RATE_LIMITED,
    none lost or hanging; a second client's bet is still served."""
    flood_token = await book.account("A", 10_000_000)
    other_token = await book.account("B", 10_000)
    await book.market(s11="2")
    async with SportsbookClient.connect(book.url(), flood_token) as flood:

        async def one(i: int) -> str:
            try:
                receipt = await flood.request("bets.place", _single(f"f{i}", "2", 100))
            except SportsbookError as error:
                return error.code
            return str(receipt["status"])

        outcomes = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(5000))), 120)
        accepted = outcomes.count("ACCEPTED")
        assert accepted + outcomes.count("RATE_LIMITED") == 5000
        assert 1 <= accepted < 5000
        assert await _balance(flood) == 10_000_000 - 100 * accepted
    async with SportsbookClient.connect(book.url(), other_token) as other:
        receipt = await other.request("bets.place", _single("b1", "2"))
        assert receipt["status"] == "ACCEPTED"


async def _in_play_market(book: Book) -> MarketDefinition:
    """Market 1.1 in play with a 300 ms bet delay, selection 11 at 2.0."""
    definition = replace(
        market_definition("1.1", bet_delay_ms=300, in_play=True), start_time=FUTURE
    )
    await book.live.publish(definition_change(definition, s11="2"))
    await book.live.settled()
    return definition


async def test_one_connection_is_served_concurrently(book: Book) -> None:
    """A bet held for its in-play delay does not hold up the connection's next request:
    request-responses run side by side (rsocket-py would otherwise serve them in turn)."""
    token = await book.account("A", 10_000)
    await _in_play_market(book)
    async with SportsbookClient.connect(book.url(), token) as client:
        placing = asyncio.create_task(client.request("bets.place", _single("d1", "2")))
        await asyncio.sleep(0.05)
        assert await _balance(client) == 9000  # the stake is held while the bet is PENDING
        assert not placing.done()
        receipt = await asyncio.wait_for(placing, 5)
        assert (receipt["status"], receipt["balanceAfter"]) == ("ACCEPTED", 9000)


async def test_a_pending_bet_is_resolved_when_its_connection_goes(book: Book) -> None:
    """The connection closes during the in-play delay: the task answering it is cancelled,
    the bet (its stake debited) is still resolved, never left PENDING."""
    token = await book.account("A", 10_000)
    await _in_play_market(book)
    assert book.live.server.betting is not None
    store = book.live.server.betting.store
    async with SportsbookClient.connect(book.url(), token) as client:
        placing = asyncio.create_task(client.request("bets.place", _single("d1", "2")))
        for _ in range(200):
            bets, _ = await store.list_bets("A", "PENDING", 10, None)
            if bets:
                break
            await asyncio.sleep(0.01)
        assert [b.status for b in bets] == ["PENDING"]
    placing.cancel()
    with contextlib.suppress(BaseException):
        await placing
    for _ in range(300):
        bet = await store.get_bet("A", bets[0].bet_id)
        if bet is not None and bet.status != "PENDING":
            break
        await asyncio.sleep(0.01)
    assert bet is not None and bet.status == "ACCEPTED"
    assert await store.audit() == []


async def test_an_in_play_delay_holds_no_place_in_the_admission_bound(ledger_url: str) -> None:
    """max_in_flight=1: two in-play bets at once are both written PENDING and accepted
    after the delay (a bet's place is released once it is durable, before its delay)."""
    config = BettingConfig(default_in_play_delay_ms=300, max_in_flight=1)
    async with live_server(database=ledger_url, betting=config) as live:
        book = Book(live)
        token = await book.account("A", 10_000)
        await _in_play_market(book)
        async with SportsbookClient.connect(book.url(), token) as client:
            receipts = await asyncio.gather(
                *(client.request("bets.place", _single(f"h{i}", "2")) for i in range(2))
            )
            assert [r["status"] for r in receipts] == ["ACCEPTED"] * 2
            assert await _balance(client) == 8000


async def test_answers_without_a_task_are_the_same_answers(book: Book) -> None:
    """Once an account's terms are cached a placement runs without a task (the
    store's future completes the answer): refusals, replays, conflicts and
    malformed bets answer as before, and every place in the bound comes back."""
    token = await book.account("A", 10_000)
    await book.market(s11="2", s12="3")
    assert book.live.server.betting is not None
    placement = book.live.server.betting.placement
    async with SportsbookClient.connect(book.url(), token) as client:
        first = await client.request("bets.place", _single("t1", "2"))
        assert (first["status"], first["balanceAfter"]) == ("ACCEPTED", 9000)
        moved = await client.request("bets.place", _single("t2", "2.5"))
        assert (moved["status"], moved["code"]) == ("REJECTED", "PRICE_CHANGED")
        again = await client.request("bets.place", _single("t1", "2"))
        assert (again["status"], again["betId"]) == ("ACCEPTED", first["betId"])
        conflict = await client.request("bets.place", _single("t1", "2", stake=2000))
        assert (conflict["status"], conflict["code"]) == ("REJECTED", "IDEMPOTENCY_CONFLICT")
        broke = await client.request("bets.place", _single("t3", "2", stake=20_000))
        assert (broke["status"], broke["code"]) == ("REJECTED", "INSUFFICIENT_FUNDS")
        with pytest.raises(SportsbookError) as error:
            await client.request("bets.place", {"requestId": "t4", "type": "SINGLE"})
        assert error.value.code == "INVALID_REQUEST"
        many = await asyncio.gather(
            *(client.request("bets.place", _single(f"m{i}", "2", 100)) for i in range(20))
        )
        assert [r["status"] for r in many] == ["ACCEPTED"] * 20
        assert await _balance(client) == 7000
    assert placement.in_flight == 0
