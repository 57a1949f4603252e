"""Broker outages on the real Kafka broker: subscribers are told, then catch up (issue 3, B25)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from clients.client import SportsbookClient
from streams.feed_process import FeedReplayConfig, run_feed_replay
from streams.kafka_bus import KafkaPriceBus, KafkaSettings
from streams.kafka_publisher import ReliableProducer
from tests.integration.test_kafka_bus import (
    BASIC,
    GREYHOUNDS,
    _changes,
    _kafka_server,
    _publish_all,
    _publisher,
)
from tests.testkit.data import betfair_market

MARKET = "1.132153978"


@pytest.fixture
async def restore_broker(kafka_broker: Any) -> AsyncIterator[None]:
    yield
    await asyncio.to_thread(kafka_broker.start)  # whatever happened, the next test has a broker


class _Collector:
    """Reads every frame of one stream, checking each market's seq only ever goes up."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.seqs: dict[str, int] = {}
        self.rewinds: list[tuple[str, int, int]] = []
        self.changed = asyncio.Event()

    def add(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        entries = [frame["market"]] if frame["kind"] == "snapshot" else frame.get("markets", [])
        for entry in entries:
            market_id, seq = entry["marketId"], entry["seq"]
            if seq <= self.seqs.get(market_id, 0):
                self.rewinds.append((market_id, self.seqs[market_id], seq))
            self.seqs[market_id] = max(seq, self.seqs.get(market_id, 0))
        self.changed.set()

    def statuses(self) -> list[tuple[bool, str | None]]:
        return [(f["feedHealthy"], f.get("reason")) for f in self.frames if f["kind"] == "status"]

    async def until(self, condition: Any, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


async def test_killing_the_broker_mid_replay_tells_subscribers_then_they_catch_up(
    kafka_broker: Any, price_topic: str, restore_broker: None
) -> None:
    """Issue 3: health status while the broker is gone, then every change; seq never goes back."""
    changes = _changes(BASIC)
    server = await _kafka_server(kafka_broker.bootstrap, price_topic)
    publisher = await _publisher(kafka_broker.bootstrap, price_topic)
    try:
        await publisher.publish(changes[0])
        await publisher.flush()
        await server.hub.wait_position(1)
        collector = _Collector()
        async with SportsbookClient.connect(f"tcp://127.0.0.1:{server.tcp_port}") as client:
            stream = client.odds_stream(market_ids=[MARKET], window=4096)

            async def read() -> None:
                while True:
                    collector.add(await stream.next_frame())

            reading = asyncio.create_task(read())

            async def feed() -> None:
                for change in changes[1:]:
                    await publisher.publish(change)
                    await asyncio.sleep(0.01)
                await publisher.flush()

            feeding = asyncio.create_task(feed())
            await collector.until(lambda: collector.seqs.get(MARKET, 0) >= 50, 20)
            tasks_before = len(asyncio.all_tasks())
            await asyncio.to_thread(kafka_broker.kill)
            await collector.until(lambda: (False, "bus unreachable") in collector.statuses(), 30)
            await asyncio.to_thread(kafka_broker.start)
            async with asyncio.timeout(120):  # a hang is a failure here, not a suite timeout
                await feeding
            await collector.until(lambda: collector.seqs.get(MARKET, 0) == 361, 60)
            await collector.until(lambda: collector.statuses()[-1] == (True, None), 30)
            reading.cancel()
        assert collector.statuses() == [(False, "bus unreachable"), (True, None)]
        assert collector.rewinds == []
        book = server.hub.book(MARKET)
        assert book is not None and book.seq == 361
        assert server.hub.position >= 361  # re-sent records may add offsets, never seqs
        assert server.hub.stale_updates == server.hub.position - 361
        async with asyncio.timeout(10):  # nothing left behind by the outage
            while len(asyncio.all_tasks()) > tasks_before:
                await asyncio.sleep(0.1)
    finally:
        await publisher.close()
        await server.stop()


async def test_a_producer_failing_for_good_is_replaced_and_nothing_is_lost_or_doubled(
    kafka_broker: Any, price_topic: str
) -> None:
    """FIELD_CASES B25: after an outage aiokafka's idempotent producer failed every send with
    OutOfOrderSequenceNumber until restarted. The publisher makes a new one and re-sends."""
    changes = _changes(GREYHOUNDS)
    publisher = await _publisher(kafka_broker.bootstrap, price_topic)
    try:
        for change in changes[:30]:
            await publisher.publish(change)
        await publisher.flush()
        assert publisher._publisher is not None
        broken = publisher._publisher.producer
        assert broken is not None

        async def fails_for_ever(*_args: object, **_kwargs: object) -> asyncio.Future[Any]:
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(OutOfOrderSequenceNumber())
            return failed

        broken.send = fails_for_ever  # type: ignore[method-assign]
        for change in changes[30:]:
            await publisher.publish(change)
        await publisher.flush()
        assert publisher.producer_restarts == 1
        assert publisher._publisher.producer is not broken
    finally:
        await publisher.close()
    server = await _kafka_server(kafka_broker.bootstrap, price_topic)
    try:
        book = server.hub.book("1.197931750")
        assert book is not None and book.seq == 80
        assert (server.hub.position, server.hub.stale_updates) == (80, 0)
    finally:
        await server.stop()


async def test_a_reader_far_behind_the_topic_end_reports_the_bus_lagging_until_it_catches_up(
    kafka_broker: Any, price_topic: str
) -> None:
    """Issue 3, item 6: "if the bus falls behind … subscribers are told"."""
    await _publish_all(kafka_broker.bootstrap, price_topic, GREYHOUNDS)
    health: list[tuple[bool, str | None]] = []
    settings = KafkaSettings(
        kafka_broker.bootstrap, price_topic, health_interval_s=0.1, lagging_records=10
    )
    reader = KafkaPriceBus(settings, on_health=lambda ok, why: health.append((ok, why)))
    await reader.start()
    records = reader.read(0, max_batch=5)
    try:
        first = await anext(records)
        assert [r.position for r in first] == [0, 1, 2, 3, 4]
        async with asyncio.timeout(10):  # the hub is stuck: 75 records behind
            while not health:
                await asyncio.sleep(0.05)
        assert health == [(False, "bus lagging")]
        position = first[-1].position
        while position < 79:
            position = (await anext(records))[-1].position
        async with asyncio.timeout(10):
            while len(health) < 2:
                await asyncio.sleep(0.05)
        assert health == [(False, "bus lagging"), (True, None)]
    finally:
        await records.aclose()
        await reader.close()


async def test_a_dead_feed_process_is_reported_as_feed_silent_while_a_quiet_one_is_not(
    kafka_broker: Any, price_topic: str
) -> None:
    """Issue 3 item 6 and the fresh-user walkthrough: a feed that is alive but quiet
    sends heartbeats and stays healthy; one that dies leaves the topic's end still, and
    after ``feed_silence_s`` subscribers get (False, 'feed silent') and /health says so."""
    server = await _kafka_server(kafka_broker.bootstrap, price_topic, feed_silence_s=3.0)
    config = FeedReplayConfig(
        [betfair_market(GREYHOUNDS)], kafka_broker.bootstrap, price_topic, speed=1.0
    )
    feeding = asyncio.create_task(run_feed_replay(replace(config, progress=False)))
    collector = _Collector()
    try:
        async with asyncio.timeout(30):
            await server.hub.wait_position(1)
        async with SportsbookClient.connect(f"tcp://127.0.0.1:{server.tcp_port}") as client:
            stream = client.odds_stream(market_ids=["1.197931750"], window=4096)

            async def read() -> None:
                while True:
                    collector.add(await stream.next_frame())

            reading = asyncio.create_task(read())
            await asyncio.sleep(8.0)  # real time: gaps of seconds, bridged by heartbeats
            assert collector.statuses() == []
            assert server.health_reason() is None
            feeding.cancel()  # the feed process dies
            await asyncio.gather(feeding, return_exceptions=True)
            await collector.until(lambda: collector.statuses() == [(False, "feed silent")], 15)
            assert server.health_reason() == "feed silent"
            reading.cancel()
    finally:
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)
        await server.stop()


async def test_a_send_cancelled_before_it_reached_the_producer_does_not_block_flush(
    kafka_broker: Any, price_topic: str
) -> None:
    """A feed task cancelled inside ReliableProducer.send() (a concurrent replay whose
    other file failed) left an entry that was never sent at the head of the queue: the
    acker waited for its send for ever, and so did flush(). It is forgotten instead."""
    producer = ReliableProducer(
        kafka_broker.bootstrap,
        price_topic,
        client_id="test-cancel",
        max_in_flight=100,
        request_timeout_ms=10_000,
    )
    await producer.start()
    try:
        async with producer._lock:  # as during a recovery: the send waits for the lock
            sending = asyncio.create_task(producer.send(b"k", b"never sent"))
            await asyncio.sleep(0.1)
            assert producer.unacknowledged == 1
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        assert producer.unacknowledged == 0
        await producer.send(b"k", b"sent")
        async with asyncio.timeout(30):
            await producer.flush()
        assert (producer.unacknowledged, producer.acknowledged) == (0, 1)
    finally:
        await producer.close()


async def test_a_send_whose_outcome_never_comes_is_re_sent_and_flush_returns(
    kafka_broker: Any, price_topic: str
) -> None:
    """CI once hung in flush() after a broker restart: whatever loses a send's future,
    the acker gives it ``3 × request timeout`` (≥ 5 s), then recovers and re-sends."""
    producer = ReliableProducer(
        kafka_broker.bootstrap,
        price_topic,
        client_id="test-lost-future",
        max_in_flight=100,
        request_timeout_ms=1_000,
    )
    await producer.start()
    real_send_now = producer._send_now
    lost: list[asyncio.Future[Any]] = []

    async def lose_the_first(entry: Any) -> asyncio.Future[Any]:
        if not lost:
            lost.append(asyncio.get_running_loop().create_future())  # never completes
            return lost[0]
        return await real_send_now(entry)

    producer._send_now = lose_the_first  # type: ignore[method-assign]
    try:
        await producer.send(b"k", b"v")
        async with asyncio.timeout(30):
            await producer.flush()
        assert (producer.unacknowledged, producer.acknowledged, producer.restarts) == (0, 1, 1)
    finally:
        await producer.close()
