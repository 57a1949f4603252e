"""``serve --workers N``: N processes on one port pair, all fed from Kafka (issue 3, item 5)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from clients.cli import main
from clients.client import SportsbookClient
from tests.integration.test_kafka_bus import GREYHOUNDS, _publish_all
from tests.testkit.live_server import REPO

pytestmark = pytest.mark.usefixtures("restore_logging")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _health_pid(http_port: int) -> int:
    connector = aiohttp.TCPConnector(force_close=True)  # a new connection each time
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(f"http://127.0.0.1:{http_port}/health") as response,
    ):
        body: dict[str, Any] = await response.json()
        return int(body["pid"])


async def test_two_workers_share_the_ports_serve_the_same_prices_and_stop_together(
    kafka_broker: Any, price_topic: str
) -> None:
    await _publish_all(kafka_broker.bootstrap, price_topic, GREYHOUNDS)
    tcp_port, http_port = _free_port(), _free_port()
    command = [sys.executable, "-m", "clients.cli", "serve", "--workers", "2"]
    command += ["--kafka", kafka_broker.bootstrap, "--topic", price_topic]
    command += ["--tcp-port", str(tcp_port), "--http-port", str(http_port)]
    supervisor = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert supervisor.stdout is not None
        ready = [await asyncio.wait_for(supervisor.stdout.readline(), 60) for _ in range(2)]
        assert sorted(line.decode().split(" (pid")[0] for line in ready) == [
            "sportsbook: worker 0 ready",
            "sportsbook: worker 1 ready",
        ]
        pids = {await _health_pid(http_port) for _ in range(40)}
        assert len(pids) == 2  # the kernel spread 40 connections over both (2^-39 to fail)
        seqs = []
        for _ in range(10):
            async with SportsbookClient.connect(f"tcp://127.0.0.1:{tcp_port}") as client:
                seqs.append((await client.market("1.197931750"))["seq"])
        assert seqs == [80] * 10
        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(supervisor.wait(), 30) == 0
        assert [pid for pid in pids if _alive(pid)] == []
    finally:
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["serve", "--workers", "2"],
            "error: --workers needs --kafka: every worker must read the same price bus\n",
        ),
        (
            ["serve", "--workers", "2", "--kafka", "127.0.0.1:1", "--tcp-port", "0"],
            "error: --workers needs fixed ports (the workers share them)\n",
        ),
        (
            ["serve", "--kafka", "127.0.0.1:1", "--simulate", "1:10"],
            "error: serve --kafka reads prices from the bus; publish them with "
            "`sportsbook feed replay FILE… --kafka HOST:PORT`\n",
        ),
    ],
)
def test_scale_out_options_that_cannot_work_are_refused_up_front(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr() == ("", message)


@pytest.mark.parametrize("address", ["localhost", "host:0", ":9092", "a:1,b"])
def test_a_kafka_address_that_is_not_host_port_is_a_usage_error(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--kafka", address])
    assert exit_info.value.code == 2
    assert f"expected HOST:PORT[,HOST:PORT…], got {address!r}" in capsys.readouterr().err
