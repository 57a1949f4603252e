"""The ``sportsbook`` command: run a server, browse events, watch live odds."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import io
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson

from clients.betting_cli import (
    BetCliError,
    add_commands,
    add_settle_command,
    database_option,
    describe_receipt,
    describe_settlement,
    dumps,
    results_banner,
    run_account_create,
    run_account_deposit,
    run_account_show,
    run_account_watch,
    run_bet,
    run_bets,
    run_settle,
)
from clients.book_view import BookView
from clients.client import (
    DEFAULT_URL,
    ConnectFailed,
    SportsbookClient,
    SportsbookError,
    check_url,
)
from clients.odds_table import render_market, render_status
from clients.replay_cli import add_replay_command, run_replay
from clients.shared_data import demo_recordings
from rsocket_server import logs
from rsocket_server.app import (
    DEMO_ACCOUNTS,
    DEMO_PASS_PAUSE_S,
    DEMO_TRADER,
    REPLAY_GAP_CAP_S,
    FeedRunner,
    ServerConfig,
    SportsbookServer,
    default_web_root,
)
from rsocket_server.workers import WorkerFailed, exit_with_supervisor, supervise
from sportsbook_core.odds_formats import OddsFormat
from streams.feed_process import (
    BrokenRecording,
    FeedReplayConfig,
    NotARecording,
    check_recordings,
    plural,
    run_feed_replay,
)
from streams.kafka_bus import PRICES_TOPIC, KafkaBusError
from streams.results import RESULTS_TOPIC, Closing, closing_schedule
from streams.simulator import SimulatorConfig, simulate

LOG_LEVELS = ("debug", "info", "warning", "error")
ODDS_FORMATS = tuple(f.value for f in OddsFormat)
# 128 + SIGPIPE: what a shell reports for a writer whose reader went away.
EXIT_BROKEN_PIPE = 141


class CliError(Exception):
    """A failure the CLI reports as one ``error: …`` line with ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _StdoutClosed(Exception):
    """Whoever reads our stdout went away (``sportsbook events | head -3``)."""


def _out(text: str, *, flush: bool = True) -> None:
    """One line on stdout, flushed unless told (a live view must not sit in a pipe buffer)."""
    try:
        print(text, flush=flush)
    except BrokenPipeError:
        raise _StdoutClosed from None


# ---- argument types: a bad value is argparse's usage error (exit 2) ----------------
def _url(text: str) -> str:
    try:
        return check_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"invalid choice {text!r} (choose from {', '.join(LOG_LEVELS)})"
        )
    return level


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: use 0..65535") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range 0..65535")
    return port


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number greater than 0, not {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def _kafka_address(text: str) -> str:
    """HOST:PORT[,HOST:PORT…], each port 1..65535."""
    for address in text.split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise argparse.ArgumentTypeError(f"expected HOST:PORT[,HOST:PORT…], got {text!r}")
    return text


def _kafka_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--kafka",
        type=_kafka_address,
        required=required,
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (the price bus)",
    )
    parser.add_argument("--topic", default=PRICES_TOPIC, help="price topic (default %(default)s)")


def _simulation(text: str) -> SimulatorConfig:
    usage = f"expected MARKETS:RATE[:SECONDS] such as 3:1000 or 1:10000:60, not {text!r}"
    try:
        config = SimulatorConfig.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(usage) from None
    duration_ok = config.duration_s is None or (
        math.isfinite(config.duration_s) and config.duration_s > 0
    )
    if config.markets < 1 or not (math.isfinite(config.rate) and config.rate > 0):
        raise argparse.ArgumentTypeError(f"{usage} (MARKETS ≥ 1, RATE > 0)")
    if not duration_ok:
        raise argparse.ArgumentTypeError(f"{usage} (SECONDS > 0)")
    return config


def _recording(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"not a file: {text!r}")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: permission denied")
    return path


def _log_level_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--log-level",
        type=_log_level,
        choices=LOG_LEVELS,
        default=default,
        help="log level of the JSON logs on stderr (default warning, or $SPORTSBOOK_LOG)",
    )


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        dest="odds_format",
        choices=ODDS_FORMATS,
        metavar="FORMAT",
        help=f"display prices as one of: {', '.join(ODDS_FORMATS)} (default: decimal only)",
    )


def _common_client(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        type=_url,
        default=os.environ.get("SPORTSBOOK_URL", DEFAULT_URL),
        help="tcp://HOST:PORT or ws://HOST:PORT/rsocket (default %(default)s, or $SPORTSBOOK_URL)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SPORTSBOOK_TOKEN"),
        help="bearer token (anonymous when omitted)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sportsbook", description=__doc__)
    _log_level_option(parser, os.environ.get("SPORTSBOOK_LOG", "warning"))
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run a server on replayed real recordings")
    serve.add_argument(
        "--replay",
        nargs="*",
        type=_recording,
        metavar="FILE",
        help="Betfair stream recordings (default: the bundled demo set)",
    )
    serve.add_argument(
        "--speed",
        type=_positive_float,
        default=30.0,
        help="replay at real time × N, N > 0 (default %(default)s)",
    )
    serve.add_argument("--flat-out", action="store_true", help="replay as fast as possible")
    serve.add_argument(
        "--simulate",
        type=_simulation,
        metavar="MARKETS:RATE[:SECONDS]",
        help="feed from the price simulator instead of recordings",
    )
    serve.add_argument("--once", action="store_true", help="replay once instead of looping")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--tcp-port", type=_port, default=7878, help="0..65535, 0: any free port")
    serve.add_argument("--http-port", type=_port, default=8080, help="0..65535, 0: any free port")
    serve.add_argument(
        "--max-lifetime",
        type=_positive_float,
        default=30.0,
        help="seconds (> 0) without KEEPALIVE before a connection is closed",
    )
    serve.add_argument(
        "--web-root",
        type=Path,
        default=None,
        help="the web app to serve at / (default: clients/web/dist when built by `make web`)",
    )
    serve.add_argument("--no-uvloop", action="store_true")
    serve.add_argument("--progress", action="store_true", help="show replay progress")
    _kafka_options(serve, required=False)
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="N ≥ 1 server processes sharing the ports (SO_REUSEPORT); needs --kafka",
    )
    serve.add_argument(
        "--feed-silence",
        type=_non_negative_float,
        default=10.0,
        help="with --kafka: seconds without a record (a live feed sends a heartbeat a second) "
        "before prices are reported stale as 'feed silent'; 0 turns it off",
    )
    serve.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)

    feed = commands.add_parser("feed", help="publish a feed to the Kafka price bus")
    feed_commands = feed.add_subparsers(dest="feed_command", required=True)
    feed_replay = feed_commands.add_parser("replay", help="replay recordings into Kafka")
    sources = feed_replay.add_mutually_exclusive_group(required=True)
    # default=[]: an absent FILE list then counts as "not given" in the exclusive group.
    sources.add_argument("files", nargs="*", default=[], type=_recording, metavar="FILE")
    sources.add_argument(
        "--demo",
        action="store_true",
        help="the recordings `make run` (serve) replays by default",
    )
    _kafka_options(feed_replay, required=True)
    feed_replay.add_argument(
        "--speed",
        type=_positive_float,
        default=None,
        help="real time × N, N > 0 (default: flat out)",
    )
    feed_replay.add_argument("--loop", action="store_true", help="replay again and again")
    feed_replay.add_argument(
        "--concurrent",
        action="store_true",
        help="play every recording side by side from the start (default: one calendar timeline)",
    )
    feed_replay.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    feed_replay.add_argument(
        "--results-topic",
        default=RESULTS_TOPIC,
        help="where closed markets' results go (default %(default)s)",
    )
    feed_replay.add_argument("--no-results", action="store_true", help="publish prices only")

    events = commands.add_parser("events", help="list events and their markets")
    _common_client(events)
    events.add_argument("--sport")
    events.add_argument("--json", action="store_true")

    market = commands.add_parser("market", help="print one market's snapshot as JSON")
    _common_client(market)
    market.add_argument("market_id")
    _format_option(market)

    odds = commands.add_parser("odds", help="a live table of one market's prices")
    _common_client(odds)
    odds.add_argument("--market", required=True, dest="market_id")
    _format_option(odds)
    odds.add_argument(
        "--frames",
        type=_positive_int,
        default=None,
        help="stop after N ≥ 1 frames (default: never)",
    )
    odds.add_argument(
        "--window",
        type=_positive_int,
        default=8,
        help="request-n window, ≥ 1 (default %(default)s)",
    )
    # Also after the command (`sportsbook serve --log-level info`, `make run ARGS=…`);
    # SUPPRESS: when absent there, the value given before the command stands.
    betting = [
        *add_commands(commands, _common_client),
        add_settle_command(commands, _common_client),
    ]
    database_option(serve)
    for command in (
        serve,
        feed_replay,
        events,
        market,
        odds,
        add_replay_command(commands),
        *betting,
    ):
        _log_level_option(command, argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    logs.configure(args.log_level)
    runner = {
        "serve": _serve,
        "feed": _feed,
        "events": _events,
        "market": _market,
        "odds": _odds,
        "bet": _bet,
        "bets": _bets,
        "account": _account,
        "settle": _settle,
        "replay": run_replay,
    }
    try:
        if args.command == "serve" and not args.no_uvloop:
            _install_uvloop()
        code = asyncio.run(runner[args.command](args))
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise _StdoutClosed from None
        return code
    except _StdoutClosed:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (
        SportsbookError,
        CliError,
        BetCliError,
        OSError,
        KafkaBusError,
        WorkerFailed,
    ) as error:
        message, code = _failure(error)
        print(f"error: {message}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130


def _failure(error: Exception) -> tuple[str, int]:
    """The one-line message and exit code for a failure: 2 the server refused the
    request, 3 no connection (or no listening socket), CliError its own."""
    if isinstance(error, SportsbookError):
        return f"{error.code}: {error.message}", 2
    if isinstance(error, CliError):
        return str(error), error.exit_code
    if isinstance(error, ConnectFailed | KafkaBusError):
        return str(error), 3
    if isinstance(error, WorkerFailed):
        return str(error), error.code
    if isinstance(error, BetCliError):
        return str(error), error.exit_code
    return f"cannot reach the server: {error}", 3


def _silence_stdout() -> None:
    """The reader of our stdout is gone: point stdout at /dev/null so that the
    interpreter's last flush cannot fail again (Python's documented recipe)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415 - optional speed-up (STYLE.md 12)

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(args: argparse.Namespace) -> int:
    _check_scale_out(args)
    if args.workers > 1:
        return await _supervise(args)
    if args.kafka:
        return await _serve_kafka(args)
    files = _serve_files(args)
    config = ServerConfig(
        host=args.host,
        tcp_port=args.tcp_port,
        http_port=args.http_port,
        replay_files=files,
        speed=None if args.flat_out else args.speed,
        loop_replay=not args.once,
        progress=args.progress,
        max_lifetime_s=args.max_lifetime,
        web_root=_web_root(args),
        database=args.database,
        ledger_path=args.ledger,
        demo_accounts=True,
    )
    server = SportsbookServer(config)
    simulator: SimulatorConfig | None = args.simulate
    schedule = asyncio.create_task(_closing_schedule(config))  # while the server starts
    try:
        await _start(server, None if simulator is None else _simulated_feed(simulator))
    except BaseException:
        schedule.cancel()
        raise
    started = time.monotonic()
    if simulator is not None:
        _out(f"sportsbook: simulating {simulator.markets} markets at {simulator.rate:g} changes/s")
    else:
        _out(
            f"sportsbook: replaying {len(files)} real recordings at "
            f"{'flat out' if config.speed is None else f'{config.speed:g}x'}"
        )
    try:
        return await _serve_until_stopped(server, args, results=_results_lines(schedule, started))
    finally:
        schedule.cancel()


async def _results_lines(schedule: asyncio.Task[list[Closing]], started: float) -> list[str]:
    return results_banner(await schedule, time.monotonic() - started)


async def _closing_schedule(config: ServerConfig) -> list[Closing]:
    """When the replayed markets close with a result (the banner's hint); none flat out."""
    if config.speed is None or not config.replay_files:
        return []
    pause = DEMO_PASS_PAUSE_S if config.loop_replay else None
    try:
        return await asyncio.to_thread(
            closing_schedule,
            config.replay_files,
            speed=config.speed,
            gap_cap_s=REPLAY_GAP_CAP_S,
            pass_pause_s=pause,
        )
    except Exception:  # only a hint: the feed itself reports a bad recording
        return []


def _web_root(args: argparse.Namespace) -> Path | None:
    """``--web-root``, else the built web app when there is one (else the landing page)."""
    root: Path | None = args.web_root
    return root if root is not None else default_web_root()


def _serve_files(args: argparse.Namespace) -> list[Path]:
    """The recordings to serve; files given are checked up front, as `feed replay`
    does, so that a wrong file is an error now rather than a server with a dead feed."""
    if args.simulate:
        return []
    if not args.replay:
        return _demo_files()
    try:
        check_recordings(args.replay)
    except NotARecording as error:
        raise CliError(str(error), 2) from None
    return list(args.replay)


def _check_scale_out(args: argparse.Namespace) -> None:
    if args.kafka and (args.replay is not None or args.simulate):
        raise CliError(
            "serve --kafka reads prices from the bus; publish them with "
            "`sportsbook feed replay --demo|FILE… --kafka HOST:PORT`",
            2,
        )
    if args.workers > 1 and not args.kafka:
        raise CliError("--workers needs --kafka: every worker must read the same price bus", 2)
    if args.workers > 1 and 0 in (args.tcp_port, args.http_port):
        raise CliError("--workers needs fixed ports (the workers share them)", 2)


async def _supervise(args: argparse.Namespace) -> int:
    """``serve --workers N``: the banner a single server prints, once all N are ready."""

    def banner() -> None:
        _out(
            f"sportsbook: {args.workers} workers, prices from Kafka {args.kafka} topic {args.topic}"
        )
        _print_addresses(args.host, args.tcp_port, args.http_port, betting=True)

    ports = (args.tcp_port, args.http_port)
    watch = _ReadyWatch(sys.stdout, args.workers, banner)
    with contextlib.redirect_stdout(watch):  # supervise() relays worker lines via sys.stdout
        return await supervise(args.workers, _worker_args(args.argv), args.host, ports)


class _ReadyWatch(io.TextIOBase):
    """Stdout while supervising: worker lines pass through; after every worker's first
    ``worker N ready`` line, ``banner`` runs once (supervise() has no readiness hook)."""

    def __init__(self, out: TextIO, workers: int, banner: Callable[[], None]) -> None:
        self._out = out
        self._waiting = {f"sportsbook: worker {i} ready" for i in range(workers)}
        self._banner: Callable[[], None] | None = banner

    def write(self, text: str) -> int:
        written = self._out.write(text)
        self._waiting = {ready for ready in self._waiting if not text.startswith(ready)}
        if not self._waiting and self._banner is not None:
            banner, self._banner = self._banner, None
            with contextlib.suppress(_StdoutClosed):  # our reader left: workers go on
                banner()
        return written

    def flush(self) -> None:
        self._out.flush()


def _worker_args(argv: Sequence[str]) -> list[str]:
    """The command line each worker runs: this one without ``--workers``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


async def _serve_kafka(args: argparse.Namespace) -> int:
    if args.worker_index is not None:
        exit_with_supervisor()
    config = ServerConfig(
        host=args.host,
        tcp_port=args.tcp_port,
        http_port=args.http_port,
        max_lifetime_s=args.max_lifetime,
        web_root=_web_root(args),
        kafka=args.kafka,
        kafka_topic=args.topic,
        feed_silence_s=args.feed_silence,
        reuse_port=args.worker_index is not None,
        database=args.database,
        ledger_path=args.ledger,
        demo_accounts=args.worker_index in (None, 0),
        outbox_relay=args.worker_index in (None, 0),
    )
    server = SportsbookServer(config)
    await _start(server, None)
    if args.worker_index is not None:
        _out(f"sportsbook: worker {args.worker_index} ready (pid {os.getpid()})")
        return await _serve_until_stopped(server, args, banner=False)
    markets = sum(1 for _ in server.hub.books())
    _out(f"sportsbook: prices from Kafka {args.kafka} topic {args.topic} ({markets} markets)")
    return await _serve_until_stopped(server, args)


async def _serve_until_stopped(
    server: SportsbookServer,
    args: argparse.Namespace,
    banner: bool = True,
    results: Coroutine[Any, Any, list[str]] | None = None,
) -> int:
    """The banner, then (``results``: once computed) the lines on results, then serve."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if banner:
        _print_addresses(
            args.host, server.tcp_port, server.http_port, betting=server.betting is not None
        )
    hint = None if results is None else asyncio.create_task(_print_later(results))
    await stop.wait()
    if hint is not None:
        hint.cancel()
    await server.stop()
    return 0


async def _print_later(lines: Coroutine[Any, Any, list[str]]) -> None:
    with contextlib.suppress(_StdoutClosed):
        for line in await lines:
            _out(line)


def _print_addresses(host: str, tcp_port: int, http_port: int, *, betting: bool) -> None:
    tcp_url = f"tcp://{host}:{tcp_port}"
    url = "" if tcp_url == DEFAULT_URL else f" --url {tcp_url}"
    _out(f"  browser:   http://{host}:{http_port}/")
    _out(f"  WebSocket: ws://{host}:{http_port}/rsocket")
    _out(f"  TCP:       {tcp_url}")
    _out(
        f"  try:       .venv/bin/sportsbook events{url}   then   "
        f".venv/bin/sportsbook odds --market <marketId>{url}"
    )
    if betting:
        tokens = "  ".join(f"{a}: {t}" for a, t in DEMO_ACCOUNTS)
        _out(f"  accounts:  {tokens}")
        _out(
            f"  bet:       .venv/bin/sportsbook bet --token {DEMO_ACCOUNTS[0][1]} --market "
            f"<marketId> --selection <selectionId> --stake 500{url}"
        )
        _out(f"  watch:     .venv/bin/sportsbook account watch --token {DEMO_ACCOUNTS[0][1]}{url}")
        _out(
            f"  trader:    {DEMO_TRADER[0]}: {DEMO_TRADER[1]}   .venv/bin/sportsbook settle "
            f"<marketId> --winner <selectionId> --token {DEMO_TRADER[1]}{url}"
        )


def _demo_files() -> list[Path]:
    """The default demo set; missing recordings are exit 1 (README's exit codes)."""
    try:
        return demo_recordings()
    except FileNotFoundError as error:
        raise CliError(str(error), 1) from None


async def _feed(args: argparse.Namespace) -> int:
    config = FeedReplayConfig(
        files=_demo_files() if args.demo else list(args.files),
        kafka=args.kafka,
        topic=args.topic,
        speed=args.speed,
        loop=args.loop,
        progress=not args.quiet,
        concurrent=args.concurrent,
        results_topic=None if args.no_results else args.results_topic,
    )
    try:
        result = await run_feed_replay(config)
    except (NotARecording, BrokenRecording) as error:
        # NotARecording is checked before connecting: nothing was published.
        print(f"feed: {error}", file=sys.stderr)
        return 2
    _out(
        f"feed: published {plural(result.published, 'update')} to {args.topic} in "
        f"{result.seconds:g}s ({plural(result.rejected, 'change')} rejected, "
        f"{plural(result.producer_restarts, 'producer restart')})"
    )
    return 0


def _simulated_feed(simulator: SimulatorConfig) -> FeedRunner:
    return lambda sink: simulate(simulator, sink)


async def _start(server: SportsbookServer, feed: FeedRunner | None) -> None:
    """``server.start``; a port that cannot be bound is a CliError naming it."""
    try:
        await server.start(feed)
    except OSError as error:
        # start() binds TCP first, then HTTP: whichever failed is the one not open.
        tcp_open = getattr(server, "_tcp", None) is not None
        port = server.config.http_port if tcp_open else server.config.tcp_port
        await server.stop()
        raise CliError(f"cannot listen on {server.config.host}:{port}: {_why(error)}", 3) from None


def _why(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return f"unknown host ({error.strerror})"
    if error.errno == errno.EADDRINUSE:
        return "address already in use (is another server running?)"
    if error.errno is not None and error.errno in errno.errorcode:
        return os.strerror(error.errno).lower()
    return str(error)


async def _bet(args: argparse.Namespace) -> int:
    receipt = await run_bet(args)
    _out(describe_receipt(receipt))
    return 0 if receipt["status"] != "REJECTED" else 4


async def _settle(args: argparse.Namespace) -> int:
    """Exit 0 when settled, resettled, replayed or recorded; 4 when held for a trader."""
    report = await run_settle(args)
    _out(describe_settlement(report))
    return 4 if report["outcome"] == "held" else 0


async def _bets(args: argparse.Namespace) -> int:
    _out(dumps(await run_bets(args)))
    return 0


async def _account(args: argparse.Namespace) -> int:
    if args.account_command == "watch":
        return await run_account_watch(args, _out)
    runners = {
        "show": run_account_show,
        "create": run_account_create,
        "deposit": run_account_deposit,
    }
    _out(dumps(await runners[args.account_command](args)))
    return 0


async def _events(args: argparse.Namespace) -> int:
    async with SportsbookClient.connect(args.url, args.token) as client:
        events = await client.events(sport=args.sport)
    if args.json:
        _out(orjson.dumps(events, option=orjson.OPT_INDENT_2).decode())
        return 0
    for event in events:
        flag = " IN-PLAY" if event["inPlay"] else ""
        _out(f"{event['startTime']}  {event['sport']:<16} {event['name']}{flag}", flush=False)
        for m in event["markets"]:
            _out(f"    {m['marketId']:<14} {m['status']:<9} {m['name']}", flush=False)
    return 0


async def _market(args: argparse.Namespace) -> int:
    async with SportsbookClient.connect(args.url, args.token) as client:
        snapshot = await client.market(args.market_id, args.odds_format)
    _out(orjson.dumps(snapshot, option=orjson.OPT_INDENT_2).decode())
    return 0


async def _odds(args: argparse.Namespace) -> int:
    tty = sys.stdout.isatty()
    view = BookView()
    frames = 0
    async with SportsbookClient.connect(args.url, args.token) as client:
        # An unknown market is NOT_FOUND now, as for `sportsbook market`; the
        # stream would only send heartbeats for it, forever.
        await client.market(args.market_id)
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
    if not tty and frame.get("kind") == "status":
        _out(render_status(frame))
    market = view.markets.get(market_id)
    if market is None:
        if frame.get("kind") == "heartbeat":
            _out(f"waiting for market {market_id} … (clk {frame['clk']})")
        return
    if tty:
        _out("\x1b[H\x1b[2J" + render_market(market, view.feed_healthy, color=True).rstrip("\n"))
    elif changed or frame.get("kind") == "snapshot":
        _out(render_market(market, view.feed_healthy, color=False))


if __name__ == "__main__":
    sys.exit(main())
