"""Shared builders for tests: small markets and changes with exact prices."""

from __future__ import annotations

from datetime import UTC, datetime

from sportsbook_core.catalogue import (
    MarketDefinition,
    MarketStatus,
    SelectionDefinition,
    SelectionStatus,
)
from sportsbook_core.changes import MarketChange
from sportsbook_core.prices import Price

START = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


def market_definition(
    market_id: str = "1.100",
    *,
    event_id: str = "E1",
    selections: tuple[str, ...] = ("11", "12", "13"),
    status: MarketStatus = MarketStatus.OPEN,
    in_play: bool = False,
    bet_delay_ms: int = 0,
    sport: str = "football",
    removed: frozenset[str] = frozenset(),
) -> MarketDefinition:
    return MarketDefinition(
        market_id=market_id,
        event_id=event_id,
        event_name=f"Event {event_id}",
        name="Match Odds",
        market_type="MATCH_ODDS",
        sport=sport,
        start_time=START,
        status=status,
        in_play=in_play,
        bet_delay_ms=bet_delay_ms,
        selections=tuple(
            SelectionDefinition(
                sid,
                f"Runner {sid}",
                status=SelectionStatus.REMOVED if sid in removed else SelectionStatus.ACTIVE,
                sort_priority=i,
            )
            for i, sid in enumerate(selections)
        ),
    )


def prices(**by_selection: str | None) -> tuple[tuple[str, Price | None], ...]:
    """``prices(s11="2.5")`` → (("11", Price 2.5),)."""
    return tuple(
        (key.removeprefix("s"), None if text is None else Price.parse(text))
        for key, text in by_selection.items()
    )


def definition_change(
    definition: MarketDefinition, at_ms: int = 0, **price_texts: str | None
) -> MarketChange:
    return MarketChange(definition.market_id, at_ms, definition, prices(**price_texts))


def price_change(market_id: str, at_ms: int = 0, **price_texts: str | None) -> MarketChange:
    return MarketChange(market_id, at_ms, None, prices(**price_texts))
