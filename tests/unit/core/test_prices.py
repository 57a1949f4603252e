"""sportsbook_core.prices: exact prices and their wire strings (PROTOCOL.md Numbers)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from sportsbook_core.prices import (
    MAX_ODDS,
    MIN_ODDS,
    InvalidPrice,
    Price,
    decimal_to_str,
    fraction_to_decimal,
)


@pytest.mark.parametrize(
    ("text", "odds", "fractional", "wire"),
    [
        ("2.5", Fraction(5, 2), False, "2.5"),
        ("2.50", Fraction(5, 2), False, "2.5"),
        ("1.01", Fraction(101, 100), False, "1.01"),
        ("1000", Fraction(1000), False, "1000"),
        ("1000.0", Fraction(1000), False, "1000"),
        ("1.000001", Fraction(1000001, 1000000), False, "1.000001"),
        ("9999999.999999", Fraction(9999999999999, 1000000), False, "9999999.999999"),
        ("5/2", Fraction(7, 2), True, "5/2"),
        ("1/3", Fraction(4, 3), True, "1/3"),
        ("4/6", Fraction(5, 3), True, "4/6"),
        ("2/3", Fraction(5, 3), True, "4/6"),  # customary spelling (RULES.md §7)
        ("6/4", Fraction(5, 2), True, "6/4"),
        ("3/2", Fraction(5, 2), True, "6/4"),
        ("1/1", Fraction(2), True, "1/1"),
        ("7/3", Fraction(10, 3), True, "7/3"),  # off the ladder: reduced
        ("14/6", Fraction(10, 3), True, "7/3"),
    ],
)
def test_parse_and_wire(text: str, odds: Fraction, fractional: bool, wire: str) -> None:
    """PROTOCOL.md: prices are exact strings, decimal or (fractional markets) a fraction."""
    price = Price.parse(text)
    assert price == Price(odds, fractional)
    assert price.to_wire() == wire
    assert str(price) == wire
    assert Price.parse(wire) == price


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "1",
        "0.5",
        "1e3",
        "",
        "nan",
        "inf",
        "2.5.1",
        "0/1",
        "1.0",
        "0",
        "-2.5",
        "+2.5",
        "2.",
        ".5",
        " 2.5",
        "2.5 ",
        "2.5\n",  # a trailing newline slipped past ``re.match(... $)``
        "5/2\n",
        "2,5",
        "1.1234567",
        "12345678",
        "5/0",
        "5/02",
        "-5/2",
        "5/-2",
        "5 / 2",
        "½",
        "٢.٥",
        "Infinity",
        "NaN",
        "1_000",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidPrice):
        Price.parse(text)


@pytest.mark.parametrize("value", [2.5, 2, None, Decimal("2.5"), b"2.5", Fraction(5, 2)])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidPrice, match="must be a string"):
        Price.parse(value)  # type: ignore[arg-type]


def test_zero_fraction_error_message() -> None:
    with pytest.raises(InvalidPrice, match="above 0/1"):
        Price.parse("0/1")


@pytest.mark.parametrize("odds", [Fraction(1), Fraction(99, 100), Fraction(0), Fraction(-2)])
def test_odds_must_be_above_one(odds: Fraction) -> None:
    with pytest.raises(InvalidPrice, match="above 1"):
        Price(odds)


def test_constructors() -> None:
    assert Price.of(Decimal("2.5")) == Price(Fraction(5, 2))
    assert Price.of(3) == Price(Fraction(3))
    assert Price.of("5/2") == Price(Fraction(7, 2), fractional=True)
    assert Price.from_fraction(5, 2) == Price(Fraction(7, 2), fractional=True)
    assert Price.from_fraction(4, 6).to_wire() == "4/6"


def test_equality_includes_the_wire_form() -> None:
    """A fractional 5/2 and a decimal 3.5 are the same odds but different prices."""
    assert Price.parse("5/2").odds == Price.parse("3.5").odds
    assert Price.parse("5/2") != Price.parse("3.5")
    assert Price.parse("2.5") < Price.parse("2.52")


def test_decimal_property() -> None:
    assert Price.parse("2.5").decimal == Decimal("2.5")
    assert Price.parse("1/3").decimal == Decimal("1.333333333333")
    assert Price(Fraction(21, 11)).decimal == Decimal("1.909090909091")


def test_fraction_to_decimal() -> None:
    assert fraction_to_decimal(Fraction(1, 8)) == Decimal("0.125")
    assert fraction_to_decimal(Fraction(2, 3)) == Decimal("0.666666666667")
    assert fraction_to_decimal(Fraction(2, 3), places=2) == Decimal("0.67")


def test_decimal_to_str() -> None:
    assert decimal_to_str(Decimal("2.50")) == "2.5"
    assert decimal_to_str(Decimal("1E+3")) == "1000"
    assert decimal_to_str(Decimal("1000.000")) == "1000"
    assert decimal_to_str(Decimal("0.0100")) == "0.01"


def test_ladder_limits() -> None:
    """RULES.md §8: the CLASSIC ladder runs 1.01 to 1000."""
    assert (Fraction(101, 100), Fraction(1000)) == (MIN_ODDS, MAX_ODDS)
