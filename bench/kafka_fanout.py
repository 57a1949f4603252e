"""Kafka fan-out benchmark: recording → Kafka → 2 server processes → N subscribers,
beside the in-process bus in the same run.

    .venv/bin/python bench/kafka_fanout.py [--quick] [--own-broker] [--out FILE.json]

Two modes, same recordings (odds_fanout's default set, looped), same subscriber
count (1,000; ``--quick``: 100), same lean client processes
(``_fanout_client.py``), measured the same way after a warm-up:

* ``inprocess`` (the baseline): one server process replays the recordings
  itself into its in-process bus (as one timeline, like ``feed replay``); all
  N subscribers on it.
* ``kafka``: a fresh one-partition topic (the ``sportsbook.prices`` configs);
  ``sportsbook feed replay FILE… --kafka … --loop --quiet`` publishes the same
  recordings in its own process; **two separate** ``sportsbook serve --kafka``
  processes on their own ports each read the whole topic and serve N/2 of the
  subscribers (rather than ``serve --workers 2``, so each one's figures show).

…each at every feed rate of ``--rates`` (default ``0,300``): 0 is flat out (the
in-process bounded bus holds the replay back, nothing holds a Kafka feed back);
otherwise the feed's publishes are paced to that many records/s on a fixed
schedule, and the window lasts one whole pass of the recordings.

Measured (see bench/README.md for the exact intervals):

* bus: records published/s in the window (Kafka: the topic's end offset;
  in-process: the bus's append stamps), records applied/s by each server's hub,
  each server's lag at the window's end and its growth;
* served subscriptions, delivered changes/s and frames/s over all subscribers;
* latency p50/p99 from the feed publishing a record (Kafka: its CreateTime,
  set by the feed's producer when it takes the record; in-process: the bus
  append) to a sampled subscriber receiving a frame whose ``clk`` covers it,
  split into publish → hub apply and hub apply → client (odds_fanout's
  interval); paced, also from the record's due time (offer → client);
  ``--bus-probe``: publish → an idle consumer in this process (bus transit);
* CPU % of the feed, the servers, the broker JVM, the clients, this process,
  and of processes outside the run (a warning when they took ≥ 10 %).

``--profile`` py-spies server 0 and the feed during the window; ``--own-broker``
runs a private kafka.sh broker (own port and state dir, warmed up) for the run,
for when other work stops and starts the shared one (a broker restart during a
scenario is detected and marks its figures invalid).

Then prints kafka/in-process ratios per rate. Speed is never asserted (STYLE.md
rule 11). Every process and the topic are cleaned up, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import datetime as dt
import json
import math
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(BENCH) not in sys.path:  # run as a script it is there already
    sys.path.insert(0, str(BENCH))
if str(REPO) not in sys.path:  # tests.testkit.kafka (topic configs, create/delete)
    sys.path.append(str(REPO))

import odds_fanout as fanout  # noqa: E402
from odds_fanout import CLIENT, MONO, HealthProbe, RssWatch, log, split  # noqa: E402

THIS = Path(__file__).resolve()
KAFKA_SH = REPO / "infra" / "kafka" / "kafka.sh"
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
PUB_BUCKET_NS = 50_000  # publish times are grouped to 50 µs (Kafka's CreateTime is 1 ms anyway)
HIST_BUCKET_NS = 10_000  # latency histogram resolution: 10 µs


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
    subscribers: int
    kafka_servers: int
    modes: list[str]
    rates: list[float]
    bus_probe: bool
    duration_s: float
    pass_records: int | None  # paced runs measure one whole pass of the recordings
    warmup_s: float
    grace_s: float
    window: int
    client_processes: int
    latency_streams: int
    recordings: list[Path]
    recordings_choice: str
    sync_timeout_s: float
    bootstrap: str
    profile: bool
    results_dir: Path
    quick: bool


@dataclass
class Server:
    index: int
    proc: Proc
    watch: RssWatch
    dir: Path  # stamps.pkl, kstamps.pkl, client-<i>.pkl of its clients (odds_fanout's layout)
    subscribers: int
    http_port: int = 0
    tcp_port: int = 0
    clients: list[Proc] = field(default_factory=list)


# ------------------------------------------------- server process (child)


def run_server(argv: list[str]) -> int:
    """``kafka_fanout.py _server MODE RATE STAMPS KSTAMPS serve-args…`` (a child process).

    ``_fanout_server.py product`` (the product's ``sportsbook serve`` with its
    hub-apply and in-process publish stamps) plus, in this process only:

    * ``kafka``: ``KafkaPriceBus._decode`` keeps each record's offset and Kafka
      timestamp (CreateTime: set by the feed's producer when it took the record),
      written to KSTAMPS at exit;
    * ``inprocess``: the server's own replay runs its recordings as one timeline
      (``concurrent=False``), the order ``sportsbook feed replay`` publishes them
      in, so both scenarios carry the same records; with RATE > 0 its publishes
      are paced to RATE records/s (as ``_feed`` paces the Kafka feed).
    """
    mode, rate, stamps, kstamps = argv[0], float(argv[1]), argv[2], argv[3]
    serve_args = argv[4:]
    import _fanout_server  # noqa: PLC0415

    from rsocket_server import app  # noqa: PLC0415
    from streams.bus import InProcessPriceBus  # noqa: PLC0415
    from streams.kafka_bus import KafkaPriceBus  # noqa: PLC0415

    offsets = array("q")
    times = array("q")
    due = array("q")  # inprocess, paced: each record's due time, by position
    kinds: set[int] = set()
    if mode == "kafka":
        decode = KafkaPriceBus._decode

        def stamped_decode(self: KafkaPriceBus, messages: list[Any]) -> Any:
            for m in messages:
                offsets.append(m.offset)
                times.append(m.timestamp)
            if messages:
                kinds.add(messages[0].timestamp_type)
            return decode(self, messages)

        KafkaPriceBus._decode = stamped_decode  # type: ignore[method-assign]
    else:
        replay = app.replay  # type: ignore[attr-defined]

        async def one_timeline(*args: Any, **kwargs: Any) -> Any:
            kwargs["concurrent"] = False
            return await replay(*args, **kwargs)

        app.replay = one_timeline  # type: ignore[attr-defined]
        if rate > 0:  # before run_product wraps it: its publish stamp follows the pacing
            InProcessPriceBus.publish = paced(InProcessPriceBus.publish, rate, due)  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, _dump_tasks)
    rc = _fanout_server.run_product(stamps, serve_args)
    _fanout_server._dump(
        kstamps,
        {"offset": offsets, "timestamp_ms": times, "timestamp_types": sorted(kinds), "due": due},
    )
    return rc


def _dump_tasks(signum: int, frame: Any) -> None:
    """SIGUSR1 (sent by the bench when a server does not stop): every asyncio task's stack."""
    loop = asyncio._get_running_loop()
    tasks = asyncio.all_tasks(loop) if loop is not None else set()
    print(f"--- {len(tasks)} asyncio tasks", file=sys.stderr, flush=True)
    for task in tasks:
        print(f"- {task!r}"[:300], file=sys.stderr)
        task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


def paced(publish: Any, rate: float, due_log: array[int] | None = None) -> Any:
    """``publish`` offered at ``rate`` records/s on a fixed schedule (``CLOCK_MONOTONIC``).

    Record k is due at start + k / rate, as if the outside world sent it then; one
    that is late (its event loop was busy) goes at once, so the offered rate holds.
    ``due_log`` gets the due time of each publish that put a record on the bus
    (``position`` advanced: Kafka sends nothing for a change that changes
    nothing), so that it is indexed by bus position.
    """
    interval = int(1e9 / rate)
    schedule = [0, 0]  # start, records offered

    async def paced_publish(self: Any, item: Any) -> None:
        now = MONO()
        if not schedule[1]:
            schedule[0] = now
        due = schedule[0] + schedule[1] * interval
        schedule[1] += 1
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
        before = self.position
        await publish(self, item)
        if due_log is not None and self.position > before:
            due_log.append(due)

    return paced_publish


def run_feed(argv: list[str]) -> int:
    """``kafka_fanout.py _feed RATE DUE_FILE feed replay …``: ``sportsbook feed replay``.

    The feed process of the Kafka scenarios: ``clients.cli.main`` (what
    ``.venv/bin/sportsbook`` runs) started by path, so that it runs the checkout
    as it is. With RATE > 0 ``KafkaPriceBus.publish`` waits for its slot, then
    publishes as usual (the record's CreateTime is set after the wait); the due
    times of the records sent, indexed by offset on a fresh topic, are written to
    DUE_FILE on SIGTERM.
    """
    rate, due_file, cli_args = float(argv[0]), argv[1], argv[2:]
    from clients import cli  # noqa: PLC0415
    from streams.kafka_bus import KafkaPriceBus  # noqa: PLC0415

    if rate > 0:
        due_log = array("q")

        def dump_and_exit(signum: int, frame: Any) -> None:
            Path(due_file).write_bytes(bytes(due_log))
            os._exit(0)

        KafkaPriceBus.publish = paced(KafkaPriceBus.publish, rate, due_log)  # type: ignore[method-assign]
        signal.signal(signal.SIGTERM, dump_and_exit)
    return cli.main(cli_args)


# ------------------------------------------------------------------ Kafka


def kafka_kit() -> Any:
    from tests.testkit import kafka  # noqa: PLC0415

    return kafka


class EndOffsetProbe:
    """The topic's end offset (= records published), in a thread, timed around the request."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.sent = 0
        self.received = 0
        self.value: int | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(asyncio.wait_for(self._get(), 15))
        except Exception as exc:  # reported, never fatal
            self.error = f"{type(exc).__name__}: {exc}"

    async def _get(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            self.sent = MONO()
            ends = await consumer.end_offsets([tp])
            self.received = MONO()
            self.value = int(ends[tp])
        finally:
            await consumer.stop()

    def join(self) -> EndOffsetProbe:
        self._thread.join(20)
        return self

    @property
    def mid(self) -> int:
        return (self.sent + self.received) // 2


def kafka_sh(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> str:
    try:
        return subprocess.run(
            [str(KAFKA_SH), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def broker_pid(bootstrap: str) -> int | None:
    """The pid listening on the bootstrap port (the broker JVM), if it is on this host."""
    port = int(bootstrap.split(",", maxsplit=1)[0].rpartition(":")[2])
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return int(conn.pid) if conn.pid is not None else None
    return None


def broker_version(env: dict[str, str] | None = None) -> str | None:
    version = re.search(r"\bversion=(\S+)", kafka_sh("status", env=env))
    return version.group(1) if version else None


class OwnBroker:
    """``--own-broker``: a private kafka.sh broker (own port and state dir), removed after."""

    def __init__(self, port: int) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="kafka_fanout-broker-"))
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP"},
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(port + 1),
            "KAFKA_STATE_DIR": str(self.state),
        }
        self.bootstrap = f"127.0.0.1:{port}"

    def start(self) -> None:
        out = subprocess.run(
            [str(KAFKA_SH), "start"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=self.env,
        )
        if out.returncode != 0:
            raise RuntimeError(f"kafka.sh start: {out.stdout}{out.stderr}")

    def warm(self, files: list[Path], seconds: float) -> None:
        """A fresh JVM is slow until JIT-compiled: a feed and two readers on a scratch topic."""
        kit = kafka_kit()
        topic = f"bench.warmup.{uuid.uuid4().hex[:12]}"
        asyncio.run(kit.create_topic(self.bootstrap, topic, 1, kit.PRICES_TOPIC_CONFIGS))
        argv = [sys.executable, str(THIS), "_feed", "0", "-", "feed", "replay"]
        argv += [str(p) for p in files]
        argv += ["--kafka", self.bootstrap, "--topic", topic, "--loop", "--quiet"]
        feed = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        CHILDREN.append(feed)  # type: ignore[arg-type]
        readers = [BusProbe(self.bootstrap, topic) for _ in range(2)]
        try:
            time.sleep(seconds)
        finally:
            feed.terminate()
            feed.wait(10)
            for r in readers:
                r.stop()
            asyncio.run(kit.delete_topic_quietly(self.bootstrap, topic))

    def stop(self) -> None:
        kafka_sh("stop", env=self.env, timeout=60)
        shutil.rmtree(self.state, ignore_errors=True)


class BusProbe:
    """Kafka mode: an idle consumer on the topic in a thread of this process.

    Keeps (offset, CreateTime ms, receive ``time.monotonic_ns``) of every record,
    so that publish → "on the bus for any reader" is measured apart from the
    servers' event loops (it costs this process a few % of a core).
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.offsets = array("q")
        self.created_ms = array("q")
        self.received = array("q")
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._read())
        except Exception as exc:  # reported, never fatal
            self.error = f"{type(exc).__name__}: {exc}"

    async def _read(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            check_crcs=False,
            fetch_max_bytes=8 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            while not self._stop.is_set():
                fetched = await consumer.getmany(tp, timeout_ms=200, max_records=4096)
                now = MONO()
                for m in fetched.get(tp, []):
                    self.offsets.append(m.offset)
                    self.created_ms.append(m.timestamp)
                    self.received.append(now)
        finally:
            await consumer.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def transit(self, t0: int, t1: int, offset_ns: int) -> dict[str, Any]:
        """publish (CreateTime) → received here, for the records received in [t0, t1)."""
        h = Hist()
        for created, received in zip(self.created_ms, self.received, strict=True):
            if t0 <= received < t1:
                h.add(received - (created * 1_000_000 + 500_000 - offset_ns), 1)
        return h.summary()


def py_spy_dump(pid: int) -> str:
    try:
        return subprocess.run(
            [str(Path(sys.executable).parent / "py-spy"), "dump", "--pid", str(pid)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout[-3000:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(py-spy failed: {exc})"


def realtime_minus_monotonic_ns() -> int:
    """CLOCK_REALTIME − CLOCK_MONOTONIC now (one value for every process of the host)."""
    best: tuple[int, int] | None = None
    for _ in range(20):
        a = time.monotonic_ns()
        r = time.time_ns()
        b = time.monotonic_ns()
        if best is None or b - a < best[0]:
            best = (b - a, r - (a + b) // 2)
    assert best is not None
    return best[1]


# ---------------------------------------------------------------- latency


class Hist:
    """Latencies (ns) weighted by counts, in 10 µs buckets."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0
        self.censored = 0

    def add(self, ns: int, count: int) -> None:
        self.counts[ns // HIST_BUCKET_NS] += count
        self.total += count

    def merge(self, other: Hist) -> None:
        self.counts.update(other.counts)
        self.total += other.total
        self.censored += other.censored

    def summary(self) -> dict[str, Any]:
        if not self.total:
            return {"p50": None, "p99": None, "max": None, "changes": 0}
        keys = sorted(self.counts)
        out: dict[str, Any] = {}
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            target = q * self.total
            acc = 0
            for k in keys:
                acc += self.counts[k]
                if acc >= target:
                    out[name] = (k + 0.5) * HIST_BUCKET_NS / 1e6
                    break
        out["max"] = (keys[-1] + 1) * HIST_BUCKET_NS / 1e6
        out["changes"] = self.total
        out["censored_share"] = self.censored / self.total
        return out


def server_latency(
    apply_pos: array[int],
    apply_t: array[int],
    pub_ns: Sequence[int],
    samples: list[tuple[bytes, bytes]],
    window: tuple[int, int, int],
) -> tuple[Hist, Hist, Hist]:
    """(publish → client, apply → client, publish → apply) for one server's sampled subscribers.

    The records counted are those of every batch the hub started applying in
    ``[t0, t1)`` (as odds_fanout: what was delivered during the window). Record
    ``p`` of a batch ending at position ``E`` reaches a subscriber with the
    first frame whose ``clk`` position (running max) is ≥ ``E``; ``pub_ns[p]``
    is when the feed published it (-1: unknown). Not covered by ``t_end``:
    counted at ``t_end`` (a lower bound) and as censored.
    """
    t0, t1, t_end = window
    batches: list[tuple[int, int, int, list[tuple[int, int]]]] = []
    bus = Hist()
    prev = 0
    n_pub = len(pub_ns)
    for pos, t in zip(apply_pos, apply_t, strict=True):
        if t0 <= t < t1 and pos > prev:
            groups: Counter[int] = Counter()
            for p in range(prev, min(pos, n_pub)):
                if pub_ns[p] >= 0:
                    groups[pub_ns[p] // PUB_BUCKET_NS] += 1
            pubs = [(k * PUB_BUCKET_NS + PUB_BUCKET_NS // 2, c) for k, c in groups.items()]
            for ts, c in pubs:
                bus.add(t - ts, c)
            batches.append((pos, t, pos - prev, pubs))
        prev = pos
    pub_h, apply_h = Hist(), Hist()
    for raw_pos, raw_t in samples:
        positions = fanout._q(raw_pos)
        times = fanout._q(raw_t)
        running = 0
        for i, p in enumerate(positions):  # "has everything before the newest clk seen"
            running = max(running, p)
            positions[i] = running
        n = len(positions)
        for end, t, weight, pubs in batches:
            i = bisect.bisect_left(positions, end)
            received = times[i] if i < n else t_end
            apply_h.add(received - t, weight)
            for ts, c in pubs:
                pub_h.add(received - ts, c)
            if i >= n:
                apply_h.censored += weight
                pub_h.censored += sum(c for _, c in pubs)
    return pub_h, apply_h, bus


def _load(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = pickle.load(fh)
            return data
    except (OSError, pickle.UnpicklingError, EOFError):
        return None


# ---------------------------------------------------------------- scenario


class Cpu:
    """CPU seconds of a process at the window's start and end."""

    def __init__(self, ps: psutil.Process | None) -> None:
        self.ps = ps
        self.start = self.end = float("nan")

    def read(self) -> float:
        if self.ps is None:
            return float("nan")
        try:
            t = self.ps.cpu_times()
        except psutil.Error:
            return float("nan")
        return float(t.user + t.system)

    def percent(self, seconds: float) -> float | None:
        value = 100 * (self.end - self.start) / seconds
        return None if math.isnan(value) else value  # process gone / unknown


def start_profilers(
    plan: Plan, mode: str, duration: float, server: Proc, feed: Proc | None
) -> list[tuple[str, Path, subprocess.Popen[bytes]]]:
    if not plan.profile:
        return []
    targets = [("server0", server)] + ([("feed", feed)] if feed is not None else [])
    out = []
    for name, proc in targets:
        path = plan.results_dir / f"profile-kafka_fanout-{mode}-{name}.txt"
        argv = [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(proc.popen.pid)]
        argv += ["-d", str(max(1, int(duration) - 1)), "-f", "raw", "-o", str(path)]
        popen = subprocess.Popen(
            [*argv, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        out.append((name, path, popen))
    return out


class MachineCpu:
    """Whole-machine CPU over the window, and what processes outside the run used of it."""

    def __init__(self) -> None:
        self.times = psutil.cpu_times()
        self.procs = self._procs()

    @staticmethod
    def _procs() -> dict[int, tuple[float, str, float]]:
        """pid → (create time: its identity, command line, CPU seconds)."""
        out = {}
        for p in psutil.process_iter(["cmdline", "name", "create_time"]):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                cmd = " ".join(p.info["cmdline"] or []) or p.info["name"] or "?"
                out[p.pid] = (p.info["create_time"], cmd, float(t.user + t.system))
        return out

    def report(self, seconds: float, ours: set[int]) -> dict[str, Any]:
        t0, t1 = self.times, psutil.cpu_times()
        busy = sum(t1) - t1.idle - getattr(t1, "iowait", 0.0)
        busy -= sum(t0) - t0.idle - getattr(t0, "iowait", 0.0)
        foreign: list[tuple[float, str]] = []
        for pid, (created, cmd, cpu) in self._procs().items():
            if pid in ours:
                continue
            before = self.procs.get(pid)
            used = cpu - (before[2] if before and before[0] == created else 0.0)
            if used > 0:
                foreign.append((100 * used / seconds, f"{pid} {cmd[:80]}"))
        foreign.sort(reverse=True)
        return {
            "machine_busy_percent": 100 * busy / seconds,
            "cores": psutil.cpu_count(),
            "other_processes_percent": sum(p for p, _ in foreign),
            "other_processes_top": [[round(p, 1), c] for p, c in foreign[:5] if p >= 1],
        }


def server_args(plan: Plan, mode: str, topic: str | None) -> list[str]:
    common = ["--tcp-port", "0", "--http-port", "0"]
    if mode == "kafka":
        assert topic is not None
        return ["--kafka", plan.bootstrap, "--topic", topic, *common]
    # odds_fanout's product server command (server_argv there); run_server makes its
    # replay one timeline, as `sportsbook feed replay` publishes it
    return ["--replay", *(str(p) for p in plan.recordings), "--flat-out", *common]


def run_scenario(plan: Plan, mode: str, rate: float, tmp: Path) -> dict[str, Any]:
    kafka = mode == "kafka"
    n_servers = plan.kafka_servers if kafka else 1
    shares = split(plan.subscribers, n_servers)
    per_server_procs = max(1, plan.client_processes // n_servers)
    sample_every = max(1, plan.subscribers // plan.latency_streams)
    duration = plan.duration_s
    if rate and plan.pass_records:  # exactly one relist storm in every paced window
        duration = max(duration, float(math.ceil(plan.pass_records / rate)))
    out: dict[str, Any] = {
        "mode": mode,
        "rate": rate,  # records/s offered by the feed; 0: flat out
        "servers": n_servers,
        "subscribers": plan.subscribers,
        "subscribers_per_server": shares,
        "client_processes": per_server_procs * n_servers,
        "duration_s": duration,
        "warmup_s": plan.warmup_s,
        "errors": [],
    }
    started = time.monotonic()
    topic: str | None = None
    servers: list[Server] = []
    feed: Proc | None = None
    pid0 = broker_pid(plan.bootstrap)
    bus_probe: BusProbe | None = None
    window = (0, 0, 0)
    w_mid = (0, 0)
    try:
        if kafka:
            topic = f"bench.prices.{uuid.uuid4().hex[:12]}"
            kit = kafka_kit()
            asyncio.run(kit.create_topic(plan.bootstrap, topic, 1, kit.PRICES_TOPIC_CONFIGS))
            out["topic"] = topic
        for i in range(n_servers):
            sdir = tmp / f"server-{i}"
            sdir.mkdir()
            argv = [
                sys.executable,
                str(THIS),
                "_server",
                mode,
                str(rate),
                str(sdir / "stamps.pkl"),
                str(sdir / "kstamps.pkl"),
                *server_args(plan, mode, topic),
            ]
            proc = Proc(argv, sdir / "server.err")
            servers.append(Server(i, proc, RssWatch(proc), sdir, shares[i]))
        for s in servers:
            ws = s.proc.expect(lambda x: "ws://" in x, 60, "the server's WebSocket line")
            s.http_port = int(ws.rsplit(":", 1)[1].split("/")[0])
            line = s.proc.expect(lambda x: "tcp://" in x, 60, "the server's TCP line")
            s.tcp_port = int(line.rsplit(":", 1)[1])
        if kafka:
            assert topic is not None
            feed = Proc(
                [
                    sys.executable,
                    str(THIS),
                    "_feed",  # run_feed: `sportsbook feed replay …`, paced when rate > 0
                    str(rate),
                    str(tmp / "feed-due.bin"),
                    "feed",
                    "replay",
                    *(str(p) for p in plan.recordings),
                    "--kafka",
                    plan.bootstrap,
                    "--topic",
                    topic,
                    "--loop",
                    "--quiet",
                ],
                tmp / "feed.err",
            )
            if plan.bus_probe:
                bus_probe = BusProbe(plan.bootstrap, topic)
            deadline = time.monotonic() + 60
            while True:
                if EndOffsetProbe(plan.bootstrap, topic).join().value:
                    break
                if feed.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the feed published nothing: {feed.tail()}")
                time.sleep(0.2)
        time.sleep(0.5)  # the feed is running: RSS with no subscriber yet
        for s in servers:
            out.setdefault("server_rss_start_mb", []).append(s.proc.rss() / 2**20)
        first = 0
        for s in servers:
            procs = min(per_server_procs, s.subscribers)
            for j, conns in enumerate(split(s.subscribers, procs)):
                argv = [
                    sys.executable,
                    str(CLIENT),
                    "--kind",
                    "product",
                    "--port",
                    str(s.tcp_port),
                    "--connections",
                    str(conns),
                    "--streams",
                    "1",
                    "--window",
                    str(plan.window),
                    "--sample-every",
                    str(sample_every),
                    "--first-index",
                    str(first),
                    "--sync-timeout",
                    str(plan.sync_timeout_s),
                    "--out",
                    str(s.dir / f"client-{j}.pkl"),
                ]
                first += conns
                s.clients.append(Proc(argv, s.dir / f"client-{j}.err", stdin=True))
        clients = [c for s in servers for c in s.clients]
        for c in clients:
            c.expect(lambda x: x == "READY", 90, "a client's READY")
        out["connect_s"] = round(time.monotonic() - started, 2)
        ready = time.monotonic()
        synced = 0
        for c in clients:
            line = c.expect(lambda x: x.startswith("SYNCED"), plan.sync_timeout_s + 30, "SYNCED")
            synced += int(line.split()[1])
        out["initial_sync_s"] = round(time.monotonic() - ready, 2)
        out["synced_subscribers"] = synced
        if synced < plan.subscribers:
            out["errors"].append(
                f"only {synced}/{plan.subscribers} subscribers past their initial snapshots "
                f"after {plan.sync_timeout_s:g} s: measured during the initial burst"
            )
        t0 = MONO() + int(plan.warmup_s * 1e9)
        t1 = t0 + int(duration * 1e9)
        t_end = t1 + int(plan.grace_s * 1e9)
        window = (t0, t1, t_end)
        for c in clients:
            c.send(f"GO {t0} {t1} {t_end}\n")
        log(
            f"  {mode}: {n_servers} server(s) × {'/'.join(map(str, shares))} subs, "
            f"{len(clients)} client process(es), connected in {out['connect_s']:.1f} s, "
            f"{synced}/{plan.subscribers} past their initial snapshots after "
            f"{out['initial_sync_s']:.1f} s; warm-up {plan.warmup_s:g} s, "
            f"measuring {duration:g} s"
        )
        cpus = {
            "servers": [Cpu(s.proc.ps) for s in servers],
            "clients": [Cpu(c.ps) for c in clients],
            "feed": [Cpu(feed.ps)] if feed else [],
            "broker": [Cpu(psutil.Process(pid0))] if pid0 else [],
            "bench": [Cpu(psutil.Process())],  # this process (the bus probe's thread in kafka)
        }
        time.sleep(max(0.0, (t0 - MONO()) / 1e9))
        machine_cpu = MachineCpu()
        w0 = MONO()
        for group in cpus.values():
            for cpu in group:
                cpu.start = cpu.read()
        h0 = [HealthProbe(s.http_port) for s in servers]
        e0 = EndOffsetProbe(plan.bootstrap, topic) if topic else None
        profilers = start_profilers(plan, mode, duration, servers[0].proc, feed)
        time.sleep(max(0.0, (t1 - MONO()) / 1e9))
        w1 = MONO()
        for group in cpus.values():
            for cpu in group:
                cpu.end = cpu.read()
        h1 = [HealthProbe(s.http_port) for s in servers]
        e1 = EndOffsetProbe(plan.bootstrap, topic) if topic else None
        w_mid = (w0, w1)
        wall = (w1 - w0) / 1e9
        out["cpu_percent"] = {
            name: [cpu.percent(wall) for cpu in group] for name, group in cpus.items()
        }
        ours = {c.ps.pid for group in cpus.values() for c in group if c.ps is not None}
        ours |= {p.pid for _, _, p in profilers}
        out["machine_cpu"] = machine_cpu.report(wall, ours)
        others = out["machine_cpu"]["other_processes_percent"]
        if others >= 10:
            out.setdefault("warnings", []).append(
                f"processes outside the run used {others:.0f} % CPU during the window: "
                f"{out['machine_cpu']['other_processes_top'][:3]}"
            )
        _health(out, [p.join() for p in h0], [p.join() for p in h1])
        if e0 is not None and e1 is not None:
            e0.join()
            e1.join()
            if e0.value is None or e1.value is None:
                out["errors"].append(f"end offset unknown: {e0.error or e1.error}")
            else:
                # published: the topic's end offset; lag: against each server's apply
                # stamps at the same instants (in _collect)
                out["bus_published_per_s"] = (e1.value - e0.value) / ((e1.mid - e0.mid) / 1e9)
                out["end_offsets"] = [[e0.mid, e0.value], [e1.mid, e1.value]]
        for name, path, profiler in profilers:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                profiler.wait(30)
                out.setdefault("profiles", {})[name] = {
                    "path": str(path),
                    **fanout.profile_summary(path),
                }
        if feed is not None and feed.popen.poll() is not None:
            out["errors"].append(f"the feed stopped during the run: {feed.tail()}")
        for c in clients:
            c.expect(lambda x: x == "DONE", 30 + plan.grace_s, "a client's DONE")
            c.wait(10)
    finally:
        _teardown(out, plan, tmp, servers, feed, bus_probe, topic, pid0)
    if window[0]:
        _collect(out, plan, mode, servers, window, w_mid)
        if bus_probe is not None:
            out["latency_ms"]["publish_to_bus_probe"] = bus_probe.transit(
                window[0], window[1], realtime_minus_monotonic_ns()
            )
            if bus_probe.error:
                out["errors"].append(f"bus probe: {bus_probe.error}")
    out["wall_s"] = round(time.monotonic() - started, 2)
    return out


@contextlib.contextmanager
def _step(out: dict[str, Any], what: str) -> Iterator[None]:
    """One clean-up step: a failure is recorded and the next steps still run."""
    try:
        yield
    except Exception as exc:
        out["errors"].append(f"clean-up ({what}): {type(exc).__name__}: {exc}")


def _teardown(
    out: dict[str, Any],
    plan: Plan,
    tmp: Path,
    servers: list[Server],
    feed: Proc | None,
    bus_probe: BusProbe | None,
    topic: str | None,
    pid0: int | None,
) -> None:
    for s in servers:
        for c in s.clients:
            with _step(out, "client"):
                c.stop(5)
    if bus_probe is not None:
        with _step(out, "bus probe"):
            bus_probe.stop()
    if feed is not None:
        with _step(out, "feed"):
            feed.stop(10)
            if feed.popen.returncode not in (0, -signal.SIGTERM):
                out["errors"].append(f"feed exit {feed.popen.returncode}: {feed.tail()}")
            out["feed_log_lines"] = fanout._count_lines(tmp / "feed.err")
            if out["feed_log_lines"]:
                out["feed_log_tail"] = feed.tail(4)
    for s in servers:  # all at once; each one's stop time is recorded
        with contextlib.suppress(OSError):
            s.proc.popen.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    for s in servers:
        with _step(out, f"server {s.index}"):
            try:
                s.proc.popen.wait(max(0.1, stopping + 30 - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    s.proc.popen.send_signal(signal.SIGUSR1)  # _dump_tasks
                time.sleep(1)
                stacks = s.proc.stderr_path.read_text(errors="replace")
                stacks = stacks[stacks.rfind("--- ") :] if "--- " in stacks else ""
                out.setdefault("server_stop_hang", []).append(
                    {"server": s.index, "asyncio_tasks": stacks[-12000:]}
                )
                out["errors"].append(
                    f"server {s.index} still running 30 s after SIGTERM (its asyncio tasks "
                    "are in server_stop_hang); py-spy dump: " + py_spy_dump(s.proc.popen.pid)
                )
            rc = s.proc.stop(5)
            out.setdefault("server_stop_s", []).append(round(time.monotonic() - stopping, 2))
            out.setdefault("server_rss_peak_mb", []).append(s.watch.stop() / 2**20)
            if rc not in (0, -signal.SIGTERM):
                out["errors"].append(f"server {s.index} exit {rc}: {s.proc.tail()}")
    if topic is not None:
        with _step(out, "broker check"):
            pid1 = broker_pid(plan.bootstrap)
            out["broker_pid"] = [pid0, pid1]
            if pid0 is None or pid1 != pid0:
                out["errors"].append(
                    f"the broker was restarted during the scenario (pid {pid0} -> {pid1}): "
                    "figures not valid (another process stopped it? try --own-broker)"
                )
        with _step(out, "topic"):
            asyncio.run(kafka_kit().delete_topic_quietly(plan.bootstrap, topic))


def _health(out: dict[str, Any], h0: list[HealthProbe], h1: list[HealthProbe]) -> None:
    consumed: list[float | None] = []
    for a, b in zip(h0, h1, strict=True):
        if a.body is None or b.body is None:
            out["errors"].append(f"/health failed: {a.error or b.error}")
            consumed.append(None)
            continue
        seconds = (b.mid - a.mid) / 1e9
        assert a.position is not None and b.position is not None
        consumed.append((b.position - a.position) / seconds)
        out.setdefault("hub_markets", []).append(b.body["markets"])
        out.setdefault("hub_subscriptions", []).append(
            [a.body.get("subscriptions"), b.body.get("subscriptions")]
        )
        out.setdefault("health_body_end", []).append(b.body)
        out.setdefault("health_response_ms", []).append([round(a.ms, 1), round(b.ms, 1)])
    out["hub_applied_per_s_health"] = consumed  # a cross-check of the stamps


def _collect(
    out: dict[str, Any],
    plan: Plan,
    mode: str,
    servers: list[Server],
    window: tuple[int, int, int],
    w_mid: tuple[int, int],
) -> None:
    t0, t1, t_end = window
    seconds = (t1 - t0) / 1e9
    offset_ns = realtime_minus_monotonic_ns()
    pub_h, apply_h, bus_h = Hist(), Hist(), Hist()
    offer_h, offer_apply_h = Hist(), Hist()  # paced runs: from each record's due time
    due_table: Sequence[int] = array("q")
    if out.get("rate") and mode == "kafka":
        with contextlib.suppress(OSError):  # run_feed's log, by offset
            due_table = fanout._q((servers[0].dir.parent / "feed-due.bin").read_bytes())
        if not due_table:
            out["errors"].append("no due times from the feed: offer latency unknown")
    per_server: list[dict[str, Any]] = []
    for s in servers:
        # odds_fanout's own figures for this server and its subscribers: delivered
        # and hub-apply → client latency, computed by odds_fanout._collect.
        one: dict[str, Any] = {"errors": []}
        fanout._collect(one, s.dir, len(s.clients), s.dir / "stamps.pkl", t0, t1, t_end)
        per_server.append(one)
        out["errors"].extend(f"server {s.index}: {e}" for e in one["errors"])
        stamps = _load(s.dir / "stamps.pkl")
        if stamps is None:
            continue
        apply_pos = fanout._q(stamps["apply_pos"])
        apply_t = fanout._q(stamps["apply_t"])
        pub_ns: Sequence[int]
        k_stamps = _load(s.dir / "kstamps.pkl") or {}
        if mode == "kafka":
            k = k_stamps
            if not k:
                out["errors"].append(f"server {s.index}: no Kafka timestamps")
                continue
            offsets, stamps_ms = fanout._q(k["offset"]), fanout._q(k["timestamp_ms"])
            out.setdefault("kafka_timestamp_types", []).append(k["timestamp_types"])
            table = array("q", [-1]) * ((max(offsets) + 1) if offsets else 0)
            for off, ms in zip(offsets, stamps_ms, strict=True):
                # CreateTime is the ms floor: its middle, on CLOCK_MONOTONIC
                table[off] = ms * 1_000_000 + 500_000 - offset_ns
            pub_ns = table
        else:
            pub_ns = fanout._q(stamps["publish_t"])

        # The bus at the window's ends, on one clock: records published (Kafka: the
        # topic's end offset, probed; in-process: the publish stamps) less records
        # this server's hub had started applying by then.
        def applied_by(t: int, pos: array[int] = apply_pos, ts: array[int] = apply_t) -> int:
            i = bisect.bisect_left(ts, t)  # apply stamps are in time order
            return pos[i - 1] if i else 0

        lags: list[tuple[int, int]] = []  # (instant, records)
        if mode == "kafka":
            lags = [(m, v - applied_by(m)) for m, v in out.get("end_offsets", [])]
        else:
            if s.index == 0:
                out["bus_published_per_s"] = sum(1 for t in pub_ns if t0 <= t < t1) / seconds
            # publish stamps are in time order
            lags = [(t, bisect.bisect_left(pub_ns, t) - applied_by(t)) for t in (t0, t1)]
        if len(lags) == 2:
            (i0, lag0), (i1, lag1) = lags
            out.setdefault("lag_records_at_end", []).append(lag1)
            out.setdefault("lag_growth_per_s", []).append((lag1 - lag0) / ((i1 - i0) / 1e9))
        out.setdefault("bus_consumed_per_s", []).append(one.get("applied_per_s_stamps"))
        samples: list[tuple[bytes, bytes]] = []
        for j in range(len(s.clients)):
            data = _load(s.dir / f"client-{j}.pkl")
            if data is not None:
                samples.extend(data["latency"])
                streams = data["streams"]
                out.setdefault("per_client_process", []).append(
                    {
                        "server": s.index,
                        "subscribers": len(streams),
                        "changes_per_s": sum(x["changes"] for x in streams) / seconds,
                        "frames_per_s": sum(x["frames"] for x in streams) / seconds,
                        "subscribers_with_no_frame": sum(1 for x in streams if not x["frames"]),
                    }
                )
        p, a, b = server_latency(apply_pos, apply_t, pub_ns, samples, window)
        if out.get("rate"):
            due = due_table if mode == "kafka" else fanout._q(k_stamps.get("due", b""))
            o, _, ob = server_latency(apply_pos, apply_t, due, samples, window)
            offer_h.merge(o)
            offer_apply_h.merge(ob)
        pub_h.merge(p)
        apply_h.merge(a)
        bus_h.merge(b)  # per record and server (each server applies every record)
    delivered = [d["delivered"] for d in per_server if "delivered" in d]
    if delivered:
        keys = [k for k, v in delivered[0].items() if isinstance(v, float | int)]
        out["delivered"] = {k: sum(d[k] for d in delivered) for k in keys}
    out["latency_ms"] = {
        "publish_to_client": pub_h.summary(),
        "apply_to_client": apply_h.summary(),
        "publish_to_apply": bus_h.summary(),
    }
    if out.get("rate"):
        out["latency_ms"]["offer_to_client"] = offer_h.summary()
        out["latency_ms"]["offer_to_apply"] = offer_apply_h.summary()
    out["per_server"] = [
        {
            "subscribers": s.subscribers,
            "delivered_changes_per_s": d.get("delivered", {}).get("changes_per_s"),
            "delivered_frames_per_s": d.get("delivered", {}).get("frames_per_s"),
            "per_subscriber_changes_per_s": d.get("delivered", {}).get(
                "per_subscriber_changes_per_s"
            ),
            "apply_to_client_ms": d.get("latency_ms"),
            "applied_per_s_stamps": d.get("applied_per_s_stamps"),
            "apply_batches_per_s": d.get("apply_batches_per_s"),
            "bus_wait_ms_inprocess": d.get("bus_wait_ms"),
        }
        for s, d in zip(servers, per_server, strict=True)
    ]
    out["window_ns"] = {"t0": t0, "t1": t1, "probe_w0": w_mid[0], "probe_w1": w_mid[1]}
    for s in servers:
        lines = fanout._count_lines(s.dir / "server.err")
        out.setdefault("server_log_lines", []).append(lines)
        if lines:
            out.setdefault("server_log_tail", []).append(s.proc.tail(4))


# ------------------------------------------------------------------ report


def fmt_int(value: float | None) -> str:
    return fanout.fmt_int(value)


def fmt_ms(value: float | None) -> str:
    return fanout.fmt_ms(value)


def _pct(values: list[float | None] | None) -> str:
    vals = [v for v in values or [] if v is not None]
    return "-" if not vals else "+".join(f"{v:.0f}" for v in vals)


COLUMNS = (
    ("mode", 9),
    ("feed", 6),
    ("srv×subs", 8),
    ("served", 6),
    ("bus pub/s", 9),
    ("consumed/s", 15),
    ("lag rec", 9),
    ("changes/s", 11),
    ("snap%", 5),
    ("frames/s", 9),
    ("offer→cli p50/p99", 17),
    ("pub→cli p50/p99", 15),
    ("apply→cli p50/p99", 17),
    ("pub→apply p50/p99", 17),
    ("CPU% feed", 9),
    ("srv", 7),
    ("broker", 6),
    ("cli", 7),
)


def _served(r: dict[str, Any]) -> str:
    """Subscriptions the servers' hubs had at the window's end (``/health``)."""
    ends = [pair[1] for pair in r.get("hub_subscriptions", []) if pair[1] is not None]
    return str(sum(ends)) if ends else "-"


def feed_label(rate: float) -> str:
    return f"{rate:g}/s" if rate else "flat"


def header() -> str:
    return "  ".join(name.rjust(w) for name, w in COLUMNS)


def _pair(lat: dict[str, Any] | None) -> str:
    lat = lat or {}
    return f"{fmt_ms(lat.get('p50'))} / {fmt_ms(lat.get('p99'))}"


def row(r: dict[str, Any]) -> str:
    lat = r.get("latency_ms", {})
    cpu = r.get("cpu_percent", {})
    shares = r.get("subscribers_per_server", [])
    consumed = "/".join(fmt_int(v) for v in r.get("bus_consumed_per_s", [])) or "-"
    lag = r.get("lag_records_at_end")
    clients = [v for v in cpu.get("clients", []) if v is not None]
    cells = (
        r["mode"],
        feed_label(r.get("rate", 0)),
        f"{len(shares)}×{shares[0] if shares else 0}",
        _served(r),
        fmt_int(r.get("bus_published_per_s")),
        consumed,
        "-" if not lag else "/".join(fmt_int(v) for v in lag),
        fmt_int(r.get("delivered", {}).get("changes_per_s")),
        _snap(r.get("delivered", {})),
        fmt_int(r.get("delivered", {}).get("frames_per_s")),
        _pair(lat.get("offer_to_client")),
        _pair(lat.get("publish_to_client")),
        _pair(lat.get("apply_to_client")),
        _pair(lat.get("publish_to_apply")),
        _pct(cpu.get("feed")),
        _pct(cpu.get("servers")),
        _pct(cpu.get("broker")),
        f"{sum(clients):.0f}" if clients else "-",
    )
    return "  ".join(c.rjust(w) for c, (_, w) in zip(cells, COLUMNS, strict=True))


def _snap(d: dict[str, Any]) -> str:
    changes = d.get("changes_per_s")
    return f"{100 * d['snapshot_changes_per_s'] / changes:.0f}" if changes else "-"


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """kafka / inprocess for each feed rate both ran at."""
    return [
        q
        for rate in dict.fromkeys(r.get("rate", 0) for r in results)
        if (q := _ratios([r for r in results if r.get("rate", 0) == rate]))
    ]


def _ratios(results: list[dict[str, Any]]) -> dict[str, Any]:
    k = next((r for r in results if r["mode"] == "kafka" and "delivered" in r), None)
    b = next((r for r in results if r["mode"] == "inprocess" and "delivered" in r), None)
    if k is None or b is None:
        return {}

    def ratio(num: float | None, den: float | None) -> float | None:
        return num / den if num is not None and den else None

    def lat(r: dict[str, Any], interval: str, q: str) -> float | None:
        value: float | None = r.get("latency_ms", {}).get(interval, {}).get(q)
        return value

    def consumed(r: dict[str, Any]) -> float | None:
        vals = [v for v in r.get("bus_consumed_per_s", []) if v is not None]
        return min(vals) if vals else None

    out: dict[str, Any] = {
        "rate": k.get("rate", 0),
        "bus_published_per_s": ratio(k.get("bus_published_per_s"), b.get("bus_published_per_s")),
        "bus_consumed_per_s_per_server": ratio(consumed(k), consumed(b)),
        "delivered_changes_per_s": ratio(
            k["delivered"]["changes_per_s"], b["delivered"]["changes_per_s"]
        ),
        "delivered_frames_per_s": ratio(
            k["delivered"]["frames_per_s"], b["delivered"]["frames_per_s"]
        ),
    }
    for interval in ("offer_to_client", "publish_to_client", "apply_to_client"):
        for q in ("p50", "p99"):
            out[f"{interval}_{q}"] = ratio(lat(k, interval, q), lat(b, interval, q))
    return out


# -------------------------------------------------------------------- main


def pass_length(files: list[Path]) -> int:
    """Records one pass of the recordings publishes (changes and feed statuses)."""
    from streams.replay import iter_changes  # noqa: PLC0415

    return sum(1 for _ in iter_changes(files))


def build_plan(args: argparse.Namespace) -> Plan:
    from clients.shared_data import demo_recordings  # noqa: PLC0415

    demo = demo_recordings()
    subset = {"fast": fanout.FAST_SUBSET, "deltas": fanout.FAST_SUBSET[1:]}.get(args.recordings)
    files = demo if subset is None else [p for p in demo if p.name in subset]
    quick = args.quick
    return Plan(
        subscribers=args.subscribers or (100 if quick else 1000),
        kafka_servers=args.kafka_servers,
        modes=args.modes or ["inprocess", "kafka"],
        rates=args.rates,
        bus_probe=args.bus_probe,
        duration_s=args.duration or (3.0 if quick else 8.0),
        pass_records=None if quick or not any(args.rates) else pass_length(files),
        warmup_s=args.warmup or (1.0 if quick else 2.0),
        grace_s=0.5 if quick else 1.0,
        window=args.window,
        client_processes=args.client_processes,
        latency_streams=args.latency_streams,
        recordings=files,
        recordings_choice=args.recordings,
        sync_timeout_s=args.sync_timeout or (5.0 if quick else 15.0),
        bootstrap=args.kafka,
        profile=args.profile,
        results_dir=(args.out if args.out.is_absolute() else Path.cwd() / args.out).parent,
        quick=quick,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 100 subs, ~3 s measured")
    p.add_argument("--out", type=Path, default=BENCH / "results" / "kafka_fanout.json")
    p.add_argument("--kafka", default=DEFAULT_BOOTSTRAP, help="bootstrap (infra/kafka/kafka.sh up)")
    p.add_argument(
        "--own-broker",
        type=int,
        nargs="?",
        const=29092,
        default=None,
        metavar="PORT",
        help="start a private kafka.sh broker on PORT (29092) with its own state dir for\n"
        "this run, instead of --kafka (when other work restarts the shared one)",
    )
    p.add_argument("--subscribers", type=int, default=None, help="total, split over the servers")
    p.add_argument("--kafka-servers", type=int, default=2, help="server processes on Kafka")
    p.add_argument(
        "--modes", type=lambda s: s.split(","), default=None, help="inprocess,kafka (both)"
    )
    p.add_argument("--duration", type=float, default=None, help="measured seconds per scenario")
    p.add_argument("--warmup", type=float, default=None, help="seconds after connecting")
    p.add_argument("--window", type=int, default=64, help="request-n window per stream")
    p.add_argument("--client-processes", type=int, default=2, help="in all, split over servers")
    p.add_argument("--latency-streams", type=int, default=50, help="subscribers sampled")
    p.add_argument("--recordings", choices=("fast", "demo", "deltas"), default="fast")
    p.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[0.0, 300.0],
        help="feed rates, records/s, 0 = flat out; each runs both modes (default 0,300)",
    )
    p.add_argument(
        "--bus-probe",
        action="store_true",
        help="kafka: an idle consumer in this process times publish → on the bus\n"
        "(costs this 2-core box ~10 %% of a core, taken from the servers)",
    )
    p.add_argument("--sync-timeout", type=float, default=None)
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy server 0 (and the feed) during the window (perturbs the figures)",
    )
    args = p.parse_args(argv)
    for mode in args.modes or ():
        if mode not in ("inprocess", "kafka"):
            p.error(f"unknown mode {mode!r}")
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so that every finally: stops its processes and the topic


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = build_plan(args)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    out_path: Path = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out_path.parent.mkdir(parents=True, exist_ok=True)
    info = fanout.machine()
    info["aiokafka"] = fanout._version("aiokafka")
    own: OwnBroker | None = None
    try:
        if "kafka" in plan.modes:
            if args.own_broker:
                own = OwnBroker(args.own_broker)
                plan.bootstrap = own.bootstrap
                log(f"starting a private broker on {own.bootstrap} (state {own.state})")
                own.start()
                warm = 5.0 if plan.quick else 20.0
                log(f"warming it up for {warm:g} s (a feed and two readers on a scratch topic)")
                own.warm(plan.recordings, warm)
            try:
                kafka_kit().wait_for_broker(plan.bootstrap, 15)
            except Exception as exc:
                print(f"no Kafka broker at {plan.bootstrap} ({exc}); run infra/kafka/kafka.sh up")
                return 2
            info["kafka_broker"] = {
                "bootstrap": plan.bootstrap,
                "own": own is not None,
                "version": broker_version(own.env if own else None),
                "pid": broker_pid(plan.bootstrap),
            }
        return run_all(args, plan, info, started, out_path, argv)
    finally:
        reap_children()
        if own is not None:
            log("stopping the private broker")
            own.stop()


def run_all(
    args: argparse.Namespace,
    plan: Plan,
    info: dict[str, Any],
    started: float,
    out_path: Path,
    argv: Sequence[str] | None,
) -> int:
    todo = [(mode, rate) for rate in plan.rates for mode in plan.modes]
    log(
        f"kafka fan-out bench: {len(todo)} scenarios ({', '.join(plan.modes)}; feed "
        f"{', '.join(feed_label(r) for r in plan.rates)}), {plan.subscribers} subscribers "
        f"({plan.kafka_servers} Kafka servers), {plan.duration_s:g} s measured each "
        f"(paced: one pass, {plan.pass_records or '-'} records), "
        f"{len(plan.recordings)} recordings ({plan.recordings_choice}), "
        f"{info['cpu_count_logical']} cores, python {info['python']}, "
        f"commit {info['git_commit'][:10]}{' (dirty)' if info['git_dirty'] else ''}"
    )
    results: list[dict[str, Any]] = []
    for n, (mode, rate) in enumerate(todo, 1):
        log(f"[{n}/{len(todo)}] {mode}, feed {feed_label(rate)}: starting")
        tmp = Path(tempfile.mkdtemp(prefix="kafka_fanout-"))
        try:
            result = run_scenario(plan, mode, rate, tmp)
        except Exception as exc:  # recorded in the result, the run goes on
            result = {
                "mode": mode,
                "rate": rate,
                "subscribers": plan.subscribers,
                "errors": [f"{type(exc).__name__}: {exc}"],
            }
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        results.append(result)
        if "delivered" in result:
            log(f"  {header()}")
            log(f"  {row(result)}")
        for error in result.get("errors", []):
            log(f"  ! {error}")
        for warning in result.get("warnings", []):
            log(f"  ! {warning}")
    elapsed = time.monotonic() - started
    report: dict[str, Any] = {
        "bench": "kafka_fanout",
        "command": " ".join([".venv/bin/python", "bench/kafka_fanout.py", *(argv or sys.argv[1:])]),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_time_s": round(elapsed, 1),
        "machine": info,
        "plan": {
            "subscribers": plan.subscribers,
            "kafka_servers": plan.kafka_servers,
            "modes": plan.modes,
            "rates": plan.rates,
            "bus_probe": plan.bus_probe,
            "duration_s": plan.duration_s,
            "pass_records": plan.pass_records,
            "warmup_s": plan.warmup_s,
            "grace_s": plan.grace_s,
            "window": plan.window,
            "client_processes": plan.client_processes,
            "latency_streams": plan.latency_streams,
            "recordings": [p.name for p in plan.recordings],
            "bootstrap": plan.bootstrap,
            "profile": plan.profile,
            "feed": "--loop; rate 0: flat out (kafka: sportsbook feed replay; inprocess: serve "
            "--flat-out), else publishes paced to rate records/s",
        },
        "results": results,
        "ratios_kafka_over_inprocess": ratios(results),
    }
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(header())
    for r in results:
        print(
            row(r)
            if "delivered" in r
            else f"{r['mode']:>9}  {feed_label(r.get('rate', 0)):>6}  FAILED: {r['errors']}"
        )
    for r in results:
        transit = r.get("latency_ms", {}).get("publish_to_bus_probe")
        if transit:
            print(
                f"{r['mode']} {feed_label(r.get('rate', 0))}: publish → an idle consumer of the "
                f"topic (bus transit) p50/p99 {_pair(transit)} ms"
            )
    for q in report["ratios_kafka_over_inprocess"]:
        print()
        print(
            f"kafka / in-process, feed {feed_label(q['rate'])} (same recordings and subscribers):"
        )

        def x(key: str, q: dict[str, Any] = q) -> str:
            return "-" if q.get(key) is None else f"x{q[key]:.2f}"

        print(
            f"  bus published/s {x('bus_published_per_s')}   consumed/s per server "
            f"{x('bus_consumed_per_s_per_server')}   delivered changes/s "
            f"{x('delivered_changes_per_s')}   frames/s {x('delivered_frames_per_s')}"
        )
        if q.get("offer_to_client_p50") is not None:
            print(f"  offer→client p50 {x('offer_to_client_p50')} p99 {x('offer_to_client_p99')}")
        print(
            f"  publish→client p50 {x('publish_to_client_p50')} p99 "
            f"{x('publish_to_client_p99')}   apply→client p50 {x('apply_to_client_p50')} "
            f"p99 {x('apply_to_client_p99')}"
        )
    print()
    print(f"run time {elapsed:.0f} s; figures and machine info in {args.out}")
    return 0 if all("delivered" in r for r in results) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_server":
        sys.exit(run_server(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "_feed":
        sys.exit(run_feed(sys.argv[2:]))
    sys.exit(main())
