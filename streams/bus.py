"""The price bus: feed adapters publish, servers consume, ordered per market.

``PriceBus`` is the seam (ARCHITECTURE.md): an in-process implementation for
the embedded default, a Kafka one for scale-out. Both are bounded: a publisher
waits (backpressure towards the feed) while the slowest reader is a whole
buffer behind. Readers get batches, so the hub can apply many changes and
then flush each subscriber once.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from sportsbook_core.changes import FeedStatus, MarketChange
from sportsbook_core.market_book import BookUpdate

# A feed publishes MarketChanges; a distributed bus carries them already
# sequenced (BookUpdate) so every server agrees on each market's seq.
BusItem = MarketChange | BookUpdate | FeedStatus


@dataclass(frozen=True, slots=True)
class BusRecord:
    """One item at its bus ``position`` (strictly increasing per bus)."""

    position: int
    item: BusItem

    @property
    def key(self) -> str:
        return "" if isinstance(self.item, FeedStatus) else self.item.market_id


class PriceBus(Protocol):
    """Where normalised market changes travel from feeds to servers."""

    @property
    def epoch(self) -> str:
        """Identifies this bus's position space; a clk from another epoch is foreign."""

    @property
    def position(self) -> int:
        """The position the next published record will get."""

    async def publish(self, item: BusItem) -> None:
        """Append ``item``; waits while the buffer is full."""

    def read(self, from_position: int = 0, max_batch: int = 512) -> AsyncIterator[list[BusRecord]]:
        """Batches of records from ``from_position`` on, in order, for ever."""

    async def close(self) -> None:
        """Stop readers and release resources."""


class BusClosed(Exception):
    """The bus was closed while publishing or reading."""


class InProcessPriceBus:
    """A bounded in-memory log. One process, many readers, total order."""

    def __init__(self, capacity: int = 8192) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._log: deque[BusRecord] = deque()
        self._next = 0
        self._readers: dict[int, int] = {}  # reader id → next position it needs
        self._changed = asyncio.Condition()
        self._closed = False
        self._epoch = secrets.token_hex(4)

    @property
    def epoch(self) -> str:
        return self._epoch

    @property
    def position(self) -> int:
        return self._next

    @property
    def buffered(self) -> int:
        return len(self._log)

    async def publish(self, item: BusItem) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._closed or self._has_room())
            if self._closed:
                raise BusClosed
            self._log.append(BusRecord(self._next, item))
            self._next += 1
            self._trim()
            self._changed.notify_all()

    def _has_room(self) -> bool:
        slowest = min(self._readers.values(), default=self._next)
        return self._next - slowest < self._capacity

    def _trim(self) -> None:
        """Drop records every reader has passed, keeping at most ``capacity``."""
        slowest = min(self._readers.values(), default=self._next)
        while self._log and (self._log[0].position < slowest or len(self._log) > self._capacity):
            self._log.popleft()

    async def read(
        self, from_position: int = 0, max_batch: int = 512
    ) -> AsyncIterator[list[BusRecord]]:
        reader = id(object())
        start = max(from_position, self._log[0].position if self._log else self._next)
        self._readers[reader] = start
        try:
            while True:
                async with self._changed:
                    await self._changed.wait_for(
                        lambda: self._closed or self._next > self._readers[reader]
                    )
                    if self._closed:
                        return
                    batch = self._take(self._readers[reader], max_batch)
                    self._readers[reader] = batch[-1].position + 1
                    self._trim()
                    self._changed.notify_all()
                yield batch
        finally:
            self._readers.pop(reader, None)

    def _take(self, position: int, max_batch: int) -> list[BusRecord]:
        first = self._log[0].position
        offset = max(0, position - first)
        end = min(len(self._log), offset + max_batch)
        return [self._log[i] for i in range(offset, end)]

    async def close(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()
