"""``serve --workers N``: N processes on one port pair, all fed from Kafka (issue 3, item 5)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import aiohttp
import orjson
import psutil
import pytest

from clients.cli import main
from clients.client import SportsbookClient
from rsocket_server.workers import restart_delay
from tests.integration.test_kafka_bus import GREYHOUNDS, _publish_all
from tests.testkit.live_server import REPO

pytestmark = pytest.mark.usefixtures("restore_logging")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is gone for our purpose)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _all_gone(pids: set[int], within_s: float = 10.0) -> list[int]:
    """The pids still alive after polling for up to ``within_s``."""
    deadline = asyncio.get_running_loop().time() + within_s
    while any(_alive(pid) for pid in pids) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    return sorted(pid for pid in pids if _alive(pid))


def _kill_quietly(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _health_pid(http_port: int) -> int:
    connector = aiohttp.TCPConnector(force_close=True)  # a new connection each time
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(f"http://127.0.0.1:{http_port}/health") as response,
    ):
        body: dict[str, Any] = await response.json()
        return int(body["pid"])


async def _supervisor(
    bootstrap: str, topic: str, tcp_port: int, http_port: int
) -> asyncio.subprocess.Process:
    command = [sys.executable, "-m", "clients.cli", "serve", "--workers", "2"]
    command += ["--kafka", bootstrap, "--topic", topic]
    command += ["--tcp-port", str(tcp_port), "--http-port", str(http_port)]
    return await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


async def _next_ready(process: asyncio.subprocess.Process) -> tuple[int, int]:
    """(worker index, pid) from the next ``sportsbook: worker N ready (pid P)`` line
    (skipping the supervisor's banner, printed once all workers are ready)."""
    assert process.stdout is not None
    line = "  "
    while line.startswith("  ") or line.startswith("sportsbook: 2 workers"):
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line, "stdout closed: the process exited"
    head, _, pid = line.rstrip(")\n").partition(" ready (pid ")
    assert head.startswith("sportsbook: worker "), line
    return int(head.removeprefix("sportsbook: worker ")), int(pid)


async def _ready_workers(process: asyncio.subprocess.Process) -> dict[int, int]:
    """Worker index → pid once both workers are ready."""
    return dict([await _next_ready(process), await _next_ready(process)])


async def _terminate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _supervisor_logs(stderr: bytes) -> list[dict[str, Any]]:
    records = [orjson.loads(line) for line in stderr.splitlines() if line.startswith(b"{")]
    return [r for r in records if r["logger"] == "sportsbook.workers"]


async def test_two_workers_share_the_ports_serve_the_same_prices_and_stop_together(
    kafka_broker: Any, price_topic: str
) -> None:
    await _publish_all(kafka_broker.bootstrap, price_topic, GREYHOUNDS)
    tcp_port, http_port = _free_port(), _free_port()
    supervisor = await _supervisor(kafka_broker.bootstrap, price_topic, tcp_port, http_port)
    try:
        workers = await _ready_workers(supervisor)
        assert sorted(workers) == [0, 1]
        pids = {await _health_pid(http_port) for _ in range(40)}
        assert pids == set(workers.values())  # the kernel spread 40 connections over both
        seqs = []
        for _ in range(10):
            async with SportsbookClient.connect(f"tcp://127.0.0.1:{tcp_port}") as client:
                seqs.append((await client.market("1.197931750"))["seq"])
        assert seqs == [80] * 10
        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(supervisor.wait(), 30) == 0
        assert [pid for pid in pids if _alive(pid)] == []
    finally:
        await _terminate(supervisor)


async def test_a_worker_that_dies_again_soon_after_its_restart_is_restarted_with_back_off(
    kafka_broker: Any, price_topic: str
) -> None:
    tcp_port, http_port = _free_port(), _free_port()
    supervisor = await _supervisor(kafka_broker.bootstrap, price_topic, tcp_port, http_port)
    killed: list[int] = []
    try:
        workers = await _ready_workers(supervisor)
        for _ in range(2):  # the second dies well within 15 s of its (re)start
            killed.append(workers[0])
            os.kill(workers[0], signal.SIGKILL)
            index, workers[0] = await _next_ready(supervisor)
            assert index == 0
            assert workers[0] not in killed
        assert supervisor.returncode is None
        assert {await _health_pid(http_port) for _ in range(40)} == set(workers.values())
        supervisor.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(supervisor.communicate(), 30)
        assert supervisor.returncode == 0
        restarts = [
            (r["msg"], r["level"], r["worker"], r["pid"], r["code"], r["restart_in_s"])
            for r in _supervisor_logs(stderr)
        ]
        assert restarts == [
            ("worker died; restarting", "error", 0, killed[0], -9, 0.5),
            ("worker died; restarting", "error", 0, killed[1], -9, 1.0),
        ]
        assert await _all_gone(set(workers.values())) == []
    finally:
        await _terminate(supervisor)


@pytest.mark.parametrize(
    ("previous", "uptime_s", "delay"),
    [
        (None, 0.0, 0.5),  # the first restart
        (0.5, 1.0, 1.0),  # died again soon: doubles
        (16.0, 1.0, 30.0),  # capped
        (30.0, 1.0, 30.0),
        (30.0, 60.0, 0.5),  # stayed up a minute: starts over
    ],
)
def test_restart_back_off_doubles_to_30_s_and_resets_after_a_minute_up(
    previous: float | None, uptime_s: float, delay: float
) -> None:
    assert restart_delay(previous, uptime_s) == delay


@pytest.mark.parametrize("taken", ["tcp", "http"])
async def test_a_port_another_process_holds_even_with_reuseport_is_refused_before_any_worker(
    taken: str,
) -> None:
    tcp_port, http_port = _free_port(), _free_port()
    port = tcp_port if taken == "tcp" else http_port
    with socket.socket() as stranger:
        # SO_REUSEPORT would let the workers share the port with it, silently.
        stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        stranger.bind(("127.0.0.1", port))
        stranger.listen()
        supervisor = await _supervisor("127.0.0.1:1", "prices", tcp_port, http_port)
        try:
            out, err = await asyncio.wait_for(supervisor.communicate(), 60)
        finally:
            await _terminate(supervisor)
    assert (supervisor.returncode, out.decode(), err.decode()) == (
        3,
        "",
        f"error: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another server, or a worker left from an earlier run?)\n",
    )


async def test_workers_do_not_outlive_a_supervisor_killed_with_sigkill(
    kafka_broker: Any, price_topic: str
) -> None:
    tcp_port, http_port = _free_port(), _free_port()
    supervisor = await _supervisor(kafka_broker.bootstrap, price_topic, tcp_port, http_port)
    pids: set[int] = set()
    try:
        pids = set((await _ready_workers(supervisor)).values())
        supervisor.kill()  # not waited for yet: a surviving worker would hold its stderr open
        assert await _all_gone(pids) == []
    finally:
        _kill_quietly(pids)
        await _terminate(supervisor)


async def test_a_worker_stops_when_its_parent_changes_without_a_death_signal(
    kafka_broker: Any, price_topic: str
) -> None:
    """The fallback for PR_SET_PDEATHSIG: a parent that set none (here a shell)."""
    worker = [sys.executable, "-m", "clients.cli", "serve", "--worker-index", "0"]
    worker += ["--kafka", kafka_broker.bootstrap, "--topic", price_topic]
    worker += ["--tcp-port", str(_free_port()), "--http-port", str(_free_port())]
    shell = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        'SPORTSBOOK_SUPERVISOR_PID=$$ "$@" & wait',
        "sh",
        *worker,
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    pid = 0
    try:
        _, pid = await _next_ready(shell)
        shell.kill()  # not waited for yet: the worker shares its stdout
        assert await _all_gone({pid}) == []
    finally:
        _kill_quietly({pid} - {0})
        await _terminate(shell)


@pytest.mark.slow  # a worker gives up on the broker after its 30 s connect timeout
async def test_workers_that_cannot_reach_kafka_stop_the_supervisor_instead_of_looping() -> None:
    supervisor = await _supervisor("127.0.0.1:1", "prices", _free_port(), _free_port())
    try:
        out, err = await asyncio.wait_for(supervisor.communicate(), 120)
    finally:
        await _terminate(supervisor)
    lines = err.decode().splitlines()
    assert supervisor.returncode == 3
    assert out == b""
    assert lines[-1] in {
        f"error: worker {i} exited with 3 while starting; stopped all workers" for i in (0, 1)
    }
    assert any(line.startswith("error: cannot reach Kafka at 127.0.0.1:1: ") for line in lines)
    assert _supervisor_logs(err) == []  # no restart


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
            "`sportsbook feed replay --demo|FILE… --kafka HOST:PORT`\n",
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
