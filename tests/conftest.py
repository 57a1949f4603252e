"""Test-wide settings: quiet structured logs, and a fresh event loop per test."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.testkit.kafka import (
    PRICES_TOPIC_CONFIGS,
    KafkaBroker,
    KafkaUnavailable,
    create_topic,
    delete_topic_quietly,
    open_kafka_broker,
    unique_topic,
)

logging.getLogger("pyrsocket").setLevel(logging.CRITICAL)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that call ``logs.configure`` (the CLI's main does): the next test gets
    the root handlers and levels it had, and no aiohttp.server filter."""
    root = logging.getLogger()
    rsocket_log = logging.getLogger("pyrsocket")
    saved = root.handlers[:], root.level, rsocket_log.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    rsocket_log.setLevel(saved[2])
    logging.getLogger("aiohttp.server").filters.clear()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """The real Kafka broker: ``$SPORTSBOOK_TEST_KAFKA``, else ``kafka.sh up`` (and
    ``kafka.sh stop`` at session end if it was started here). Fails, never skips."""
    try:
        broker = open_kafka_broker()
    except KafkaUnavailable as exc:
        raise pytest.fail.Exception(
            f"Kafka for tests is not available: {exc}", pytrace=False
        ) from None
    try:
        yield broker
    finally:
        if broker.started_here:
            broker.stop()


@pytest.fixture
async def price_topic(kafka_broker: KafkaBroker) -> AsyncIterator[str]:
    """A fresh ``test.prices.<hex>`` topic configured like ``sportsbook.prices``
    (1 partition, leader known); deleted afterwards (best effort)."""
    name = unique_topic()
    await create_topic(kafka_broker.bootstrap, name, 1, PRICES_TOPIC_CONFIGS)
    try:
        yield name
    finally:
        await delete_topic_quietly(kafka_broker.bootstrap, name)
