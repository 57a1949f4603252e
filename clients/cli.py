"""The ``sportsbook`` command: run a server, browse events, watch live odds."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from clients.book_view import BookView
from clients.client import DEFAULT_URL, SportsbookClient, SportsbookError
from clients.odds_table import render_market
from clients.shared_data import demo_recordings
from rsocket_server import logs
from rsocket_server.app import ServerConfig, SportsbookServer
from streams.simulator import SimulatorConfig, simulate


def _common_client(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("SPORTSBOOK_URL", DEFAULT_URL),
        help="tcp://host:port or ws://host:port/rsocket (default %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SPORTSBOOK_TOKEN"),
        help="bearer token (anonymous when omitted)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sportsbook", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("SPORTSBOOK_LOG", "warning"))
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run a server on replayed real recordings")
    serve.add_argument(
        "--replay",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="Betfair stream recordings (default: the bundled demo set)",
    )
    serve.add_argument(
        "--speed", type=float, default=30.0, help="replay at real time × N (default %(default)s)"
    )
    serve.add_argument("--flat-out", action="store_true", help="replay as fast as possible")
    serve.add_argument(
        "--simulate",
        metavar="MARKETS:RATE[:SECONDS]",
        help="feed from the price simulator instead of recordings",
    )
    serve.add_argument("--once", action="store_true", help="replay once instead of looping")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--tcp-port", type=int, default=7878)
    serve.add_argument("--http-port", type=int, default=8080)
    serve.add_argument(
        "--max-lifetime",
        type=float,
        default=30.0,
        help="seconds without KEEPALIVE before a connection is closed",
    )
    serve.add_argument("--web-root", type=Path, default=None)
    serve.add_argument("--no-uvloop", action="store_true")
    serve.add_argument("--progress", action="store_true", help="show replay progress")

    events = commands.add_parser("events", help="list events and their markets")
    _common_client(events)
    events.add_argument("--sport")
    events.add_argument("--json", action="store_true")

    market = commands.add_parser("market", help="print one market's snapshot as JSON")
    _common_client(market)
    market.add_argument("market_id")
    market.add_argument("--format", dest="odds_format")

    odds = commands.add_parser("odds", help="a live table of one market's prices")
    _common_client(odds)
    odds.add_argument("--market", required=True, dest="market_id")
    odds.add_argument("--format", dest="odds_format", default=None)
    odds.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    odds.add_argument("--window", type=int, default=8, help="request-n window")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    runner = {"serve": _serve, "events": _events, "market": _market, "odds": _odds}
    try:
        if args.command == "serve" and not args.no_uvloop:
            _install_uvloop()
        return asyncio.run(runner[args.command](args))
    except SportsbookError as error:
        print(f"error: {error.code}: {error.message}", file=sys.stderr)
        return 2
    except (ConnectionError, OSError) as error:
        print(f"error: cannot reach the server: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415 - optional speed-up (STYLE.md 12)

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(args: argparse.Namespace) -> int:
    files = [] if args.simulate else (list(args.replay) if args.replay else demo_recordings())
    config = ServerConfig(
        host=args.host,
        tcp_port=args.tcp_port,
        http_port=args.http_port,
        replay_files=files,
        speed=None if args.flat_out else args.speed,
        loop_replay=not args.once,
        progress=args.progress,
        max_lifetime_s=args.max_lifetime,
        web_root=args.web_root,
    )
    server = SportsbookServer(config)
    if args.simulate:
        simulator = SimulatorConfig.parse(args.simulate)
        await server.start(lambda sink: simulate(simulator, sink))
        print(
            f"sportsbook: simulating {simulator.markets} markets at {simulator.rate:g} changes/s",
            flush=True,
        )
    else:
        await server.start()
        print(
            f"sportsbook: replaying {len(files)} real recordings at "
            f"{'flat out' if config.speed is None else f'{config.speed:g}x'}",
            flush=True,
        )
    host = args.host
    print(f"  browser:   http://{host}:{server.http_port}/", flush=True)
    print(f"  WebSocket: ws://{host}:{server.http_port}/rsocket", flush=True)
    print(f"  TCP:       tcp://{host}:{server.tcp_port}", flush=True)
    print(
        "  try:       .venv/bin/sportsbook events   then   "
        ".venv/bin/sportsbook odds --market <marketId>",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    return 0


async def _events(args: argparse.Namespace) -> int:
    async with SportsbookClient.connect(args.url, args.token) as client:
        events = await client.events(sport=args.sport)
    if args.json:
        print(orjson.dumps(events, option=orjson.OPT_INDENT_2).decode())
        return 0
    for event in events:
        flag = " IN-PLAY" if event["inPlay"] else ""
        print(f"{event['startTime']}  {event['sport']:<16} {event['name']}{flag}")
        for m in event["markets"]:
            print(f"    {m['marketId']:<14} {m['status']:<9} {m['name']}")
    return 0


async def _market(args: argparse.Namespace) -> int:
    async with SportsbookClient.connect(args.url, args.token) as client:
        snapshot = await client.market(args.market_id, args.odds_format)
    print(orjson.dumps(snapshot, option=orjson.OPT_INDENT_2).decode())
    return 0


async def _odds(args: argparse.Namespace) -> int:
    tty = sys.stdout.isatty()
    view = BookView()
    frames = 0
    async with SportsbookClient.connect(args.url, args.token) as client:
        stream = client.odds_stream(
            market_ids=[args.market_id], odds_format=args.odds_format, window=args.window
        )
        async with stream:
            async for frame in stream:
                frames += 1
                _show(view, frame, args.market_id, tty)
                if args.frames and frames >= args.frames:
                    break
    return 0


def _show(view: BookView, frame: dict[str, Any], market_id: str, tty: bool) -> None:
    changed = view.apply(frame)
    market = view.markets.get(market_id)
    if market is None:
        if frame.get("kind") == "heartbeat":
            print(f"waiting for market {market_id} … (clk {frame['clk']})", flush=True)
        return
    if tty:
        sys.stdout.write("\x1b[H\x1b[2J" + render_market(market, view.feed_healthy, color=True))
        sys.stdout.flush()
    elif changed or frame.get("kind") == "snapshot":
        print(render_market(market, view.feed_healthy, color=False), flush=True)


if __name__ == "__main__":
    sys.exit(main())
