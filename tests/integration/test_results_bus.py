"""Results on the real Kafka broker: the feed process publishes each closed market's result
to a ``sportsbook.results``-like topic (6 partitions, key = marketId) and the settlement
group reads exactly what the in-process path derives."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sportsbook_core.results import SettlementInstruction
from streams.feed_process import FeedReplayConfig, run_feed_replay
from streams.replay import iter_changes
from streams.results import KafkaResultsPublisher, KafkaResultsSource, results_of
from tests.testkit.data import betfair_market
from tests.testkit.kafka import (
    EVENT_TOPIC_CONFIGS,
    TOPIC_PARTITIONS,
    create_topic,
    delete_topic_quietly,
    unique_topic,
)

WIN, PLACE = "flumine_1.197931750.jsonl", "flumine_1.197931751.jsonl"


@pytest.fixture
async def results_topic(kafka_broker: Any) -> AsyncIterator[str]:
    name = unique_topic("test.results")
    partitions = TOPIC_PARTITIONS["sportsbook.results"]
    await create_topic(kafka_broker.bootstrap, name, partitions, EVENT_TOPIC_CONFIGS)
    try:
        yield name
    finally:
        await delete_topic_quietly(kafka_broker.bootstrap, name)


async def _read(
    bootstrap: str, topic: str, count: int, group: str | None = None
) -> list[SettlementInstruction]:
    got: list[SettlementInstruction] = []
    enough = asyncio.Event()

    async def settle(instruction: SettlementInstruction) -> None:
        got.append(instruction)
        if len(got) >= count:
            enough.set()

    source = KafkaResultsSource(bootstrap, topic, group_id=group or f"test-{uuid.uuid4().hex}")
    reader = asyncio.create_task(source.run(settle))
    try:
        await asyncio.wait_for(enough.wait(), 60)
    finally:
        await source.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return got


async def test_the_feed_process_publishes_one_result_per_closed_market(
    kafka_broker: Any, price_topic: str, results_topic: str
) -> None:
    files = [betfair_market(WIN), betfair_market(PLACE)]
    config = FeedReplayConfig(
        files=files,
        kafka=kafka_broker.bootstrap,
        topic=price_topic,
        progress=False,
        results_topic=results_topic,
    )
    result = await run_feed_replay(config)
    assert result.results == 2
    got = await _read(kafka_broker.bootstrap, results_topic, 2)
    expected = results_of(iter_changes(files))
    assert sorted(got, key=lambda i: i.market_id) == sorted(expected, key=lambda i: i.market_id)


async def test_the_settlement_group_commits_only_what_it_settled(
    kafka_broker: Any, results_topic: str
) -> None:
    """A second reader in the same group starts after what the first one settled."""
    first, second = (
        results_of(iter_changes(betfair_market(WIN))),
        results_of(iter_changes(betfair_market(PLACE))),
    )
    publisher = KafkaResultsPublisher(kafka_broker.bootstrap, results_topic)
    await publisher.start()
    try:
        await publisher.publish(first[0])
        group = f"test-{uuid.uuid4().hex}"
        assert await _read(kafka_broker.bootstrap, results_topic, 1, group) == first
        await publisher.publish(second[0])
        assert await _read(kafka_broker.bootstrap, results_topic, 1, group) == second
    finally:
        await publisher.close()
