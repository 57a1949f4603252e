"""A client's local copy of the markets it streams (what a UI or bot keeps).

Snapshots replace a market entirely (no leftover runners); deltas apply only
when their ``seq`` is newer than what the view holds, so a resumed stream that
repeats a change never rewinds a price (cases B16, B25's kind).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any


@dataclass
class MarketView:
    market: dict[str, Any]
    selections: dict[str, dict[str, Any]] = field(default_factory=dict)
    moves: dict[str, int] = field(default_factory=dict)  # +1 drifted, -1 shortened

    @property
    def seq(self) -> int:
        return int(self.market["seq"])


class BookView:
    def __init__(self) -> None:
        self.markets: dict[str, MarketView] = {}
        self.clk: str | None = None
        self.feed_healthy = True
        self.ignored_stale = 0

    def apply(self, frame: dict[str, Any]) -> list[str]:
        """Fold one odds.stream frame in; returns the marketIds that changed."""
        kind = frame.get("kind")
        self.clk = frame.get("clk", self.clk)
        if kind == "snapshot":
            return [self._snapshot(frame["market"])]
        if kind == "delta":
            return [m["marketId"] for m in frame["markets"] if self._delta(m)]
        if "feedHealthy" in frame:
            self.feed_healthy = bool(frame["feedHealthy"])
        return []

    def _snapshot(self, market: dict[str, Any]) -> str:
        view = MarketView(dict(market))
        view.selections = {s["selectionId"]: dict(s) for s in market["selections"]}
        self.markets[market["marketId"]] = view
        return str(market["marketId"])

    def _delta(self, entry: dict[str, Any]) -> bool:
        view = self.markets.get(entry["marketId"])
        if view is None or entry["seq"] <= view.seq:
            self.ignored_stale += 1
            return False
        changes = entry["changes"]
        for name in ("status", "inPlay", "betDelayMs"):
            if name in changes:
                view.market[name] = changes[name]
        view.moves = {}
        for change in changes.get("selections", []):
            self._selection(view, change)
        view.market["seq"] = entry["seq"]
        return True

    @staticmethod
    def _selection(view: MarketView, change: dict[str, Any]) -> None:
        current = view.selections.setdefault(
            change["selectionId"], {"selectionId": change["selectionId"]}
        )
        if "price" in change:
            old, new = current.get("price"), change["price"]
            if old is not None and new is not None and old != new:
                view.moves[change["selectionId"]] = 1 if _odds(new) > _odds(old) else -1
        current.update({k: v for k, v in change.items() if k != "selectionId"})

    def price(self, market_id: str, selection_id: str) -> str | None:
        view = self.markets.get(market_id)
        if view is None or selection_id not in view.selections:
            return None
        value = view.selections[selection_id].get("price")
        return None if value is None else str(value)


def _odds(text: str) -> Fraction:
    """Exact decimal odds of a wire price ("2.5" or "5/2"), never a float."""
    if "/" in text:
        num, den = text.split("/")
        return 1 + Fraction(int(num), int(den))
    return Fraction(text)
