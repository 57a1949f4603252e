"""A client that requests 1,000,000 frames and stops reading costs bounded memory.

Measured on rsocket-py as shipped: the send queue grew to 618 MB in 7 s. Here
the server runs in a subprocess replaying every demo recording flat out, and
its RSS may grow by less than 20 MB while such a client sits on each
transport, and other subscribers keep getting frames.
"""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import psutil
import pytest

from clients.client import SportsbookClient
from clients.shared_data import demo_recordings
from tests.testkit import raw_rsocket as raw
from tests.testkit.live_server import ServerProcess, server_process

LIMIT = 20 * 1024 * 1024
WATCH_S = 8.0


async def _health(http: aiohttp.ClientSession, server: ServerProcess) -> dict[str, object]:
    async with http.get(f"http://127.0.0.1:{server.http_port}/health") as response:
        return dict(await response.json())


async def _position(http: aiohttp.ClientSession, server: ServerProcess) -> int:
    return int(str((await _health(http, server))["clk"]).rpartition(".")[2])


async def _warm(http: aiohttp.ClientSession, server: ServerProcess) -> None:
    """Wait for two whole replay passes: caches and history are then at their size."""
    async with asyncio.timeout(90):
        while await _position(http, server) < 24_000:
            await asyncio.sleep(0.2)


async def _growth_while(
    process: psutil.Process, still_served: str, http: aiohttp.ClientSession, server: ServerProcess
) -> tuple[int, int]:
    """RSS growth and the largest send queue seen over WATCH_S s while another client streams."""
    baseline = process.memory_info().rss
    peak = baseline
    frames = 0
    queue = 0
    async with SportsbookClient.connect(still_served) as client:
        stream = client.odds_stream(window=64, raw=True)
        started = time.monotonic()
        while time.monotonic() - started < WATCH_S:
            await stream.next_frame(5)
            frames += 1
            if frames % 50 == 0:
                peak = max(peak, process.memory_info().rss)
                queue = max(queue, int(str((await _health(http, server))["maxSendQueue"])))
        stream.cancel()
    assert frames > 100, "other subscribers must keep being served"
    return max(peak, process.memory_info().rss) - baseline, queue


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_stalled_reader_requesting_a_million_grows_server_rss_under_20mb(
    transport: str,
) -> None:
    with server_process("--flat-out", "--replay", *map(str, demo_recordings())) as server:
        process = psutil.Process(server.process.pid)
        async with aiohttp.ClientSession() as http:
            await _warm(http, server)
            if transport == "tcp":
                stalled = socket.socket()
                stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stalled.connect(("127.0.0.1", server.tcp_port))
                stalled.sendall(raw.tcp_bytes(raw.setup(keepalive_ms=5000, lifetime_ms=60_000)))
                stalled.sendall(raw.tcp_bytes(raw.odds_stream(1, b"{}", 1_000_000)))
                growth, queue = await _growth_while(process, server.url("tcp"), http, server)
                stalled.close()
            else:
                async with http.ws_connect(server.url("ws"), max_msg_size=0) as ws:
                    await ws.send_bytes(
                        raw.ws_bytes(raw.setup(keepalive_ms=5000, lifetime_ms=60_000))
                    )
                    await ws.send_bytes(raw.ws_bytes(raw.odds_stream(1, b"{}", 1_000_000)))
                    # never ws.receive()
                    growth, queue = await _growth_while(process, server.url("ws"), http, server)
            assert server.process.poll() is None
        assert growth < LIMIT, f"server RSS grew {growth / 1e6:.1f} MB"
        # The mechanism, not just the symptom: the stalled connection's send queue
        # never passes the guard's high-water mark (2 frames, + 1 in flight).
        assert queue <= 3, f"send queue reached {queue} frames"
