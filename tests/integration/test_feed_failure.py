"""A feed that dies is reported, never hidden behind a healthy /health."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp

from clients.client import SportsbookClient
from rsocket_server.app import ServerConfig, SportsbookServer
from sportsbook_core.changes import FeedStatus, MarketChange
from tests.testkit.builders import definition_change, market_definition


async def test_a_feed_that_raises_marks_health_degraded_and_tells_subscribers() -> None:
    async def broken_feed(sink: Callable[[MarketChange | FeedStatus], Awaitable[None]]) -> None:
        await sink(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4"))
        await started.wait()
        raise FileNotFoundError(2, "No such file or directory", "/nonexistent.jsonl")

    started = asyncio.Event()
    server = SportsbookServer(ServerConfig(tcp_port=0, http_port=0))
    await server.start(feed=broken_feed)
    try:
        async with SportsbookClient.connect(f"tcp://127.0.0.1:{server.tcp_port}") as client:
            stream = client.odds_stream(market_ids=["1.1"], window=10)
            assert (await stream.next_frame(5))["kind"] == "snapshot"
            started.set()
            frame = await stream.next_frame(5)
            assert {k: frame[k] for k in ("kind", "feedHealthy", "reason")} == {
                "kind": "status",
                "feedHealthy": False,
                "reason": "feed stopped",
            }
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{server.http_port}/health") as response,
        ):
            health = await response.json()
        assert (health["status"], health["feedHealthy"], health["feedError"]) == (
            "degraded",
            False,
            "FileNotFoundError: [Errno 2] No such file or directory: '/nonexistent.jsonl'",
        )
    finally:
        await server.stop()
