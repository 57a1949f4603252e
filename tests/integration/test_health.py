"""`GET /health` says why prices are not live; a server stops without error logs."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import aiohttp

from clients.client import SportsbookClient
from rsocket_server.app import ServerConfig, SportsbookServer
from rsocket_server.transport_guard import LIVE_SESSIONS
from sportsbook_core.changes import FeedStatus
from tests.testkit.data import betfair_market


async def _health(server: SportsbookServer) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{server.http_port}/health") as response,
    ):
        body: dict[str, Any] = await response.json()
        return response.status, body


def _expected(server: SportsbookServer, tasks: int, reason: str | None) -> dict[str, Any]:
    return {
        "status": "ok" if reason is None else "degraded",
        "reason": reason,
        "feedHealthy": reason is None,
        "feedError": None,
        "markets": 0,
        "subscriptions": 0,
        "sessions": len(LIVE_SESSIONS),
        "tasks": tasks,  # how many asyncio tasks: not this test's subject
        "framesSent": 0,
        "maxSendQueue": 0,
        "clk": server.hub.clk,
        "pid": os.getpid(),
    }


async def test_a_bus_outage_is_degraded_with_its_reason_and_clears() -> None:
    server = SportsbookServer(ServerConfig(tcp_port=0, http_port=0))
    await server.start(feed=None)
    try:
        server.hub.set_bus_health(False, "bus unreachable")
        status, body = await _health(server)
        assert (status, body) == (200, _expected(server, body["tasks"], "bus unreachable"))
        server.hub.set_bus_health(True)
        status, body = await _health(server)
        assert (status, body) == (200, _expected(server, body["tasks"], None))
    finally:
        await server.stop()


async def test_a_feed_status_without_a_reason_is_degraded_as_feed_unhealthy() -> None:
    server = SportsbookServer(ServerConfig(tcp_port=0, http_port=0))
    await server.start(feed=None)
    try:
        await server.bus.publish(FeedStatus(0, healthy=False))
        await server.hub.wait_position(server.bus.position)
        status, body = await _health(server)
        assert (status, body) == (200, _expected(server, body["tasks"], "feed unhealthy"))
    finally:
        await server.stop()


async def test_a_replay_that_ends_leaves_prices_stale_not_healthy() -> None:
    """Fresh-user walkthrough: `serve --once` finished its replay and /health stayed ok
    while bets were accepted at frozen prices. A feed that ends is 'feed ended': degraded."""
    recording = betfair_market("flumine_1.197931750.jsonl")
    config = ServerConfig(
        tcp_port=0, http_port=0, replay_files=[recording], speed=None, loop_replay=False
    )
    server = SportsbookServer(config)
    await server.start()
    try:
        async with asyncio.timeout(30):
            while server.hub.feed_reason != "feed ended":
                await asyncio.sleep(0.05)
        status, body = await _health(server)
        assert (status, body["status"], body["reason"], body["feedHealthy"], body["markets"]) == (
            200,
            "degraded",
            "feed ended",
            False,
            1,
        )
    finally:
        await server.stop()


async def test_a_subscriber_arriving_while_prices_are_stale_is_told_at_once() -> None:
    """Second walkthrough: only subscribers that saw the health change got a status
    frame; one connecting later saw OPEN markets with normal-looking prices."""
    server = SportsbookServer(ServerConfig(tcp_port=0, http_port=0))
    await server.start(feed=None)
    try:
        server.hub.set_bus_health(False, "feed silent")
        async with SportsbookClient.connect(f"tcp://127.0.0.1:{server.tcp_port}") as client:
            stream = client.odds_stream(market_ids=["1.1"], window=16)
            frame = await stream.next_frame(5)
            assert (frame["kind"], frame["feedHealthy"], frame["reason"]) == (
                "status",
                False,
                "feed silent",
            )
            stream.cancel()
    finally:
        await server.stop()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


async def _stop_with_a_client_connected() -> None:
    server = SportsbookServer(ServerConfig(tcp_port=0, http_port=0))
    await server.start(feed=None)
    connection = SportsbookClient.connect(f"tcp://127.0.0.1:{server.tcp_port}")
    client = await connection.__aenter__()
    await client.events()
    await server.stop()
    await connection.__aexit__(None, None, None)


def test_stopping_with_a_tcp_client_connected_logs_no_cancelled_error() -> None:
    """The loop ends right after stop(): a connection task left pending was cancelled
    then, and asyncio logged ``CancelledError`` with a traceback."""
    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    try:
        asyncio.run(_stop_with_a_client_connected())
    finally:
        root.removeHandler(records)
    assert records.lines == []
