"""``odds.stream`` over real RSocket connections, TCP and WebSocket (PROTOCOL.md).

Every test runs on both transports against a real server; the feed is driven
by publishing exact normalised changes onto the bus.
"""

from __future__ import annotations

import asyncio

import pytest

from clients.book_view import BookView
from clients.client import SportsbookClient, SportsbookError
from sportsbook_core.catalogue import MarketStatus
from sportsbook_core.changes import MarketChange
from tests.testkit.builders import definition_change, market_definition, price_change
from tests.testkit.live_server import TRANSPORTS, live_server

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)

LADDER = ["2", "2.02", "2.04", "2.06", "2.08", "2.1", "2.12", "2.14", "2.16", "2.18"]


async def test_snapshot_then_deltas_with_contiguous_seq(transport: str) -> None:
    """PROTOCOL.md odds.stream: a snapshot first, then deltas whose seq grows by one."""
    async with live_server() as live:
        await live.publish(definition_change(market_definition("1.1"), s11="2", s12="3.5", s13="5"))
        await live.settled()
        async with SportsbookClient.connect(live.url(transport)) as client:
            async with client.odds_stream(market_ids=["1.1"], window=64) as stream:
                first = await stream.next_frame(5)
                assert first["kind"] == "snapshot"
                assert first["market"]["seq"] == 1
                assert [(s["selectionId"], s["price"]) for s in first["market"]["selections"]] == [
                    ("11", "2"),
                    ("12", "3.5"),
                    ("13", "5"),
                ]
                for price in LADDER[1:6]:
                    await live.publish(price_change("1.1", s11=price))
                    await live.settled()
                    frame = await stream.next_frame(5)
                    assert frame["kind"] == "delta"
                    (entry,) = frame["markets"]
                    assert entry["changes"] == {
                        "selections": [{"selectionId": "11", "price": price}]
                    }
                assert entry["seq"] == 6


async def test_request_one_at_a_time_always_yields_latest_prices(transport: str) -> None:
    """Backpressure + conflation: with request(1) each frame has the newest price, never stale."""
    async with live_server() as live:
        await live.publish(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4"))
        await live.settled()
        async with SportsbookClient.connect(live.url(transport)) as client:
            async with client.odds_stream(market_ids=["1.1"], window=1) as stream:
                assert (await stream.next_frame(5))["kind"] == "snapshot"
                for round_ in range(3):
                    # Many changes while the client holds no demand beyond one frame.
                    for price in LADDER:
                        await live.publish(price_change("1.1", s11=price, s12=LADDER[-1 - round_]))
                    await live.settled()
                    await asyncio.sleep(0.05)
                    frame = await stream.next_frame(5)
                    prices = {
                        s["selectionId"]: s["price"]
                        for m in frame["markets"]
                        for s in m["changes"]["selections"]
                    }
                    book = live.hub.book("1.1")
                    assert prices["11"] == str(book.price_of("11"))
                    assert prices["11"] in {LADDER[0], LADDER[-1]}


async def test_stalled_subscriber_gets_one_conflated_frame_after_10000_changes(
    transport: str,
) -> None:
    """PROTOCOL.md: while a subscriber cannot take a frame its changes are conflated per market."""
    markets = [f"1.{i}" for i in range(10)]
    async with live_server() as live:
        for market_id in markets:
            await live.publish(
                definition_change(market_definition(market_id), s11="2", s12="3", s13="4")
            )
        await live.settled()
        async with SportsbookClient.connect(live.url(transport)) as client:
            stream = client.odds_stream(market_ids=markets, window=1)
            view = BookView()
            # Take the 10 snapshots one request at a time, then stop requesting.
            for _ in markets:
                view.apply(await stream.next_frame(5))
            sub = next(iter(live.hub._subscriptions.values()))
            sent_before = sub.frames_sent
            # The window re-requests as it consumes: absorb the one outstanding frame first.
            expected: dict[tuple[str, str], str] = {}
            for i in range(10_000):
                market_id = markets[i % 10]
                price = LADDER[(i * 7) % 10]
                await live.publish(price_change(market_id, s11=price, s13=LADDER[i % 10]))
                expected[(market_id, "11")] = price
                expected[(market_id, "13")] = LADDER[i % 10]
            await live.settled(30)
            await asyncio.sleep(0.1)
            frames = []
            while True:
                try:
                    frames.append(await stream.next_frame(0.5))
                except TimeoutError:
                    break
            # At most one frame could be outstanding (window 1) plus the one we request.
            assert sub.frames_sent - sent_before == len(frames)
            assert len(frames) <= 2
            for frame in frames:
                view.apply(frame)
            assert {key: view.price(*key) for key in expected} == expected
            assert len(live.hub._subscriptions) == 1
            stream.cancel()


async def test_cancel_stops_frames_promptly(transport: str) -> None:
    """PROTOCOL.md: cancelling a stream stops its frames at once (queued frames are dropped)."""
    async with live_server() as live:
        await live.publish(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4"))
        await live.settled()
        async with SportsbookClient.connect(live.url(transport)) as client:
            stream = client.odds_stream(market_ids=["1.1"], window=1000)
            assert (await stream.next_frame(5))["kind"] == "snapshot"
            sub = next(iter(live.hub._subscriptions.values()))
            stop = asyncio.Event()

            async def churn() -> None:
                i = 0
                while not stop.is_set():
                    await live.publish(price_change("1.1", s11=LADDER[i % 10]))
                    i += 1
                    if i % 50 == 0:
                        await asyncio.sleep(0.001)

            feeder = asyncio.create_task(churn())
            await stream.next_frame(5)
            stream.cancel()
            async with asyncio.timeout(2):
                while live.hub.subscription_count:
                    await asyncio.sleep(0.005)
            sent_at_cancel = sub.frames_sent
            await asyncio.sleep(0.3)
            stop.set()
            await feeder
            assert sub.frames_sent == sent_at_cancel
            assert sub.closed is True


async def test_resume_from_clk_continues_without_gaps(transport: str) -> None:
    """PROTOCOL.md resume: the missed changes follow from the clk; nothing is skipped."""
    async with live_server() as live:
        await live.publish(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4"))
        await live.publish(definition_change(market_definition("1.2"), s11="5", s12="6", s13="7"))
        await live.settled()
        url = live.url(transport)
        view = BookView()
        async with SportsbookClient.connect(url) as client:
            async with client.odds_stream(market_ids=["1.1", "1.2"], window=8) as stream:
                view.apply(await stream.next_frame(5))
                view.apply(await stream.next_frame(5))
                await live.publish(price_change("1.1", s11="2.02"))
                await live.settled()
                view.apply(await stream.next_frame(5))
        clk = view.clk
        seqs_before = {m: v.seq for m, v in view.markets.items()}
        # Missed while disconnected: two changes on 1.1, one on 1.2.
        await live.publish(
            price_change("1.1", s11="2.04"),
            price_change("1.2", s12="6.2"),
            price_change("1.1", s13="4.1"),
        )
        await live.settled()
        async with (
            SportsbookClient.connect(url) as client,
            client.odds_stream(market_ids=["1.1", "1.2"], resume=clk, window=8) as stream,
        ):
            frame = await stream.next_frame(5)
        assert frame["kind"] == "delta"
        entries = {m["marketId"]: m for m in frame["markets"]}
        assert entries["1.1"]["seq"] == seqs_before["1.1"] + 2
        assert entries["1.1"]["changes"]["selections"] == [
            {"selectionId": "11", "price": "2.04"},
            {"selectionId": "13", "price": "4.1"},
        ]
        assert entries["1.2"] == {
            "marketId": "1.2",
            "seq": seqs_before["1.2"] + 1,
            "changes": {"selections": [{"selectionId": "12", "price": "6.2"}]},
        }
        view.apply(frame)
        assert view.ignored_stale == 0
        assert frame["clk"] == live.hub.clk


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"marketIds": "1.1"}', "marketIds"),
        (b'{"marketIds": [1]}', "marketIds"),
        (b'{"inPlayOnly": "yes"}', "inPlayOnly"),
        (b'{"conflateMs": -1}', "conflateMs"),
        (b'{"conflateMs": 1e309}', "not JSON"),
        (b'{"oddsFormat": "roman"}', "oddsFormat"),
        (b'{"resume": 17}', "resume"),
        (b'{"marketIds": ["' + b"x" * 70_000 + b'"]}', "exceeds"),
    ],
)
async def test_malformed_requests_get_invalid_request_and_connection_lives(
    transport: str, body: bytes, fragment: str
) -> None:
    """PROTOCOL.md Errors: INVALID_REQUEST, never a crash, and the connection carries on."""
    async with live_server() as live:
        await live.publish(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4"))
        await live.settled()
        async with SportsbookClient.connect(live.url(transport)) as client:
            with pytest.raises(SportsbookError) as caught:
                async with client.stream("odds.stream", body) as stream:
                    await stream.next_frame(5)
            assert caught.value.code == "INVALID_REQUEST"
            assert fragment in caught.value.message
            assert live.hub.subscription_count == 0
            market = await client.market("1.1")
            assert market["seq"] == 1


async def test_request_response_errors_per_spec(transport: str) -> None:
    """PROTOCOL.md Errors: unknown route, unknown market, bad body; the connection lives on."""
    async with live_server() as live:
        await live.publish(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4"))
        await live.settled()
        async with SportsbookClient.connect(live.url(transport)) as client:
            with pytest.raises(SportsbookError) as unknown_route:
                await client.request("no.such.route", {})
            assert unknown_route.value.code == "UNKNOWN_ROUTE"
            with pytest.raises(SportsbookError) as not_found:
                await client.market("9.999")
            assert (not_found.value.code, not_found.value.message) == (
                "NOT_FOUND",
                "no market '9.999'",
            )
            with pytest.raises(SportsbookError) as missing:
                await client.request("catalog.market", {})
            assert (missing.value.code, missing.value.message) == (
                "INVALID_REQUEST",
                "marketId is required",
            )
            events = await client.events()
            assert [(e["eventId"], [m["marketId"] for m in e["markets"]]) for e in events] == [
                ("E1", ["1.1"])
            ]


async def test_request_channel_gets_unknown_route_and_connection_lives(transport: str) -> None:
    """PROTOCOL.md Errors: an interaction with no route is UNKNOWN_ROUTE (APPLICATION_ERROR)."""
    async with live_server() as live:
        await live.publish(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4"))
        await live.settled()
        async with SportsbookClient.connect(live.url(transport)) as client:
            with pytest.raises(SportsbookError) as caught:
                async with client.channel("betslip.channel", b"{}") as channel:
                    await channel.next_frame(5)
            assert (caught.value.code, caught.value.message) == (
                "UNKNOWN_ROUTE",
                "no request-channel route 'betslip.channel'",
            )
            assert (await client.market("1.1"))["seq"] == 1


async def test_market_status_and_in_play_reach_subscribers(transport: str) -> None:
    """Lifecycle changes are deltas too: OPEN → SUSPENDED → OPEN (in play) → CLOSED."""
    definition = market_definition("1.1")
    async with live_server() as live:
        await live.publish(definition_change(definition, s11="2", s12="3", s13="4"))
        await live.settled()
        async with SportsbookClient.connect(live.url(transport)) as client:
            async with client.odds_stream(market_ids=["1.1"], window=8) as stream:
                await stream.next_frame(5)
                for status, in_play in (
                    (MarketStatus.SUSPENDED, False),
                    (MarketStatus.OPEN, True),
                    (MarketStatus.CLOSED, True),
                ):
                    definition = definition.__class__(
                        **{**_fields(definition), "status": status, "in_play": in_play}
                    )
                    await live.publish(MarketChange("1.1", 0, definition))
                    await live.settled()
                    frame = await stream.next_frame(5)
                    changes = frame["markets"][0]["changes"]
                    assert changes["status"] == status.value
                assert frame["markets"][0]["seq"] == 4


def _fields(definition: object) -> dict[str, object]:
    return {name: getattr(definition, name) for name in definition.__slots__}  # type: ignore[attr-defined]
