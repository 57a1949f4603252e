"""Bet events reach Kafka ``sportsbook.bets`` from the ledger's outbox (issue 4, item 5)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from clients.client import SportsbookClient
from rsocket_server.app import ServerConfig, SportsbookServer
from rsocket_server.auth import token_hash
from tests.integration.test_betting import FUTURE
from tests.integration.test_kafka_bus import _publisher
from tests.testkit.builders import definition_change, market_definition

BETS = "sportsbook.bets"


async def _events_for(consumer: AIOKafkaConsumer, account: str, count: int) -> list[Any]:
    found: list[Any] = []
    async with asyncio.timeout(30):
        while len(found) < count:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found += [orjson.loads(r.value) for r in records if r.key == account.encode()]
    return found


async def test_a_placed_bet_is_published_once_to_sportsbook_bets_keyed_by_account(
    kafka_broker: Any, price_topic: str, ledger_url: str
) -> None:
    account = f"acct-{uuid.uuid4().hex[:8]}"
    publisher = await _publisher(kafka_broker.bootstrap, price_topic)
    definition = replace(market_definition("1.1"), start_time=FUTURE)
    await publisher.publish(definition_change(definition, s11="2"))
    await publisher.flush()
    await publisher.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, enable_auto_commit=False)
    await consumer.start()
    server = SportsbookServer(
        ServerConfig(
            tcp_port=0,
            http_port=0,
            kafka=kafka_broker.bootstrap,
            kafka_topic=price_topic,
            database=ledger_url,
        )
    )
    await server.start(feed=None)
    try:
        assert BETS in await consumer.topics()  # created by kafka.sh topics, 6 partitions
        partitions = [TopicPartition(BETS, p) for p in range(6)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        assert server.betting is not None
        await server.betting.store.create_account(account, "GBP", token_hash(account), {})
        await server.betting.store.deposit(account, 10_000, "seed")
        async with SportsbookClient.connect(f"tcp://127.0.0.1:{server.tcp_port}", account) as c:
            leg = {"marketId": "1.1", "selectionId": "11", "price": "2"}
            body = {"requestId": "k1", "type": "SINGLE", "legs": [leg], "stake": 1000}
            receipt = await c.request("bets.place", body)
            assert await c.request("bets.place", body) == receipt  # a retry adds no event
        events = await _events_for(consumer, account, 1)
        assert [(e["kind"], e["betId"], e["accountId"], e["status"]) for e in events] == [
            ("PLACED", receipt["betId"], account, "ACCEPTED")
        ]
        assert events[0]["bet"] == receipt
        async with asyncio.timeout(10):  # marked done once the broker acknowledged it
            while await server.betting.store.outbox_pending(10):
                await asyncio.sleep(0.05)
    finally:
        await server.stop()
        await consumer.stop()
