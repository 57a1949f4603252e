"""Case B27: reactivex with asyncio across threads, and no backpressure in Rx.

(a) A blocking adapter on a worker thread emits one price into an otherwise
idle loop: it must reach the RSocket stream within 100 ms (a non-thread-safe
``call_soon`` would leave it sitting until something else woke the loop).
(b) 10,000 updates/s for 60 s on one market to a client reading 10 msgs/s:
per-market conflation keeps server memory within 50 MB and the last value
delivered is the last value produced.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from clients.book_view import BookView
from clients.client import SportsbookClient
from sportsbook_core.changes import MarketChange
from streams.threaded_feed import run_threaded_feed
from tests.testkit.builders import definition_change, market_definition, price_change
from tests.testkit.live_server import live_server, server_process


async def test_b27a_price_from_worker_thread_reaches_stream_within_100ms() -> None:
    """B27(a): one price from a blocking thread → RSocket subscriber in < 100 ms."""
    emitted_at: dict[str, float] = {}
    go = threading.Event()

    def blocking_source() -> Iterator[MarketChange]:
        yield definition_change(market_definition("1.1"), s11="2", s12="3", s13="4")
        go.wait(10)  # a blocking adapter waiting on its socket
        emitted_at["t"] = time.monotonic()
        yield price_change("1.1", s11="2.02")

    async with live_server() as live:
        feed = asyncio.create_task(run_threaded_feed(blocking_source, lambda m: [m], live.publish))
        async with SportsbookClient.connect(live.url("tcp")) as client:
            async with client.odds_stream(market_ids=["1.1"], window=4) as stream:
                assert (await stream.next_frame(5))["kind"] == "snapshot"
                await asyncio.sleep(0.3)  # the loop is now idle
                go.set()
                frame = await stream.next_frame(5)
                latency = time.monotonic() - emitted_at["t"]
        assert await feed == 2
        assert frame["markets"][0]["changes"] == {
            "selections": [{"selectionId": "11", "price": "2.02"}]
        }
        assert latency < 0.100


async def test_b27_threaded_feed_waits_for_the_bounded_bus() -> None:
    """B27's kind: a worker thread faster than the loop is slowed down, never buffered.

    The producer thread can run at most one bus capacity ahead of the hub.
    """
    async with live_server(bus_capacity=64) as live:
        leads: list[int] = []

        def fast_source() -> Iterator[MarketChange]:
            yield definition_change(market_definition("1.1"), s11="2", s12="3", s13="4")
            for i in range(2000):
                leads.append(live.server.bus.position - live.hub.position)
                yield price_change("1.1", s11=("2.02", "2.04")[i % 2])

        count = await run_threaded_feed(fast_source, lambda m: [m], live.publish)
        await live.settled()
        assert count == 2001
        assert max(leads) <= 64
        assert live.hub.book("1.1").seq == 2001


@pytest.mark.slow
async def test_b27b_10000_updates_per_second_for_60s_to_a_10_per_second_reader() -> None:
    """B27(b): memory within 50 MB of baseline; the last value delivered is the last produced."""
    with server_process("--simulate", "1:10000:60") as server:
        process = psutil.Process(server.process.pid)
        await asyncio.sleep(1.0)
        baseline = process.memory_info().rss
        peak = baseline
        view = BookView()
        reads = 0
        kinds: list[str] = []
        statuses: list[tuple[bool, str | None]] = []
        async with SportsbookClient.connect(server.url("tcp")) as client:
            stream = client.odds_stream(market_ids=["9.000000"], window=1)
            started = time.monotonic()
            while time.monotonic() - started < 62:
                # Once the simulator stops only heartbeats flow: every 5 s, checked each second.
                frame = await stream.next_frame(8)
                kinds.append(frame["kind"])
                if frame["kind"] == "status":
                    statuses.append((frame["feedHealthy"], frame.get("reason")))
                view.apply(frame)
                reads += 1
                peak = max(peak, process.memory_info().rss)
                await asyncio.sleep(0.1)
            for _ in range(3):  # what is left after the simulator stopped
                view.apply(await stream.next_frame(8))
            stream.cancel()
            final = await client.market("9.000000")
        assert peak - baseline < 50 * 1024 * 1024
        assert {s: view.price("9.000000", s) for s in ("1", "2", "3")} == {
            s["selectionId"]: s["price"] for s in final["selections"]
        }
        # ~10 reads a second: conflated, not one frame per update; each a merged delta
        # (the market's newest state), never a snapshot resync after the first.
        assert 500 <= reads <= 640
        assert kinds[0] == "snapshot"
        assert set(kinds[1:]) == {"delta", "heartbeat", "status"}
        # the simulator stops after 60 s: its prices go stale, and the reader is told once
        assert statuses == [(False, "feed ended")]
