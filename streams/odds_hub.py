"""OddsHub: live market books, per-market ``seq`` and conflating fan-out.

One writer (the hub's consume loop) changes every book in bus order (STYLE.md 4).
Each subscription keeps, per market it follows, only the *first seq it has not
been sent* (or "needs a snapshot"), so a slow subscriber costs memory bounded
by the number of markets it follows, never by the number of updates. Frames
are built at send time from the newest state, merged over the market's short
delta log, and only while the subscriber has RSocket demand **and** its
connection can take a frame. Encoded fragments are cached per (market,
from-seq, format), so subscribers that keep up share one encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

import orjson

from schemas.frames import (
    delta_fragment,
    delta_frame,
    feed_status_frame,
    heartbeat_frame,
    snapshot_dict,
    snapshot_frame,
)
from schemas.requests import OddsStreamRequest
from sportsbook_core.catalogue import MarketDefinition, MarketStatus
from sportsbook_core.changes import FeedStatus, MarketChange
from sportsbook_core.market_book import (
    BookUpdate,
    MarketBook,
    MarketDelta,
    apply_change,
    full_delta,
    merge_deltas,
)
from sportsbook_core.odds_formats import OddsFormat
from streams.bus import BusRecord, PriceBus
from streams.history import ChangeHistory

log = logging.getLogger("sportsbook.hub")

HEARTBEAT_INTERVAL_S = 5.0


class FrameSink(Protocol):
    """Where a subscription's frames go (an RSocket stream, a test list, …)."""

    def writable(self) -> bool:
        """True when the connection can take one more frame without queueing."""

    def send(self, frame: bytes) -> None:
        """Hand one encoded frame to the connection."""


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    market_ids: frozenset[str] | None = None
    event_ids: frozenset[str] | None = None
    sport: str | None = None
    in_play_only: bool = False

    @classmethod
    def of(cls, request: OddsStreamRequest) -> SubscriptionFilter:
        return cls(request.market_ids, request.event_ids, request.sport, request.in_play_only)

    def matches(self, d: MarketDefinition) -> bool:
        return (
            (self.market_ids is None or d.market_id in self.market_ids)
            and (self.event_ids is None or d.event_id in self.event_ids)
            and (self.sport is None or d.sport == self.sport)
            and (not self.in_play_only or d.in_play)
        )


class _Market:
    """A book, its recent deltas and encodings valid for the current ``seq``.

    ``followers`` are every subscription whose filter matches; ``armed`` only
    those that can take a frame right now, the only ones a change touches.
    """

    __slots__ = ("_fragments", "_snapshots", "armed", "book", "followers", "log", "resync_seq")

    def __init__(self, book: MarketBook, log_size: int) -> None:
        self.book = book
        self.log: deque[MarketDelta] = deque(maxlen=log_size)
        self.resync_seq = book.seq  # seq of the newest change that asked for a snapshot
        self.followers: dict[int, Subscription] = {}
        self.armed: dict[int, Subscription] = {}
        self._fragments: dict[tuple[int, OddsFormat | None], bytes | None] = {}
        self._snapshots: dict[OddsFormat | None, bytes] = {}

    @property
    def seq(self) -> int:
        return self.book.seq

    def advance(self, book: MarketBook, delta: MarketDelta) -> None:
        self.book = book
        self.log.append(delta)
        if delta.resync:
            self.resync_seq = delta.seq
        self._fragments.clear()
        self._snapshots.clear()

    def snapshot_json(self, fmt: OddsFormat | None) -> bytes:
        cached = self._snapshots.get(fmt)
        if cached is None:
            cached = self._snapshots[fmt] = orjson.dumps(snapshot_dict(self.book, fmt))
        return cached

    def fragment(self, from_seq: int, fmt: OddsFormat | None) -> bytes | None:
        """Deltas ``from_seq``..now merged and encoded; None when a snapshot is needed."""
        key = (from_seq, fmt)
        if key in self._fragments:
            return self._fragments[key]
        encoded = self._encode_since(from_seq, fmt)
        self._fragments[key] = encoded
        return encoded

    def _encode_since(self, from_seq: int, fmt: OddsFormat | None) -> bytes | None:
        if from_seq <= self.resync_seq:
            return None  # the structure changed since the subscriber's last frame
        if not self.log or from_seq < self.log[0].seq:
            return delta_fragment(full_delta(self.book), fmt)  # further back than the log
        start = from_seq - self.log[0].seq
        deltas = list(itertools.islice(self.log, start, None))
        if not deltas or any(d.resync for d in deltas):
            return None
        merged = deltas[0] if len(deltas) == 1 else merge_deltas(deltas)
        return delta_fragment(merged, fmt)


class Subscription:
    """One ``odds.stream`` subscriber: its filter, demand and what it was sent.

    ``sent[m]`` is the last seq of market m this subscriber was sent (0: none
    yet, so a snapshot is due). While *armed* (demand and a writable
    connection) changes are marked into ``pending_*`` as they happen; while
    parked nothing is touched, and arming again compares ``sent`` with each
    market's seq: that comparison is the conflation.
    """

    _ids = itertools.count(1)

    def __init__(self, hub: OddsHub, request: OddsStreamRequest, sink: FrameSink, clk: str) -> None:
        self.id = next(self._ids)
        self.hub = hub
        self.filter = SubscriptionFilter.of(request)
        self.odds_format = request.odds_format
        self.conflate_s = request.conflate_ms / 1000
        self.sink = sink
        self.demand = 0
        self.clk = clk
        self.sent: dict[str, int] = {}
        self.armed = False
        self.parked_at = -1  # hub position when last parked; -1: never armed
        self.pending_snapshots: dict[str, None] = {}
        self.pending_deltas: dict[str, int] = {}
        self.status_pending = False
        self.last_sent = hub.clock()
        self.next_allowed = 0.0
        self.flush_scheduled = False
        self.closed = False
        self.frames_sent = 0

    @property
    def markets(self) -> dict[str, int]:
        return self.sent

    @property
    def has_pending(self) -> bool:
        return bool(self.pending_snapshots or self.pending_deltas or self.status_pending)

    def request(self, n: int) -> None:
        """RSocket REQUEST_N: more demand, then send what is pending."""
        if n <= 0 or self.closed:
            return
        self.demand = min(self.demand + n, 2**31 - 1)
        self.hub.flush(self)

    def writable(self) -> None:
        """The connection drained below its low-water mark."""
        self.hub.flush(self)

    def cancel(self) -> None:
        self.hub.unsubscribe(self)

    def mark(self, market_id: str, delta: MarketDelta) -> None:
        if delta.resync or self.sent[market_id] == 0:
            self.pending_deltas.pop(market_id, None)
            self.pending_snapshots[market_id] = None
        elif market_id not in self.pending_snapshots:
            self.pending_deltas.setdefault(market_id, self.sent[market_id] + 1)

    def due(self, market_id: str, seq: int) -> None:
        """Queue what market ``market_id`` at ``seq`` owes this subscriber, if anything."""
        sent = self.sent[market_id]
        if sent == 0:
            self.pending_snapshots[market_id] = None
        elif sent < seq and market_id not in self.pending_snapshots:
            self.pending_deltas.setdefault(market_id, sent + 1)

    def forget(self, market_id: str) -> None:
        self.sent.pop(market_id, None)
        self.pending_deltas.pop(market_id, None)
        self.pending_snapshots.pop(market_id, None)


class OddsHub:
    """Applies bus records to books and fans changes out to subscriptions."""

    def __init__(
        self,
        epoch: str,
        *,
        history_size: int = 100_000,
        market_log_size: int = 64,
        heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epoch = epoch
        self.clock = clock
        self.position = 0
        self.feed_healthy = True
        self.feed_reason: str | None = None
        self._feed_healthy, self._bus_healthy = True, True
        self._feed_reason: str | None = None
        self._bus_reason: str | None = None
        self.rejected_changes = 0
        self.stale_updates = 0
        self.frames_sent = 0
        self._markets: dict[str, _Market] = {}
        self._market_log_size = market_log_size
        self._history = ChangeHistory(history_size)
        self._subscriptions: dict[int, Subscription] = {}
        self._dynamic: dict[int, Subscription] = {}
        self._dirty: dict[int, Subscription] = {}
        self._heartbeat_interval = heartbeat_interval_s
        self.ready = asyncio.Event()
        self._advanced = asyncio.Event()  # set (and replaced) after every applied batch
        # Told (market id, new status) when a known market's status changes (account.stream).
        self.status_listeners: list[Callable[[str, MarketStatus], None]] = []

    # ---- reading state -------------------------------------------------
    @property
    def clk(self) -> str:
        return f"{self.epoch}.{self.position}"

    @property
    def subscription_count(self) -> int:
        return len(self._subscriptions)

    def book(self, market_id: str) -> MarketBook | None:
        market = self._markets.get(market_id)
        return None if market is None else market.book

    def books(self) -> Iterable[MarketBook]:
        return (m.book for m in self._markets.values())

    def snapshot_json(self, market_id: str, fmt: OddsFormat | None) -> bytes | None:
        market = self._markets.get(market_id)
        return None if market is None else market.snapshot_json(fmt)

    # ---- the one writer --------------------------------------------------
    async def run(self, bus: PriceBus, from_position: int = 0) -> None:
        """Consume the bus for ever, one batch at a time."""
        heartbeats = asyncio.create_task(self._heartbeats())
        records = bus.read(from_position)
        try:
            async for batch in records:
                self.apply_batch(batch)
                self.ready.set()
                self._advanced.set()
                self._advanced = asyncio.Event()
                await asyncio.sleep(0)
        finally:
            aclose = getattr(records, "aclose", None)
            if aclose is not None:  # a reader left at a yield keeps its connections otherwise
                await aclose()
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats

    def apply_batch(self, records: Iterable[BusRecord]) -> None:
        for record in records:
            self._apply(record)
        self._flush_dirty()

    def _apply(self, record: BusRecord) -> None:
        item = record.item
        self.position = max(self.position, record.position + 1)
        if isinstance(item, FeedStatus):
            self._apply_status(item)
        elif isinstance(item, BookUpdate):
            self._install(record.position, item)
        else:
            self._apply_change(record.position, item)

    def _apply_status(self, status: FeedStatus) -> None:
        self._feed_healthy, self._feed_reason = status.healthy, status.reason
        self._health_changed()

    def set_bus_health(self, healthy: bool, reason: str | None = None) -> None:
        """The bus itself (broker unreachable, consumer lagging), beside the feed's own status."""
        self._bus_healthy, self._bus_reason = healthy, reason
        self._health_changed()
        self._flush_dirty()

    def _health_changed(self) -> None:
        healthy = self._feed_healthy and self._bus_healthy
        reason = self._bus_reason if not self._bus_healthy else self._feed_reason
        if (healthy, reason) == (self.feed_healthy, self.feed_reason):
            return
        self.feed_healthy, self.feed_reason = healthy, None if healthy else reason
        for sub in self._subscriptions.values():
            sub.status_pending = True
            if sub.armed:
                self._dirty[sub.id] = sub

    def _apply_change(self, position: int, change: MarketChange) -> None:
        """The embedded path: this hub is the market's single writer and sequences it."""
        market = self._markets.get(change.market_id)
        result = apply_change(None if market is None else market.book, change)
        if result.rejected is not None:
            self.rejected_changes += 1
            log.warning("change rejected", extra={"reason": result.rejected})
            return
        if result.delta is None or result.book is None:
            return
        self._install(position, BookUpdate(result.book, result.delta))

    def _install(self, position: int, update: BookUpdate) -> None:
        """Make ``update`` the market's state, never going back (B25: replays, duplicates).

        An update at or below the market's seq was applied already and is dropped;
        one past a gap (a compacted topic, a lost record) resyncs: a snapshot.
        """
        market = self._markets.get(update.market_id)
        if market is not None and update.seq <= market.seq:
            self.stale_updates += 1
            return
        delta = update.delta
        contiguous = market is not None and update.seq == market.seq + 1
        if not (contiguous or delta.resync):
            delta = MarketDelta(update.market_id, update.seq, resync=True)
        if market is None:
            market = self._markets[update.market_id] = _Market(update.book, self._market_log_size)
            market.log.append(delta)
            self._attach_matching(market, self._subscriptions.values())
        else:
            was = market.book.status
            market.advance(update.book, delta)
            if delta.in_play is not None or delta.resync:
                self._refilter(market)
            if update.book.status is not was:
                self._status_changed(update.market_id, update.book.status)
        self._remember(position, delta)
        parked: list[int] = []
        for sub in market.armed.values():
            if sub.armed:
                sub.mark(update.market_id, delta)
                self._dirty[sub.id] = sub
            else:
                parked.append(sub.id)
        for sub_id in parked:  # lazily parked (see _disarm); _arm puts it back
            del market.armed[sub_id]

    def mark_settled(self, market_id: str, at_ms: int = 0) -> bool:
        """Settlement (issue #5), not the feed, ends a market: CLOSED first if need be, then
        SETTLED, applied here as the market's own changes (subscribers get the status
        delta, account.stream its MARKET event). False for an unknown market.

        The change is remembered at the hub's current position, so a subscriber that
        resumes from the clk it had before is sent it again rather than missing it."""
        market = self._markets.get(market_id)
        if market is None:
            return False
        for status in (MarketStatus.CLOSED, MarketStatus.SETTLED):
            definition = market.book.definition
            if definition.status in (status, MarketStatus.SETTLED):
                continue
            change = MarketChange(market_id, at_ms, replace(definition, status=status))
            self._apply_change(self.position, change)
        self._flush_dirty()
        return market.book.status is MarketStatus.SETTLED

    def _status_changed(self, market_id: str, status: MarketStatus) -> None:
        for listener in self.status_listeners:
            try:
                listener(market_id, status)
            except Exception:  # a listener's bug must not stop the one writer
                log.exception("status listener failed", extra={"marketId": market_id})

    def _remember(self, position: int, delta: MarketDelta) -> None:
        self._history.append(position, delta.market_id, delta.seq, delta.resync)

    def _attach_matching(self, market: _Market, subs: Iterable[Subscription]) -> None:
        for sub in subs:
            if sub.filter.matches(market.book.definition):
                market.followers[sub.id] = sub
                sub.sent[market.book.market_id] = 0
                if sub.armed:
                    market.armed[sub.id] = sub
                    sub.pending_snapshots[market.book.market_id] = None
                    self._dirty[sub.id] = sub

    def _refilter(self, market: _Market) -> None:
        """An in-play flip or redefinition can start or stop a filtered stream."""
        for sub in self._dynamic.values():
            following = sub.id in market.followers
            if sub.filter.matches(market.book.definition) and not following:
                self._attach_matching(market, (sub,))
            elif following and not sub.filter.matches(market.book.definition):
                del market.followers[sub.id]
                market.armed.pop(sub.id, None)
                sub.forget(market.book.market_id)

    # ---- subscriptions -----------------------------------------------------
    def subscribe(self, request: OddsStreamRequest, sink: FrameSink) -> Subscription:
        sub = Subscription(self, request, sink, self.clk)
        self._subscriptions[sub.id] = sub
        if sub.filter.in_play_only:
            self._dynamic[sub.id] = sub
        self._attach_matching_all(sub)
        # A subscriber arriving while prices are stale is told so at once, not only
        # those that saw the health change (they would trust the snapshots' prices).
        sub.status_pending = not self.feed_healthy
        position = self._parse_clk(request.resume)
        if position is not None and self._resume(sub, position):
            sub.clk = f"{self.epoch}.{position}"  # canonical, whatever digits it came in
        return sub

    async def wait_position(self, position: int) -> None:
        """Until every record before ``position`` is applied (start-up catch-up, resume)."""
        while self.position < position:
            await self._advanced.wait()

    async def catch_up_to(self, clk: str | None, timeout_s: float = 5.0) -> None:
        """A clk from another server process on the same topic may be ahead of this one.

        Resuming before this hub has applied what that process had sent would
        send those changes twice; wait (bounded) until caught up instead.
        """
        position = self._parse_clk(clk)
        if position is None or position <= self.position:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wait_position(position), timeout_s)

    def _parse_clk(self, clk: str | None) -> int | None:
        """The position of a clk from this hub's epoch, or None (foreign or malformed)."""
        if clk is None:
            return None
        epoch, _, text = clk.rpartition(".")
        if epoch != self.epoch or not (text.isascii() and text.isdigit()):
            return None
        return int(text)

    def _attach_matching_all(self, sub: Subscription) -> None:
        ids = sub.filter.market_ids
        markets: Iterable[_Market] = (
            (self._markets[m] for m in ids if m in self._markets)
            if ids is not None
            else self._markets.values()
        )
        for market in markets:
            self._attach_matching(market, (sub,))

    def _resume(self, sub: Subscription, position: int) -> bool:
        """Send only the changes missed since ``position`` where the history still has them."""
        if not self._history.floor <= position <= self.position:
            return False
        first_missed: dict[str, int] = {}
        for pos, market_id, seq, resync in self._history.newest_first():
            if pos < position:
                break
            if market_id in sub.sent:
                first_missed[market_id] = 0 if resync else seq  # walking back: oldest wins
        for market_id in sub.sent:
            missed = first_missed.get(market_id)
            sub.sent[market_id] = (
                self._markets[market_id].seq if missed is None else max(missed - 1, 0)
            )
        return True

    def unsubscribe(self, sub: Subscription) -> None:
        if sub.closed:
            return
        sub.closed = True
        self._disarm(sub)
        self._subscriptions.pop(sub.id, None)
        self._dynamic.pop(sub.id, None)
        self._dirty.pop(sub.id, None)
        for market_id in sub.sent:
            market = self._markets.get(market_id)
            if market is not None:
                market.followers.pop(sub.id, None)
                market.armed.pop(sub.id, None)
        sub.sent.clear()

    def _arm(self, sub: Subscription) -> None:
        """Make changes reach ``sub`` as they happen, and queue what it missed meanwhile.

        Only markets that changed while it was parked can owe it anything (the
        others still hold it in ``armed``), so when the history reaches back and
        is shorter than its market list, walk that instead of every market: a
        subscriber parked for a frame or two by a full socket re-arms in O(changes).
        """
        sub.armed = True
        missed = self.position - sub.parked_at
        changed: Iterable[str] = sub.sent
        if 0 <= self._history.floor <= sub.parked_at and missed < len(sub.sent):
            changed = self._history.markets_since(sub.parked_at)
        for market_id in changed:
            if market_id in sub.sent:
                market = self._markets[market_id]
                market.armed[sub.id] = sub
                sub.due(market_id, market.seq)

    def _disarm(self, sub: Subscription) -> None:
        """Park ``sub``: changes stop touching it; ``sent`` remembers where it was.

        O(1): each market drops it from ``armed`` lazily, at its next change.
        What was already pending stays pending (bounded by its markets).
        """
        if not sub.armed:
            return
        sub.armed = False
        sub.parked_at = self.position

    # ---- sending -----------------------------------------------------------
    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, {}
        for sub in dirty.values():
            self.flush(sub)

    def flush(self, sub: Subscription) -> None:
        """Send frames while there is demand, room on the connection and news."""
        if sub.closed:
            return
        ready = sub.demand > 0 and sub.sink.writable()
        if not ready:
            self._disarm(sub)
            return
        if not sub.armed:
            self._arm(sub)
        while sub.has_pending:
            now = self.clock()
            if now < sub.next_allowed:
                self._flush_later(sub, sub.next_allowed - now)
                return
            self._send(sub, self._next_frame(sub), now)
            if sub.demand == 0 or not sub.sink.writable():
                self._disarm(sub)
                return

    def _flush_later(self, sub: Subscription, delay: float) -> None:
        if sub.flush_scheduled:
            return
        sub.flush_scheduled = True

        def fire() -> None:
            sub.flush_scheduled = False
            self.flush(sub)

        asyncio.get_running_loop().call_later(delay, fire)

    def _send(self, sub: Subscription, frame: bytes, now: float) -> None:
        sub.demand -= 1
        sub.frames_sent += 1
        self.frames_sent += 1
        sub.last_sent = now
        sub.next_allowed = now + sub.conflate_s if sub.conflate_s else 0.0
        sub.sink.send(frame)

    def _frame_clk(self, sub: Subscription) -> str:
        """The clk a frame may claim: now only when nothing is left pending."""
        if not sub.has_pending:
            sub.clk = self.clk
        return sub.clk

    def _next_frame(self, sub: Subscription) -> bytes:
        if sub.status_pending:
            sub.status_pending = False
            return feed_status_frame(self._frame_clk(sub), self.feed_healthy, self.feed_reason)
        if not sub.pending_snapshots:
            fragments = self._collect_fragments(sub)
            if fragments:
                return delta_frame(fragments, self._frame_clk(sub))
        market_id = next(iter(sub.pending_snapshots))
        del sub.pending_snapshots[market_id]
        market = self._markets[market_id]
        sub.sent[market_id] = market.seq
        return snapshot_frame(market.snapshot_json(sub.odds_format), self._frame_clk(sub))

    def _collect_fragments(self, sub: Subscription) -> list[bytes]:
        fragments: list[bytes] = []
        for market_id, from_seq in sub.pending_deltas.items():
            market = self._markets[market_id]
            fragment = market.fragment(from_seq, sub.odds_format)
            if fragment is None:
                sub.pending_snapshots[market_id] = None
            else:
                fragments.append(fragment)
                sub.sent[market_id] = market.seq
        sub.pending_deltas.clear()
        return fragments

    async def _heartbeats(self) -> None:
        tick = min(1.0, self._heartbeat_interval / 2)
        while True:
            await asyncio.sleep(tick)
            self.send_heartbeats()

    def send_heartbeats(self) -> None:
        now = self.clock()
        for sub in list(self._subscriptions.values()):
            if now - sub.last_sent < self._heartbeat_interval:
                continue
            self.flush(sub)
            idle = now - sub.last_sent >= self._heartbeat_interval
            if idle and not sub.has_pending and sub.demand > 0 and sub.sink.writable():
                self._send(sub, heartbeat_frame(self._frame_clk(sub), self.feed_healthy), now)
                if sub.demand == 0:
                    self._disarm(sub)
