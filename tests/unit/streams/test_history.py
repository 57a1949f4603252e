"""The resume history ring: what it still holds after wrapping."""

from __future__ import annotations

from streams.history import ChangeHistory


def _filled(capacity: int, entries: list[tuple[int, str]]) -> ChangeHistory:
    history = ChangeHistory(capacity)
    for position, market_id in entries:
        history.append(position, market_id, 1, resync=False)
    return history


def test_markets_since_lists_each_changed_market_once_newest_first() -> None:
    history = _filled(8, [(0, "1.a"), (1, "1.b"), (3, "1.c"), (4, "1.b"), (6, "1.d")])
    assert list(history.markets_since(3)) == ["1.d", "1.b", "1.c"]
    assert list(history.markets_since(7)) == []
    assert list(history.markets_since(0)) == ["1.d", "1.b", "1.c", "1.a"]


def test_floor_moves_past_what_the_ring_dropped() -> None:
    history = _filled(3, [(0, "1.a"), (2, "1.b"), (5, "1.c"), (9, "1.d")])
    assert (len(history), history.floor) == (3, 1)
    assert list(history.markets_since(1)) == ["1.d", "1.c", "1.b"]
    assert [p for p, *_ in history.newest_first()] == [9, 5, 2]
