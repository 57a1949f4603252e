"""Odds formats (RULES.md §7): exact conversions, parsing and display text.

Decimal odds ``D`` are the one internal truth: an exact :class:`~fractions.Fraction`
(or a :class:`~sportsbook_core.prices.Price` holding one). Every other format is a
view of ``D``:

* fractional ``a/b``: ``D = 1 + a/b``;
* American: ``+100·(D−1)`` when ``D ≥ 2``, ``−100/(D−1)`` when ``D < 2``;
* Hong Kong: ``D − 1``;
* Indonesian: ``D − 1`` when ``D ≥ 2``, ``−1/(D−1)`` when ``D < 2`` (American ÷ 100);
* Malay: ``D − 1`` when ``D ≤ 2``, ``−1/(D−1)`` when ``D > 2``.

Three layers, kept apart:

1. **Exact conversions** (``decimal_to_*`` / ``*_to_decimal``, :func:`from_decimal`,
   :func:`to_decimal`): Fraction in, Fraction out, no rounding, so
   ``american_to_decimal(decimal_to_american(d)) == d`` for every ``d > 1``.
2. **Parsing** (:func:`parse_odds`): text in a format → an exact :class:`Price`.
3. **Display** (:func:`display` and ``display_*``): the wire/display string sent
   beside the exact price when a client asks for an ``oddsFormat`` (PROTOCOL.md).
   Display rounding is for reading only; it never feeds a stake or a return.

Nothing here is ever a float.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from enum import Enum
from fractions import Fraction

from sportsbook_core.fractional_ladder import RUNGS, customary_text, snap_nearest
from sportsbook_core.prices import InvalidPrice, Price

__all__ = [
    "OddsFormat",
    "american_to_decimal",
    "decimal_to_american",
    "decimal_to_fractional",
    "decimal_to_hongkong",
    "decimal_to_indonesian",
    "decimal_to_malay",
    "display",
    "display_american",
    "display_decimal",
    "display_fractional",
    "display_hongkong",
    "display_indonesian",
    "display_malay",
    "fractional_to_decimal",
    "from_decimal",
    "hongkong_to_decimal",
    "implied_probability",
    "indonesian_to_decimal",
    "malay_to_decimal",
    "overround",
    "parse_odds",
    "to_decimal",
]


class OddsFormat(Enum):
    """A display format; the value is the wire name of PROTOCOL.md ``oddsFormat``."""

    DECIMAL = "decimal"
    FRACTIONAL = "fractional"
    AMERICAN = "american"
    HONGKONG = "hongkong"
    MALAY = "malay"
    INDONESIAN = "indonesian"

    @classmethod
    def from_wire(cls, name: object) -> OddsFormat:
        """The format named ``name`` (exact lower-case wire name), else ValueError."""
        for member in cls:
            if member.value == name:
                return member
        names = ", ".join(member.value for member in cls)
        raise ValueError(f"unknown oddsFormat {name!r}; expected one of: {names}")


_ONE = Fraction(1)
_TWO = Fraction(2)
_HUNDRED = Fraction(100)

# ---------------------------------------------------------------------------
# Exact conversions
# ---------------------------------------------------------------------------


def _odds_of(odds: Price | Fraction) -> Fraction:
    """Decimal odds as a Fraction above 1; anything else (a float above all) is refused."""
    value = odds.odds if isinstance(odds, Price) else odds
    if not isinstance(value, Fraction):
        raise InvalidPrice(f"decimal odds must be a Fraction or Price, got {type(value).__name__}")
    if value <= 1:
        raise InvalidPrice(f"decimal odds must be above 1, got {value}")
    return value


def _exact(value: Fraction | int, what: str) -> Fraction:
    """An exact format value: a Fraction or an int (never a bool or a float)."""
    if isinstance(value, bool) or not isinstance(value, Fraction | int):
        raise InvalidPrice(f"{what} odds must be a Fraction or int, got {type(value).__name__}")
    return Fraction(value)


def decimal_to_fractional(odds: Price | Fraction) -> Fraction:
    """The fractional odds ``a/b = D − 1`` (the exact value; spelling is display's job)."""
    return _odds_of(odds) - 1


def fractional_to_decimal(profit: Fraction | int) -> Fraction:
    """``D = 1 + a/b``; ``a/b`` must be above 0."""
    value = _exact(profit, "fractional")
    if value <= 0:
        raise InvalidPrice(f"fractional odds must be above 0/1, got {value}")
    return 1 + value


def decimal_to_american(odds: Price | Fraction) -> Fraction:
    """``+100·(D−1)`` for ``D ≥ 2``, ``−100/(D−1)`` for ``D < 2`` (exact, unrounded)."""
    value = _odds_of(odds)
    if value >= _TWO:
        return _HUNDRED * (value - 1)
    return -_HUNDRED / (value - 1)


def american_to_decimal(american: Fraction | int) -> Fraction:
    """``+A`` → ``1 + A/100``; ``−A`` → ``1 + 100/A``. ``A`` must be ≥ +100 or ≤ −100."""
    value = _exact(american, "American")
    if value >= _HUNDRED:
        return 1 + value / _HUNDRED
    if value <= -_HUNDRED:
        return 1 + _HUNDRED / -value
    raise InvalidPrice(f"American odds must be ≥ +100 or ≤ -100, got {value}")


def decimal_to_hongkong(odds: Price | Fraction) -> Fraction:
    """``HK = D − 1``."""
    return _odds_of(odds) - 1


def hongkong_to_decimal(hongkong: Fraction | int) -> Fraction:
    """``D = HK + 1``; ``HK`` must be above 0."""
    value = _exact(hongkong, "Hong Kong")
    if value <= 0:
        raise InvalidPrice(f"Hong Kong odds must be above 0, got {value}")
    return 1 + value


def decimal_to_indonesian(odds: Price | Fraction) -> Fraction:
    """``D − 1`` for ``D ≥ 2``, ``−1/(D−1)`` for ``D < 2`` (American ÷ 100)."""
    value = _odds_of(odds)
    if value >= _TWO:
        return value - 1
    return -_ONE / (value - 1)


def indonesian_to_decimal(indonesian: Fraction | int) -> Fraction:
    """``I ≥ 1`` → ``1 + I``; ``I ≤ −1`` → ``1 + 1/|I|``. Between −1 and 1 is invalid."""
    value = _exact(indonesian, "Indonesian")
    if value >= 1:
        return 1 + value
    if value <= -1:
        return 1 + _ONE / -value
    raise InvalidPrice(f"Indonesian odds must be ≥ 1 or ≤ -1, got {value}")


def decimal_to_malay(odds: Price | Fraction) -> Fraction:
    """``D − 1`` for ``D ≤ 2`` (in (0, 1]), ``−1/(D−1)`` for ``D > 2`` (in [−1, 0))."""
    value = _odds_of(odds)
    if value <= _TWO:
        return value - 1
    return -_ONE / (value - 1)


def malay_to_decimal(malay: Fraction | int) -> Fraction:
    """``0 < M ≤ 1`` → ``1 + M``; ``−1 ≤ M < 0`` → ``1 + 1/|M|``. Anything else is invalid."""
    value = _exact(malay, "Malay")
    if 0 < value <= 1:
        return 1 + value
    if -1 <= value < 0:
        return 1 + _ONE / -value
    raise InvalidPrice(f"Malay odds must be in [-1, 0) or (0, 1], got {value}")


def from_decimal(odds: Price | Fraction, fmt: OddsFormat) -> Fraction:
    """Decimal odds expressed exactly in ``fmt`` (fractional: the value ``a/b``)."""
    match fmt:
        case OddsFormat.DECIMAL:
            return _odds_of(odds)
        case OddsFormat.FRACTIONAL:
            return decimal_to_fractional(odds)
        case OddsFormat.AMERICAN:
            return decimal_to_american(odds)
        case OddsFormat.HONGKONG:
            return decimal_to_hongkong(odds)
        case OddsFormat.MALAY:
            return decimal_to_malay(odds)
        case OddsFormat.INDONESIAN:
            return decimal_to_indonesian(odds)


def to_decimal(value: Fraction | int, fmt: OddsFormat) -> Fraction:
    """The exact decimal odds of ``value`` given in ``fmt`` (inverse of :func:`from_decimal`)."""
    match fmt:
        case OddsFormat.DECIMAL:
            exact = _exact(value, "decimal")
            if exact <= 1:
                raise InvalidPrice(f"decimal odds must be above 1, got {exact}")
            return exact
        case OddsFormat.FRACTIONAL:
            return fractional_to_decimal(value)
        case OddsFormat.AMERICAN:
            return american_to_decimal(value)
        case OddsFormat.HONGKONG:
            return hongkong_to_decimal(value)
        case OddsFormat.MALAY:
            return malay_to_decimal(value)
        case OddsFormat.INDONESIAN:
            return indonesian_to_decimal(value)


def implied_probability(odds: Price | Fraction) -> Fraction:
    """``1/D``, exact."""
    return 1 / _odds_of(odds)


def overround(prices: Iterable[Price | Fraction]) -> Fraction:
    """``Σ 1/Dᵢ − 1`` over a book's prices, exact (0 for a fair book). Empty → ValueError."""
    probabilities = [implied_probability(price) for price in prices]
    if not probabilities:
        raise ValueError("overround of an empty book")
    return sum(probabilities, Fraction(0)) - 1


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

# Used with fullmatch (``$`` would let a trailing newline through). ASCII digits
# only; at most 7 whole and 6 decimal places, as the decimal wire price allows.
_SIGNED_RE = re.compile(r"[+-]?[0-9]{1,7}(?:\.[0-9]{1,6})?")
_WIRE_SCALE = 10**6  # the decimal wire price has at most 6 places


def _exact_price(odds: Fraction) -> Price:
    """A Price whose wire text is exact: decimal when ``odds`` fit the decimal wire
    (≤ 6 places), else the fraction (``-110`` → ``"10/11"``, not ``"1.909090909091"``).

    Compare parsed prices by ``.odds``: ``Price`` equality also compares the wire form.
    """
    if (odds * _WIRE_SCALE).denominator == 1:
        return Price(odds)
    return Price(odds, fractional=True)


def parse_odds(text: object, fmt: OddsFormat) -> Price:
    """Read odds written in ``fmt`` as an exact :class:`Price`; :class:`InvalidPrice` if not.

    * decimal: ``"2.5"``, ``"1000"`` (the wire grammar of :meth:`Price.parse`, above 1);
    * fractional: ``"5/2"``, ``"4/6"`` (above ``0/1``); the Price keeps the fraction;
    * American: ``"+150"``, ``"150"``, ``"-110"``; ≥ +100 or ≤ −100;
    * Hong Kong: ``"1.50"``, above 0;
    * Indonesian: ``"-2.00"``, ``"1.50"``; ≥ 1 or ≤ −1;
    * Malay: ``"-0.67"``, ``"0.50"``; in [−1, 0) ∪ (0, 1].

    Only ASCII digits, an optional sign (not for decimal or fractional), at most
    6 decimal places; no exponent, no whitespace, no ``nan``/``inf``. The result
    always round trips through :meth:`Price.to_wire` / :meth:`Price.parse` (odds too
    extreme for the wire grammar are refused). Parsing checks that the odds are
    valid, not that they are on a market's ladder.
    """
    if not isinstance(text, str):
        raise InvalidPrice(f"{fmt.value} odds must be a string, got {type(text).__name__}")
    if fmt is OddsFormat.DECIMAL:
        if "/" in text:
            raise InvalidPrice(f"not decimal odds (a fraction): {text!r}")
        return Price.parse(text)
    if fmt is OddsFormat.FRACTIONAL:
        if "/" not in text:
            raise InvalidPrice(f"not fractional odds (expected a/b): {text!r}")
        return Price.parse(text)
    if not _SIGNED_RE.fullmatch(text):
        raise InvalidPrice(f"not {fmt.value} odds: {text!r}")
    value = Fraction(Decimal(text))
    try:
        odds = to_decimal(value, fmt)
    except InvalidPrice as exc:
        raise InvalidPrice(f"{exc} ({text!r})") from None
    price = _exact_price(odds)
    try:
        Price.parse(price.to_wire())
    except InvalidPrice:
        # e.g. Indonesian "-1234567.1" is 1 + 10/12345671: too long for the wire grammar.
        raise InvalidPrice(f"{fmt.value} odds {text!r} have no exact wire price") from None
    return price


# ---------------------------------------------------------------------------
# Display
# ---------------------------------------------------------------------------

_DISPLAY_PLACES = 2


def _pow10(places: int) -> int:
    return int(10**places)


def _round_half_up(value: Fraction, places: int) -> int:
    """``value·10^places`` to the nearest integer, halves away from zero.

    This is ``decimal.ROUND_HALF_UP``, computed exactly on the Fraction (no
    intermediate Decimal division, so no double rounding). For display only.
    """
    scaled = abs(value) * _pow10(places)
    magnitude = (2 * scaled.numerator + scaled.denominator) // (2 * scaled.denominator)
    return -magnitude if value < 0 else magnitude


def _fixed(value: Fraction, boundary: Fraction) -> str:
    """``value`` to 2 dp, ROUND_HALF_UP; more places while 2 dp would show ``boundary``.

    ``boundary`` is the format's excluded limit (1 for decimal, 0 for HK/Malay): a
    valid price never displays as an invalid one (Malay for 251.0 is ``"-0.004"``,
    not ``"-0.00"``), so every display string parses back.
    """
    places = _DISPLAY_PLACES
    units = _round_half_up(value, places)
    while Fraction(units, _pow10(places)) == boundary:
        places += 1
        units = _round_half_up(value, places)
    whole, part = divmod(abs(units), _pow10(places))
    sign = "-" if units < 0 else ""
    return f"{sign}{whole}.{part:0{places}d}"


def display_decimal(odds: Price | Fraction) -> str:
    """Decimal odds to 2 dp, ROUND_HALF_UP: 2.5 → ``"2.50"``, 21/11 → ``"1.91"``."""
    return _fixed(_odds_of(odds), _ONE)


def display_american(odds: Price | Fraction) -> str:
    """American odds as a signed integer, ROUND_HALF_UP (halves away from zero).

    2.5 → ``"+150"``, 1.5 → ``"-200"``, 1.91 → ``"-110"`` (−109.89…), 2.10 → ``"+110"``,
    1.32 → ``"-313"`` (−312.5). Evens is ``"+100"``.
    """
    units = _round_half_up(decimal_to_american(odds), 0)
    return f"+{units}" if units > 0 else str(units)


def display_hongkong(odds: Price | Fraction) -> str:
    """Hong Kong odds to 2 dp, ROUND_HALF_UP: 2.5 → ``"1.50"``."""
    return _fixed(decimal_to_hongkong(odds), Fraction(0))


def display_indonesian(odds: Price | Fraction) -> str:
    """Indonesian odds to 2 dp, ROUND_HALF_UP, sign for negatives: 1.5 → ``"-2.00"``."""
    return _fixed(decimal_to_indonesian(odds), Fraction(0))


def display_malay(odds: Price | Fraction) -> str:
    """Malay odds to 2 dp, ROUND_HALF_UP, sign for negatives: 2.5 → ``"-0.67"``."""
    return _fixed(decimal_to_malay(odds), Fraction(0))


def display_fractional(odds: Price | Fraction) -> str:
    """Customary fractional text (RULES.md §7: snap, don't reduce).

    A fractional :class:`Price` shows its own exact customary text (``"4/6"``).
    Anything else is snapped to the nearest rung of the customary ladder with
    :func:`~sportsbook_core.fractional_ladder.snap_nearest` (2.5 → ``"6/4"``,
    1.91 → ``"10/11"``). Above the ladder's top rung (500/1) the nearest whole
    ``n/1`` is shown (1000 → ``"999/1"``) rather than understate the odds.
    """
    value = _odds_of(odds)
    if isinstance(odds, Price) and odds.fractional:
        return customary_text(value - 1)
    profit = value - 1
    if profit > RUNGS[-1]:
        return f"{_round_half_up(profit, 0)}/1"
    return customary_text(snap_nearest(value))


def display(odds: Price | Fraction, fmt: OddsFormat) -> str:
    """The display string of ``odds`` in ``fmt`` (the string sent beside the price)."""
    match fmt:
        case OddsFormat.DECIMAL:
            return display_decimal(odds)
        case OddsFormat.FRACTIONAL:
            return display_fractional(odds)
        case OddsFormat.AMERICAN:
            return display_american(odds)
        case OddsFormat.HONGKONG:
            return display_hongkong(odds)
        case OddsFormat.MALAY:
            return display_malay(odds)
        case OddsFormat.INDONESIAN:
            return display_indonesian(odds)
