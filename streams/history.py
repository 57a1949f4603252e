"""A fixed-size ring of (position, market, seq, resync) for ``resume``.

Preallocated parallel arrays: the memory is taken once at start and never
grows, however long the server runs (a deque of tuples grew ~25 MB first).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator


class ChangeHistory:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._positions = array("q", bytes(8 * capacity))
        self._seqs = array("q", bytes(8 * capacity))
        self._markets = array("i", bytes(4 * capacity))
        self._resync = bytearray(capacity)
        self._market_ids: list[str] = []
        self._market_index: dict[str, int] = {}
        self._next = 0  # total entries ever appended
        self.floor = 0  # every change at a position >= floor is still held

    def __len__(self) -> int:
        return min(self._next, self._capacity)

    def append(self, position: int, market_id: str, seq: int, resync: bool) -> None:
        slot = self._next % self._capacity
        if self._next >= self._capacity:
            self.floor = self._positions[slot] + 1
        index = self._market_index.get(market_id)
        if index is None:
            index = self._market_index[market_id] = len(self._market_ids)
            self._market_ids.append(market_id)
        self._positions[slot] = position
        self._seqs[slot] = seq
        self._markets[slot] = index
        self._resync[slot] = resync
        self._next += 1

    def newest_first(self) -> Iterator[tuple[int, str, int, bool]]:
        for i in range(self._next - 1, self._next - 1 - len(self), -1):
            slot = i % self._capacity
            yield (
                self._positions[slot],
                self._market_ids[self._markets[slot]],
                self._seqs[slot],
                bool(self._resync[slot]),
            )

    def markets_since(self, position: int) -> dict[str, None]:
        """Each market changed at ``position`` or later, once (needs ``floor <= position``)."""
        seen: dict[str, None] = {}
        for i in range(self._next - 1, self._next - 1 - len(self), -1):
            slot = i % self._capacity
            if self._positions[slot] < position:
                break
            seen[self._market_ids[self._markets[slot]]] = None
        return seen
