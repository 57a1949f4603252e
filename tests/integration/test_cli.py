"""``sportsbook`` against real sockets: one ``error: …`` line and an exit code, never a hang.

The CLI runs its own event loop (``asyncio.run``), so the in-process server
runs on a loop in a background thread.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from clients.cli import main
from clients.client import ConnectFailed, SportsbookClient
from tests.testkit.builders import definition_change, market_definition
from tests.testkit.live_server import REPO, LiveServer, live_server

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """A real server with market 1.1, on a loop in another thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

    context = live_server()
    live: LiveServer = run(context.__aenter__())
    try:
        run(live.publish(definition_change(market_definition("1.1"), s11="2", s12="3", s13="4")))
        run(live.settled())
        yield live
    finally:
        run(context.__aexit__(None, None, None))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on: bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    started = time.monotonic()
    code = main(argv)
    assert time.monotonic() - started < 5, "must fail fast, not after the connect timeout"
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("transport", ["tcp", "ws"])
@pytest.mark.parametrize("command", [["odds", "--market"], ["market"]])
def test_unknown_market_is_not_found_for_odds_as_for_market(
    server: LiveServer, transport: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*command, "9.999999", "--url", server.url(transport)]
    assert _run(argv, capsys) == (2, "", "error: NOT_FOUND: no market '9.999999'\n")


@pytest.mark.parametrize("transport", ["tcp", "ws"])
@pytest.mark.parametrize("command", [["events"], ["odds", "--market", "1.1"]])
def test_an_unknown_token_is_unauthenticated_not_a_hang(
    server: LiveServer, transport: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """PROTOCOL.md: a token identifies exactly one account; an unknown one is refused at
    SETUP. The CLI says so (exit 2, an error answer), over WebSocket too, and shows no data."""
    argv = [*command, "--token", "bogus", "--url", server.url(transport)]
    assert _run(argv, capsys) == (2, "", "error: UNAUTHENTICATED: unknown bearer token\n")


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_odds_on_a_known_market_shows_it(
    server: LiveServer, transport: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["odds", "--market", "1.1", "--frames", "1", "--format", "fractional"]
    code, out, err = _run([*argv, "--url", server.url(transport)], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "Event E1 — Match Odds  [1.1]"


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_closed_port_is_cannot_reach(
    closed_port: int, transport: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"tcp://127.0.0.1:{closed_port}"
    if transport == "ws":
        url = f"ws://127.0.0.1:{closed_port}/rsocket"
    assert _run(["events", "--url", url], capsys) == (
        3,
        "",
        f"error: cannot reach the server at {url}: connection refused\n",
    )


def test_websocket_path_that_is_not_rsocket_fails_at_once(
    server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"ws://127.0.0.1:{server.server.http_port}/nope"
    assert _run(["events", "--url", url], capsys) == (
        3,
        "",
        f"error: cannot reach the server at {url}: HTTP 404 instead of a WebSocket upgrade "
        "(the RSocket endpoint is ws://HOST:PORT/rsocket)\n",
    )


def test_rsocket_tcp_sent_to_the_http_port_says_so(
    server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"tcp://127.0.0.1:{server.server.http_port}"
    assert _run(["events", "--url", url], capsys) == (
        3,
        "",
        "error: the server closed the connection during setup (is this the RSocket TCP port?)\n",
    )


async def test_websocket_without_an_answer_times_out(busy_port: int) -> None:
    """A listener that never answers the upgrade: ConnectFailed after the connect timeout."""
    url = f"ws://127.0.0.1:{busy_port}/rsocket"
    with pytest.raises(ConnectFailed) as failed:
        async with SportsbookClient.connect(url, connect_timeout=0.3):
            pass
    assert str(failed.value) == f"cannot reach the server at {url}: no answer within 0.3 s"


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_pipe_exits_quietly(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sportsbook events | head -3``: no message, exit 141 like any writer killed by SIGPIPE."""
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["events", "--url", server.url("tcp")]) == 141
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("which", ["tcp", "http"])
def test_a_port_in_use_cannot_listen(
    busy_port: int, which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ports = {"tcp": "0", "http": "0", which: str(busy_port)}
    argv = ["serve", "--no-uvloop", "--simulate", "1:10", "--tcp-port", ports["tcp"]]
    assert _run([*argv, "--http-port", ports["http"]], capsys) == (
        3,
        "",
        f"error: cannot listen on 127.0.0.1:{busy_port}: "
        "address already in use (is another server running?)\n",
    )


def test_serve_on_other_ports_prints_try_with_url_and_takes_log_level_after_serve() -> None:
    command = [sys.executable, "-m", "clients.cli", "serve", "--tcp-port", "0"]
    command += ["--http-port", "0", "--simulate", "1:10", "--log-level", "info"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
    finally:
        process.kill()
        _, err = process.communicate(timeout=10)
    match = re.fullmatch(r"  TCP:       tcp://127\.0\.0\.1:(\d+)\n", lines[3])
    assert match, lines
    url = f"tcp://127.0.0.1:{match.group(1)}"
    assert lines[4] == (
        f"  try:       .venv/bin/sportsbook events --url {url}   then   "
        f".venv/bin/sportsbook odds --market <marketId> --url {url}\n"
    )
    assert '"msg":"listening"' in err
