"""The web app (issue #6) end to end in headless Chromium against a real server.

A real ``sportsbook serve`` (a subprocess on free ports, a fresh SQLite ledger,
real Betfair recordings replayed at 30x, the built app from clients/web/dist) and
Debian's Chromium driven by playwright-core: clients/web/e2e/web-app.mjs. It
checks that prices on the page change, places a single and an each-way bet,
sees a NONE bet refused for a price change with its reason, finds the bets in My
Bets with the balance down by exactly the stakes, kills the server (SIGKILL) and
sees every price stale and betting disabled, then restarts it and sees the page
reconnect by itself. A second server replays a greyhound race in a loop: a bet on
its winner is settled by the feed's result, and My Bets shows the return and the
balance rises by exactly that. Screenshots go to test-artifacts/web/.

Needs Node.js, ``/usr/bin/chromium`` (``apt-get install chromium``) and the built
app (``make web``); ``make test`` sees to all three. The demo recordings carry no
each-way market, so one real racing recording is replayed with each-way terms
added to its market definition (marketType EACH_WAY, 1/4 odds, 3 places).
"""

from __future__ import annotations

import bz2
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clients.shared_data import recordings_dir
from tests.testkit.live_server import REPO

WEB = REPO / "clients" / "web"
DIST = WEB / "dist"
SCRIPT = WEB / "e2e" / "web-app.mjs"
ARTIFACTS = REPO / "test-artifacts" / "web"
CHROMIUM = Path(os.environ.get("SPORTSBOOK_CHROMIUM", "/usr/bin/chromium"))

EW_SOURCE = "flumine_BASIC-1.132153978.jsonl"  # Ham 1m Hcap, a UK handicap (fractional prices)
EW_MARKET = "1.132153978"
RECORDINGS = (
    "betfair_database_1.145405534.jsonl.bz2",  # football, both teams to score
    "nautilus_1.166811431.jsonl.bz2",  # basketball moneyline
    "flumine_1.197931750.jsonl",  # greyhounds: prices move fast
    "flumine_1.197931751.jsonl",
)
SINGLE_MARKETS = ["1.145405534", "1.166811431"]
SETTLE_RECORDING = "flumine_1.197931750.jsonl"  # Sheffield greyhounds WIN, 6 runners
SETTLE_MARKET = "1.197931750"
SETTLE_SPEED = "10"
E2E_TIMEOUT_S = 150


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (the web app needs Node.js and npm)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)"
    if not (DIST / "index.html").is_file():
        return "the web app is not built: make web"
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        return "clients/web/node_modules is missing: make web (npm ci)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _each_way_recording(target: Path) -> Path:
    """The real recording with each-way terms in every market definition."""
    with (recordings_dir() / EW_SOURCE).open(encoding="utf-8") as source:
        lines = []
        for line in source:
            message = json.loads(line)
            for change in message.get("mc") or ():
                definition = change.get("marketDefinition")
                if definition:
                    definition.update(marketType="EACH_WAY", eachWayDivisor=4.0, numberOfWinners=3)
            lines.append(json.dumps(message, separators=(",", ":")))
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


@dataclass
class Server:
    process: subprocess.Popen[str]
    command: list[str]
    http_port: int


@contextlib.contextmanager
def _serve(tmp_path: Path, *args: str) -> Iterator[Server]:
    """``sportsbook serve`` on free ports with a fresh ledger and the built app."""
    tcp_port, http_port = _free_port(), _free_port()
    command = [
        sys.executable,
        "-m",
        "clients.cli",
        "serve",
        "--tcp-port",
        str(tcp_port),
        "--http-port",
        str(http_port),
        "--ledger",
        str(tmp_path / "ledger.sqlite3"),
        "--web-root",
        str(DIST),
        *args,
    ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited with {process.wait()} before listening")
            if re.search(rf"browser:\s+http://127\.0\.0\.1:{http_port}/", line):
                break
        else:
            raise RuntimeError("server did not print its banner within 30 s")
        yield Server(process, command, http_port)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _run_e2e(server: Server, **env: str) -> str:
    """Run clients/web/e2e/web-app.mjs against ``server``; its output (asserted passing)."""
    missing = _missing()
    if missing is not None:
        pytest.fail(missing, pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        ["node", str(SCRIPT)],
        cwd=WEB,
        env={
            **os.environ,
            "WEB_URL": f"http://127.0.0.1:{server.http_port}/",
            "ARTIFACTS": str(ARTIFACTS),
            "CHROMIUM": str(CHROMIUM),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=E2E_TIMEOUT_S,
        check=False,
    )
    print(run.stdout)  # the steps, their timings and the screenshot paths (pytest -s / -rA)
    assert run.returncode == 0, f"e2e failed (screenshots in {ARTIFACTS}):\n{run.stdout}"
    assert re.search(r"^e2e: \d+ steps passed", run.stdout, re.MULTILINE), run.stdout
    return run.stdout


def test_web_app_end_to_end_in_chromium(tmp_path: Path) -> None:
    """Live prices, a single and an each-way bet, a NONE refusal, My Bets and the
    balance, then SIGKILL: stale and no betting; restart: live again by itself."""
    files = [str(recordings_dir() / name) for name in RECORDINGS]
    files.append(str(_each_way_recording(tmp_path / f"each-way-{EW_MARKET}.jsonl")))
    pidfile = tmp_path / "restarted.pid"
    with _serve(tmp_path, "--speed", "30", "--replay", *files) as server:
        try:
            _run_e2e(
                server,
                SERVER_PID=str(server.process.pid),
                RESTART_CMD=json.dumps(server.command),
                RESTART_PIDFILE=str(pidfile),
                EW_MARKET=EW_MARKET,
                SINGLE_MARKETS=json.dumps(SINGLE_MARKETS),
            )
        finally:
            _stop_restarted(pidfile)


def test_web_app_shows_stale_prices_when_the_feed_ends(tmp_path: Path) -> None:
    """A replay run once, flat out, ends: the server says so (status frame,
    feedHealthy false): the page marks every price stale and refuses to bet,
    while the connection itself stays up."""
    # The first part of a real recording: its market is still open, priced, when the feed ends.
    with bz2.open(recordings_dir() / RECORDINGS[0], "rt", encoding="utf-8") as source:
        head = [line for _, line in zip(range(120), source, strict=False)]
    recording = tmp_path / "first-120-lines.jsonl"
    recording.write_text("".join(head), encoding="utf-8")
    with _serve(tmp_path, "--flat-out", "--once", "--replay", str(recording)) as server:
        _run_e2e(server, E2E_SCENARIO="feed-ended")


def _winner_in(recording: Path) -> str:
    """The runner the raw recording's last CLOSED definition marks WINNER (plain JSON)."""
    winners: list[str] = []
    for line in recording.read_text(encoding="utf-8").splitlines():
        for change in json.loads(line).get("mc") or ():
            definition = change.get("marketDefinition") or {}
            if definition.get("status") == "CLOSED":
                winners = [str(r["id"]) for r in definition["runners"] if r["status"] == "WINNER"]
    assert len(winners) == 1, winners
    return winners[0]


def test_web_app_a_replayed_race_settles_and_the_return_appears(tmp_path: Path) -> None:
    """Issues #5/#6: the Sheffield greyhound race replayed in a loop at 10x (OPEN for
    ~16 s of each ~22 s pass). A £2.00 single on its winner is accepted; the race closes
    and the feed's own result settles it (no trader): My Bets shows it SETTLED with the
    return £2.00 × price rounded down, and the balance rises by exactly that."""
    recording = recordings_dir() / SETTLE_RECORDING
    with _serve(tmp_path, "--speed", SETTLE_SPEED, "--replay", str(recording)) as server:
        _run_e2e(
            server,
            E2E_SCENARIO="settle",
            SETTLE_MARKET=SETTLE_MARKET,
            SETTLE_WINNER=_winner_in(recording),
        )


def _stop_restarted(pidfile: Path) -> None:
    """The script stops the server it restarted; if it died first, stop it here."""
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text(encoding="utf-8"))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
