"""The price bus on Apache Kafka (aiokafka): feeds publish in one process, servers read in others.

Design (docs/KAFKA.md):

* ``sportsbook.prices`` has **one partition**. Every server reads every record
  anyway (manual assignment, no consumer group, so no rebalance ever moves a
  market), and one partition gives one total order: a record's offset is its
  bus ``position``, so a client's ``clk`` (``<epoch>.<offset>``) means the same
  thing to every server process on the topic. Records are still keyed by
  marketId, so per-market order survives a move to more partitions.
* Records are :class:`BookUpdate`: the market's whole state plus the delta,
  with the ``seq`` the publisher's :class:`MarketSequencer` gave it. The topic
  is compacted, so a server that starts late reads the newest state of every
  market and an older or repeated record is recognised by its ``seq`` (B25).
* The producer is idempotent and replaces itself when it fails, re-sending
  what was not acknowledged (B25, :mod:`streams.kafka_publisher`); a duplicate
  that results is dropped by every reader by its ``seq``.
* Readers watch the broker: unreachable, or far behind the topic's end, is a
  bus health change the hub turns into ``status`` frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from sportsbook_core.changes import FeedStatus, MarketChange
from sportsbook_core.market_book import BookUpdate
from sportsbook_core.sequencer import MarketSequencer, Rejected
from streams.bus import BusClosed, BusItem, BusRecord
from streams.bus_codec import (
    BusDecodeError,
    decode_record,
    encode_status,
    encode_update,
    record_key,
)
from streams.kafka_publisher import ReliableProducer

log = logging.getLogger("sportsbook.kafka")

PRICES_TOPIC = "sportsbook.prices"
HealthListener = Callable[[bool, str | None], None]


class KafkaBusError(Exception):
    """The bus cannot be used as configured (no broker, no topic, wrong partition count)."""


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap: str
    topic: str = PRICES_TOPIC
    client_id: str = "sportsbook"
    connect_timeout_s: float = 30.0
    max_in_flight: int = 10_000  # unacknowledged records a publisher holds for re-sending
    request_timeout_ms: int = 10_000
    health_interval_s: float = 1.0
    unreachable_after_s: float = 3.0
    lagging_records: int = 50_000
    feed_silent_after_s: float = 10.0  # no record (not even a feed heartbeat) for this long


HEALTHY = "healthy"


class BusHealthJudge:
    """Decides the bus's health from what the reader sees each interval (no I/O).

    Unreachable for ``unreachable_after_s``; lagging more than ``lagging_records``
    for five intervals; or silent — the topic's end has not moved for
    ``feed_silent_after_s`` (a live feed writes at least a heartbeat a second, so
    a dead feed process shows here; 0 turns it off). Silence is not judged
    across an outage: the clock restarts when the broker answers again.
    Returns ``HEALTHY``, a reason, or None (no verdict yet).
    """

    def __init__(self, settings: KafkaSettings, now: float) -> None:
        self.settings = settings
        self.last_ok = now
        self.lag_since: float | None = None
        self.end = -1
        self.end_moved_at = now
        self.was_unreachable = False

    def unreachable(self, now: float) -> str | None:
        self.was_unreachable = True
        if now - self.last_ok >= self.settings.unreachable_after_s:
            return "bus unreachable"
        return None

    def reached(self, now: float, end: int, position: int) -> str | None:
        self.last_ok = now
        if end != self.end or self.was_unreachable:
            self.end, self.end_moved_at, self.was_unreachable = end, now, False
        lag = end - position
        if lag <= self.settings.lagging_records:
            self.lag_since = None
        elif self.lag_since is None:
            self.lag_since = now
        elif now - self.lag_since >= 5 * self.settings.health_interval_s:
            return "bus lagging"
        silent_after = self.settings.feed_silent_after_s
        if silent_after > 0 and now - self.end_moved_at >= silent_after:
            return "feed silent"
        if self.lag_since is not None:
            return None  # lagging, not yet for long: keep the current verdict
        return HEALTHY


class KafkaPriceBus:
    """:class:`~streams.bus.PriceBus` on one Kafka topic partition."""

    def __init__(self, settings: KafkaSettings, on_health: HealthListener | None = None) -> None:
        self.settings = settings
        self.on_health = on_health
        self._tp = TopicPartition(settings.topic, 0)
        self._epoch = ""
        self._position = 0
        self._sequencer = MarketSequencer()
        self._publisher: ReliableProducer | None = None
        self._closed = False
        self.rejected_changes = 0
        self.undecodable_records = 0
        self.healthy = True
        self.health_reason: str | None = None

    # ---- set-up ------------------------------------------------------------
    @property
    def epoch(self) -> str:
        return self._epoch

    @property
    def position(self) -> int:
        return self._position

    async def start(self) -> None:
        """Find the cluster and the topic (retrying for ``connect_timeout_s``), set the epoch."""
        deadline = time.monotonic() + self.settings.connect_timeout_s
        while True:
            try:
                cluster_id, partitions = await self._describe()
                break
            except (KafkaError, OSError) as error:
                if time.monotonic() >= deadline:
                    raise KafkaBusError(
                        f"cannot reach Kafka at {self.settings.bootstrap}: {error!r}"
                    ) from error
                log.warning("kafka not reachable yet", extra={"error": repr(error)})
                await asyncio.sleep(1.0)
        if partitions != 1:
            raise KafkaBusError(
                f"topic {self.settings.topic} has {partitions} partitions; the price bus "
                "needs exactly 1 (its offset is the clk every server shares, docs/KAFKA.md)"
            )
        digest = hashlib.sha256(f"{cluster_id}/{self.settings.topic}".encode()).hexdigest()
        self._epoch = "k" + digest[:8]

    async def _describe(self) -> tuple[str, int]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.bootstrap,
            client_id=f"{self.settings.client_id}-admin",
            request_timeout_ms=self.settings.request_timeout_ms,
        )
        try:  # close even when start() fails, or its connections leak
            await admin.start()
            cluster = await admin.describe_cluster()
            topics = await admin.describe_topics([self.settings.topic])
        finally:
            await admin.close()
        topic = topics[0] if topics else {}
        if topic.get("error_code", 0) != 0 or not topic.get("partitions"):
            raise KafkaBusError(
                f"topic {self.settings.topic} not found on {self.settings.bootstrap} "
                "(create it: infra/kafka/kafka.sh topics)"
            )
        return str(cluster["cluster_id"]), len(topic["partitions"])

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            client_id=f"{self.settings.client_id}-reader",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=self.settings.request_timeout_ms,
            fetch_max_bytes=8 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )

    async def end_position(self) -> int:
        """The topic's end offset now: what a starting server must apply before it serves."""
        consumer = self._consumer()
        try:
            await consumer.start()
            ends = await consumer.end_offsets([self._tp])
        finally:
            await consumer.stop()
        return int(ends[self._tp])

    # ---- publishing ------------------------------------------------------------
    async def rebuild_sequencer(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Adopt every market's newest book on the topic, so this publisher continues its seq."""
        end = await self.end_position()
        read = 0
        if end == 0:
            return 0
        async with contextlib.aclosing(self._records(0, 2048)) as records:
            async for batch in records:
                for record in batch:
                    if isinstance(record.item, BookUpdate):
                        self._sequencer.adopt(record.item.book)
                read += len(batch)
                if progress is not None:
                    progress(batch[-1].position + 1, end)
                if batch[-1].position + 1 >= end:
                    break
        self._position = end
        return len(self._sequencer)

    async def publish(self, item: BusItem) -> None:
        """Sequence a change and send it; waits while ``max_in_flight`` are unacknowledged."""
        if self._closed:
            raise BusClosed
        if isinstance(item, MarketChange):
            sequenced = self._sequencer.sequence(item)
            if isinstance(sequenced, Rejected):
                self.rejected_changes += 1
                log.warning("change rejected", extra={"reason": sequenced.reason})
                return
            if sequenced is None:
                return
            item = sequenced
        value = encode_status(item) if isinstance(item, FeedStatus) else encode_update(item)
        await self._live_publisher().send(record_key(item), value)
        self._position += 1

    async def start_publisher(self) -> None:
        self._publisher = ReliableProducer(
            self.settings.bootstrap,
            self.settings.topic,
            client_id=f"{self.settings.client_id}-feed",
            max_in_flight=self.settings.max_in_flight,
            request_timeout_ms=self.settings.request_timeout_ms,
        )
        await self._publisher.start()

    async def flush(self) -> None:
        """Until every record published so far is acknowledged by the broker."""
        await self._live_publisher().flush()

    @property
    def producer_restarts(self) -> int:
        return 0 if self._publisher is None else self._publisher.restarts

    def _live_publisher(self) -> ReliableProducer:
        if self._publisher is None:
            raise KafkaBusError("publisher not started (call start_publisher)")
        return self._publisher

    # ---- reading ---------------------------------------------------------------
    async def read(
        self, from_position: int = 0, max_batch: int = 512
    ) -> AsyncGenerator[list[BusRecord], None]:
        """Every record from ``from_position`` on, decoded, for ever; watches bus health.

        A broker that goes away is waited for, never fatal: the reader resumes
        from the next offset it needs once it is back.
        """
        position = from_position
        while not self._closed:
            try:
                records = self._records(position, max_batch, watch=True)
                async with contextlib.aclosing(records):
                    async for batch in records:
                        position = batch[-1].position + 1
                        yield batch
            except (KafkaError, OSError) as error:
                self._set_health(False, "bus unreachable")
                log.warning("reader lost the broker; retrying", extra={"error": repr(error)})
                await asyncio.sleep(1.0)

    async def _records(
        self, from_position: int, max_batch: int, watch: bool = False
    ) -> AsyncGenerator[list[BusRecord], None]:
        consumer = self._consumer()
        monitor: asyncio.Task[None] | None = None
        try:
            await consumer.start()
            monitor = asyncio.create_task(self._watch(consumer)) if watch else None
            consumer.assign([self._tp])
            consumer.seek(self._tp, from_position)
            while not self._closed:
                fetched = await consumer.getmany(self._tp, timeout_ms=500, max_records=max_batch)
                batch = self._decode(fetched.get(self._tp, []))
                if batch:
                    self._position = max(self._position, batch[-1].position + 1)
                    yield batch
        finally:
            if monitor is not None:
                monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monitor
            await consumer.stop()

    def _decode(self, messages: list[Any]) -> list[BusRecord]:
        batch: list[BusRecord] = []
        for message in messages:
            try:
                batch.append(BusRecord(message.offset, decode_record(message.value)))
            except BusDecodeError as error:
                # A record this version cannot read must not stop the prices.
                self.undecodable_records += 1
                log.error(
                    "undecodable record skipped",
                    extra={"offset": message.offset, "error": str(error)},
                )
        return batch

    async def _watch(self, consumer: AIOKafkaConsumer) -> None:
        """Broker reachable, this reader near the topic's end, a feed still writing:
        else tell the hub."""
        judge = BusHealthJudge(self.settings, time.monotonic())
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            try:
                ends = await asyncio.wait_for(
                    consumer.end_offsets([self._tp]), self.settings.unreachable_after_s
                )
            except (KafkaError, OSError, TimeoutError):
                verdict = judge.unreachable(time.monotonic())
            else:
                verdict = judge.reached(time.monotonic(), int(ends[self._tp]), self._position)
            if verdict is not None:
                self._set_health(verdict is HEALTHY, None if verdict is HEALTHY else verdict)

    def _set_health(self, healthy: bool, reason: str | None) -> None:
        if (healthy, reason) == (self.healthy, self.health_reason):
            return
        self.healthy, self.health_reason = healthy, reason
        log.warning("bus health", extra={"healthy": healthy, "reason": reason})
        if self.on_health is not None:
            self.on_health(healthy, reason)

    async def close(self) -> None:
        self._closed = True
        if self._publisher is not None:
            await self._publisher.close()
