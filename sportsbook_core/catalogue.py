"""Catalogue types: events, markets, selections and their lifecycles' states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from fractions import Fraction

from sportsbook_core.ladder import LadderType


class MarketStatus(Enum):
    OPEN = "OPEN"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"
    SETTLED = "SETTLED"


class SelectionStatus(Enum):
    ACTIVE = "ACTIVE"
    REMOVED = "REMOVED"
    WINNER = "WINNER"
    LOSER = "LOSER"
    PLACED = "PLACED"
    VOID = "VOID"


@dataclass(frozen=True, slots=True)
class EachWayTerms:
    """Place terms: ``places`` paid at ``fraction`` of the win odds (RULES.md §2)."""

    places: int
    fraction: Fraction

    def to_wire(self) -> dict[str, object]:
        return {
            "places": self.places,
            "fraction": f"{self.fraction.numerator}/{self.fraction.denominator}",
        }


@dataclass(frozen=True, slots=True)
class SelectionDefinition:
    """A runner. ``selection_id`` is unique in its market: ``"<id>"`` or ``"<id>@<hc>"``."""

    selection_id: str
    name: str
    handicap: Decimal | None = None
    status: SelectionStatus = SelectionStatus.ACTIVE
    sort_priority: int = 0
    adjustment_factor: Decimal | None = None
    removal_date: datetime | None = None


def selection_key(runner_id: int | str, handicap: Decimal | None) -> str:
    """The wire selectionId for a Betfair runner key (id, hc)."""
    if handicap is None:
        return str(runner_id)
    text = format(handicap.normalize(), "f")
    return f"{runner_id}@{text}"


@dataclass(frozen=True, slots=True)
class MarketDefinition:
    """Everything about a market except its prices."""

    market_id: str
    event_id: str
    event_name: str
    name: str
    market_type: str
    sport: str
    start_time: datetime
    status: MarketStatus
    in_play: bool
    bet_delay_ms: int
    selections: tuple[SelectionDefinition, ...]
    competition: str | None = None
    country: str | None = None
    each_way: EachWayTerms | None = None
    number_of_winners: int | None = None
    ladder: LadderType = LadderType.CLASSIC
    fractional: bool = False
    version: int = 0

    def selection(self, selection_id: str) -> SelectionDefinition | None:
        for runner in self.selections:
            if runner.selection_id == selection_id:
                return runner
        return None
