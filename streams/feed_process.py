"""``sportsbook feed replay``: a feed as its own process, publishing to the Kafka price bus.

It first reads the topic back (adopting every market's newest book, so seqs
continue where the bus left them), then replays the recordings into the bus
and waits until the broker has acknowledged every record.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.kafka_bus import KafkaPriceBus, KafkaSettings
from streams.replay import replay

log = logging.getLogger("sportsbook.feed")


@dataclass(frozen=True, slots=True)
class FeedReplayConfig:
    files: Sequence[Path]
    kafka: str
    topic: str
    speed: float | None = None
    loop: bool = False
    progress: bool = True
    concurrent: bool = False


@dataclass(frozen=True, slots=True)
class FeedReplayResult:
    adopted_markets: int
    published: int
    rejected: int
    producer_restarts: int
    seconds: float


async def run_feed_replay(config: FeedReplayConfig) -> FeedReplayResult:
    started = time.monotonic()
    bus = KafkaPriceBus(KafkaSettings(config.kafka, config.topic, client_id="sportsbook-feed"))
    try:
        await bus.start()
        adopted = await bus.rebuild_sequencer(_rebuild_progress if config.progress else None)
        if config.progress and adopted:
            print(f"\rfeed: continuing {adopted} markets already on the bus", file=sys.stderr)
        await bus.start_publisher()
        first = bus.position
        await replay(
            list(config.files),
            bus.publish,
            speed=config.speed,
            loop=config.loop,
            progress=config.progress,
            concurrent=config.concurrent,
        )
        await bus.flush()
        return FeedReplayResult(
            adopted,
            bus.position - first,
            bus.rejected_changes,
            bus.producer_restarts,
            round(time.monotonic() - started, 3),
        )
    finally:
        await bus.close()


def _rebuild_progress(done: int, total: int) -> None:
    print(f"\rfeed: reading the bus back {done}/{total}", end="", file=sys.stderr, flush=True)
