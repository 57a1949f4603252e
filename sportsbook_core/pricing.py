"""Book pricing: one fixed-odds price per selection from exchange data.

The rule (documented in docs/PRICING.md):

1. Reference odds R = the best available *back* price on the exchange; if the
   back side is empty, the last traded price; if neither, no price.
2. The margin m (default 5 %) is put on the implied probability:
   book odds B = R / (1 + m), so 1/B = (1/R)·(1 + m).
3. B is rounded **down** onto the market's ladder (in the book's favour):
   the Betfair CLASSIC or 0.01 line ladder for decimal markets, the customary
   fractional ladder for fractionally priced ones. Below 1.01 → no price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from sportsbook_core import fractional_ladder
from sportsbook_core.ladder import LadderType, ladder_for
from sportsbook_core.prices import Price

DEFAULT_MARGIN = Decimal("0.05")


@dataclass(frozen=True, slots=True)
class ExchangeQuote:
    """What the exchange shows for one runner; exact decimals (never floats)."""

    best_back: Decimal | None = None
    best_lay: Decimal | None = None
    last_traded: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PricingPolicy:
    margin: Decimal = DEFAULT_MARGIN
    ladder: LadderType = LadderType.CLASSIC
    fractional: bool = False


def reference_odds(quote: ExchangeQuote) -> Decimal | None:
    """Best available back, else last traded (step 1)."""
    if quote.best_back is not None and quote.best_back > 1:
        return quote.best_back
    if quote.last_traded is not None and quote.last_traded > 1:
        return quote.last_traded
    return None


def book_price(quote: ExchangeQuote, policy: PricingPolicy) -> Price | None:
    """The book's price for one selection, or None when none can be offered."""
    reference = reference_odds(quote)
    if reference is None:
        return None
    target = Fraction(reference) / (1 + Fraction(policy.margin))
    if policy.fractional:
        return fractional_ladder.snap_down(target)
    return ladder_for(policy.ladder).round_down(target)
