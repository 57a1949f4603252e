"""Bet placement benchmark (issue #4): durable bets/s through ``bets.place`` over WebSocket,
beside a no-op rsocket-py request-response in the same run.

    .venv/bin/python bench/bets_place.py [--quick] [--out bench/results/bets_place.json]

For each in-flight level (1, 64, 512, 5,000) and each target it starts a fresh
server and a fresh ledger, seeds ``--accounts`` accounts (64; ``betsPerSecond``
1,000,000 so the per-account rate limit stays out of the way, a large deposit
each), and drives ``bets.place`` from one or two client processes
(``bets_place.py client``: ``clients/client.py``'s ``SportsbookClient`` over
WebSocket, one connection per account, the in-flight slots spread over the
connections; each slot sends its next bet as soon as the last is answered — a
closed loop, no retry) for a warm-up and then ``--duration`` seconds:

* ``sqlite``: ``sportsbook serve --simulate 1:5 --database sqlite:////tmp/…/ledger.db``
  (WAL, ``synchronous=FULL``, group commit);
* ``postgresql``: the same with ``--database postgresql://…?search_path=<fresh schema>``
  on a **private, durable** cluster started for the run (``pg.sh`` with its own
  port and state dir, ``PG_DURABLE=1``; the shared ``pg.sh`` instance runs
  with ``fsync=off``), or ``--pg-url`` (its fsync and synchronous_commit are
  recorded; a non-durable server is flagged);
* ``baseline``: ``bets_place.py noop-server``, a tiny rsocket-py server on the
  same transport (RSocket over WebSocket through aiohttp, uvloop, as
  ``rsocket_server/app.py``) whose request-response answers a constant
  receipt-sized payload at once; same client, same levels.

Measured per cell, over the answers that arrive inside the window: accepted
bets/s (a receipt with status ACCEPTED: written durably before it was sent),
RATE_LIMITED/s (the server's admission bound, ``BettingConfig.max_in_flight``
= 64, after a wait of up to ``admission_wait_ms`` = 50 for a place; counted,
never retried unless ``--backoff-ms``), any other answer/s, latency p50/p99 of the
accepted ones (client send → answer, ``CLOCK_MONOTONIC``), CPU % of the
server, the private PostgreSQL cluster, the clients and of the machine's other
processes (the machine is shared); after the cell, the ledger's ACCEPTED bets
against the ACCEPTED receipts the clients got (never fewer: durable).
Prints each cell as it goes and product/baseline ratios at the end; writes a
JSON result (machine, commit, plan). Speed is never asserted (STYLE.md rule 11).
Every process, temp file, schema and private cluster is removed, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import pickle
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(BENCH) not in sys.path:  # run as a script it is there already
    sys.path.insert(0, str(BENCH))
if str(REPO) not in sys.path:  # the product's packages (ledger_store, clients, rsocket_server)
    sys.path.append(str(REPO))

import odds_fanout as fanout  # noqa: E402
from odds_fanout import MONO, RssWatch, log, split  # noqa: E402

THIS = Path(__file__).resolve()
PG_SH = REPO / "infra" / "postgres" / "pg.sh"
TARGETS = ("baseline", "sqlite", "postgresql")
PRODUCT = ("sqlite", "postgresql")
MARKET_ID = "9.000000"  # the simulator's first market (pre-match, selections "1".."3")
STAKE = 100
DEPOSIT = 10**13  # minor units per account: never the limit
ACCOUNT_LIMITS = {"betsPerSecond": 1_000_000}
BAR_BETS_PER_S = 8_000
BAR_P99_MS = 20.0
BAR_FLOOR_BETS_PER_S = 5_000

# What the no-op server answers: the size and shape of a real ACCEPTED receipt
# (379 bytes), so that both sides frame, send and parse the same amount.
NOOP_RECEIPT = json.dumps(
    {
        "betId": "B-000001",
        "requestId": "noop-00000000-0-0",
        "type": "SINGLE",
        "system": None,
        "eachWay": False,
        "status": "ACCEPTED",
        "code": None,
        "message": None,
        "placedAt": "2026-01-01T00:00:00.000Z",
        "legs": [{"marketId": MARKET_ID, "selectionId": "1", "price": "1.95", "result": None}],
        "lines": 1,
        "stakePerLine": STAKE,
        "totalStake": STAKE,
        "potentialReturn": 195,
        "currency": "GBP",
        "balanceAfter": 9_999_999_999_900,
        "settlement": None,
    },
    separators=(",", ":"),
).encode()

CHILDREN: list[subprocess.Popen[str]] = []  # every process this run started, reaped at exit


class Proc(fanout.Proc):
    """odds_fanout's Proc, registered so that nothing outlives the run."""

    def __init__(self, argv: list[str], stderr_path: Path, stdin: bool = False) -> None:
        super().__init__(argv, stderr_path, stdin)
        CHILDREN.append(self.popen)


def reap_children() -> None:
    """Last resort (Ctrl-C twice, a bug in a clean-up): SIGTERM, then SIGKILL, by pid."""
    alive = [p for p in CHILDREN if p.poll() is None]
    for p in alive:
        with contextlib.suppress(OSError):
            p.terminate()
    for p in alive:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


# ------------------------------------------------------------------- plan


@dataclass
class Plan:
    levels: list[int]
    targets: list[str]
    duration_s: float
    warmup_s: float
    grace_s: float
    accounts: int
    client_processes: int
    selections: list[str]
    backoff_ms: float
    profile_level: int | None
    results_dir: Path
    quick: bool


@dataclass
class Ledger:
    """Where one cell's ledger lives (a fresh SQLite file or a fresh PostgreSQL schema)."""

    url: str | None = None
    sqlite_path: Path | None = None
    pg_base: str | None = None
    schema: str | None = None


# --------------------------------------------------------------- postgres


def pg_sh(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    done = subprocess.run(
        [str(PG_SH), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg.sh {' '.join(args)} exited {done.returncode}: {done.stderr[-600:]}")
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnPostgres:
    """A private pg.sh cluster for the run: its own port and state dir, fsync on."""

    def __init__(self) -> None:
        self.port = free_port()
        self.state = Path(f"/tmp/bets_place-pg-{self.port}")
        self.env = {
            **os.environ,
            "PG_PORT": str(self.port),
            "PG_STATE_DIR": str(self.state),
            "PG_DURABLE": "1",
        }
        self.url = ""
        self.started = False

    def start(self) -> str:
        self.started = True
        pg_sh("start", env=self.env)
        self.url = pg_sh("url", env=self.env)
        return self.url

    def postmaster(self) -> psutil.Process | None:
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            pid = int((self.state / "data" / "postmaster.pid").read_text().split()[0])
            return psutil.Process(pid)
        return None

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(Exception):
                pg_sh("reset", env=self.env, timeout=120)  # stop, then delete the state dir


async def _pg_exec(url: str, *statements: str) -> list[Any]:
    import asyncpg  # noqa: PLC0415 - only when PostgreSQL is in the plan

    conn = await asyncpg.connect(url)
    try:
        return [await conn.fetchval(s) for s in statements]
    finally:
        await conn.close()


def pg_settings(url: str) -> dict[str, Any]:
    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
    values = asyncio.run(_pg_exec(url, *(f"SHOW {n}" for n in names)))
    settings = dict(zip(names, values, strict=True))
    settings["durable"] = settings["fsync"] == "on" and settings["synchronous_commit"] != "off"
    return settings


def with_search_path(base: str, schema: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}search_path={schema}"


class PgCpu:
    """CPU seconds of a cluster's processes (the postmaster and every backend)."""

    def __init__(self, postmaster: psutil.Process | None) -> None:
        self.postmaster = postmaster
        self.before: dict[int, tuple[float, float]] = {}

    def _read(self) -> dict[int, tuple[float, float]]:
        if self.postmaster is None:
            return {}
        out = {}
        with contextlib.suppress(psutil.Error):
            for p in [self.postmaster, *self.postmaster.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    out[p.pid] = (p.create_time(), float(t.user + t.system))
        return out

    def start(self) -> None:
        self.before = self._read()

    def percent(self, seconds: float) -> float | None:
        if self.postmaster is None:
            return None
        used = 0.0
        for pid, (created, cpu) in self._read().items():
            before = self.before.get(pid)
            used += cpu - (before[1] if before and before[0] == created else 0.0)
        return 100 * used / seconds


def machine_busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


# ---------------------------------------------------------------- ledger


def seed_accounts(url: str, accounts: int, tag: str) -> list[str]:
    """``accounts`` accounts with a bearer token each, funded; returns the tokens."""

    async def seed() -> list[str]:
        from ledger_store import open_store  # noqa: PLC0415
        from rsocket_server.auth import token_hash  # noqa: PLC0415

        store = await open_store(url)
        tokens = [f"bench-{tag}-{i}" for i in range(accounts)]
        try:

            async def one(i: int, token: str) -> None:
                account_id = f"bench-{i:03d}"
                await store.create_account(account_id, "GBP", token_hash(token), ACCOUNT_LIMITS)
                await store.deposit(account_id, DEPOSIT, "bench-seed")

            await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
        finally:
            await store.close()
        return tokens

    return asyncio.run(seed())


def ledger_accepted(ledger: Ledger) -> int | None:
    """ACCEPTED bets in the ledger (after the server stopped)."""
    query = "SELECT COUNT(*) FROM bets WHERE status = 'ACCEPTED'"
    if ledger.sqlite_path is not None:
        conn = sqlite3.connect(ledger.sqlite_path)
        try:
            return int(conn.execute(query).fetchone()[0])
        finally:
            conn.close()
    if ledger.url is not None and ledger.schema is not None:
        return int(asyncio.run(_pg_exec(ledger.url, query))[0])
    return None


# ------------------------------------------------------------------- cell


def server_argv(target: str, ledger: Ledger) -> list[str]:
    if target == "baseline":
        return [sys.executable, str(THIS), "noop-server", "--http-port", "0"]
    assert ledger.url is not None
    # Exactly `sportsbook serve` (uvloop by default); its stdout names the ports.
    return [
        sys.executable,
        "-m",
        "clients.cli",
        "serve",
        "--simulate",
        "1:5",
        "--tcp-port",
        "0",
        "--http-port",
        "0",
        "--database",
        ledger.url,
    ]


def wait_for_market(http_port: int, timeout: float) -> None:
    """The simulator has listed its market (``/health`` markets ≥ 1)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            url = f"http://127.0.0.1:{http_port}/health"
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.loads(r.read())
            if body.get("markets", 0) >= 1:
                return
            last = str(body)
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"no market after {timeout:g} s: {last}")


def open_ledger(target: str, tmp: Path, pg_base: str | None) -> Ledger:
    if target == "sqlite":
        path = tmp / "ledger.db"
        return Ledger(url=f"sqlite:///{path}", sqlite_path=path)
    if target == "postgresql":
        assert pg_base is not None
        schema = f"bets_place_{uuid.uuid4().hex[:12]}"
        ledger = Ledger(pg_base=pg_base)
        asyncio.run(_pg_exec(pg_base, f'CREATE SCHEMA "{schema}"'))
        ledger.schema = schema
        ledger.url = with_search_path(pg_base, schema)
        return ledger
    return Ledger()


def drop_ledger(ledger: Ledger) -> None:
    if ledger.schema is not None and ledger.pg_base is not None:
        asyncio.run(_pg_exec(ledger.pg_base, f'DROP SCHEMA "{ledger.schema}" CASCADE'))
        ledger.schema = None


def run_cell(
    plan: Plan, target: str, level: int, tmp: Path, pg: OwnPostgres | None, pg_base: str | None
) -> dict[str, Any]:
    connections = min(level, plan.accounts)
    slots = split(level, connections)
    procs = 1 if connections == 1 else min(plan.client_processes, connections)
    out: dict[str, Any] = {
        "target": target,
        "in_flight": level,
        "connections": connections,
        "client_processes": procs,
        "duration_s": plan.duration_s,
        "warmup_s": plan.warmup_s,
        "errors": [],
    }
    started = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    ledger = Ledger()
    server: Proc | None = None
    watch: RssWatch | None = None
    clients: list[Proc] = []
    profiler: subprocess.Popen[bytes] | None = None
    t0 = t1 = 0
    try:
        ledger = open_ledger(target, tmp, pg_base)
        tokens = [f"noop-{tag}-{i}" for i in range(connections)]
        if ledger.url is not None:
            tokens = seed_accounts(ledger.url, plan.accounts, tag)[:connections]
        server = Proc(server_argv(target, ledger), tmp / "server.err")
        watch = RssWatch(server)
        line = server.expect(lambda s: "ws://" in s, 60, "the server's WebSocket line")
        ws_url = line[line.index("ws://") :].split()[0]
        http_port = int(ws_url.rsplit(":", 1)[1].split("/")[0])
        if target != "baseline":
            wait_for_market(http_port, 30)
        out["server_rss_start_mb"] = server.rss() / 2**20
        first = 0
        for i, conns in enumerate(split(connections, procs)):
            argv = [
                sys.executable,
                str(THIS),
                "client",
                "--url",
                ws_url,
                "--tokens",
                ",".join(tokens[first : first + conns]),
                "--slots",
                ",".join(str(n) for n in slots[first : first + conns]),
                "--selections",
                ",".join(plan.selections),
                "--tag",
                f"{tag}-{i}",
                "--backoff-ms",
                str(plan.backoff_ms),
                "--out",
                str(tmp / f"client-{i}.pkl"),
            ]
            first += conns
            clients.append(Proc(argv, tmp / f"client-{i}.err", stdin=True))
        for c in clients:
            c.expect(lambda s: s == "READY", 60, "a client's READY")
        out["setup_s"] = round(time.monotonic() - started, 2)
        t0 = MONO() + int(plan.warmup_s * 1e9)
        t1 = t0 + int(plan.duration_s * 1e9)
        t_end = t1 + int(plan.grace_s * 1e9)
        for c in clients:
            c.send(f"GO {t0} {t1} {t_end}\n")
        log(
            f"  {target} × {level}: {connections} connection(s) in {procs} client process(es), "
            f"ready in {out['setup_s']:.1f} s; warm-up {plan.warmup_s:g} s, "
            f"measuring {plan.duration_s:g} s"
        )
        time.sleep(max(0.0, (t0 - MONO()) / 1e9))
        pg_cpu = PgCpu(pg.postmaster() if pg is not None and target == "postgresql" else None)
        pg_cpu.start()
        cpu0 = server.cpu_seconds()
        ccpu0 = [c.cpu_seconds() for c in clients]
        busy0 = machine_busy()
        w0 = MONO()
        if plan.profile_level == level and target in PRODUCT:
            profiler, path = start_profiler(plan, target, level, server)
            out["profile"] = str(path)
        time.sleep(max(0.0, (t1 - MONO()) / 1e9))
        wall = (MONO() - w0) / 1e9
        out["server_cpu_percent"] = 100 * (server.cpu_seconds() - cpu0) / wall
        out["pg_cpu_percent"] = pg_cpu.percent(wall)
        client_cpu = [
            100 * (c.cpu_seconds() - a) / wall for c, a in zip(clients, ccpu0, strict=True)
        ]
        out["client_cpu_percent_total"] = sum(client_cpu)
        out["client_cpu_percent_max_process"] = max(client_cpu)
        out["machine_busy_percent"] = 100 * (machine_busy() - busy0) / wall
        out["machine_cores"] = psutil.cpu_count()
        ours = out["server_cpu_percent"] + sum(client_cpu) + (out["pg_cpu_percent"] or 0.0)
        out["other_processes_percent"] = max(0.0, out["machine_busy_percent"] - ours)
        for c in clients:
            c.expect(lambda s: s == "DONE", 60 + plan.grace_s, "a client's DONE")
            c.wait(10)
        if profiler is not None:
            profiler.wait(30)
    finally:
        for c in clients:
            c.stop(5)
        if server is not None:
            rc = server.stop(30)
            if watch is not None:
                out["server_rss_peak_mb"] = watch.stop() / 2**20
            if rc not in (0, -signal.SIGTERM):
                out["errors"].append(f"server exit {rc}: {server.tail()}")
            if _count_lines(tmp / "server.err"):
                out["server_log_tail"] = server.tail(4)
        try:
            out["ledger_accepted"] = ledger_accepted(ledger)
        except Exception as exc:
            out["errors"].append(f"ledger count: {type(exc).__name__}: {exc}")
        drop_ledger(ledger)
    _collect(out, tmp, len(clients), t0, t1)
    out["wall_s"] = round(time.monotonic() - started, 2)
    return out


def start_profiler(
    plan: Plan, target: str, level: int, server: Proc
) -> tuple[subprocess.Popen[bytes], Path]:
    path = plan.results_dir / f"profile-bets_place-{target}-{level}.txt"
    argv = [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(server.popen.pid)]
    argv += ["-d", str(max(1, int(plan.duration_s) - 1)), "-f", "raw", "-o", str(path)]
    popen = subprocess.Popen(
        [*argv, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return popen, path


def _count_lines(path: Path) -> int:
    try:
        with path.open(errors="replace") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def percentiles_ms(values: array[int], qs: Sequence[float]) -> list[float | None]:
    if not values:
        return [None for _ in qs]
    ordered = sorted(values)
    n = len(ordered)
    return [ordered[min(n - 1, int(q * n))] / 1e6 for q in qs]


def _collect(out: dict[str, Any], tmp: Path, n_clients: int, t0: int, t1: int) -> None:
    seconds = (t1 - t0) / 1e9
    answers: Counter[str] = Counter()
    accepted_ns = array("q")
    limited_ns = array("q")
    acknowledged = sent = outstanding = 0
    failures: list[str] = []
    for i in range(n_clients):
        try:
            with (tmp / f"client-{i}.pkl").open("rb") as fh:
                data = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            out["errors"].append(f"client {i}: no results ({exc})")
            continue
        answers.update(data["answers"])
        accepted_ns.frombytes(data["accepted_ns"])
        limited_ns.frombytes(data["rate_limited_ns"])
        acknowledged += data["acknowledged"]
        sent += data["sent"]
        outstanding += data["outstanding"]
        failures.extend(data["failures"])
    if not n_clients or seconds <= 0:
        return
    accepted = answers.get("ACCEPTED", 0)
    limited = answers.get("RATE_LIMITED", 0)
    other = {k: v for k, v in answers.items() if k not in ("ACCEPTED", "RATE_LIMITED")}
    p50, p90, p99, p100 = percentiles_ms(accepted_ns, (0.5, 0.9, 0.99, 1.0))
    r50, r99 = percentiles_ms(limited_ns, (0.5, 0.99))
    out.update(
        {
            "accepted_per_s": accepted / seconds,
            "rate_limited_per_s": limited / seconds,
            "other_per_s": sum(other.values()) / seconds,
            "answered_per_s": sum(answers.values()) / seconds,
            "answers_in_window": dict(answers),
            "latency_ms": {"p50": p50, "p90": p90, "p99": p99, "max": p100, "n": accepted},
            "rate_limited_latency_ms": {"p50": r50, "p99": r99, "n": limited},
            "acknowledged_total": acknowledged,
            "sent_total": sent,
            "outstanding_at_end": outstanding,
        }
    )
    if other:
        out["errors"].append(f"answers other than ACCEPTED/RATE_LIMITED: {other}")
    if failures:
        out["errors"].append(f"{len(failures)} slot failure(s), e.g. {failures[0]}")
    in_ledger = out.get("ledger_accepted")
    if in_ledger is not None and in_ledger < acknowledged:
        out["errors"].append(
            f"DURABILITY: {acknowledged} ACCEPTED receipts sent but {in_ledger} in the ledger"
        )


# ----------------------------------------------------------- client process


async def _client_main(args: argparse.Namespace) -> int:
    from clients.client import ConnectFailed, SportsbookClient, SportsbookError  # noqa: PLC0415

    tokens = args.tokens.split(",")
    slots = [int(n) for n in args.slots.split(",")]
    selections = args.selections.split(",")
    backoff = args.backoff_ms / 1000
    loop = asyncio.get_running_loop()
    answers: Counter[str] = Counter()
    accepted_ns = array("q")
    limited_ns = array("q")
    failures: list[str] = []
    totals = {"acknowledged": 0, "sent": 0}
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(SportsbookClient.connect(args.url, token))
            for token in tokens
        ]
        print("READY", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        _, t0_text, t1_text, t_end_text = line.split()
        t0, t1, t_end = int(t0_text), int(t1_text), int(t_end_text)

        async def slot(client: Any, prefix: str, selection: str) -> None:
            body: dict[str, Any] = {
                "requestId": "",
                "type": "SINGLE",
                "legs": [{"marketId": MARKET_ID, "selectionId": selection, "price": "2"}],
                "stake": STAKE,
                "acceptPriceChange": "ANY",
            }
            n = 0
            while (start := MONO()) < t1:
                body["requestId"] = f"{prefix}{n}"
                n += 1
                totals["sent"] += 1
                try:
                    answer = await client.request("bets.place", body)
                    kind = (
                        "ACCEPTED"
                        if answer.get("status") == "ACCEPTED"
                        else f"REJECTED:{answer.get('code')}"
                    )
                except SportsbookError as exc:
                    kind = exc.code
                except ConnectFailed as exc:
                    failures.append(f"{prefix}: {exc}")
                    return
                end = MONO()
                if kind == "ACCEPTED":
                    totals["acknowledged"] += 1
                if t0 <= end < t1:
                    answers[kind] += 1
                    if kind == "ACCEPTED":
                        accepted_ns.append(end - start)
                    elif kind == "RATE_LIMITED":
                        limited_ns.append(end - start)
                if kind == "RATE_LIMITED" and backoff > 0:
                    await asyncio.sleep(backoff)

        tasks = [
            asyncio.create_task(
                slot(client, f"{args.tag}-{c}-{s}-", selections[s % len(selections)])
            )
            for c, client in enumerate(clients)
            for s in range(slots[c])
        ]
        _, pending = await asyncio.wait(tasks, timeout=max(0.1, (t_end - MONO()) / 1e9))
        for task in pending:
            task.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                failures.append(repr(task.exception()))
        Path(args.out).write_bytes(  # noqa: ASYNC240 - once, after the run
            pickle.dumps(
                {
                    "answers": dict(answers),
                    "accepted_ns": accepted_ns.tobytes(),
                    "rate_limited_ns": limited_ns.tobytes(),
                    "outstanding": len(pending),
                    "failures": failures[:20],
                    **totals,
                }
            )
        )
    print("DONE", flush=True)
    return 0


# ------------------------------------------------------- no-op server process


async def _noop_server_main(args: argparse.Namespace) -> int:
    from aiohttp import web  # noqa: PLC0415
    from rsocket.helpers import create_future  # noqa: PLC0415
    from rsocket.payload import Payload  # noqa: PLC0415
    from rsocket.request_handler import BaseRequestHandler  # noqa: PLC0415
    from rsocket.rsocket_server import RSocketServer  # noqa: PLC0415
    from rsocket.transports.aiohttp_websocket import TransportAioHttpWebsocket  # noqa: PLC0415

    class NoopHandler(BaseRequestHandler):
        async def request_response(self, payload: Payload) -> asyncio.Future[Payload]:
            return create_future(Payload(NOOP_RECEIPT))

    async def on_websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1024 * 1024, compress=False)
        await ws.prepare(request)
        transport = TransportAioHttpWebsocket(ws)
        server = RSocketServer(transport, handler_factory=NoopHandler)
        try:
            await transport.handle_incoming_ws_messages()
        finally:
            with contextlib.suppress(Exception):
                await server.close()
        return ws

    app = web.Application()
    app.router.add_get("/rsocket", on_websocket)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.http_port, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"noop: ws://127.0.0.1:{port}/rsocket", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


def _run_child(coro_fn: Any, args: argparse.Namespace) -> int:
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415 - as `sportsbook serve` does by default

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return int(asyncio.run(coro_fn(args)))


# ------------------------------------------------------------------ report


def fmt_int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


COLUMNS = (
    ("in-flight", 9),
    ("target", 10),
    ("accepted/s", 10),
    ("p50 ms", 7),
    ("p99 ms", 7),
    ("limited/s", 9),
    ("other/s", 7),
    ("×base", 6),
    ("srv%", 4),
    ("pg%", 4),
    ("cli%", 4),
    ("other%", 6),
)


def header() -> str:
    return "  ".join(name.rjust(w) for name, w in COLUMNS)


def row(r: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    lat = r.get("latency_ms", {})
    ratio = None
    if base is not None and base.get("accepted_per_s") and r.get("accepted_per_s") is not None:
        ratio = r["accepted_per_s"] / base["accepted_per_s"]
    cells = (
        f"{r['in_flight']:,}",
        r["target"],
        fmt_int(r.get("accepted_per_s")),
        fmt_ms(lat.get("p50")),
        fmt_ms(lat.get("p99")),
        fmt_int(r.get("rate_limited_per_s")),
        fmt_int(r.get("other_per_s")),
        "-" if ratio is None else f"{ratio:.3f}",
        fmt_pct(r.get("server_cpu_percent")),
        fmt_pct(r.get("pg_cpu_percent")),
        fmt_pct(r.get("client_cpu_percent_total")),
        fmt_pct(r.get("other_processes_percent")),
    )
    return "  ".join(c.rjust(w) for c, (_, w) in zip(cells, COLUMNS, strict=True))


def baseline_for(results: list[dict[str, Any]], level: int) -> dict[str, Any] | None:
    return next((r for r in results if r["target"] == "baseline" and r["in_flight"] == level), None)


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        base = baseline_for(results, r["in_flight"])
        if r["target"] not in PRODUCT or base is None:
            continue
        if not base.get("accepted_per_s") or r.get("accepted_per_s") is None:
            continue
        out.append(
            {
                "target": r["target"],
                "in_flight": r["in_flight"],
                "accepted_per_s": r["accepted_per_s"] / base["accepted_per_s"],
                "p99_ms_product": r.get("latency_ms", {}).get("p99"),
                "p99_ms_baseline": base.get("latency_ms", {}).get("p99"),
            }
        )
    return out


def bar_verdicts(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for target in PRODUCT:
        cells = [r for r in results if r["target"] == target and "accepted_per_s" in r]
        if not cells:
            continue
        meets = [
            r
            for r in cells
            if r["accepted_per_s"] >= BAR_BETS_PER_S
            and (r["latency_ms"].get("p99") or float("inf")) <= BAR_P99_MS
        ]
        loaded = [r for r in cells if r["in_flight"] > 1]
        floor = min((r["accepted_per_s"] for r in loaded), default=None)
        best = max(cells, key=lambda r: r["accepted_per_s"])
        lines.append(
            f"  {target:<10} best {best['accepted_per_s']:>7,.0f} bets/s at {best['in_flight']:,} "
            f"in flight (p99 {fmt_ms(best['latency_ms'].get('p99'))} ms); "
            f"{'MEETS' if meets else 'MISSES'} >= {BAR_BETS_PER_S:,}/s at p99 <= "
            f"{BAR_P99_MS:g} ms; lowest with >1 in flight {fmt_int(floor)}/s: "
            f"{'above' if floor is not None and floor >= BAR_FLOOR_BETS_PER_S else 'BELOW'} "
            f"{BAR_FLOOR_BETS_PER_S:,}"
        )
    return lines


# -------------------------------------------------------------------- main


def build_plan(args: argparse.Namespace, out_dir: Path) -> Plan:
    quick = args.quick
    levels = args.levels or ([64, 512] if quick else [1, 64, 512, 5000])
    return Plan(
        levels=levels,
        targets=args.targets or list(TARGETS),
        duration_s=args.duration or (3.0 if quick else 8.0),
        warmup_s=args.warmup or (1.0 if quick else 2.0),
        grace_s=1.0 if quick else 2.0,
        accounts=args.accounts,
        client_processes=args.client_processes,
        selections=args.selections,
        backoff_ms=args.backoff_ms,
        profile_level=(args.profile_level or 512) if args.profile else None,
        results_dir=out_dir,
        quick=quick,
    )


def _int_list(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",")]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 64 and 512 in flight, ~40 s")
    p.add_argument("--out", type=Path, default=BENCH / "results" / "bets_place.json")
    p.add_argument("--levels", type=_int_list, default=None, help="in-flight levels, e.g. 1,512")
    p.add_argument("--targets", type=lambda s: s.split(","), default=None, help=",".join(TARGETS))
    p.add_argument("--duration", type=float, default=None, help="measured seconds per cell")
    p.add_argument("--warmup", type=float, default=None, help="seconds before measuring")
    p.add_argument("--accounts", type=int, default=64, help="accounts (one connection each)")
    p.add_argument("--client-processes", type=int, default=2)
    p.add_argument(
        "--selections",
        type=lambda s: s.split(","),
        default=["1"],
        help="selection ids the slots bet on, round robin (default 1: one hot selection)",
    )
    p.add_argument(
        "--backoff-ms",
        type=float,
        default=0.0,
        help="a slot's pause after RATE_LIMITED (default 0: its next bet at once)",
    )
    p.add_argument(
        "--pg-url",
        default=None,
        help="an existing PostgreSQL (default: a private durable pg.sh cluster for the run)",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the product server")
    p.add_argument("--profile-level", type=int, default=None, help="at this level (512)")
    args = p.parse_args(argv)
    for target in args.targets or ():
        if target not in TARGETS:
            p.error(f"unknown target {target!r}")
    if any(n < 1 for n in args.levels or ()) or args.accounts < 1 or args.client_processes < 1:
        p.error("levels, --accounts and --client-processes must be at least 1")
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so that every finally: stops its processes, schema and cluster


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw and raw[0] in ("client", "noop-server"):
        return child_main(raw)
    args = parse_args(raw)
    out_path: Path = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plan = build_plan(args, out_path.parent)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    info = fanout.machine()
    info["asyncpg"] = fanout._version("asyncpg")
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    pg: OwnPostgres | None = None
    try:
        pg_base = None
        if "postgresql" in plan.targets:
            if args.pg_url:
                pg_base = args.pg_url
            else:
                pg = OwnPostgres()
                log(f"starting a private durable PostgreSQL on :{pg.port} (state {pg.state})")
                pg_base = pg.start()
            info["postgresql"] = {"own_cluster": pg is not None, **pg_settings(pg_base)}
            if not info["postgresql"]["durable"]:
                log("! this PostgreSQL is NOT durable (fsync or synchronous_commit off)")
        return run_all(args, plan, info, started, out_path, raw, pg, pg_base)
    finally:
        reap_children()
        if pg is not None:
            log("stopping and deleting the private PostgreSQL")
            pg.stop()


def run_all(
    args: argparse.Namespace,
    plan: Plan,
    info: dict[str, Any],
    started: float,
    out_path: Path,
    argv: list[str],
    pg: OwnPostgres | None,
    pg_base: str | None,
) -> int:
    todo = [(level, target) for level in plan.levels for target in plan.targets]
    log(
        f"bets.place bench: {len(todo)} cells ({', '.join(plan.targets)} × in flight "
        f"{', '.join(f'{n:,}' for n in plan.levels)}), {plan.duration_s:g} s measured each, "
        f"{plan.accounts} accounts, {info['cpu_count_logical']} cores (load "
        f"{info['load_average_at_start'][0]:.2f}), python {info['python']}, "
        f"commit {info['git_commit'][:10]}{' (dirty)' if info['git_dirty'] else ''}"
    )
    results: list[dict[str, Any]] = []
    for n, (level, target) in enumerate(todo, 1):
        log(f"[{n}/{len(todo)}] {target} × {level:,} in flight: starting")
        tmp = Path(tempfile.mkdtemp(prefix="bets_place-"))
        try:
            result = run_cell(plan, target, level, tmp, pg, pg_base)
        except Exception as exc:  # recorded in the result, the run goes on
            result = {
                "target": target,
                "in_flight": level,
                "errors": [f"{type(exc).__name__}: {exc}"],
            }
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if "profile" in result:
            with contextlib.suppress(OSError):
                result["profile_summary"] = fanout.profile_summary(Path(result["profile"]))
        results.append(result)
        if "accepted_per_s" in result:
            log(f"  {header()}")
            log(f"  {row(result, baseline_for(results, level))}")
            ledger = result.get("ledger_accepted")
            if ledger is not None:
                log(
                    f"  ledger: {ledger:,} ACCEPTED bets, {result['acknowledged_total']:,} "
                    f"ACCEPTED receipts received"
                )
        for error in result.get("errors", []):
            log(f"  ! {error}")
    elapsed = time.monotonic() - started
    report = {
        "bench": "bets_place",
        "command": " ".join([".venv/bin/python", "bench/bets_place.py", *argv]),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_time_s": round(elapsed, 1),
        "machine": info,
        "plan": {
            "levels": plan.levels,
            "targets": plan.targets,
            "duration_s": plan.duration_s,
            "warmup_s": plan.warmup_s,
            "grace_s": plan.grace_s,
            "accounts": plan.accounts,
            "client_processes": plan.client_processes,
            "transport": "RSocket over WebSocket (aiohttp), uvloop in every process",
            "server": "sportsbook serve --simulate 1:5 --database URL",
            "bet": {
                "market": MARKET_ID,
                "selections": plan.selections,
                "stake": STAKE,
                "price": "2",
                "acceptPriceChange": "ANY",
            },
            "backoff_ms_after_rate_limited": plan.backoff_ms,
            "pg_url_given": args.pg_url is not None,
        },
        "bar": {
            "bets_per_s": BAR_BETS_PER_S,
            "p99_ms": BAR_P99_MS,
            "floor_bets_per_s": BAR_FLOOR_BETS_PER_S,
        },
        "results": results,
        "ratios_product_over_baseline": ratios(results),
    }
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(header())
    for r in results:
        if "accepted_per_s" in r:
            print(row(r, baseline_for(results, r["in_flight"])))
        else:
            print(f"{r['in_flight']:>9,}  {r['target']:>10}  FAILED: {r['errors']}")
    print()
    print(
        f"bar: >= {BAR_BETS_PER_S:,} durable bets/s at p99 <= {BAR_P99_MS:g} ms, never below "
        f"{BAR_FLOOR_BETS_PER_S:,} (1 in flight is bounded by 1/latency and is left out)"
    )
    for line in bar_verdicts(results):
        print(line)
    pg_info = info.get("postgresql")
    if pg_info is not None and not pg_info["durable"]:
        print(
            "  ! PostgreSQL ran with fsync or synchronous_commit off: its figures are NOT durable"
        )
    print()
    print(f"run time {elapsed:.0f} s; figures and machine info in {out_path}")
    failed = [r for r in results if "accepted_per_s" not in r]
    return 1 if failed else 0


def child_main(raw: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"bets_place.py {raw[0]}")
    if raw[0] == "client":
        p.add_argument("--url", required=True)
        p.add_argument("--tokens", required=True, help="one connection per token")
        p.add_argument("--slots", required=True, help="in-flight slots per connection")
        p.add_argument("--selections", default="1")
        p.add_argument("--tag", required=True, help="request ids start with it")
        p.add_argument("--backoff-ms", type=float, default=0.0)
        p.add_argument("--out", required=True)
        return _run_child(_client_main, p.parse_args(raw[1:]))
    p.add_argument("--http-port", type=int, default=0)
    return _run_child(_noop_server_main, p.parse_args(raw[1:]))


if __name__ == "__main__":
    sys.exit(main())
