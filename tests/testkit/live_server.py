"""A real server in this process (or a subprocess) for transport tests.

Tests drive the feed by publishing normalised changes straight onto the bus,
so every expected price is known exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from rsocket_server.app import ServerConfig, SportsbookServer
from sportsbook_core.changes import FeedStatus, MarketChange

REPO = Path(__file__).resolve().parents[2]
TRANSPORTS = ("tcp", "ws")


@dataclass
class LiveServer:
    server: SportsbookServer

    def url(self, transport: str) -> str:
        if transport == "tcp":
            return f"tcp://127.0.0.1:{self.server.tcp_port}"
        return f"ws://127.0.0.1:{self.server.http_port}/rsocket"

    @property
    def hub(self):  # type: ignore[no-untyped-def]
        return self.server.hub

    async def publish(self, *items: MarketChange | FeedStatus) -> None:
        for item in items:
            await self.server.bus.publish(item)

    async def settled(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - test helper
        """Wait until the hub has applied everything published so far."""
        target = self.server.bus.position
        async with asyncio.timeout(timeout):
            while self.server.hub.position < target:
                await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def live_server(**config: object) -> AsyncIterator[LiveServer]:
    settings: dict[str, object] = {"tcp_port": 0, "http_port": 0}
    settings.update(config)
    server = SportsbookServer(ServerConfig(**settings))  # type: ignore[arg-type]
    await server.start(feed=None)
    try:
        yield LiveServer(server)
    finally:
        await server.stop()


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    tcp_port: int
    http_port: int

    def url(self, transport: str) -> str:
        if transport == "tcp":
            return f"tcp://127.0.0.1:{self.tcp_port}"
        return f"ws://127.0.0.1:{self.http_port}/rsocket"


@contextlib.contextmanager
def server_process(*args: str) -> Iterator[ServerProcess]:
    """``sportsbook serve --tcp-port 0 --http-port 0 …`` in a subprocess."""
    command = [
        sys.executable,
        "-m",
        "clients.cli",
        "serve",
        "--tcp-port",
        "0",
        "--http-port",
        "0",
        *args,
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        ports: dict[str, int] = {}
        assert process.stdout is not None
        while len(ports) < 2:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited with {process.wait()}")
            if match := re.search(r"(ws|tcp)://127\.0\.0\.1:(\d+)", line):
                ports[match.group(1)] = int(match.group(2))
        yield ServerProcess(process, ports["tcp"], ports["ws"])
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
