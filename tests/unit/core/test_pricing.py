"""sportsbook_core.pricing: the book-pricing rule in the module docstring.

1. R = best available back, else last traded, else no price.
2. B = R / (1 + m), m = 5 % by default.
3. B rounded down onto the market's ladder (CLASSIC, 0.01 line ladder or customary
   fractional); below 1.01 → no price.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from sportsbook_core.ladder import LadderType
from sportsbook_core.prices import Price
from sportsbook_core.pricing import (
    DEFAULT_MARGIN,
    ExchangeQuote,
    PricingPolicy,
    book_price,
    reference_odds,
)

D = Decimal
DEFAULT = PricingPolicy()


def test_default_policy() -> None:
    """The rule's defaults: a 5 % margin on the CLASSIC ladder, decimal."""
    assert (
        D("0.05"),
        PricingPolicy(D("0.05"), LadderType.CLASSIC, fractional=False),
    ) == (DEFAULT_MARGIN, DEFAULT)


@pytest.mark.parametrize(
    ("quote", "reference"),
    [
        (ExchangeQuote(best_back=D("2.1"), best_lay=D("2.12"), last_traded=D("2.5")), D("2.1")),
        (ExchangeQuote(best_back=None, best_lay=D("2.12"), last_traded=D("2.5")), D("2.5")),
        (ExchangeQuote(best_back=D("1"), last_traded=D("3")), D("3")),  # 1.00 is no price
        (ExchangeQuote(best_lay=D("2.12")), None),  # the lay side is never the reference
        (ExchangeQuote(), None),
        (ExchangeQuote(best_back=D("1"), last_traded=D("1")), None),
    ],
)
def test_reference_odds(quote: ExchangeQuote, reference: Decimal | None) -> None:
    """Step 1: best back, else last traded, else nothing."""
    assert reference_odds(quote) == reference


@pytest.mark.parametrize(
    ("best_back", "expected"),
    [
        ("2.1", "2"),  # 2.1 / 1.05 = 2 exactly: on the ladder
        ("3", "2.84"),  # 2.857… → 2–3 band, 0.02 ticks
        ("1.5", "1.42"),  # 1.428… → 0.01 ticks
        ("10", "9.4"),  # 9.523… → 6–10 band, 0.2 ticks
        ("4.2", "4"),  # 4 exactly
        ("4.3", "4.0"),  # 4.095… → 4–6 band, 0.1 ticks
        ("21", "20"),  # 20 exactly
        ("1000", "950"),  # 952.38… → 100–1000 band, 10 ticks
        ("1.07", "1.01"),  # 1.019…
    ],
)
def test_book_price_default_margin(best_back: str, expected: str) -> None:
    """Steps 2 and 3: R / 1.05 rounded down onto CLASSIC."""
    quote = ExchangeQuote(best_back=D(best_back), best_lay=D("1000"))
    assert book_price(quote, DEFAULT) == Price(Fraction(expected))


def test_book_price_falls_back_to_last_traded() -> None:
    """Step 1: empty back side → last traded (4.0 / 1.05 = 3.809… → 3.8)."""
    quote = ExchangeQuote(best_back=None, best_lay=D("4.2"), last_traded=D("4.0"))
    assert book_price(quote, DEFAULT) == Price(Fraction("3.8"))


def test_book_price_none_when_nothing() -> None:
    assert book_price(ExchangeQuote(), DEFAULT) is None
    assert book_price(ExchangeQuote(best_lay=D("3")), DEFAULT) is None


@pytest.mark.parametrize("best_back", ["1.06", "1.05", "1.01"])
def test_book_price_none_below_the_ladder(best_back: str) -> None:
    """Step 3: below 1.01 after the margin → no price (1.06 / 1.05 = 1.0095…)."""
    assert book_price(ExchangeQuote(best_back=D(best_back)), DEFAULT) is None


@pytest.mark.parametrize(
    ("best_back", "expected"),
    [("2.03", "2.02"), ("2.02", "2.02"), ("8.61", "8.6"), ("1.01", "1.01"), ("1000", "1000")],
)
def test_book_price_margin_zero_is_the_ladder_rounding(best_back: str, expected: str) -> None:
    """m = 0: the book price is the reference rounded down onto CLASSIC."""
    policy = PricingPolicy(margin=D("0"))
    assert book_price(ExchangeQuote(best_back=D(best_back)), policy) == Price(Fraction(expected))


def test_book_price_other_margin() -> None:
    """m = 10 %: 2.2 / 1.1 = 2."""
    policy = PricingPolicy(margin=D("0.10"))
    assert book_price(ExchangeQuote(best_back=D("2.2")), policy) == Price(Fraction(2))


def test_book_price_line_ladder() -> None:
    """The 0.01 line ladder (Asian handicap / totals): 3 / 1.05 = 2.857… → 2.85."""
    policy = PricingPolicy(ladder=LadderType.LINE_RANGE)
    assert book_price(ExchangeQuote(best_back=D("3")), policy) == Price(Fraction("2.85"))
    zero = PricingPolicy(margin=D("0"), ladder=LadderType.LINE_RANGE)
    assert book_price(ExchangeQuote(best_back=D("2.03")), zero) == Price(Fraction("2.03"))


@pytest.mark.parametrize(
    ("best_back", "wire", "odds"),
    [
        ("3.6", "9/4", Fraction(13, 4)),  # 3.428… → profit 2.428… → 9/4
        ("2.75", "6/4", Fraction(5, 2)),  # 2.619… → profit 1.619… → 6/4, not 13/8
        ("2.1", "1/1", Fraction(2)),  # 2 exactly → evens
        ("1.75", "4/6", Fraction(5, 3)),  # 1.666… = 1 + 2/3 exactly → 4/6
    ],
)
def test_book_price_fractional_policy(best_back: str, wire: str, odds: Fraction) -> None:
    """Step 3 for fractional markets: snap down onto the customary ladder, spelled
    customarily."""
    price = book_price(ExchangeQuote(best_back=D(best_back)), PricingPolicy(fractional=True))
    assert price == Price(odds, fractional=True)
    assert price is not None
    assert price.to_wire() == wire


@pytest.mark.parametrize("best_back", ["1.05", "1.06"])
def test_book_price_fractional_none_below_the_ladder(best_back: str) -> None:
    """1.05 / 1.05 = 1 and 1.06 / 1.05 = 1.0095…: below the lowest rung, 1/100."""
    policy = PricingPolicy(fractional=True)
    assert book_price(ExchangeQuote(best_back=D(best_back)), policy) is None
