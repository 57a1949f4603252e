"""FIELD_CASES.md B07 — settlement (odds conversion / rounding).

The American-to-decimal converter returned the profit multiple without the +1 for the
returned stake (+150 → 1.50, −200 → 0.50) and rounded to 2 dp on top. Stake 10 (1000
minor units) throughout unless the case says otherwise; returns are the exact product,
rounded down to the minor unit once (PROTOCOL.md Numbers, RULES.md §7).
"""

from __future__ import annotations

from fractions import Fraction

from sportsbook_core.odds_formats import OddsFormat, display, parse_odds
from sportsbook_core.prices import Price
from sportsbook_core.returns import potential_return

STAKE_10 = 1000  # minor units


def test_b07_plus_150_is_decimal_2_50_return_25_00() -> None:
    price = parse_odds("+150", OddsFormat.AMERICAN)
    assert price.odds == Fraction(5, 2)  # not 1.50: the stake comes back too
    assert display(price, OddsFormat.DECIMAL) == "2.50"
    assert potential_return(STAKE_10, price.odds) == 2500


def test_b07_minus_200_is_decimal_1_50_return_15_00() -> None:
    price = parse_odds("-200", OddsFormat.AMERICAN)
    assert price.odds == Fraction(3, 2)  # not 0.50
    assert display(price, OddsFormat.DECIMAL) == "1.50"
    assert potential_return(STAKE_10, price.odds) == 1500


def test_b07_minus_110_is_exact_1_9090_return_19_09() -> None:
    """1 + 100/110 = 21/11 = 1.9090…; 1000 × 21/11 = 1909.09… → 1909 (down, once)."""
    price = parse_odds("-110", OddsFormat.AMERICAN)
    assert price.odds == Fraction(21, 11)
    assert display(price, OddsFormat.DECIMAL) == "1.91"  # display only, never the maths
    assert potential_return(STAKE_10, price.odds) == 1909
    # The bug's way: odds rounded to 1.91 first would have paid 1910.
    assert potential_return(STAKE_10, Fraction(191, 100)) == 1910


def test_b07_fractional_5_2_is_decimal_3_50() -> None:
    price = parse_odds("5/2", OddsFormat.FRACTIONAL)
    assert price == Price(Fraction(7, 2), fractional=True)
    assert display(price, OddsFormat.DECIMAL) == "3.50"
    assert potential_return(STAKE_10, price.odds) == 3500


def test_b07_one_third_stake_3_returns_4_00_not_3_99() -> None:
    """1/3 → 4/3 exactly; 300 × 4/3 = 400. Rounding 1.333… to 1.33 first gives 399."""
    price = parse_odds("1/3", OddsFormat.FRACTIONAL)
    assert price.odds == Fraction(4, 3)
    assert potential_return(300, price.odds) == 400
    assert potential_return(300, Fraction(133, 100)) == 399  # the wrong result, for contrast


def test_b07_decimal_1_91_displays_as_american_minus_110() -> None:
    """−100/0.91 = −109.89… → nearest integer −110 (not "-109.89", not "-109")."""
    assert display(Price.parse("1.91"), OddsFormat.AMERICAN) == "-110"


def test_b07_decimal_2_10_displays_as_american_plus_110() -> None:
    assert display(Price.parse("2.10"), OddsFormat.AMERICAN) == "+110"
