"""The normalised market change: what every feed adapter publishes on the price bus.

Nothing downstream knows which feed produced it (PROTOCOL.md, Price bus).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sportsbook_core.catalogue import MarketDefinition
from sportsbook_core.prices import Price


@dataclass(frozen=True, slots=True)
class MarketChange:
    """One change to one market, in feed order.

    ``definition`` is the full definition when the market is first seen or
    redefined (status, in-play, delay, runners); ``prices`` maps selectionId to
    the book's price, ``None`` meaning "no price offered". ``image`` replaces the
    market's whole state (Betfair ``img:true`` / SUB_IMAGE). ``relist`` marks a
    replay loop starting a market again, the one way a CLOSED market reopens.
    """

    market_id: str
    published_at_ms: int
    definition: MarketDefinition | None = None
    prices: tuple[tuple[str, Price | None], ...] = field(default_factory=tuple)
    image: bool = False
    relist: bool = False
    feed_clk: str | None = None


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """Feed health as the source reports it (Betfair ``status: 503`` = lagging).

    ``healthy`` False means prices may be behind; subscribers are told, and
    betting on the feed's markets can be refused.
    """

    published_at_ms: int
    healthy: bool
    reason: str | None = None
