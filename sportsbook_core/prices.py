"""Exact prices.

A price is decimal odds held as an exact rational. Markets priced fractionally
(UK racing) keep the fraction as the customer saw it (``5/2``); everything else is
a decimal string (``"2.5"``). Nothing here is ever a float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

# Used with fullmatch: ``$`` also matches before a trailing newline.
_DECIMAL_RE = re.compile(r"[0-9]{1,7}(\.[0-9]{1,6})?")
_FRACTION_RE = re.compile(r"([0-9]{1,7})/([1-9][0-9]{0,6})")

MIN_ODDS = Fraction(101, 100)
MAX_ODDS = Fraction(1000)


class InvalidPrice(ValueError):
    """A price string or value that is not valid odds."""


@dataclass(frozen=True, slots=True, order=True)
class Price:
    """Decimal odds as an exact rational; ``fractional`` keeps the wire form."""

    odds: Fraction
    fractional: bool = False

    def __post_init__(self) -> None:
        if self.odds <= 1:
            raise InvalidPrice(f"odds must be above 1, got {self.odds}")

    @classmethod
    def parse(cls, text: str) -> Price:
        """Read a wire price: ``"2.5"``, ``"1000"`` or a fraction ``"5/2"``."""
        if not isinstance(text, str):
            raise InvalidPrice(f"price must be a string, got {type(text).__name__}")
        match = _FRACTION_RE.fullmatch(text)
        if match:
            num, den = int(match.group(1)), int(match.group(2))
            if num == 0:
                raise InvalidPrice(f"fractional price must be above 0/1: {text!r}")
            return cls(1 + Fraction(num, den), fractional=True)
        if not _DECIMAL_RE.fullmatch(text):
            raise InvalidPrice(f"not a decimal or fractional price: {text!r}")
        return cls(Fraction(Decimal(text)))

    @classmethod
    def of(cls, value: Decimal | int | str) -> Price:
        """Decimal odds from an exact value (a Decimal, an int or a decimal string)."""
        if isinstance(value, str):
            return cls.parse(value)
        return cls(Fraction(value))

    @classmethod
    def from_fraction(cls, numerator: int, denominator: int) -> Price:
        """Fractional odds ``numerator/denominator`` (5/2 is decimal 3.5)."""
        return cls(1 + Fraction(numerator, denominator), fractional=True)

    @property
    def decimal(self) -> Decimal:
        """Exact decimal odds when they terminate; else 12 significant places."""
        return fraction_to_decimal(self.odds)

    def to_wire(self) -> str:
        """The exact wire string: ``"5/2"`` for fractional, ``"3.5"`` otherwise.

        Decimal odds that do not terminate (21/11) go out as their fraction, so
        the wire text is always exact.
        """
        if self.fractional or not _terminates(self.odds):
            # Lazy: fractional_ladder imports Price, so a top-level import would be a cycle.
            from sportsbook_core.fractional_ladder import customary_text  # noqa: PLC0415

            return customary_text(self.odds - 1)
        return decimal_to_str(self.decimal)

    def __str__(self) -> str:
        return self.to_wire()


def _terminates(value: Fraction) -> bool:
    den = value.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    return den == 1


def fraction_to_decimal(value: Fraction, places: int = 12) -> Decimal:
    """An exact Decimal when ``value`` terminates in base 10, else rounded to ``places``."""
    if _terminates(value):
        return Decimal(value.numerator) / Decimal(value.denominator)
    quantum = Decimal(1).scaleb(-places)
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(quantum)


def decimal_to_str(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros: 2.50 → "2.5", 1E+3 → "1000"."""
    text = format(value.normalize(), "f")
    return text
