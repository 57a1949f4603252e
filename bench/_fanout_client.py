"""Subscriber process for ``bench/odds_fanout.py``: many subscribers, reading flat out.

Not a product client: a lean reader so that the clients cost as little CPU as
possible and the figures measure the server. Two wire formats:

* ``product``: RSocket 1.0 over TCP, spoken directly (the same bytes
  ``SportsbookClient`` sends: SETUP, REQUEST_STREAM on route ``odds.stream``
  with ``{}`` = all markets, REQUEST_N to keep a window open, KEEPALIVE). Frames
  are walked by hand; a frame's changes are counted as occurrences of
  ``"selectionId"`` (one per selection of a snapshot, one per selection entry
  of a delta) and its ``clk`` position is read from the end of the frame.
* ``baseline``: the raw TCP server of ``_fanout_server.py``: 4-byte length +
  JSON of one change (``{"p": position, …, "selections": [...]}``).

Protocol with the parent on stdin/stdout: connect everything, print ``READY``;
print ``SYNCED <streams> <ns>`` once every stream is past its initial burst
(product: has had its first delta frame, which the hub sends only once no
snapshot is pending; baseline: its first message) or ``--sync-timeout``; then
read ``GO <t0_ns> <t1_ns> <t_end_ns>`` (``time.monotonic_ns`` — CLOCK_MONOTONIC
is one clock for every process of the machine), count frames received in
``[t0, t1)``, keep the (clk position, receive time) of frames of the sampled
streams until ``t_end``, then write a pickle of the results and print ``DONE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pickle
import sys
import threading
import time
from array import array
from datetime import timedelta
from pathlib import Path
from typing import Any

MONO = time.monotonic_ns
NEVER = 2**62

PAYLOAD, KEEPALIVE, ERROR = 10, 3, 11
FLAG_METADATA, FLAG_FOLLOWS, FLAG_COMPLETE, FLAG_RESPOND = 0x100, 0x80, 0x40, 0x80

SEL = b'"selectionId"'
CLK = b'"clk":"'
START = b'{"p":'


class Clock:
    """The measurement window, set by the parent's GO line."""

    t0 = NEVER
    t1 = NEVER
    t_end = NEVER


class Sync:
    """How many streams are past their initial burst (see ``Stats.synced``)."""

    count = 0


class Stats:
    """What one stream (subscriber) received inside the window."""

    __slots__ = (
        "bytes",
        "changes",
        "complete",
        "delta_frames",
        "error",
        "frames",
        "lat_pos",
        "lat_t",
        "other_frames",
        "sampled",
        "snapshot_changes",
        "snapshot_frames",
        "synced",
    )

    def __init__(self, sampled: bool) -> None:
        self.frames = 0
        self.delta_frames = 0
        self.snapshot_frames = 0
        self.other_frames = 0
        self.changes = 0
        self.snapshot_changes = 0
        self.bytes = 0
        self.sampled = sampled
        self.lat_pos = array("q")
        self.lat_t = array("q")
        self.error: str | None = None
        self.complete = False
        self.synced = False  # product: first delta frame (initial snapshots all sent)

    def summary(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "delta_frames": self.delta_frames,
            "snapshot_frames": self.snapshot_frames,
            "other_frames": self.other_frames,
            "changes": self.changes,
            "snapshot_changes": self.snapshot_changes,
            "bytes": self.bytes,
            "error": self.error,
            "complete": self.complete,
        }


# ----------------------------------------------------------------- RSocket


def _rsocket_frames(streams: int, window: int) -> tuple[bytes, list[bytes], Any]:
    """SETUP + REQUEST_STREAM bytes (built by rsocket-py) and a REQUEST_N encoder."""
    from rsocket.frame import serialize_with_frame_size_header  # noqa: PLC0415
    from rsocket.frame_builders import (  # noqa: PLC0415
        to_request_n_frame,
        to_request_stream_frame,
        to_setup_frame,
    )
    from rsocket.payload import Payload  # noqa: PLC0415

    from clients.client import route_metadata  # noqa: PLC0415

    setup = serialize_with_frame_size_header(
        to_setup_frame(
            Payload(None, None),
            b"application/json",
            b"message/x.rsocket.composite-metadata.v0",
            timedelta(seconds=5),
            timedelta(seconds=25),
            False,
        )
    )
    route = route_metadata("odds.stream")
    requests = [
        serialize_with_frame_size_header(
            to_request_stream_frame(2 * i + 1, Payload(b"{}", route), initial_request_n=window)
        )
        for i in range(streams)
    ]

    def request_n(stream_id: int, n: int) -> bytes:
        return bytes(serialize_with_frame_size_header(to_request_n_frame(stream_id, n)))

    return bytes(setup), [bytes(r) for r in requests], request_n


class RSocketConn(asyncio.Protocol):
    """One connection carrying ``len(stats)`` odds streams (ids 1, 3, 5, …)."""

    keepalive = b""

    def __init__(self, stats: list[Stats], opening: bytes, window: int, request_n: Any) -> None:
        self.stats = {2 * i + 1: s for i, s in enumerate(stats)}
        self.consumed = dict.fromkeys(self.stats, 0)
        self.opening = opening
        self.half = max(1, window // 2)
        self.request_n = request_n
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses)
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.opening)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        for s in self.stats.values():
            if not s.complete and s.error is None:
                s.error = f"connection lost: {exc}"
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = MONO()
        counting = Clock.t0 <= now < Clock.t1
        sampling = Clock.t0 <= now < Clock.t_end
        buf = self.buf
        buf += data
        n = len(buf)
        off = 0
        out: list[bytes] = []
        stats = self.stats
        while n - off >= 9:
            length = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2]
            end = off + 3 + length
            if end > n:
                break
            sid = (
                (buf[off + 3] << 24) | (buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6]
            ) & 0x7FFFFFFF
            type_flags = (buf[off + 7] << 8) | buf[off + 8]
            ftype = type_flags >> 10
            flags = type_flags & 0x3FF
            p = off + 9
            if ftype == PAYLOAD:
                s = stats.get(sid)
                if flags & FLAG_METADATA:
                    p += 3 + ((buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2])
                if s is not None:
                    if not s.synced and buf.startswith(b'{"kind":"delta"', p):
                        s.synced = True
                        Sync.count += 1
                    if flags & FLAG_FOLLOWS:
                        s.error = "fragmented frame (not expected)"
                    if p < end:
                        if counting:
                            s.frames += 1
                            s.bytes += end - p
                            sels = buf.count(SEL, p, end)
                            s.changes += sels
                            if buf.startswith(b'{"kind":"delta"', p):
                                s.delta_frames += 1
                            elif buf.startswith(b'{"kind":"snapshot"', p):
                                s.snapshot_frames += 1
                                s.snapshot_changes += sels
                            else:
                                s.other_frames += 1
                        if sampling and s.sampled:
                            i = buf.rfind(CLK, p, end)
                            if i >= 0:
                                j = buf.index(b'"', i + 7)
                                dot = buf.rindex(b".", i + 7, j)
                                s.lat_pos.append(int(buf[dot + 1 : j]))
                                s.lat_t.append(now)
                        c = self.consumed[sid] + 1
                        if c >= self.half:
                            out.append(self.request_n(sid, c))
                            c = 0
                        self.consumed[sid] = c
                    if flags & FLAG_COMPLETE:
                        s.complete = True
            elif ftype == KEEPALIVE:
                if flags & FLAG_RESPOND:
                    frame = bytearray(buf[off:end])
                    frame[8] &= ~FLAG_RESPOND & 0xFF
                    out.append(bytes(frame))
            elif ftype == ERROR:
                text = bytes(buf[p + 4 : end]).decode(errors="replace")
                for sid2, s in stats.items():
                    if sid in (0, sid2):
                        s.error = text
            off = end
        if off:
            del buf[:off]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def send_keepalive(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.keepalive)


def _keepalive_bytes() -> bytes:
    from rsocket.frame import serialize_with_frame_size_header  # noqa: PLC0415
    from rsocket.frame_builders import to_keepalive_frame  # noqa: PLC0415

    return bytes(serialize_with_frame_size_header(to_keepalive_frame(b"")))


# ---------------------------------------------------------------- baseline


class BaselineConn(asyncio.Protocol):
    """One subscriber of the raw TCP baseline: 4-byte length + JSON per change."""

    def __init__(self, stats: Stats) -> None:
        self.s = stats
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses)
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.s.error is None and exc is not None:
            self.s.error = f"connection lost: {exc}"
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = MONO()
        buf = self.buf
        buf += data
        n = len(buf)
        # The buffer always starts at a message boundary and every message starts
        # with `{"p":` (which occurs nowhere else), so the last complete message is
        # found from the end and everything is counted at C speed, not per message.
        last = buf.rfind(START, 0, n)
        if last < 4:
            return
        if last + int.from_bytes(buf[last - 4 : last], "big") > n:
            last = buf.rfind(START, 0, last - 4)
            if last < 4:
                return
        off = last + int.from_bytes(buf[last - 4 : last], "big")
        s = self.s
        if not s.synced:
            s.synced = True
            Sync.count += 1
        if Clock.t0 <= now < Clock.t1:
            messages = buf.count(START, 0, off)
            s.frames += messages
            s.delta_frames += messages
            s.bytes += off - 4 * messages
            s.changes += buf.count(SEL, 0, off)
        if s.sampled and Clock.t0 <= now < Clock.t_end:
            # {"p":123,...}: the newest position this subscriber now has, + 1 (like a clk)
            comma = buf.index(b",", last)
            s.lat_pos.append(int(buf[last + 5 : comma]) + 1)
            s.lat_t.append(now)
        del buf[:off]


# ------------------------------------------------------------------- main


async def _connect_all(args: argparse.Namespace, stats: list[Stats], conns: list[Any]) -> None:
    loop = asyncio.get_running_loop()
    if args.kind == "product":
        setup, requests, request_n = _rsocket_frames(args.streams, args.window)
        RSocketConn.keepalive = _keepalive_bytes()
        opening = setup + b"".join(requests)

        def factory(i: int) -> Any:
            chunk = stats[i * args.streams : (i + 1) * args.streams]
            return lambda: RSocketConn(chunk, opening, args.window, request_n)
    else:

        def factory(i: int) -> Any:
            return lambda: BaselineConn(stats[i])

    async def one(i: int) -> Any:
        for attempt in range(20):
            try:
                _, proto = await loop.create_connection(factory(i), args.host, args.port)
                return proto
            except OSError:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    batch = 50
    for start in range(0, args.connections, batch):
        end = min(start + batch, args.connections)
        conns.extend(await asyncio.gather(*(one(i) for i in range(start, end))))


def _read_go(loop: asyncio.AbstractEventLoop, go: asyncio.Future[tuple[int, int, int]]) -> None:
    line = sys.stdin.readline().split()
    if len(line) == 4 and line[0] == "GO":
        value = (int(line[1]), int(line[2]), int(line[3]))
        loop.call_soon_threadsafe(lambda: go.done() or go.set_result(value))
    else:
        loop.call_soon_threadsafe(lambda: go.done() or go.set_exception(SystemExit("no GO")))


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    per_conn = args.streams if args.kind == "product" else 1
    total = args.connections * per_conn
    stats = [Stats(sampled=(args.first_index + i) % args.sample_every == 0) for i in range(total)]
    conns: list[Any] = []

    async def keepalives() -> None:  # from the first connection on: connecting can take long
        while True:
            await asyncio.sleep(4)
            for c in conns:
                if isinstance(c, RSocketConn):
                    c.send_keepalive()

    ka = asyncio.create_task(keepalives())
    await _connect_all(args, stats, conns)
    print("READY", flush=True)
    started = MONO()
    while Sync.count < total:
        await asyncio.sleep(0.05)
        if MONO() - started > args.sync_timeout * 1e9:
            break
    print(f"SYNCED {Sync.count} {MONO() - started}", flush=True)
    go: asyncio.Future[tuple[int, int, int]] = loop.create_future()
    threading.Thread(target=_read_go, args=(loop, go), daemon=True).start()
    Clock.t0, Clock.t1, Clock.t_end = await go

    await asyncio.sleep(max(0.0, (Clock.t_end - MONO()) / 1e9))
    ka.cancel()
    result = {
        "streams": [s.summary() for s in stats],
        "latency": [(bytes(s.lat_pos), bytes(s.lat_t)) for s in stats if s.sampled],
    }
    await asyncio.to_thread(Path(args.out).write_bytes, pickle.dumps(result))
    for c in conns:
        if c.transport is not None:
            c.transport.abort()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.lost for c in conns)), 2)
    print("DONE", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("product", "baseline"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--streams", type=int, default=1, help="odds streams per connection")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--sample-every", type=int, default=1)
    parser.add_argument("--first-index", type=int, default=0)
    parser.add_argument("--sync-timeout", type=float, default=60.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
