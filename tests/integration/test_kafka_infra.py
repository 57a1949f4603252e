"""The Kafka infrastructure against a real broker (infra/kafka/kafka.sh, never mocked):
topic layout and configs, and an exact produce/consume round trip."""

from __future__ import annotations

import asyncio
import os

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from tests.testkit.kafka import (
    EVENT_TOPIC_CONFIGS,
    KAFKA_SH,
    PRICES_TOPIC_CONFIGS,
    TOPIC_PARTITIONS,
    KafkaBroker,
    describe_topic,
    kafka_admin,
    run_kafka_sh,
    topic_configs,
)


async def test_price_topic_fixture_has_one_partition_and_compact_delete(
    kafka_broker: KafkaBroker, price_topic: str
) -> None:
    """The fixture's topic is made like sportsbook.prices: 1 partition, compact+delete."""
    async with kafka_admin(kafka_broker.bootstrap) as admin:
        meta = await describe_topic(admin, price_topic)
        configs = await topic_configs(admin, price_topic)
    assert [(p["partition"], p["leader"] >= 0) for p in meta["partitions"]] == [(0, True)]
    assert configs["cleanup.policy"] == "compact,delete"
    assert {key: configs[key] for key in PRICES_TOPIC_CONFIGS} == {
        "cleanup.policy": "compact,delete",
        "retention.ms": "604800000",
        "min.compaction.lag.ms": "60000",
        "segment.ms": "3600000",
    }


async def test_three_keyed_records_come_back_from_offset_0_in_order(
    kafka_broker: KafkaBroker, price_topic: str
) -> None:
    """Idempotent producer, keyed by marketId; manual assignment reads offsets 0, 1, 2."""
    sent = [
        (b"1.100", b'{"marketId":"1.100","seq":1}'),
        (b"1.200", b'{"marketId":"1.200","seq":1}'),
        (b"1.100", b'{"marketId":"1.100","seq":2}'),
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        written = [await producer.send_and_wait(price_topic, value, key=key) for key, value in sent]
    finally:
        await producer.stop()
    assert [(m.partition, m.offset) for m in written] == [(0, 0), (0, 1), (0, 2)]

    partition = TopicPartition(price_topic, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([partition])
        consumer.seek(partition, 0)
        received: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(15):
            while len(received) < 3:
                batches = await consumer.getmany(partition, timeout_ms=500)
                received.extend(batches.get(partition, []))
    finally:
        await consumer.stop()
    assert [(r.offset, r.key, r.value) for r in received] == [
        (0, b"1.100", b'{"marketId":"1.100","seq":1}'),
        (1, b"1.200", b'{"marketId":"1.200","seq":1}'),
        (2, b"1.100", b'{"marketId":"1.100","seq":2}'),
    ]


async def test_kafka_sh_topics_makes_prices_with_1_partition_and_the_others_with_6(
    kafka_broker: KafkaBroker,
) -> None:
    """`kafka.sh topics` (idempotent) leaves the three sportsbook topics as designed."""
    proc = await asyncio.create_subprocess_exec(
        str(KAFKA_SH),
        "topics",
        env={**os.environ, "KAFKA_BOOTSTRAP": kafka_broker.bootstrap},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await proc.communicate())[0].decode()
    assert proc.returncode == 0, output

    async with kafka_admin(kafka_broker.bootstrap) as admin:
        partitions = {
            t: len((await describe_topic(admin, t))["partitions"]) for t in TOPIC_PARTITIONS
        }
        configs = {t: await topic_configs(admin, t) for t in TOPIC_PARTITIONS}
    assert partitions == {"sportsbook.prices": 1, "sportsbook.results": 6, "sportsbook.bets": 6}, (
        output
    )
    assert {k: configs["sportsbook.prices"][k] for k in PRICES_TOPIC_CONFIGS} == {
        "cleanup.policy": "compact,delete",
        "retention.ms": "604800000",
        "min.compaction.lag.ms": "60000",
        "segment.ms": "3600000",
    }
    for topic in ("sportsbook.results", "sportsbook.bets"):
        assert {k: configs[topic][k] for k in EVENT_TOPIC_CONFIGS} == {
            "cleanup.policy": "delete",
            "retention.ms": "2592000000",
        }
    assert "WARNING" not in output, output


def test_kafka_sh_status_names_the_port_its_broker_listens_on_not_the_asked_one(
    kafka_broker: KafkaBroker,
) -> None:
    """`KAFKA_PORT=1 kafka.sh status` reports the state dir's broker at its real address
    and says it differs (a user once stopped the wrong broker believing the port)."""
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "KAFKA_PORT")}
    code, plain = run_kafka_sh("status", env=env)
    if code != 0 or f"bootstrap={kafka_broker.bootstrap} " not in plain:
        pytest.skip(f"the test broker is not this checkout's kafka.sh broker: {plain.strip()}")
    code, output = run_kafka_sh("status", env={**env, "KAFKA_PORT": "1"})
    assert code == 0, output
    assert f"bootstrap={kafka_broker.bootstrap} " in output
    assert f"listens on {kafka_broker.bootstrap}, not 127.0.0.1:1 (set KAFKA_STATE_DIR" in output, (
        output
    )
