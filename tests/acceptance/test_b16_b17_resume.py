"""Cases B16 and B17: reconnect and resume without wiped or missed state.

B16 has two sides: the feed (Betfair resubscribes with clk: deltas must land
on the kept cache; a fresh image replaces it entirely) and our own stream
(a client resuming with its clk keeps its book and gets only what it missed;
when the server cannot resume it sends snapshots that replace everything).
B17: what changed while a client was away shows up in the first message
after it comes back.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from clients.book_view import BookView
from clients.client import SportsbookClient
from sportsbook_core.catalogue import MarketStatus, SelectionStatus
from sportsbook_core.changes import MarketChange
from streams.betfair_esa import BetfairStreamAdapter
from tests.testkit.builders import definition_change, market_definition, price_change
from tests.testkit.live_server import live_server

HOME, AWAY = 47972, 47973


def _esa_definition() -> dict[str, Any]:
    return {
        "eventId": "29012345",
        "eventTypeId": "1",
        "marketType": "MATCH_ODDS",
        "bettingType": "ODDS",
        "marketTime": "2026-12-03T18:00:00.000Z",
        "status": "OPEN",
        "inPlay": False,
        "betDelay": 0,
        "numberOfWinners": 1,
        "version": 1,
        "runners": [
            {"id": HOME, "status": "ACTIVE", "sortPriority": 1},
            {"id": AWAY, "status": "ACTIVE", "sortPriority": 2},
        ],
    }


def _image(clk: str, pt: int, runners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "op": "mcm",
        "ct": "SUB_IMAGE",
        "clk": clk,
        "pt": pt,
        "mc": [{"id": "1.16", "img": True, "marketDefinition": _esa_definition(), "rc": runners}],
    }


def _feed(adapter: BetfairStreamAdapter, messages: list[dict[str, Any]]) -> dict[str, str | None]:
    prices: dict[str, str | None] = {}
    for message in messages:
        for item in adapter.feed(message):
            if isinstance(item, MarketChange):
                if item.image:
                    prices = {}
                prices.update({sid: None if p is None else p.to_wire() for sid, p in item.prices})
    return prices


IMAGE_A = _image("A", 1000, [{"id": HOME, "atb": [[2.0, 50]]}, {"id": AWAY, "atb": [[4.0, 20]]}])
DELTA_B = {
    "op": "mcm",
    "clk": "B",
    "pt": 2000,
    "mc": [{"id": "1.16", "rc": [{"id": HOME, "atb": [[2.0, 0], [2.02, 30]]}]}],
}


def test_b16_feed_resume_delta_lands_on_the_kept_cache() -> None:
    """B16 feed side: RESUB_DELTA at C (away 4.10) on the cache → home 2.02, away 4.10."""
    resub_c = {
        "op": "mcm",
        "ct": "RESUB_DELTA",
        "clk": "C",
        "pt": 3000,
        "mc": [{"id": "1.16", "rc": [{"id": AWAY, "atb": [[4.0, 0], [4.1, 10]]}]}],
    }
    adapter = BetfairStreamAdapter(margin=Decimal(0))
    prices = _feed(adapter, [IMAGE_A, DELTA_B, resub_c])
    assert prices == {str(HOME): "2.02", str(AWAY): "4.1"}


def test_b16_feed_full_image_replaces_the_cache_with_no_leftover_runner() -> None:
    """B16 feed side: an expired token answers with a full image → no leftover prices."""
    image_c = _image("C", 3000, [{"id": HOME, "atb": [[2.04, 10]]}])
    adapter = BetfairStreamAdapter(margin=Decimal(0))
    prices = _feed(adapter, [IMAGE_A, DELTA_B, image_c])
    assert prices == {str(HOME): "2.04", str(AWAY): None}


async def test_b16_stream_resume_keeps_the_client_book() -> None:
    """B16 on our stream: image A (2.00/4.00), delta B (home 2.02), resume at B, delta C (4.10)."""
    async with live_server() as live:
        await live.publish(
            definition_change(market_definition("1.16", selections=("h", "a")), sh="2", sa="4")
        )
        await live.settled()
        view = BookView()
        async with SportsbookClient.connect(live.url("ws")) as client:
            async with client.odds_stream(market_ids=["1.16"], window=4) as stream:
                view.apply(await stream.next_frame(5))
                await live.publish(price_change("1.16", sh="2.02"))
                view.apply(await stream.next_frame(5))
        clk_b = view.clk
        await live.publish(price_change("1.16", sa="4.1"))
        await live.settled()
        async with SportsbookClient.connect(live.url("ws")) as client:
            async with client.odds_stream(market_ids=["1.16"], resume=clk_b, window=4) as stream:
                frame = await stream.next_frame(5)
        assert frame["kind"] == "delta"
        view.apply(frame)
        assert (view.price("1.16", "h"), view.price("1.16", "a")) == ("2.02", "4.1")
        assert view.markets["1.16"].seq == live.hub.book("1.16").seq == 3


async def test_b16_stream_expired_clk_gets_snapshots_that_replace_everything() -> None:
    """B16: when the server cannot resume, the snapshot replaces the book; no leftover runner."""
    async with live_server() as live:
        await live.publish(
            definition_change(
                market_definition("1.16", selections=("h", "a", "d")), sh="2", sa="4", sd="3.4"
            )
        )
        await live.settled()
        view = BookView()
        async with SportsbookClient.connect(live.url("tcp")) as client:
            async with client.odds_stream(market_ids=["1.16"], window=4) as stream:
                view.apply(await stream.next_frame(5))
        # While away the market is redefined without "d".
        await live.publish(
            definition_change(market_definition("1.16", selections=("h", "a")), sh="2.02", sa="4.1")
        )
        await live.settled()
        async with SportsbookClient.connect(live.url("tcp")) as client:
            async with client.odds_stream(
                market_ids=["1.16"], resume="expired.42", window=4
            ) as stream:
                frame = await stream.next_frame(5)
        assert frame["kind"] == "snapshot"
        view.apply(frame)
        assert set(view.markets["1.16"].selections) == {"h", "a"}
        assert (view.price("1.16", "h"), view.price("1.16", "a")) == ("2.02", "4.1")


async def test_b17_market_settled_while_away_shows_in_the_first_message_back() -> None:
    """B17 (odds side): closed with a winner during a 10 s disconnect → first frame back says so.

    The my-bets half of B17 (bet #7 settled, no cash-out retry) belongs to the
    account stream and is tested with bets and settlement.
    """
    definition = market_definition("1.7", selections=("w", "l"))
    async with live_server() as live:
        await live.publish(definition_change(definition, sw="3", sl="1.5"))
        await live.settled()
        view = BookView()
        async with SportsbookClient.connect(live.url("tcp")) as client:
            async with client.odds_stream(market_ids=["1.7"], window=4) as stream:
                view.apply(await stream.next_frame(5))
        clk = view.clk
        closed = market_definition("1.7", selections=("w", "l"), status=MarketStatus.CLOSED)
        runners = tuple(
            s.__class__(
                s.selection_id,
                s.name,
                status=SelectionStatus.WINNER if s.selection_id == "w" else SelectionStatus.LOSER,
                sort_priority=s.sort_priority,
            )
            for s in closed.selections
        )
        closed = closed.__class__(
            **{**{n: getattr(closed, n) for n in closed.__slots__}, "selections": runners}
        )
        await asyncio.sleep(10)
        await live.publish(MarketChange("1.7", 0, closed))
        await live.settled()
        async with SportsbookClient.connect(live.url("tcp")) as client:
            async with client.odds_stream(market_ids=["1.7"], resume=clk, window=4) as stream:
                frame = await stream.next_frame(5)
        view.apply(frame)
        market = view.markets["1.7"]
        assert market.market["status"] == "CLOSED"
        assert {sid: s["status"] for sid, s in market.selections.items()} == {
            "w": "WINNER",
            "l": "LOSER",
        }
        assert (view.price("1.7", "w"), view.price("1.7", "l")) == (None, None)
