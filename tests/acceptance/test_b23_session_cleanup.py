"""Case B23: sessions and stream handlers end with their client.

500 browser clients each subscribe to 3 odds streams and vanish without
CANCEL (the TCP connection is aborted). The server must dispose every
session and stream, stop fan-out to them, return to its task baseline and
not grow over repeated cycles.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import psutil
import pytest
from rsocket.frame import PayloadFrame

from rsocket_server.transport_guard import LIVE_SESSIONS
from tests.testkit import raw_rsocket as raw
from tests.testkit.builders import definition_change, market_definition
from tests.testkit.live_server import live_server, server_process

CLIENTS = 500
STREAMS = 3
CYCLES = int(__import__("os").environ.get("B23_CYCLES", "10"))
LIFETIME_S = 10.0
# Cycles before RSS is measured: the allocator's arenas grow once to hold 500
# sessions (~10 MB, in the first or second cycle on this machine) and then stay
# flat over 25 cycles; a leak grows every cycle, which the 10 measured ones catch.
WARMUP_CYCLES = 3


async def _health(http: aiohttp.ClientSession, port: int) -> dict[str, int]:
    async with http.get(f"http://127.0.0.1:{port}/health") as response:
        return dict(await response.json())


async def _keepalives(ws: aiohttp.ClientWebSocketResponse) -> None:
    """What a browser's rsocket-js does until the tab vanishes."""
    while True:
        await asyncio.sleep(2)
        await ws.send_bytes(raw.ws_bytes(raw.keepalive(respond=False)))


async def _browser(
    http: aiohttp.ClientSession,
    url: str,
    ready: list[tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None]]],
) -> None:
    ws = await http.ws_connect(url)
    await ws.send_bytes(raw.ws_bytes(raw.setup(keepalive_ms=2000, lifetime_ms=10_000)))
    for i in range(STREAMS):
        body = b'{"marketIds": ["9.%06d"]}' % i
        await ws.send_bytes(raw.ws_bytes(raw.odds_stream(1 + 2 * i, body, 10)))
    seen: set[int] = set()
    while len(seen) < STREAMS:
        message = await ws.receive(timeout=20)
        seen.update(
            f.stream_id for f in await raw.parse_ws(message.data) if isinstance(f, PayloadFrame)
        )
    ready.append((ws, asyncio.create_task(_keepalives(ws))))


async def _wait_for(
    http: aiohttp.ClientSession, port: int, limit_s: float, **expected: int
) -> dict[str, int]:
    deadline = time.monotonic() + limit_s
    while True:
        health = await _health(http, port)
        if all(health[k] == v for k, v in expected.items()) or time.monotonic() > deadline:
            return health
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_b23_500_clients_vanish_without_cancel_10_cycles() -> None:
    """B23: sessions 0, handlers 0, tasks at baseline ±5, 0 frames after close, RSS within 10 %."""
    with server_process("--simulate", "3:3000", "--max-lifetime", str(LIFETIME_S)) as server:
        process = psutil.Process(server.process.pid)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            await asyncio.sleep(1.0)
            baseline = await _health(http, server.http_port)
            rss: list[int] = []
            for _cycle in range(WARMUP_CYCLES + CYCLES):
                browsers: list[tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None]]] = []
                gate = asyncio.Semaphore(100)

                async def one(gate: asyncio.Semaphore = gate, browsers: list = browsers) -> None:  # type: ignore[type-arg]
                    async with gate:
                        await _browser(http, server.url("ws"), browsers)

                await asyncio.gather(*(one() for _ in range(CLIENTS)))
                live = await _health(http, server.http_port)
                assert (live["sessions"], live["subscriptions"]) == (CLIENTS, CLIENTS * STREAMS)
                for ws, keepalives in browsers:
                    keepalives.cancel()
                    ws._conn.transport.abort()  # type: ignore[union-attr]
                after = await _wait_for(
                    http, server.http_port, LIFETIME_S + 5, sessions=0, subscriptions=0
                )
                assert (after["sessions"], after["subscriptions"]) == (0, 0)
                await asyncio.sleep(0.5)
                sent = (await _health(http, server.http_port))["framesSent"]
                await asyncio.sleep(1.0)
                settled = await _health(http, server.http_port)
                assert settled["framesSent"] == sent
                assert abs(settled["tasks"] - baseline["tasks"]) <= 5
                rss.append(process.memory_info().rss)
                for ws, _ in browsers:
                    await ws.close()
        measured = rss[WARMUP_CYCLES:]
        assert measured[-1] <= measured[0] * 1.10, [r // 1_000_000 for r in rss]


async def test_b23_half_open_client_is_closed_after_keepalive_lifetime() -> None:
    """B23's kind without a FIN: no KEEPALIVE for a lifetime → session and streams disposed."""
    async with live_server(max_lifetime_s=3.0) as live:
        await live.publish(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4"))
        await live.settled()
        reader, writer = await asyncio.open_connection("127.0.0.1", live.server.tcp_port)
        writer.write(raw.tcp_bytes(raw.setup(keepalive_ms=1000, lifetime_ms=3000)))
        writer.write(raw.tcp_bytes(raw.odds_stream(1, b'{"marketIds": ["1.1"]}', 10)))
        await writer.drain()
        await asyncio.sleep(0.3)
        assert (len(LIVE_SESSIONS), live.hub.subscription_count) == (1, 1)
        started = time.monotonic()
        while await asyncio.wait_for(reader.read(65536), 6):
            pass  # read until the server closes the connection
        waited = time.monotonic() - started
        assert 2.0 <= waited <= 3.0 + 1.5
        await asyncio.sleep(0.1)
        assert (len(LIVE_SESSIONS), live.hub.subscription_count) == (0, 0)
        writer.close()
