"""MarketBook: one market's live state, its per-market ``seq`` and its lifecycle.

Lifecycle (STYLE.md 6): OPEN → SUSPENDED ↔ OPEN → CLOSED → SETTLED, one
transition function that rejects illegal moves. ``apply`` folds a normalised
:class:`MarketChange` into a book and returns the visible difference as a
:class:`MarketDelta` carrying the new ``seq`` (one per visible change).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from sportsbook_core.catalogue import (
    MarketDefinition,
    MarketStatus,
    SelectionDefinition,
    SelectionStatus,
)
from sportsbook_core.changes import MarketChange
from sportsbook_core.prices import Price

_LEGAL_MOVES: Mapping[MarketStatus, frozenset[MarketStatus]] = MappingProxyType(
    {
        MarketStatus.OPEN: frozenset({MarketStatus.SUSPENDED, MarketStatus.CLOSED}),
        MarketStatus.SUSPENDED: frozenset({MarketStatus.OPEN, MarketStatus.CLOSED}),
        MarketStatus.CLOSED: frozenset({MarketStatus.SETTLED}),
        MarketStatus.SETTLED: frozenset(),
    }
)


class IllegalTransition(ValueError):
    """A lifecycle move the market may not make (e.g. CLOSED → OPEN)."""


def transition(current: MarketStatus, target: MarketStatus) -> MarketStatus:
    """The market's next status; staying put is always legal."""
    if target is current or target in _LEGAL_MOVES[current]:
        return target
    raise IllegalTransition(f"{current.value} → {target.value}")


@dataclass(frozen=True, slots=True)
class SelectionChange:
    """What changed about one selection. ``price_set`` tells None-price from no change."""

    selection_id: str
    price: Price | None = None
    price_set: bool = False
    status: SelectionStatus | None = None

    def merged_with(self, newer: SelectionChange) -> SelectionChange:
        """Conflation: the newer value of each field wins."""
        return SelectionChange(
            self.selection_id,
            newer.price if newer.price_set else self.price,
            self.price_set or newer.price_set,
            newer.status if newer.status is not None else self.status,
        )


@dataclass(frozen=True, slots=True)
class MarketDelta:
    """The visible difference one change made; ``resync`` asks for a fresh snapshot."""

    market_id: str
    seq: int
    status: MarketStatus | None = None
    in_play: bool | None = None
    bet_delay_ms: int | None = None
    selections: tuple[SelectionChange, ...] = ()
    resync: bool = False

    @property
    def is_empty(self) -> bool:
        return (
            self.status is None
            and self.in_play is None
            and self.bet_delay_ms is None
            and not self.selections
            and not self.resync
        )


@dataclass(frozen=True, slots=True)
class MarketBook:
    """One market's state at ``seq``. Immutable: ``apply`` returns a new book.

    ``material_seq`` is the ``seq`` of the last *material* change: a suspension
    or reopening (any status change), an in-play flip, a runner's status change,
    or a resync/structure change. A bet priced on an older ``seq`` is refused
    MARKET_CHANGED (PROTOCOL.md, Bet request; FIELD_CASES.md B10).
    """

    definition: MarketDefinition
    prices: Mapping[str, Price | None] = field(default_factory=dict)
    seq: int = 0
    updated_at_ms: int = 0
    material_seq: int = 0

    @property
    def market_id(self) -> str:
        return self.definition.market_id

    @property
    def status(self) -> MarketStatus:
        return self.definition.status

    def price_of(self, selection_id: str) -> Price | None:
        return self.prices.get(selection_id)


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """A market's state after one visible change, and the change, as its single writer sequenced it.

    What travels on a distributed price bus: ``book`` alone rebuilds the market
    (so a compacted topic still does), ``delta`` is what subscribers are sent.
    """

    book: MarketBook
    delta: MarketDelta

    @property
    def market_id(self) -> str:
        return self.book.market_id

    @property
    def seq(self) -> int:
        return self.book.seq


@dataclass(frozen=True, slots=True)
class ApplyResult:
    book: MarketBook | None
    delta: MarketDelta | None = None
    rejected: str | None = None


def apply_change(book: MarketBook | None, change: MarketChange) -> ApplyResult:
    """Fold ``change`` into ``book`` (None when the market is new)."""
    if book is None:
        if change.definition is None:
            return ApplyResult(None, rejected=f"{change.market_id}: change before definition")
        fresh = MarketBook(
            change.definition,
            _live_prices(change.definition, change.prices),
            1,
            change.published_at_ms,
            material_seq=1,
        )
        return ApplyResult(fresh, MarketDelta(change.market_id, 1, resync=True))
    definition = book.definition
    if definition.status is MarketStatus.SETTLED and not change.relist:
        # Settlement ended it (possibly a trader's, before the feed closed it): the feed's
        # later prices and statuses are moot, and quietly dropped. Only a relist (a
        # replay loop listing the market again) opens it again.
        return ApplyResult(book)
    resync = change.image or change.relist
    if change.definition is not None:
        try:
            _check_lifecycle(definition.status, change.definition.status, change.relist)
        except IllegalTransition as exc:
            return ApplyResult(book, rejected=f"{change.market_id}: illegal move {exc}")
        resync = resync or _structure_changed(definition, change.definition)
        definition = change.definition
    old_prices = {} if change.image or change.relist else dict(book.prices)
    new_prices = dict(old_prices)
    new_prices.update(change.prices)
    new_prices = _live_prices(definition, tuple(new_prices.items()))
    if resync:
        delta = MarketDelta(book.market_id, book.seq + 1, resync=True)
    else:
        delta = _diff(book, definition, new_prices)
    if delta.is_empty and definition == book.definition:
        return ApplyResult(book)
    seq = book.seq + (0 if delta.is_empty else 1)
    material_seq = seq if _is_material(delta) else book.material_seq
    new_book = MarketBook(
        definition, MappingProxyType(new_prices), seq, change.published_at_ms, material_seq
    )
    return ApplyResult(new_book, None if delta.is_empty else replace(delta, seq=seq))


def _is_material(delta: MarketDelta) -> bool:
    """Suspended/reopened/closed, in-play flipped, a runner's status moved, or a resync."""
    return (
        delta.resync
        or delta.status is not None
        or delta.in_play is not None
        or any(change.status is not None for change in delta.selections)
    )


def _check_lifecycle(current: MarketStatus, target: MarketStatus, relist: bool) -> None:
    if not relist:
        transition(current, target)


def _structure_changed(old: MarketDefinition, new: MarketDefinition) -> bool:
    """Runners added, removed or renamed: a delta cannot say it, a snapshot must."""

    def shape(d: MarketDefinition) -> tuple[tuple[str, str], ...]:
        return tuple((s.selection_id, s.name) for s in d.selections)

    return shape(old) != shape(new) or old.each_way != new.each_way or old.name != new.name


def _live_prices(
    definition: MarketDefinition, prices: tuple[tuple[str, Price | None], ...]
) -> dict[str, Price | None]:
    """Only ACTIVE runners carry a price; the rest are None."""
    given = dict(prices)
    return {
        s.selection_id: given.get(s.selection_id) if s.status is SelectionStatus.ACTIVE else None
        for s in definition.selections
    }


def _diff(
    book: MarketBook, definition: MarketDefinition, new_prices: Mapping[str, Price | None]
) -> MarketDelta:
    old = book.definition
    changes: list[SelectionChange] = []
    old_status = {s.selection_id: s.status for s in old.selections}
    for runner in definition.selections:
        changes.extend(_selection_change(runner, old_status, book.prices, new_prices))
    return MarketDelta(
        book.market_id,
        book.seq,
        status=definition.status if definition.status is not old.status else None,
        in_play=definition.in_play if definition.in_play != old.in_play else None,
        bet_delay_ms=(
            definition.bet_delay_ms if definition.bet_delay_ms != old.bet_delay_ms else None
        ),
        selections=tuple(changes),
    )


def _selection_change(
    runner: SelectionDefinition,
    old_status: Mapping[str, SelectionStatus],
    old_prices: Mapping[str, Price | None],
    new_prices: Mapping[str, Price | None],
) -> list[SelectionChange]:
    sid = runner.selection_id
    status = runner.status if old_status.get(sid) is not runner.status else None
    old_price, new_price = old_prices.get(sid), new_prices.get(sid)
    price_set = old_price != new_price
    if status is None and not price_set:
        return []
    return [SelectionChange(sid, new_price, price_set, status)]


def full_delta(book: MarketBook) -> MarketDelta:
    """The whole visible state of ``book`` as one delta at its ``seq``.

    Conflation for a subscriber further behind than the recent-delta log reaches:
    every field at its newest value is exactly what merging the missed deltas
    would give, provided the market's structure has not changed since (no resync).
    """
    definition = book.definition
    return MarketDelta(
        book.market_id,
        book.seq,
        definition.status,
        definition.in_play,
        definition.bet_delay_ms,
        tuple(
            SelectionChange(s.selection_id, book.prices.get(s.selection_id), True, s.status)
            for s in definition.selections
        ),
    )


def merge_deltas(deltas: list[MarketDelta]) -> MarketDelta:
    """Conflate consecutive deltas of one market: newest value of every field wins.

    The result carries the last ``seq``; any ``resync`` makes the result a resync.
    """
    if not deltas:
        raise ValueError("nothing to merge")
    first = deltas[0]
    status, in_play, delay = first.status, first.in_play, first.bet_delay_ms
    selections: dict[str, SelectionChange] = {s.selection_id: s for s in first.selections}
    resync = first.resync
    for delta in deltas[1:]:
        status = delta.status if delta.status is not None else status
        in_play = delta.in_play if delta.in_play is not None else in_play
        delay = delta.bet_delay_ms if delta.bet_delay_ms is not None else delay
        resync = resync or delta.resync
        for change in delta.selections:
            known = selections.get(change.selection_id)
            selections[change.selection_id] = change if known is None else known.merged_with(change)
    return MarketDelta(
        first.market_id, deltas[-1].seq, status, in_play, delay, tuple(selections.values()), resync
    )
