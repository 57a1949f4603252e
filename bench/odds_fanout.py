"""Odds fan-out benchmark: the product server against a raw-TCP baseline, same run.

    .venv/bin/python bench/odds_fanout.py [--quick] [--out bench/results/odds_fanout.json]

For each event loop (uvloop, plain asyncio) and each subscriber count (1, 100,
1,000) it starts one server process replaying real Betfair recordings flat
out in a loop, subscribes N ``odds.stream`` subscribers (all markets) from
separate client processes that read as fast as they can with a request-n
window, and measures for ``--duration`` seconds after a warm-up:

* changes delivered/s (selection entries of delta frames + selections of
  snapshot frames, summed over subscribers) and frames/s;
* feed-to-client latency p50/p99: from the moment the hub starts applying the
  batch holding a change to the moment a client receives a frame whose ``clk``
  position covers it (see bench/README.md — measured with a stamp wrapper in
  the server process, nothing added to the product or the wire);
* hub changes applied/s (``GET /health`` → ``clk`` position delta);
* server CPU % (one core = 100 %) and RSS (start, peak), apart from the clients.

Then the same for the baseline (``bench/_fanout_server.py baseline``: one
length-prefixed JSON message per change per subscriber, no RSocket, no
conflation, no batching) and prints product/baseline ratios. STYLE.md rule 11.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import json
import os
import pickle
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
SERVER = BENCH / "_fanout_server.py"
CLIENT = BENCH / "_fanout_client.py"
MONO = time.monotonic_ns

# The demo recordings whose replay produces the most changes per second of
# server CPU (measured with iter_changes: 7.5k–15k changes/s each, against
# 1.4k–3.7k for the rest); ``--recordings demo`` replays all eleven.
FAST_SUBSET = (
    "betfair_parser_1.242971311.jsonl.bz2",
    "flumine_BASIC-1.132153978.jsonl",
    "nautilus_1.166811431.jsonl.bz2",
    "betfair_database_1.145405534.jsonl.bz2",
)

BAR_CHANGES_PER_CORE = 250_000
BAR_P99_MS = 50.0


# ------------------------------------------------------------------- plan


@dataclass
class Plan:
    subscribers: list[int]
    loops: list[str]
    impls: list[str]
    duration_s: float
    warmup_s: float
    grace_s: float
    window: int
    streams_per_connection: int
    client_processes: int
    latency_streams: int
    recordings: list[Path]
    recordings_choice: str
    baseline_batch: int
    sync_timeout_s: float
    profile: bool
    quick: bool


@dataclass
class Scenario:
    impl: str  # "product" | "baseline"
    loop: str  # "uvloop" | "asyncio"
    subscribers: int
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.impl:<8} {self.loop:<7} {self.subscribers:>5} subs"


def log(text: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%SZ")
    print(f"[{stamp}] {text}", flush=True)


# -------------------------------------------------------------- processes


class Proc:
    """A child process whose stdout lines arrive on a queue (so reads can time out)."""

    def __init__(self, argv: list[str], stderr_path: Path, stdin: bool = False) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("w")
        self.popen = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.ps = psutil.Process(self.popen.pid)

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, predicate: Any, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"timed out waiting for {what}; stderr: {self.tail()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"process exited waiting for {what}; stderr: {self.tail()}")
            if predicate(line):
                return line

    def send(self, text: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text)
        self.popen.stdin.flush()

    def stop(self, timeout: float) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            return None
        finally:
            self._stderr.close()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            return None

    def tail(self, lines: int = 8) -> str:
        if not self._stderr.closed:  # stop() closes it; the file is still there to read
            self._stderr.flush()
        try:
            text = self.stderr_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def cpu_seconds(self) -> float:
        try:
            times = self.ps.cpu_times()
        except psutil.Error:
            return float("nan")
        return float(times.user + times.system)

    def rss(self) -> int:
        try:
            return int(self.ps.memory_info().rss)
        except psutil.Error:
            return 0


class RssWatch:
    """Samples a process's RSS every 50 ms in a thread; keeps the peak."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.rss())
            self._stop.wait(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(1)
        return self.peak


class HealthProbe:
    """One ``GET /health`` in a thread, timed (the server's loop may be busy)."""

    def __init__(self, port: int) -> None:
        self.sent = MONO()
        self.received = 0
        self.body: dict[str, Any] | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._get, args=(port,), daemon=True)
        self._thread.start()

    def _get(self, port: int) -> None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
                self.body = json.loads(r.read())
        except (OSError, ValueError) as exc:
            self.error = str(exc)
        self.received = MONO()

    def join(self) -> HealthProbe:
        self._thread.join(12)
        return self

    @property
    def mid(self) -> int:
        return (self.sent + self.received) // 2

    @property
    def position(self) -> int | None:
        if self.body is None:
            return None
        return int(str(self.body["clk"]).rpartition(".")[2])

    @property
    def ms(self) -> float:
        return (self.received - self.sent) / 1e6


# ---------------------------------------------------------------- scenario


def server_argv(plan: Plan, sc: Scenario, stamps: Path) -> list[str]:
    files = [str(p) for p in plan.recordings]
    no_uvloop = ["--no-uvloop"] if sc.loop == "asyncio" else []
    if sc.impl == "product":
        return [
            sys.executable,
            str(SERVER),
            "product",
            str(stamps),
            "--replay",
            *files,
            "--flat-out",
            "--tcp-port",
            "0",
            "--http-port",
            "0",
            *no_uvloop,
        ]
    return [
        sys.executable,
        str(SERVER),
        "baseline",
        "--replay",
        *files,
        "--batch",
        str(plan.baseline_batch),
        "--stamps",
        str(stamps),
        *no_uvloop,
    ]


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_scenario(plan: Plan, sc: Scenario, tmp: Path, results_dir: Path) -> dict[str, Any]:
    product = sc.impl == "product"
    streams = plan.streams_per_connection if product else 1
    connections = max(1, sc.subscribers // streams)
    subscribers = connections * streams
    procs = 1 if connections == 1 else min(plan.client_processes, connections)
    sample_every = max(1, subscribers // plan.latency_streams)
    stamps = tmp / "stamps.pkl"
    out: dict[str, Any] = {
        "impl": sc.impl,
        "loop": sc.loop,
        "subscribers": subscribers,
        "connections": connections,
        "streams_per_connection": streams,
        "client_processes": procs,
        "window": plan.window,
        "duration_s": plan.duration_s,
        "warmup_s": plan.warmup_s,
        "errors": [],
    }
    started = time.monotonic()
    server = Proc(server_argv(plan, sc, stamps), tmp / "server.err")
    watch = RssWatch(server)
    clients: list[Proc] = []
    try:
        http_port = 0
        if product:  # prints its WebSocket URL (the HTTP port) before the TCP one
            ws = server.expect(lambda s: "ws://" in s, 60, "the server's WebSocket line")
            http_port = int(ws.rsplit(":", 1)[1].split("/")[0])
        line = server.expect(lambda s: "tcp://" in s, 60, "the server's TCP line")
        tcp_port = int(line.rsplit(":", 1)[1])
        time.sleep(0.5)  # the feed is running: RSS with no subscriber yet
        out["server_rss_start_mb"] = server.rss() / 2**20
        first = 0
        for i, conns in enumerate(split(connections, procs)):
            argv = [
                sys.executable,
                str(CLIENT),
                "--kind",
                sc.impl,
                "--port",
                str(tcp_port),
                "--connections",
                str(conns),
                "--streams",
                str(streams),
                "--window",
                str(plan.window),
                "--sample-every",
                str(sample_every),
                "--first-index",
                str(first),
                "--sync-timeout",
                str(plan.sync_timeout_s),
                "--out",
                str(tmp / f"client-{i}.pkl"),
            ]
            first += conns * streams
            clients.append(Proc(argv, tmp / f"client-{i}.err", stdin=True))
        for c in clients:
            c.expect(lambda s: s == "READY", 60, "a client's READY")
        out["connect_s"] = round(time.monotonic() - started, 2)
        ready = time.monotonic()
        synced = 0
        for c in clients:
            line = c.expect(lambda s: s.startswith("SYNCED"), plan.sync_timeout_s + 30, "SYNCED")
            synced += int(line.split()[1])
        out["initial_sync_s"] = round(time.monotonic() - ready, 2)
        out["synced_subscribers"] = synced
        if synced < subscribers:
            out["errors"].append(
                f"only {synced}/{subscribers} subscribers past their initial snapshots after "
                f"{plan.sync_timeout_s:g} s: measured during the initial burst"
            )
        out["setup_s"] = round(time.monotonic() - started, 2)
        t0 = MONO() + int(plan.warmup_s * 1e9)
        t1 = t0 + int(plan.duration_s * 1e9)
        t_end = t1 + int(plan.grace_s * 1e9)
        for c in clients:
            c.send(f"GO {t0} {t1} {t_end}\n")
        log(
            f"  {sc.label}: {connections} conn × {streams} stream(s) in {procs} client "
            f"process(es) connected in {out['connect_s']:.1f} s, {synced}/{subscribers} past "
            f"their initial snapshots after {out['initial_sync_s']:.1f} s; "
            f"warm-up {plan.warmup_s:g} s, measuring {plan.duration_s:g} s"
        )
        time.sleep(max(0.0, (t0 - MONO()) / 1e9))
        cpu0 = server.cpu_seconds()
        ccpu0 = [c.cpu_seconds() for c in clients]
        w0 = MONO()
        h0 = HealthProbe(http_port) if product else None
        profiler = None
        if plan.profile and product and sc.subscribers == max(plan.subscribers):
            profile_path = results_dir / f"profile-{sc.impl}-{sc.loop}-{sc.subscribers}.txt"
            profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "-p",
                    str(server.popen.pid),
                    "-d",
                    str(max(1, int(plan.duration_s) - 1)),
                    "-f",
                    "raw",
                    "-o",
                    str(profile_path),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            out["profile"] = str(profile_path)
        time.sleep(max(0.0, (t1 - MONO()) / 1e9))
        cpu1 = server.cpu_seconds()
        ccpu1 = [c.cpu_seconds() for c in clients]
        w1 = MONO()
        h1 = HealthProbe(http_port) if product else None
        wall = (w1 - w0) / 1e9
        out["server_cpu_percent"] = 100 * (cpu1 - cpu0) / wall
        client_cpu = [100 * (b - a) / wall for a, b in zip(ccpu0, ccpu1, strict=True)]
        out["client_cpu_percent_total"] = sum(client_cpu)
        out["client_cpu_percent_max_process"] = max(client_cpu)
        if h0 is not None and h1 is not None:
            _health(out, h0.join(), h1.join())
        for c in clients:
            c.expect(lambda s: s == "DONE", 30 + plan.grace_s, "a client's DONE")
            c.wait(10)
        if profiler is not None:
            profiler.wait(30)
    finally:
        for c in clients:
            c.stop(5)
        rc = server.stop(20)
        out["server_rss_peak_mb"] = watch.stop() / 2**20
        if rc not in (0, -signal.SIGTERM):
            out["errors"].append(f"server exit {rc}: {server.tail()}")
    _collect(out, tmp, len(clients), stamps, t0, t1, t_end)
    out["server_log_lines"] = _count_lines(tmp / "server.err")
    if out["server_log_lines"]:
        out["server_log_tail"] = server.tail(4)
    out["wall_s"] = round(time.monotonic() - started, 2)
    return out


def _count_lines(path: Path) -> int:
    try:
        return sum(1 for _ in path.open(errors="replace"))
    except OSError:
        return 0


def _health(out: dict[str, Any], h0: HealthProbe, h1: HealthProbe) -> None:
    if h0.body is None or h1.body is None:
        out["errors"].append(f"/health failed: {h0.error or h1.error}")
        return
    seconds = (h1.mid - h0.mid) / 1e9
    p0, p1 = h0.position, h1.position
    assert p0 is not None and p1 is not None
    out["hub_applied_per_s"] = (p1 - p0) / seconds
    out["server_frames_sent_per_s"] = (h1.body["framesSent"] - h0.body["framesSent"]) / seconds
    out["health_response_ms"] = [round(h0.ms, 1), round(h1.ms, 1)]
    out["hub_markets"] = h1.body["markets"]
    out["hub_subscriptions"] = h1.body["subscriptions"]


def _collect(
    out: dict[str, Any], tmp: Path, n_clients: int, stamps_path: Path, t0: int, t1: int, t_end: int
) -> None:
    seconds = (t1 - t0) / 1e9
    streams: list[dict[str, Any]] = []
    samples: list[tuple[bytes, bytes]] = []
    for i in range(n_clients):
        try:
            with (tmp / f"client-{i}.pkl").open("rb") as fh:
                data = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            out["errors"].append(f"client {i}: no results ({exc})")
            continue
        streams.extend(data["streams"])
        samples.extend(data["latency"])

    def total(key: str) -> int:
        return sum(int(s[key]) for s in streams)

    per_sub = sorted(s["changes"] / seconds for s in streams) or [0.0]
    out["delivered"] = {
        "changes_per_s": total("changes") / seconds,
        "snapshot_changes_per_s": total("snapshot_changes") / seconds,
        "frames_per_s": total("frames") / seconds,
        "delta_frames_per_s": total("delta_frames") / seconds,
        "snapshot_frames_per_s": total("snapshot_frames") / seconds,
        "other_frames_per_s": total("other_frames") / seconds,
        "payload_mb_per_s": total("bytes") / seconds / 2**20,
        "per_subscriber_changes_per_s": {
            "min": per_sub[0],
            "median": per_sub[len(per_sub) // 2],
            "max": per_sub[-1],
        },
        "subscribers_reporting": len(streams),
    }
    errors = [s["error"] for s in streams if s["error"]]
    if errors:
        out["errors"].append(f"{len(errors)} stream error(s), e.g. {errors[0]}")
    try:
        with stamps_path.open("rb") as fh:
            stamps = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        out["errors"].append(f"no server stamps, latency unknown ({exc})")
        return
    apply_pos = _q(stamps["apply_pos"])
    apply_t = _q(stamps["apply_t"])
    out["latency_ms"] = latency(apply_pos, apply_t, samples, t0, t1, t_end)
    in_window = [i for i, t in enumerate(apply_t) if t0 <= t < t1]
    if in_window:
        applied = apply_pos[in_window[-1]] - (apply_pos[in_window[0] - 1] if in_window[0] else 0)
        out["applied_per_s_stamps"] = applied / seconds
        out["apply_batches_per_s"] = len(in_window) / seconds
    if stamps.get("publish_t"):
        out["bus_wait_ms"] = bus_wait(apply_pos, apply_t, _q(stamps["publish_t"]), in_window)


def _q(raw: bytes) -> array[int]:
    values = array("q")
    values.frombytes(raw)
    return values


def weighted_percentiles(pairs: list[tuple[int, int]], qs: Sequence[float]) -> list[float]:
    """Percentiles of values (ns) weighted by counts, in ms."""
    pairs.sort()
    total = sum(w for _, w in pairs)
    out: list[float] = []
    for q in qs:
        target = q * total
        acc = 0
        for value, weight in pairs:
            acc += weight
            if acc >= target:
                out.append(value / 1e6)
                break
        else:
            out.append(pairs[-1][0] / 1e6 if pairs else float("nan"))
    return out


def latency(
    apply_pos: array[int],
    apply_t: array[int],
    samples: list[tuple[bytes, bytes]],
    t0: int,
    t1: int,
    t_end: int,
) -> dict[str, Any]:
    """Per-change latency: batch applied (t_b, position E_b) → first frame with clk ≥ E_b.

    A frame's clk position P means "everything the hub applied before position P
    has reached you" (the hub claims the current position only once nothing is
    pending for the subscriber). Every change of a batch is weighted once per
    sampled subscriber. Changes not covered by ``t_end`` count at ``t_end - t_b``
    (a lower bound) and are reported as ``censored_share``.
    """
    batches: list[tuple[int, int, int]] = []
    prev = 0
    for pos, t in zip(apply_pos, apply_t, strict=True):
        if t0 <= t < t1 and pos > prev:
            batches.append((pos, t, pos - prev))
        prev = pos
    pairs: list[tuple[int, int]] = []
    censored = 0
    total = 0
    for raw_pos, raw_t in samples:
        positions = _q(raw_pos)
        times = _q(raw_t)
        running = 0
        for i, p in enumerate(positions):  # "has everything before the newest clk seen"
            running = max(running, p)
            positions[i] = running
        n = len(positions)
        for end, t, weight in batches:
            i = bisect.bisect_left(positions, end)
            total += weight
            if i < n:
                pairs.append((times[i] - t, weight))
            else:
                pairs.append((t_end - t, weight))
                censored += weight
    if not pairs:
        return {"p50": None, "p99": None, "max": None, "changes": 0, "sampled_streams": 0}
    p50, p99, p100 = weighted_percentiles(pairs, (0.5, 0.99, 1.0))
    return {
        "p50": p50,
        "p99": p99,
        "max": p100,
        "changes": total,
        "sampled_streams": len(samples),
        "censored_share": censored / total if total else 0.0,
    }


def bus_wait(
    apply_pos: array[int], apply_t: array[int], publish_t: array[int], in_window: list[int]
) -> dict[str, Any]:
    """How long records sat on the in-process bus before the hub took them (flat out: full)."""
    pairs: list[tuple[int, int]] = []
    for i in in_window:
        start = apply_pos[i - 1] if i else 0
        for p in range(start, min(apply_pos[i], len(publish_t))):
            pairs.append((apply_t[i] - publish_t[p], 1))
    if not pairs:
        return {"p50": None, "p99": None}
    p50, p99 = weighted_percentiles(pairs, (0.5, 0.99))
    return {"p50": p50, "p99": p99}


# ------------------------------------------------------------------ report


def fmt_int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


COLUMNS = (
    ("impl", 8),
    ("loop", 7),
    ("subs", 5),
    ("changes/s", 11),
    ("snap%", 5),
    ("frames/s", 9),
    ("p50 ms", 7),
    ("p99 ms", 7),
    ("hub chg/s", 9),
    ("srv CPU%", 8),
    ("chg/s/core", 10),
    ("RSS MB", 11),
    ("cli CPU%", 8),
)


def row(r: dict[str, Any]) -> str:
    d = r.get("delivered", {})
    lat = r.get("latency_ms", {})
    changes = d.get("changes_per_s")
    cpu = r.get("server_cpu_percent")
    per_core = changes / (cpu / 100) if changes and cpu else None
    snap = 100 * d["snapshot_changes_per_s"] / changes if changes else None
    hub = r.get("hub_applied_per_s", r.get("applied_per_s_stamps"))
    rss = f"{r.get('server_rss_start_mb', 0):.0f}/{r.get('server_rss_peak_mb', 0):.0f}"
    cells = (
        r["impl"],
        r["loop"],
        str(r["subscribers"]),
        fmt_int(changes),
        "-" if snap is None else f"{snap:.0f}",
        fmt_int(d.get("frames_per_s")),
        fmt_ms(lat.get("p50")),
        fmt_ms(lat.get("p99")),
        fmt_int(hub),
        "-" if cpu is None else f"{cpu:.0f}",
        fmt_int(per_core),
        rss,
        f"{r.get('client_cpu_percent_total', 0):.0f}",
    )
    return "  ".join(c.rjust(w) for c, (_, w) in zip(cells, COLUMNS, strict=True))


def header() -> str:
    return "  ".join(name.rjust(w) for name, w in COLUMNS)


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        if r["impl"] != "product":
            continue
        base = next(
            (
                b
                for b in results
                if b["impl"] == "baseline"
                and b["loop"] == r["loop"]
                and b["subscribers"] == r["subscribers"]
            ),
            None,
        )
        if base is None or "delivered" not in r or "delivered" not in base:
            continue

        def ratio(key: str, p: dict[str, Any] = r, b: dict[str, Any] = base) -> float | None:
            num, den = p["delivered"][key], b["delivered"][key]
            return num / den if den else None

        out.append(
            {
                "loop": r["loop"],
                "subscribers": r["subscribers"],
                "changes_per_s": ratio("changes_per_s"),
                "frames_per_s": ratio("frames_per_s"),
                "p99_ms_product": r.get("latency_ms", {}).get("p99"),
                "p99_ms_baseline": base.get("latency_ms", {}).get("p99"),
            }
        )
    return out


def bar_verdicts(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        if r["impl"] != "product" or "delivered" not in r:
            continue
        cpu = r.get("server_cpu_percent") or 0
        per_core = r["delivered"]["changes_per_s"] / (cpu / 100) if cpu else 0
        p99 = r.get("latency_ms", {}).get("p99")
        ok = per_core >= BAR_CHANGES_PER_CORE and p99 is not None and p99 <= BAR_P99_MS
        lines.append(
            f"  {r['loop']:<7} {r['subscribers']:>5} subs: {per_core:>11,.0f} changes/s per "
            f"server core, p99 {fmt_ms(p99)} ms -> {'MEETS' if ok else 'MISSES'} the bar"
        )
    return lines


def profile_summary(path: Path, top: int = 12) -> dict[str, Any]:
    """Self and inclusive sample shares per function from a py-spy ``raw`` (folded) file."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")"
            for f in stack.split(";")
        ]
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for f in set(frames):
            incl[f] = incl.get(f, 0) + count

    def share(d: dict[str, int]) -> list[tuple[str, float]]:
        return [
            (k, round(100 * v / total, 1))
            for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]
        ]

    return {"samples": total, "self_percent": share(own), "inclusive_percent": share(incl)}


def machine() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except OSError:
            return ""

    try:
        import uvloop  # noqa: PLC0415

        uv = uvloop.__version__
    except ImportError:
        uv = None
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "uvloop": uv,
        "rsocket": _version("rsocket"),
        "orjson": _version("orjson"),
        "aiohttp": _version("aiohttp"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(name)
    except PackageNotFoundError:
        return None


# -------------------------------------------------------------------- main


def scenarios(plan: Plan) -> Iterator[Scenario]:
    for loop in plan.loops:
        for subs in plan.subscribers:
            for impl in plan.impls:
                yield Scenario(impl, loop, subs)


def build_plan(args: argparse.Namespace) -> Plan:
    from clients.shared_data import demo_recordings  # noqa: PLC0415

    demo = demo_recordings()
    subset = {"fast": FAST_SUBSET, "deltas": FAST_SUBSET[1:]}.get(args.recordings)
    files = demo if subset is None else [p for p in demo if p.name in subset]
    quick = args.quick
    subs = args.subscribers or ([1, 100] if quick else [1, 100, 1000])
    loops = args.loops or (["uvloop"] if quick else ["uvloop", "asyncio"])
    return Plan(
        subscribers=subs,
        loops=loops,
        impls=["product", "baseline"] if not args.no_baseline else ["product"],
        duration_s=args.duration or (1.5 if quick else 6.0),
        warmup_s=args.warmup or (0.75 if quick else 2.0),
        grace_s=0.5 if quick else 1.0,
        window=args.window,
        streams_per_connection=args.streams_per_connection,
        client_processes=args.client_processes,
        latency_streams=args.latency_streams,
        recordings=files,
        recordings_choice=args.recordings,
        baseline_batch=args.baseline_batch,
        sync_timeout_s=args.sync_timeout or (5.0 if quick else 30.0),
        profile=args.profile,
        quick=quick,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 and 100 subs, uvloop, ~2 s")
    p.add_argument("--out", type=Path, default=BENCH / "results" / "odds_fanout.json")
    p.add_argument("--subscribers", type=lambda s: [int(x) for x in s.split(",")], default=None)
    p.add_argument("--loops", type=lambda s: s.split(","), default=None, help="uvloop,asyncio")
    p.add_argument("--duration", type=float, default=None, help="measured seconds per scenario")
    p.add_argument("--warmup", type=float, default=None, help="seconds after connecting")
    p.add_argument("--window", type=int, default=64, help="request-n window per stream")
    p.add_argument("--streams-per-connection", type=int, default=1)
    p.add_argument("--client-processes", type=int, default=2)
    p.add_argument("--latency-streams", type=int, default=50, help="subscribers sampled")
    p.add_argument(
        "--recordings",
        choices=("fast", "demo", "deltas"),
        default="fast",
        help="deltas: the fast subset less the 200-market football capture, whose "
        "opening image re-snapshots 200 markets on every pass of the loop",
    )
    p.add_argument("--baseline-batch", type=int, default=64, help="baseline changes per yield")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument(
        "--sync-timeout",
        type=float,
        default=None,
        help="max seconds to wait for every subscriber's initial snapshots before warm-up",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the product at the most subs")
    args = p.parse_args(argv)
    for loop in args.loops or ():
        if loop not in ("uvloop", "asyncio"):
            p.error(f"unknown loop {loop!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = build_plan(args)
    started = time.monotonic()
    out_path: Path = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out_path.parent.mkdir(parents=True, exist_ok=True)
    todo = list(scenarios(plan))
    info = machine()
    log(
        f"odds fan-out bench: {len(todo)} scenarios, {plan.duration_s:g} s measured each, "
        f"{len(plan.recordings)} recordings ({plan.recordings_choice}), "
        f"{info['cpu_count_logical']} cores, python {info['python']}, "
        f"commit {info['git_commit'][:10]}{' (dirty)' if info['git_dirty'] else ''}"
    )
    results: list[dict[str, Any]] = []
    for n, sc in enumerate(todo, 1):
        log(f"[{n}/{len(todo)}] {sc.label}: starting")
        tmp = Path(tempfile.mkdtemp(prefix="odds_fanout-"))
        try:
            result = run_scenario(plan, sc, tmp, out_path.parent)
        except Exception as exc:
            result = {
                "impl": sc.impl,
                "loop": sc.loop,
                "subscribers": sc.subscribers,
                "errors": [f"{type(exc).__name__}: {exc}"],
            }
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if "profile" in result:
            with contextlib.suppress(OSError):
                result["profile_summary"] = profile_summary(REPO / result["profile"])
        results.append(result)
        if "delivered" in result:
            log(f"  {header()}")
            log(f"  {row(result)}")
        for error in result.get("errors", []):
            log(f"  ! {error}")
    elapsed = time.monotonic() - started
    report = {
        "bench": "odds_fanout",
        "command": " ".join([".venv/bin/python", "bench/odds_fanout.py", *(argv or sys.argv[1:])]),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_time_s": round(elapsed, 1),
        "machine": info,
        "plan": {
            "subscribers": plan.subscribers,
            "loops": plan.loops,
            "duration_s": plan.duration_s,
            "warmup_s": plan.warmup_s,
            "grace_s": plan.grace_s,
            "window": plan.window,
            "streams_per_connection": plan.streams_per_connection,
            "client_processes": plan.client_processes,
            "latency_streams": plan.latency_streams,
            "recordings": [p.name for p in plan.recordings],
            "baseline_batch": plan.baseline_batch,
        },
        "bar": {"changes_per_s_per_server_core": BAR_CHANGES_PER_CORE, "p99_ms": BAR_P99_MS},
        "results": results,
        "ratios_product_over_baseline": ratios(results),
    }
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(header())
    for r in results:
        print(
            row(r)
            if "delivered" in r
            else f"{r['impl']:>8}  {r['loop']:>7}  {r['subscribers']:>5}  FAILED: {r['errors']}"
        )
    print()
    print("product / baseline (same loop, same subscriber count):")
    for q in report["ratios_product_over_baseline"]:
        ch = "-" if q["changes_per_s"] is None else f"{q['changes_per_s']:.3f}"
        fr = "-" if q["frames_per_s"] is None else f"{q['frames_per_s']:.4f}"
        print(
            f"  {q['loop']:<7} {q['subscribers']:>5} subs: changes/s x{ch}   frames/s x{fr}   "
            f"p99 {fmt_ms(q['p99_ms_product'])} ms vs {fmt_ms(q['p99_ms_baseline'])} ms"
        )
    print()
    print(
        f"bar: >= {BAR_CHANGES_PER_CORE:,} changes/s per server core with p99 <= {BAR_P99_MS:g} ms"
    )
    for line in bar_verdicts(results):
        print(line)
    print()
    print(f"run time {elapsed:.0f} s; figures and machine info in {args.out}")
    failed = [r for r in results if "delivered" not in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
