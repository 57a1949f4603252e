"""sportsbook_core.returns: exact product, rounded down once (PROTOCOL.md Numbers)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sportsbook_core.returns import potential_return


@pytest.mark.parametrize(
    ("stake", "odds", "expected"),
    [
        (1000, Fraction(5, 2), 2500),
        (1000, Fraction(21, 11), 1909),  # 1909.09… → down
        (300, Fraction(4, 3), 400),  # exact: no 399 from a pre-rounded 1.33
        (1, Fraction(199, 100), 1),  # 1.99 → down, never up
        (999, Fraction(2), 1998),
        (0, Fraction(7, 2), 0),
        (1000, Fraction(1), 1000),  # a void leg: odds 1.00
        (1000, Fraction(1, 2), 500),  # a half-lost factor
        (1000, Fraction(0), 0),
        (3, Fraction(1, 3), 1),
        (10**12, Fraction(1000), 10**15),
    ],
)
def test_exact_product_rounded_down_once(stake: int, odds: Fraction, expected: int) -> None:
    assert potential_return(stake, odds) == expected


@given(
    stake=st.integers(min_value=0, max_value=10**12),
    odds=st.fractions(min_value=0, max_value=10**6, max_denominator=10**6),
)
def test_is_the_floor_of_the_exact_product(stake: int, odds: Fraction) -> None:
    result = potential_return(stake, odds)
    assert result <= stake * odds < result + 1


@pytest.mark.parametrize("odds", [2.5, Decimal("2.5"), 2, "2.5"])
def test_odds_must_be_an_exact_fraction(odds: object) -> None:
    with pytest.raises(TypeError, match="exact Fraction"):
        potential_return(1000, odds)  # type: ignore[arg-type]


@pytest.mark.parametrize("stake", [10.0, Decimal("10"), True, "1000"])
def test_stake_must_be_int_minor_units(stake: object) -> None:
    with pytest.raises(TypeError, match="minor units"):
        potential_return(stake, Fraction(2))  # type: ignore[arg-type]


def test_negative_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="stake must not be negative"):
        potential_return(-1, Fraction(2))
    with pytest.raises(ValueError, match="odds must not be negative"):
        potential_return(1, Fraction(-2))
