"""An idempotent Kafka producer that never stays broken (FIELD_CASES B25).

After a broker outage aiokafka's idempotent producer can fail every send
with ``OutOfOrderSequenceNumber`` until it is restarted, and a publisher that
only awaits a send's future when its buffer is full does not even notice.
Here an acker task awaits every record's acknowledgement in order; the first
failure closes the producer, makes a new one (retrying while the broker is
away) and re-sends everything not yet acknowledged, in order. A re-sent record
that had in fact been written is a duplicate its readers drop by ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

log = logging.getLogger("sportsbook.kafka")


@dataclass(slots=True)
class _Unacked:
    key: bytes
    value: bytes
    future: asyncio.Future[Any] | None = None


async def stop_producer(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Stop ``producer``; if it cannot flush in time (broker gone), close its sockets anyway.

    aiokafka's ``stop()`` closes its connections only after the flush, and a
    timed-out ``stop()`` cannot be called again, so without this they leak.
    """
    try:
        await asyncio.wait_for(producer.stop(), timeout_s)
    except Exception:
        # End its sender as stop() would have: that fails the batches it still
        # holds (their futures complete) and it stops reconnecting on its own.
        sender_task = getattr(getattr(producer, "_sender", None), "sender_task", None)
        if sender_task is not None and not sender_task.done():
            sender_task.cancel()
            await asyncio.wait([sender_task], timeout=2.0)
        with contextlib.suppress(Exception):
            await producer.client.close()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """The acker reads each outcome; this stops asyncio logging superseded ones as lost."""
    if not future.cancelled():
        future.exception()


class ReliableProducer:
    """Sends to one partition of one topic; ``send`` waits while ``max_in_flight`` are unacked."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        client_id: str,
        max_in_flight: int,
        request_timeout_ms: int,
    ) -> None:
        self._bootstrap, self._topic, self._client_id = bootstrap, topic, client_id
        self._max_in_flight = max_in_flight
        self._request_timeout_ms = request_timeout_ms
        self._ack_timeout_s = max(3 * request_timeout_ms / 1000, 5.0)
        self.producer: AIOKafkaProducer | None = None
        self._unacked: deque[_Unacked] = deque()
        self._lock = asyncio.Lock()  # one producer replacement or send at a time
        self._tick = asyncio.Event()
        self._acker: asyncio.Task[None] | None = None
        self.restarts = 0
        self.acknowledged = 0

    async def start(self) -> None:
        self.producer = await self._new_producer()
        self._acker = asyncio.create_task(self._ack_loop(), name="kafka-acker")

    @property
    def unacknowledged(self) -> int:
        return len(self._unacked)

    async def send(self, key: bytes, value: bytes) -> None:
        await self._until(lambda: len(self._unacked) < self._max_in_flight)
        entry = _Unacked(key, value)
        self._unacked.append(entry)
        try:
            async with self._lock:
                try:
                    if entry.future is None:  # else a recovery while we waited re-sent it
                        entry.future = await self._send_now(entry)
                except KafkaError as error:
                    await self._recover(error)
        except asyncio.CancelledError:
            # Never handed to a producer: forget it, or the acker (which waits for the
            # oldest entry's send) and so flush() would wait for ever.
            if entry.future is None:
                with contextlib.suppress(ValueError):
                    self._unacked.remove(entry)
                self._notify()
            raise
        self._notify()

    async def flush(self) -> None:
        """Until every record sent so far is acknowledged."""
        await self._until(lambda: not self._unacked)

    async def close(self) -> None:
        if self._acker is not None:
            self._acker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acker
        producer, self.producer = self.producer, None
        if producer is not None:
            await stop_producer(producer, 10.0)

    # ---- waiting ---------------------------------------------------------------
    def _notify(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    async def _until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._tick.wait()

    # ---- acknowledgements --------------------------------------------------------
    async def _ack_loop(self) -> None:
        while True:
            try:
                await self._ack_oldest()
            except Exception:  # the acker must outlive any surprise, or flush() hangs
                log.exception("acker failed; retrying")
                await asyncio.sleep(1.0)

    async def _ack_oldest(self) -> None:
        await self._until(lambda: bool(self._unacked) and self._unacked[0].future is not None)
        entry = self._unacked[0]
        future = entry.future
        assert future is not None
        # Never cancels the send itself. A send with no outcome long after the
        # producer's own timeouts is treated as failed and re-sent (a duplicate
        # is dropped by every reader's seq), so no lost future can stall flush().
        done, _ = await asyncio.wait([future], timeout=self._ack_timeout_s)
        if not done:
            error: BaseException | None = KafkaTimeoutError(
                f"no acknowledgement within {self._ack_timeout_s:g}s"
            )
        else:
            error = None if future.cancelled() else future.exception()
        if done and error is None and not future.cancelled():
            if self._unacked and self._unacked[0] is entry:
                self._unacked.popleft()
                self.acknowledged += 1
                self._notify()
            return
        async with self._lock:
            if entry.future is future:  # not already re-sent by another recovery
                await self._recover(error or KafkaError("send cancelled"))
        self._notify()

    # ---- recovery (under the lock) ----------------------------------------------------
    async def _recover(self, error: BaseException) -> None:
        while True:
            log.warning("producer failed; recreating it", extra={"error": repr(error)})
            await self._replace_producer()
            try:
                await self._resend_unacked()
            except KafkaError as again:
                error = again
                continue
            return

    async def _replace_producer(self) -> None:
        old, self.producer = self.producer, None
        if old is not None:
            await stop_producer(old, 5.0)
        delay = 0.5
        while self.producer is None:
            try:
                self.producer = await self._new_producer()
            except (KafkaError, OSError) as error:
                log.warning("broker still unreachable", extra={"error": repr(error)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.restarts += 1

    async def _resend_unacked(self) -> None:
        pending = list(self._unacked)
        for entry in pending:
            entry.future = None
        for entry in pending:
            entry.future = await self._send_now(entry)
        log.info("producer recreated", extra={"resent": len(pending)})

    async def _send_now(self, entry: _Unacked) -> asyncio.Future[Any]:
        if self.producer is None:
            raise KafkaError("no producer")
        future: asyncio.Future[Any] = await self.producer.send(
            self._topic, entry.value, key=entry.key, partition=0
        )
        future.add_done_callback(_retrieve)
        return future

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            request_timeout_ms=self._request_timeout_ms,
        )
        try:  # bounded: an idempotent producer's start() can wait for ever for its id
            await asyncio.wait_for(producer.start(), self._ack_timeout_s)
        except BaseException:
            await stop_producer(producer, 5.0)
            raise
        return producer
