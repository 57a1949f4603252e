"""The ledger's outbox to Kafka ``sportsbook.bets``: at least once, in order per account.

A bet and its outbox row are written in one transaction; this relay reads
rows not yet published, produces them (key = account id, so one account's
events stay ordered; idempotent producer, ``acks=all``), and marks them done
only after the broker acknowledged them. A crash between the two re-sends
the rows: consumers deduplicate by ``(betId, kind)`` (documented in
docs/BETTING.md). While the broker is away rows simply wait in the ledger.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ledger_store.store import LedgerStore
from streams.kafka_publisher import stop_producer

log = logging.getLogger("sportsbook.outbox")

BATCH = 500
IDLE_S = 0.2
RETRY_S = 2.0


class OutboxRelay:
    def __init__(self, store: LedgerStore, bootstrap: str) -> None:
        self._store, self._bootstrap = store, bootstrap
        self.published = 0

    async def run(self) -> None:
        """For ever: publish what is pending; on a broker error wait and try again."""
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id="sportsbook-outbox",
                enable_idempotence=True,
                acks="all",
                request_timeout_ms=10_000,
            )
            try:
                await producer.start()
                await self._relay(producer)
            except (KafkaError, OSError) as error:
                log.warning("outbox relay: broker error; retrying", extra={"error": repr(error)})
                await asyncio.sleep(RETRY_S)
            finally:
                await stop_producer(producer, 10.0)

    async def _relay(self, producer: AIOKafkaProducer) -> None:
        while True:
            events = await self._store.outbox_pending(BATCH)
            if not events:
                await asyncio.sleep(IDLE_S)
                continue
            sent = [
                await producer.send(e.topic, orjson.dumps(e.payload), key=e.key.encode())
                for e in events
            ]
            await asyncio.gather(*sent)  # every one acknowledged before any is marked done
            await self._store.outbox_done([e.event_id for e in events])
            self.published += len(events)
