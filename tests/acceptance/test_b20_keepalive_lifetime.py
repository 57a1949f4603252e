"""Case B20: keepalive interval vs. max lifetime.

A client whose keepalive interval is not shorter than the server's max lifetime
would be dropped every lifetime for ever; the server refuses such a SETUP with
a clear reason instead. A well-configured idle stream stays open.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from rsocket.error_codes import ErrorCode
from rsocket.frame import ErrorFrame, KeepAliveFrame, PayloadFrame

from rsocket_server.transport_guard import LIVE_SESSIONS
from tests.testkit import raw_rsocket as raw
from tests.testkit.builders import definition_change, market_definition
from tests.testkit.live_server import live_server


async def test_b20_setup_with_interval_30s_over_lifetime_20s_is_rejected_tcp() -> None:
    """B20: interval 30 s, server lifetime 20 s → REJECTED_SETUP, then the server closes."""
    async with live_server(max_lifetime_s=20.0) as live:
        reader, writer = await asyncio.open_connection("127.0.0.1", live.server.tcp_port)
        writer.write(raw.tcp_bytes(raw.setup(keepalive_ms=30_000, lifetime_ms=90_000)))
        await writer.drain()
        frames = await raw.TcpFrameReader().feed(await asyncio.wait_for(reader.read(65536), 5))
        (error,) = frames
        assert isinstance(error, ErrorFrame)
        assert (error.stream_id, error.error_code) == (0, ErrorCode.REJECTED_SETUP)
        assert error.data.decode() == (
            "keepalive interval 30000 ms must be shorter than the max lifetime 20000 ms"
        )
        assert await asyncio.wait_for(reader.read(65536), 5) == b""
        writer.close()


async def test_b20_setup_with_interval_30s_over_lifetime_20s_is_rejected_websocket() -> None:
    """B20 from a browser: the same refusal over WebSocket, and the socket is closed."""
    async with live_server(max_lifetime_s=20.0) as live, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://127.0.0.1:{live.server.http_port}/rsocket") as ws:
            await ws.send_bytes(raw.ws_bytes(raw.setup(keepalive_ms=30_000, lifetime_ms=20_000)))
            message = await ws.receive(timeout=5)
            (error,) = await raw.parse_ws(message.data)
            assert isinstance(error, ErrorFrame)
            assert error.error_code == ErrorCode.REJECTED_SETUP
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


@pytest.mark.slow
async def test_b20_idle_stream_stays_open_120s_with_12_keepalive_round_trips() -> None:
    """B20: interval 10 s, lifetime 30 s → open for 120 s, 12 keepalive round trips, no drop."""
    async with live_server(max_lifetime_s=30.0) as live, aiohttp.ClientSession() as http:
        await live.publish(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4"))
        await live.settled()
        async with http.ws_connect(f"ws://127.0.0.1:{live.server.http_port}/rsocket") as ws:
            await ws.send_bytes(raw.ws_bytes(raw.setup(keepalive_ms=10_000, lifetime_ms=30_000)))
            await ws.send_bytes(raw.ws_bytes(raw.odds_stream(1, b'{"marketIds": ["1.1"]}', 1000)))
            counts = {"keepalive": 0, "payload": 0, "error": 0}

            async def read() -> None:
                async for message in ws:
                    for frame in await raw.parse_ws(message.data):
                        if isinstance(frame, KeepAliveFrame):
                            counts["keepalive"] += 1
                        elif isinstance(frame, PayloadFrame):
                            counts["payload"] += 1
                        elif isinstance(frame, ErrorFrame):
                            counts["error"] += 1

            reader = asyncio.create_task(read())
            for _ in range(12):
                await asyncio.sleep(10)
                await ws.send_bytes(raw.ws_bytes(raw.keepalive(respond=True)))
            await asyncio.sleep(0.5)
            assert not ws.closed
            assert len(LIVE_SESSIONS) == 1
            reader.cancel()
        assert counts["keepalive"] == 12
        assert counts["error"] == 0
        # One snapshot, then a heartbeat at least every 5 s of idle time.
        assert counts["payload"] >= 1 + 120 // 5 - 1
