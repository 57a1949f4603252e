"""Assembles one server process: bus → hub → RSocket over TCP and WebSocket, plus HTTP.

Embedded default: an in-process bus fed by replaying real Betfair recordings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ledger_store import open_store
from ledger_store.store import AccountExists, LedgerStore
from rsocket_server.account_stream import AccountEvents
from rsocket_server.auth import LedgerTokens, StaticTokens, TokenDirectory, token_hash
from rsocket_server.betting import BettingConfig, BettingServices, PlacementService
from rsocket_server.handler import SportsbookHandler
from rsocket_server.settlement import SettlementService
from rsocket_server.transport_guard import (
    DEFAULT_MAX_LIFETIME_S,
    LIVE_SESSIONS,
    GuardedRSocketServer,
    GuardedTcpTransport,
    GuardedWebSocketTransport,
)
from sportsbook_core.changes import FeedStatus, MarketChange
from streams.bus import InProcessPriceBus, PriceBus
from streams.kafka_bus import PRICES_TOPIC, KafkaPriceBus, KafkaSettings
from streams.odds_hub import HEARTBEAT_INTERVAL_S, OddsHub
from streams.outbox_relay import OutboxRelay
from streams.replay import replay
from streams.results import InProcessResultsChannel, KafkaResultsSource, ResultsFeed

log = logging.getLogger("sportsbook.server")

MAX_WS_MESSAGE = 1024 * 1024
# Accept queue: asyncio's default (100) overflows when hundreds of clients connect
# while the loop is busy fanning out; the kernel then drops or resets them.
LISTEN_BACKLOG = 4096
# A paced demo loop holds each finished recording this long before relisting it,
# so that a race is seen CLOSED with its result before it reopens.
DEMO_PASS_PAUSE_S = 5.0
# A paced replay's quiet gaps are cut to this many wall seconds (recordings span days).
REPLAY_GAP_CAP_S = 1.0


# The web front end as `make web` builds it (clients/web, issue #6).
WEB_DIST = Path(__file__).resolve().parent.parent / "clients" / "web" / "dist"


def default_web_root() -> Path | None:
    """The built web app (clients/web/dist) when it has an index.html, else None."""
    return WEB_DIST if (WEB_DIST / "index.html").is_file() else None


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    tcp_port: int = 7878
    http_port: int = 8080
    replay_files: Sequence[Path] = ()
    speed: float | None = 20.0
    loop_replay: bool = True
    concurrent_replay: bool = True
    progress: bool = False
    max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S
    heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S
    web_root: Path | None = None
    bus_capacity: int = 8192
    tokens: dict[str, str] = field(default_factory=dict)
    # Kafka mode: consume the price bus another process (``sportsbook feed``) publishes.
    kafka: str | None = None
    kafka_topic: str = PRICES_TOPIC
    feed_silence_s: float = 10.0  # Kafka: no record, not even a heartbeat, this long = feed silent
    # --workers: several processes share the ports (SO_REUSEPORT), all fed from Kafka.
    reuse_port: bool = False
    # Betting (#4): the ledger. None and no ledger_path: no betting routes (odds only).
    database: str | None = None
    ledger_path: Path | None = None
    betting: BettingConfig = field(default_factory=BettingConfig)
    demo_accounts: bool = False
    # With Kafka and a ledger: relay the ledger's outbox to sportsbook.bets (one process).
    outbox_relay: bool = True


Sink = Callable[[MarketChange | FeedStatus], Awaitable[None]]
FeedRunner = Callable[[Sink], Coroutine[Any, Any, Any]]


class SportsbookServer:
    """One process: owns the bus, hub, feed task and listeners."""

    def __init__(self, config: ServerConfig, bus: PriceBus | None = None) -> None:
        self.config = config
        self.bus: PriceBus = bus or self._default_bus(config)
        self.hub = OddsHub(self.bus.epoch, heartbeat_interval_s=config.heartbeat_interval_s)
        self.tokens: TokenDirectory = StaticTokens(config.tokens)
        self.betting: BettingServices | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._connections: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._tcp: asyncio.Server | None = None
        self._runner: web.AppRunner | None = None
        self.tcp_port = config.tcp_port
        self.http_port = config.http_port
        self.feed_error: str | None = None
        self.results: InProcessResultsChannel | KafkaResultsSource | None = None

    @staticmethod
    def _default_bus(config: ServerConfig) -> PriceBus:
        if config.kafka is None:
            return InProcessPriceBus(config.bus_capacity)
        settings = KafkaSettings(
            config.kafka, config.kafka_topic, feed_silent_after_s=config.feed_silence_s
        )
        return KafkaPriceBus(settings)

    # ---- lifecycle ---------------------------------------------------------
    async def start(self, feed: FeedRunner | None = None) -> None:
        await self._open_ledger()
        end = await self._join_kafka()
        self._tasks.append(asyncio.create_task(self.hub.run(self.bus), name="hub"))
        if end:
            await self._catch_up(end)
        if feed is None and self.config.replay_files:
            feed = self._replay_feed
        if feed is not None:
            results = self.results if isinstance(self.results, InProcessResultsChannel) else None
            sink = self.bus.publish if results is None else ResultsFeed(self.bus.publish, results)
            task = asyncio.create_task(feed(sink), name="feed")
            task.add_done_callback(self._feed_ended)
            self._tasks.append(task)
        self._tcp = await asyncio.start_server(
            self._on_tcp,
            self.config.host,
            self.config.tcp_port,
            limit=1024 * 1024,
            backlog=LISTEN_BACKLOG,
            reuse_port=self.config.reuse_port or None,
        )
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        self._runner = web.AppRunner(self.http_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.config.host,
            self.config.http_port,
            backlog=LISTEN_BACKLOG,
            reuse_port=self.config.reuse_port or None,
        )
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.http_port = server.sockets[0].getsockname()[1]
        log.info("listening", extra={"tcp": self.tcp_port, "http": self.http_port})

    async def _open_ledger(self) -> None:
        config = self.config
        if config.database is None and config.ledger_path is None:
            return
        if config.ledger_path is not None:
            config.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        store = await open_store(config.database, default_path=config.ledger_path)
        events = AccountEvents(store=store, hub=self.hub)  # MARKET events: open bets × hub
        events.start()
        placement = PlacementService(self.hub, store, config.betting, on_receipt=events.bet)
        settlement = SettlementService(self.hub, store, events)
        self.betting = BettingServices(placement, store, events, settlement)
        # Results (docs/RESULTS.md): the in-process feed's, or sportsbook.results, settled here.
        self.results = (
            InProcessResultsChannel() if config.kafka is None else KafkaResultsSource(config.kafka)
        )
        self._tasks.append(asyncio.create_task(self.results.run(settlement.settle), name="results"))
        self.tokens = LedgerTokens(store, config.tokens)
        if config.demo_accounts:
            await seed_demo_accounts(store)
        if config.kafka is not None and config.outbox_relay:
            relay = OutboxRelay(store, config.kafka)
            self._tasks.append(asyncio.create_task(relay.run(), name="outbox-relay"))

    async def _join_kafka(self) -> int:
        """Kafka mode: find the topic, take its epoch, and return its end offset now."""
        if not isinstance(self.bus, KafkaPriceBus):
            return 0
        await self.bus.start()
        self.hub.epoch = self.bus.epoch
        self.bus.on_health = self.hub.set_bus_health
        return await self.bus.end_position()

    async def _catch_up(self, end: int) -> None:
        """Rebuild every market from the topic before serving: no snapshot older than the bus."""
        started = time.monotonic()
        log.info("rebuilding markets from the bus", extra={"records": end})
        while self.hub.position < end:
            try:
                await asyncio.wait_for(self.hub.wait_position(end), 5.0)
            except TimeoutError:
                log.info("still rebuilding", extra={"position": self.hub.position, "end": end})
        log.info(
            "markets rebuilt",
            extra={
                "markets": sum(1 for _ in self.hub.books()),
                "records": end,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    def _feed_ended(self, task: asyncio.Task[Any]) -> None:
        """A feed that dies or ends must not look healthy: log it, and tell every subscriber
        (its prices stop moving, so they are stale: betting on them is refused)."""
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            log.info("feed ended")
            ended = FeedStatus(int(time.time() * 1000), healthy=False, reason="feed ended")
            self._tasks.append(asyncio.create_task(self.bus.publish(ended), name="feed-status"))
            return
        self.feed_error = f"{type(error).__name__}: {error}"
        log.error("feed stopped", exc_info=error, extra={"reason": self.feed_error})
        status = FeedStatus(int(time.time() * 1000), healthy=False, reason="feed stopped")
        self._tasks.append(asyncio.create_task(self.bus.publish(status), name="feed-status"))

    async def _replay_feed(
        self, sink: Callable[[MarketChange | FeedStatus], Awaitable[None]]
    ) -> None:
        await replay(
            list(self.config.replay_files),
            sink,
            speed=self.config.speed,
            loop=self.config.loop_replay,
            progress=self.config.progress,
            concurrent=self.config.concurrent_replay,
            start_gap_cap_s=REPLAY_GAP_CAP_S,
            pass_pause_s=0.0 if self.config.speed is None else DEMO_PASS_PAUSE_S,
        )

    async def stop(self) -> None:
        self._stopping = True
        if self._tcp is not None:
            self._tcp.close()
        for session in list(LIVE_SESSIONS):
            session._close_soon()
        await self._end_connections()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bus.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.betting is not None:
            await self.betting.events.stop()
            await self.betting.store.close()

    # ---- connections -------------------------------------------------------
    def _new_session(self, transport: Any) -> GuardedRSocketServer:
        return GuardedRSocketServer(
            transport,
            handler_factory=lambda: SportsbookHandler(self.hub, self.tokens, self.betting),
            max_lifetime_s=self.config.max_lifetime_s,
        )

    async def _end_connections(self, timeout_s: float = 2.0) -> None:
        """Let the closing sessions' TCP handler tasks end, then cancel any left.

        A handler left pending is cancelled when the loop ends, and asyncio
        (3.11) logs that cancellation as an error with a traceback.
        """
        if not self._connections:
            return
        _, pending = await asyncio.wait(self._connections, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        session = self._new_session(GuardedTcpTransport(reader, writer))
        try:
            await session.wait_closed()
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Shutting down: end quietly (a cancelled handler is logged as an error).

    async def _on_websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE, compress=False)
        await ws.prepare(request)
        transport = GuardedWebSocketTransport(ws)
        session = self._new_session(transport)
        await transport.handle_incoming_ws_messages()
        await session.wait_closed()
        return ws

    # ---- HTTP ----------------------------------------------------------------
    def http_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/rsocket", self._on_websocket)
        app.router.add_get("/health", self._health)
        root = self.config.web_root
        if root is not None and (root / "index.html").exists():
            index = root / "index.html"

            async def serve_index(_request: web.Request) -> web.FileResponse:
                return web.FileResponse(index)

            app.router.add_get("/", serve_index)
            app.router.add_static("/", root)
        else:
            app.router.add_get("/", self._landing)
        return app

    def health_reason(self) -> str | None:
        """Why prices are not live (a dead feed, the bus, the feed's status), or None."""
        if self.feed_error is not None:
            return "feed stopped"
        if self.hub.feed_healthy:
            return None
        return self.hub.feed_reason or "feed unhealthy"

    async def _health(self, _request: web.Request) -> web.Response:
        # 200 even when degraded (docs/KAFKA.md): a broker outage degrades every
        # server at once, and the process still serves; `status` says so.
        reason = self.health_reason()
        return web.json_response(
            {
                "status": "ok" if reason is None else "degraded",
                "reason": reason,
                "feedHealthy": reason is None,
                "feedError": self.feed_error,
                "markets": sum(1 for _ in self.hub.books()),
                "subscriptions": self.hub.subscription_count,
                "sessions": len(LIVE_SESSIONS),
                "tasks": len(asyncio.all_tasks()),
                "framesSent": self.hub.frames_sent,
                "maxSendQueue": max((s.queued_frames for s in LIVE_SESSIONS), default=0),
                "clk": self.hub.clk,
                "pid": os.getpid(),
            }
        )

    async def _landing(self, _request: web.Request) -> web.Response:
        text = (
            "Sportsbook server. RSocket over WebSocket at /rsocket, TCP on port "
            f"{self.tcp_port}. Try: sportsbook events --url ws://{self.config.host}:"
            f"{self.http_port}/rsocket\n"
            "The web app is not built here: `make web` builds it (needs Node.js and npm), "
            "or pass --web-root DIR.\n"
        )
        return web.Response(text=text)


# Demo accounts for `make run` (well-known tokens: a demo, never production).
DEMO_ACCOUNTS = (("demo-alice", "demo-alice-token"), ("demo-bob", "demo-bob-token"))
DEMO_DEPOSIT = 100_000  # £1,000.00
# A demo trader: may settle markets (`sportsbook settle`, route trader.settle); no money.
DEMO_TRADER = ("demo-trader", "demo-trader-token")


async def seed_demo_accounts(store: LedgerStore) -> None:
    """Create the demo accounts once and fund each once (idempotent per reference),
    and the demo trader (limits ``{"trader": true}``)."""
    for account_id, token in DEMO_ACCOUNTS:
        with contextlib.suppress(AccountExists):
            await store.create_account(account_id, "GBP", token_hash(token), {})
        await store.deposit(account_id, DEMO_DEPOSIT, "demo-seed")
    trader_id, trader_token = DEMO_TRADER
    with contextlib.suppress(AccountExists):
        await store.create_account(trader_id, "GBP", token_hash(trader_token), {"trader": True})
