"""Server process for ``bench/odds_fanout.py``: the product, or the raw-TCP baseline.

``product``: exactly ``sportsbook serve …`` (``clients.cli.main``), with two
class-level wrappers installed first, in this process only, so that latency
can be measured without adding anything to the product or the wire:

* ``OddsHub.apply_batch``: ``time.monotonic_ns()`` when the hub starts applying
  a batch, and the hub position after it (the ``clk`` position a frame built
  after that batch carries);
* ``InProcessPriceBus.publish``: when each record was appended to the bus (its
  index is its bus position).

Both cost one clock read and one array append (per batch / per record). On
SIGTERM the server stops as usual and the stamps are written to ``--stamps``.

``baseline``: a raw asyncio TCP server with no RSocket, no conflation and no
batching: every change of the same recordings (pre-loaded with
``iter_changes`` and pre-encoded as a small JSON object) is sent to every
connected subscriber as its own message: 4-byte big-endian length +
``{"p": <position>, "marketId", "publishedAt", "selections": [{"selectionId",
"price"}], "status"?, "inPlay"?}``. Backpressure is the naive one: when any
subscriber's socket buffer passes 64 KiB the pump waits for it (the slowest
subscriber paces everyone), so memory stays bounded without conflation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pickle
import signal
import sys
import time
from array import array
from pathlib import Path
from typing import Any

MONO = time.monotonic_ns
WRITE_HIGH_WATER = 64 * 1024  # the product's TRANSPORT_WRITE_HIGH_WATER


def _dump(path: str, stamps: dict[str, Any]) -> None:
    with open(path, "wb") as fh:
        pickle.dump({k: bytes(v) if isinstance(v, array) else v for k, v in stamps.items()}, fh)


# ------------------------------------------------------------------ product


def run_product(stamps_path: str, serve_args: list[str]) -> int:
    from clients import cli  # noqa: PLC0415
    from streams.bus import InProcessPriceBus  # noqa: PLC0415
    from streams.odds_hub import OddsHub  # noqa: PLC0415

    apply_pos = array("q")
    apply_t = array("q")
    publish_t = array("q")
    apply_batch = OddsHub.apply_batch
    publish = InProcessPriceBus.publish

    def stamped_apply_batch(self: OddsHub, records: Any) -> None:
        t = MONO()
        apply_batch(self, records)
        apply_pos.append(self.position)
        apply_t.append(t)

    async def stamped_publish(self: InProcessPriceBus, item: Any) -> None:
        await publish(self, item)
        publish_t.append(MONO())

    OddsHub.apply_batch = stamped_apply_batch  # type: ignore[method-assign]
    InProcessPriceBus.publish = stamped_publish  # type: ignore[method-assign]
    rc = cli.main(["serve", *serve_args])
    _dump(stamps_path, {"apply_pos": apply_pos, "apply_t": apply_t, "publish_t": publish_t})
    return rc


# ----------------------------------------------------------------- baseline


def preload(files: list[Path]) -> list[bytes]:
    """Every change of one pass, encoded once as JSON minus its opening ``{``."""
    import orjson  # noqa: PLC0415

    from sportsbook_core.changes import MarketChange  # noqa: PLC0415
    from streams.replay import iter_changes  # noqa: PLC0415

    bodies: list[bytes] = []
    for item in iter_changes(files):
        if not isinstance(item, MarketChange):
            continue
        body: dict[str, Any] = {
            "marketId": item.market_id,
            "publishedAt": item.published_at_ms,
            "selections": [
                {"selectionId": sid, "price": None if price is None else price.to_wire()}
                for sid, price in item.prices
            ],
        }
        if item.definition is not None:
            body["status"] = item.definition.status.value
            body["inPlay"] = item.definition.in_play
        bodies.append(orjson.dumps(body)[1:])
    return bodies


class _Fanout:
    def __init__(self) -> None:
        self.transports: dict[int, asyncio.Transport] = {}
        self.paused: set[int] = set()
        self.resumed = asyncio.Event()
        self.version = 0


class _Subscriber(asyncio.Protocol):
    def __init__(self, fanout: _Fanout) -> None:
        self.fanout = fanout

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)  # type: ignore[attr-defined]
        self.fanout.transports[id(self)] = transport  # type: ignore[assignment]
        self.fanout.version += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.fanout.transports.pop(id(self), None)
        self.fanout.version += 1
        self.resume_writing()

    def pause_writing(self) -> None:
        self.fanout.paused.add(id(self))

    def resume_writing(self) -> None:
        self.fanout.paused.discard(id(self))
        if not self.fanout.paused:
            self.fanout.resumed.set()

    def data_received(self, data: bytes) -> None:
        pass


async def _pump(fanout: _Fanout, bodies: list[bytes], batch: int, stamps: dict[str, Any]) -> None:
    pos = 0
    size = len(bodies)
    apply_pos: array[int] = stamps["apply_pos"]
    apply_t: array[int] = stamps["apply_t"]
    version = -1
    targets: list[asyncio.Transport] = []
    while True:
        if version != fanout.version:
            version = fanout.version
            targets = list(fanout.transports.values())
        t = MONO()
        for _ in range(batch):
            payload = b'{"p":%d,' % pos + bodies[pos % size]
            message = len(payload).to_bytes(4, "big") + payload
            for transport in targets:
                transport.write(message)
            pos += 1
        apply_pos.append(pos)
        apply_t.append(t)
        while fanout.paused:
            fanout.resumed.clear()
            await fanout.resumed.wait()
        await asyncio.sleep(0)


async def _baseline(args: argparse.Namespace) -> None:
    bodies = preload([Path(f) for f in args.replay])
    fanout = _Fanout()
    stamps: dict[str, Any] = {"apply_pos": array("q"), "apply_t": array("q"), "publish_t": None}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Subscriber(fanout), args.host, args.tcp_port)
    port = server.sockets[0].getsockname()[1]
    print(f"baseline: {len(bodies)} pre-encoded changes, batch {args.batch}", flush=True)
    print(f"  TCP:       tcp://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pump = asyncio.create_task(_pump(fanout, bodies, args.batch, stamps))
    await stop.wait()
    pump.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pump
    server.close()
    for transport in list(fanout.transports.values()):
        transport.abort()
    _dump(args.stamps, stamps)


def run_baseline(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="_fanout_server.py baseline")
    parser.add_argument("--replay", nargs="+", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tcp-port", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64, help="changes between yields")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--stamps", required=True)
    args = parser.parse_args(argv)
    if args.no_uvloop:
        asyncio.run(_baseline(args))
    else:
        import uvloop  # noqa: PLC0415

        uvloop.run(_baseline(args))
    return 0


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in ("product", "baseline"):
        print("usage: _fanout_server.py product STAMPS serve-args… | baseline args…")
        return 2
    if sys.argv[1] == "product":
        return run_product(sys.argv[2], sys.argv[3:])
    return run_baseline(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
