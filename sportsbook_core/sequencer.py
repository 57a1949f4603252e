"""MarketSequencer: the single writer that gives each market's changes their ``seq``.

On a distributed bus every server process must agree on every market's
``seq``, so it is assigned once, before the bus, by the feed's publisher, with
the same :func:`apply_change` the embedded hub uses. A publisher that starts
again adopts the books already on the bus and continues their ``seq``; a
market it re-announces is a relist (a new run of a recording).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sportsbook_core.changes import MarketChange
from sportsbook_core.market_book import BookUpdate, MarketBook, apply_change


@dataclass(frozen=True, slots=True)
class Rejected:
    """A change the market may not take (before its definition, an illegal move)."""

    reason: str


class MarketSequencer:
    def __init__(self) -> None:
        self._books: dict[str, MarketBook] = {}
        self._adopted: set[str] = set()  # known from the bus, not yet touched by this run

    def __len__(self) -> int:
        return len(self._books)

    def book(self, market_id: str) -> MarketBook | None:
        return self._books.get(market_id)

    def adopt(self, book: MarketBook) -> None:
        """Take a book read back from the bus; the newest ``seq`` wins."""
        known = self._books.get(book.market_id)
        if known is None or book.seq > known.seq:
            self._books[book.market_id] = book
            self._adopted.add(book.market_id)

    def sequence(self, change: MarketChange) -> BookUpdate | Rejected | None:
        """The update ``change`` makes, or None when it changes nothing visible."""
        market_id = change.market_id
        if market_id in self._adopted and change.definition is not None:
            change = replace(change, relist=True, image=True)
        self._adopted.discard(market_id)
        result = apply_change(self._books.get(market_id), change)
        if result.rejected is not None:
            return Rejected(result.rejected)
        if result.book is None or result.delta is None:
            return None
        self._books[market_id] = result.book
        return BookUpdate(result.book, result.delta)
