"""FIELD_CASES B25 at the case's own scale, on the real broker.

"The price publisher (idempotent) sends 1 update/100 ms per market for 3
markets. Restart one broker for 15 s. Right: the publisher detects the fatal
producer error, recreates the producer, and resumes within 30 s of broker
recovery. Meanwhile the affected markets are marked stale/suspended.
Consumers see per-market sequence numbers strictly increasing, with no
duplicate applied, and any gap triggers a snapshot request."
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from clients.client import SportsbookClient
from rsocket_server.app import ServerConfig, SportsbookServer
from streams.kafka_bus import KafkaPriceBus, KafkaSettings
from tests.integration.test_kafka_outage import _Collector
from tests.testkit.builders import definition_change, market_definition, price_change

MARKETS = ("1.25001", "1.25002", "1.25003")
OUTAGE_S = 15.0
RESUME_LIMIT_S = 30.0


async def _publish_every_100ms(bus: KafkaPriceBus, stop: asyncio.Event) -> int:
    """One price change per market every 100 ms, alternating 2.0 / 2.02 (each is visible)."""
    for market_id in MARKETS:
        await bus.publish(definition_change(market_definition(market_id), s11="2", s12="3"))
    tick = 0
    while not stop.is_set():
        tick += 1
        for market_id in MARKETS:
            await bus.publish(price_change(market_id, s11=("2", "2.02")[tick % 2]))
        await asyncio.sleep(0.1)
    await bus.flush()
    return tick + 1  # the definition, then one update per tick: each market's last seq


async def test_b25_publisher_recovers_after_a_15s_broker_restart_and_seqs_only_go_up(
    kafka_broker: Any, price_topic: str
) -> None:
    server = SportsbookServer(
        ServerConfig(
            tcp_port=0,
            http_port=0,
            kafka=kafka_broker.bootstrap,
            kafka_topic=price_topic,
            feed_silence_s=0.0,  # this test publishes without a feed process's heartbeats
        )
    )
    await server.start(feed=None)
    bus = KafkaPriceBus(KafkaSettings(kafka_broker.bootstrap, price_topic))
    await bus.start()
    await bus.start_publisher()
    stop = asyncio.Event()
    publishing = asyncio.create_task(_publish_every_100ms(bus, stop))
    collector = _Collector()
    try:
        async with SportsbookClient.connect(f"tcp://127.0.0.1:{server.tcp_port}") as client:
            stream = client.odds_stream(market_ids=list(MARKETS), window=8192)

            async def read() -> None:
                while True:
                    collector.add(await stream.next_frame())

            reading = asyncio.create_task(read())
            await collector.until(lambda: min(collector.seqs.get(m, 0) for m in MARKETS) >= 20, 20)
            await asyncio.to_thread(kafka_broker.stop)
            await collector.until(lambda: (False, "bus unreachable") in collector.statuses(), 30)
            await asyncio.sleep(OUTAGE_S)
            await asyncio.to_thread(kafka_broker.start)
            recovered_at = time.monotonic()
            seq_at_recovery = max(collector.seqs.values())
            await collector.until(
                lambda: min(collector.seqs.values()) > seq_at_recovery + 10, RESUME_LIMIT_S
            )
            resumed_after_s = time.monotonic() - recovered_at
            stop.set()
            async with asyncio.timeout(120):  # a hang fails here, not at the suite's timeout
                last_seq = await publishing
            await collector.until(lambda: all(collector.seqs[m] == last_seq for m in MARKETS), 30)
            await collector.until(lambda: collector.statuses()[-1] == (True, None), 30)
            reading.cancel()
        assert resumed_after_s < RESUME_LIMIT_S
        assert collector.statuses() == [(False, "bus unreachable"), (True, None)]
        assert collector.rewinds == []  # per-market seq strictly increasing
        assert {m: server.hub.book(m).seq for m in MARKETS} == dict.fromkeys(MARKETS, last_seq)  # type: ignore[union-attr]
        assert server.hub.stale_updates == server.hub.position - 3 * last_seq  # re-sends dropped
    finally:
        stop.set()
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
        await bus.close()
        await server.stop()
        await asyncio.to_thread(kafka_broker.start)
