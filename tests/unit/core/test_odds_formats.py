"""sportsbook_core.odds_formats: RULES.md §7 conversions, parsing and display."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sportsbook_core.fractional_ladder import RUNGS, snap_nearest
from sportsbook_core.ladder import CLASSIC, price_from_hundredths
from sportsbook_core.odds_formats import (
    OddsFormat,
    american_to_decimal,
    decimal_to_american,
    decimal_to_fractional,
    decimal_to_hongkong,
    decimal_to_indonesian,
    decimal_to_malay,
    display,
    display_american,
    display_decimal,
    display_fractional,
    fractional_to_decimal,
    from_decimal,
    hongkong_to_decimal,
    implied_probability,
    indonesian_to_decimal,
    malay_to_decimal,
    overround,
    parse_odds,
    to_decimal,
)
from sportsbook_core.prices import InvalidPrice, Price

F = Fraction
CLASSIC_ODDS = tuple(Fraction(rung, 100) for rung in CLASSIC.rungs)
NUMERIC_FORMATS = (
    OddsFormat.DECIMAL,
    OddsFormat.AMERICAN,
    OddsFormat.HONGKONG,
    OddsFormat.MALAY,
    OddsFormat.INDONESIAN,
)
# Exact decimal odds in the ladder's domain, [1.01, 1000], any denominator up to 10⁶.
ladder_domain_odds = st.fractions(
    min_value=Fraction(101, 100), max_value=Fraction(1000), max_denominator=10**6
)
# Any exact decimal odds above 1 (to 10⁷, denominators to 10⁹).
any_valid_odds = st.fractions(
    min_value=Fraction(1), max_value=Fraction(10**7), max_denominator=10**9
).filter(lambda odds: odds > 1)


# --- OddsFormat -----------------------------------------------------------------


def test_wire_names_are_protocol_odds_format_values() -> None:
    """PROTOCOL.md Numbers: oddsFormat decimal | fractional | american | hongkong | malay |
    indonesian."""
    assert [f.value for f in OddsFormat] == [
        "decimal",
        "fractional",
        "american",
        "hongkong",
        "malay",
        "indonesian",
    ]
    assert OddsFormat.from_wire("hongkong") is OddsFormat.HONGKONG
    assert OddsFormat("malay") is OddsFormat.MALAY


@pytest.mark.parametrize("name", ["Decimal", "HONGKONG", "hong_kong", "", None, 1])
def test_unknown_wire_format_is_a_clear_error(name: object) -> None:
    with pytest.raises(ValueError, match="unknown oddsFormat"):
        OddsFormat.from_wire(name)


# --- RULES.md §7 example rows -------------------------------------------------------


class Row(NamedTuple):
    """One RULES.md §7 example row: D / fractional / American / HK / Indonesian / Malay."""

    d: str
    frac: str
    american: str
    hk: str
    indo: str
    malay: str


# Exactly as RULES.md §7 prints them (with U+2212 minus signs).
RULES_7_ROWS = [
    Row("1.50", "1/2", "−200", "0.50", "−2.00", "0.50"),
    Row("2.50", "3/2", "+150", "1.50", "1.50", "−0.67"),
    Row("3.00", "2/1", "+200", "2.00", "2.00", "−0.50"),
]


def _ascii(text: str) -> str:
    """RULES.md prints U+2212 MINUS SIGN; the wire uses ASCII hyphen-minus."""
    return text.replace("−", "-")


@pytest.mark.parametrize("row", RULES_7_ROWS, ids=lambda row: row.d)
def test_rules_7_example_rows_display(row: Row) -> None:
    """RULES.md §7 example rows: each column is the display of D in that format."""
    price = Price.parse(row.d)
    assert display(price, OddsFormat.DECIMAL) == row.d
    assert display(price, OddsFormat.AMERICAN) == _ascii(row.american)
    assert display(price, OddsFormat.HONGKONG) == row.hk
    assert display(price, OddsFormat.INDONESIAN) == _ascii(row.indo)
    assert display(price, OddsFormat.MALAY) == _ascii(row.malay)
    # The fractional column is the exact value a/b = D − 1 (display spelling: below).
    assert decimal_to_fractional(price) == Fraction(row.frac)


def test_rules_7_fractional_display_snaps_to_customary_spelling() -> None:
    """RULES.md §7 rounding conventions: fractional display snaps to the customary ladder
    "rather than reduce exact fractions", so 2.50 (the row's 3/2) displays as "6/4";
    1/2 and 2/1 are already customary."""
    assert [display(Price.parse(row.d), OddsFormat.FRACTIONAL) for row in RULES_7_ROWS] == [
        "1/2",
        "6/4",
        "2/1",
    ]


@pytest.mark.parametrize("row", RULES_7_ROWS, ids=lambda row: row.d)
def test_rules_7_example_rows_exact_conversions(row: Row) -> None:
    """RULES.md §7: the exact values behind each row (only Malay 2.50 is rounded in print)."""
    odds = Fraction(row.d)
    assert decimal_to_fractional(odds) == Fraction(row.frac)
    assert decimal_to_american(odds) == Fraction(_ascii(row.american))
    assert decimal_to_hongkong(odds) == Fraction(row.hk)
    assert decimal_to_indonesian(odds) == Fraction(_ascii(row.indo))
    assert fractional_to_decimal(Fraction(row.frac)) == odds
    assert american_to_decimal(Fraction(_ascii(row.american))) == odds
    assert hongkong_to_decimal(Fraction(row.hk)) == odds
    assert indonesian_to_decimal(Fraction(_ascii(row.indo))) == odds


def test_rules_7_malay_exact_values() -> None:
    """RULES.md §7 Malay: D ≤ 2 → D − 1; D > 2 → −1/(D−1). 2.50 is exactly −2/3 (−0.67)."""
    assert decimal_to_malay(F(3, 2)) == F(1, 2)
    assert decimal_to_malay(F(5, 2)) == F(-2, 3)
    assert decimal_to_malay(F(3)) == F(-1, 2)
    assert malay_to_decimal(F(-2, 3)) == F(5, 2)
    assert malay_to_decimal(F(1, 2)) == F(3, 2)


@pytest.mark.parametrize("row", RULES_7_ROWS, ids=lambda row: row.d)
def test_rules_7_example_rows_parse(row: Row) -> None:
    """Every column of RULES.md §7 parses back to D (Malay −0.67 to 1 + 100/67, its exact
    value, since the printed −0.67 is rounded)."""
    odds = Fraction(row.d)
    assert parse_odds(row.d, OddsFormat.DECIMAL).odds == odds
    assert parse_odds(row.frac, OddsFormat.FRACTIONAL).odds == odds
    assert parse_odds(_ascii(row.american), OddsFormat.AMERICAN).odds == odds
    assert parse_odds(row.hk, OddsFormat.HONGKONG).odds == odds
    assert parse_odds(_ascii(row.indo), OddsFormat.INDONESIAN).odds == odds
    expected_malay = F(167, 67) if row.malay == "−0.67" else odds
    assert parse_odds(_ascii(row.malay), OddsFormat.MALAY).odds == expected_malay


# --- exact conversions: branch edges and rejects -----------------------------------


def test_branch_edges_at_evens() -> None:
    """RULES.md §7: D = 2 takes the D ≥ 2 branch (American, Indonesian) and the D ≤ 2
    branch (Malay); both signed forms of evens convert back to 2."""
    assert decimal_to_american(F(2)) == 100
    assert decimal_to_indonesian(F(2)) == 1
    assert decimal_to_malay(F(2)) == 1
    assert american_to_decimal(100) == american_to_decimal(-100) == 2
    assert indonesian_to_decimal(1) == indonesian_to_decimal(-1) == 2
    assert malay_to_decimal(1) == malay_to_decimal(-1) == 2


def test_exact_values_around_evens() -> None:
    """1.91 and 2.10 (FIELD_CASES.md B07) in every format, exactly."""
    assert decimal_to_american(F(191, 100)) == F(-10000, 91)
    assert decimal_to_american(F(21, 10)) == 110
    assert decimal_to_indonesian(F(191, 100)) == F(-100, 91)
    assert decimal_to_malay(F(21, 10)) == F(-10, 11)
    assert decimal_to_hongkong(F(191, 100)) == F(91, 100)
    assert american_to_decimal(-110) == F(21, 11)


def test_conversions_accept_a_price() -> None:
    assert decimal_to_american(Price.from_fraction(5, 2)) == 250
    assert from_decimal(Price.parse("1.5"), OddsFormat.AMERICAN) == -200


@pytest.mark.parametrize("odds", [F(1), F(1, 2), F(0), F(-3)])
def test_decimal_odds_at_or_below_one_are_rejected(odds: Fraction) -> None:
    for fmt in OddsFormat:
        with pytest.raises(InvalidPrice, match="above 1"):
            from_decimal(odds, fmt)


@pytest.mark.parametrize("odds", [2.5, Decimal("2.5"), "2.5", 3])
def test_conversions_refuse_non_fractions(odds: object) -> None:
    """Never floats (STYLE.md 1): a float, Decimal, str or int is not decimal odds here."""
    with pytest.raises(InvalidPrice, match="must be a Fraction or Price"):
        decimal_to_american(odds)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "value", "message"),
    [
        (OddsFormat.AMERICAN, F(99), "≥ \\+100 or ≤ -100"),
        (OddsFormat.AMERICAN, F(-99), "≥ \\+100 or ≤ -100"),
        (OddsFormat.AMERICAN, F(0), "≥ \\+100 or ≤ -100"),
        (OddsFormat.HONGKONG, F(0), "above 0"),
        (OddsFormat.HONGKONG, F(-1, 2), "above 0"),
        (OddsFormat.INDONESIAN, F(1, 2), "≥ 1 or ≤ -1"),
        (OddsFormat.INDONESIAN, F(0), "≥ 1 or ≤ -1"),
        (OddsFormat.INDONESIAN, F(-99, 100), "≥ 1 or ≤ -1"),
        (OddsFormat.MALAY, F(0), "\\[-1, 0\\) or \\(0, 1\\]"),
        (OddsFormat.MALAY, F(101, 100), "\\[-1, 0\\) or \\(0, 1\\]"),
        (OddsFormat.MALAY, F(-101, 100), "\\[-1, 0\\) or \\(0, 1\\]"),
        (OddsFormat.FRACTIONAL, F(0), "above 0/1"),
        (OddsFormat.DECIMAL, F(1), "above 1"),
    ],
)
def test_out_of_range_format_values_are_rejected(
    fmt: OddsFormat, value: Fraction, message: str
) -> None:
    """RULES.md §7 validity: Malay in [−1,0)∪(0,1], Indonesian ≥1 or ≤−1, American ≥+100 or
    ≤−100, no zero."""
    with pytest.raises(InvalidPrice, match=message):
        to_decimal(value, fmt)


@pytest.mark.parametrize("value", [True, 1.5, Decimal("1.5"), "1.5"])
def test_format_values_must_be_exact(value: object) -> None:
    with pytest.raises(InvalidPrice, match="must be a Fraction or int"):
        to_decimal(value, OddsFormat.HONGKONG)  # type: ignore[arg-type]


# --- parse_odds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fmt", "odds", "wire"),
    [
        ("2.5", OddsFormat.DECIMAL, F(5, 2), "2.5"),
        ("1000", OddsFormat.DECIMAL, F(1000), "1000"),
        ("5/2", OddsFormat.FRACTIONAL, F(7, 2), "5/2"),
        ("4/6", OddsFormat.FRACTIONAL, F(5, 3), "4/6"),
        ("+150", OddsFormat.AMERICAN, F(5, 2), "2.5"),
        ("150", OddsFormat.AMERICAN, F(5, 2), "2.5"),
        ("-200", OddsFormat.AMERICAN, F(3, 2), "1.5"),
        ("-110", OddsFormat.AMERICAN, F(21, 11), "10/11"),
        ("+100", OddsFormat.AMERICAN, F(2), "2"),
        ("-100", OddsFormat.AMERICAN, F(2), "2"),
        ("-112.5", OddsFormat.AMERICAN, F(17, 9), "8/9"),
        ("1.50", OddsFormat.HONGKONG, F(5, 2), "2.5"),
        ("0.91", OddsFormat.HONGKONG, F(191, 100), "1.91"),
        ("-2.00", OddsFormat.INDONESIAN, F(3, 2), "1.5"),
        ("1.50", OddsFormat.INDONESIAN, F(5, 2), "2.5"),
        ("-1.10", OddsFormat.INDONESIAN, F(21, 11), "10/11"),
        ("0.50", OddsFormat.MALAY, F(3, 2), "1.5"),
        ("-0.50", OddsFormat.MALAY, F(3), "3"),
        ("-0.67", OddsFormat.MALAY, F(167, 67), "100/67"),
        ("1", OddsFormat.MALAY, F(2), "2"),
        ("-1", OddsFormat.MALAY, F(2), "2"),
    ],
)
def test_parse_odds_is_exact(text: str, fmt: OddsFormat, odds: Fraction, wire: str) -> None:
    """parse_odds gives the exact decimal odds; a value with no exact decimal wire (≤ 6 dp)
    keeps an exact fractional wire instead ("-110" → "10/11", not "1.909090909091")."""
    price = parse_odds(text, fmt)
    assert price.odds == odds
    assert price.to_wire() == wire
    assert Price.parse(price.to_wire()) == price


@pytest.mark.parametrize("fmt", list(OddsFormat))
@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1e3",
        "2.5.1",
        " 1.5",
        "1.5 ",
        "1.5\n",
        "1,5",
        "٣",
        "0x10",
        "--150",
        "+-1",
        ".5",
        "5.",
        "1.1234567",
        "12345678",
    ],
)
def test_parse_odds_rejects_malformed_text(text: str, fmt: OddsFormat) -> None:
    with pytest.raises(InvalidPrice):
        parse_odds(text, fmt)


@pytest.mark.parametrize("fmt", list(OddsFormat))
@pytest.mark.parametrize("value", [None, 150, 1.5, Decimal("1.5"), b"1.5", ["1.5"]])
def test_parse_odds_rejects_non_strings(value: object, fmt: OddsFormat) -> None:
    with pytest.raises(InvalidPrice, match="must be a string"):
        parse_odds(value, fmt)


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("0", OddsFormat.AMERICAN, "≥ \\+100 or ≤ -100"),
        ("+99", OddsFormat.AMERICAN, "≥ \\+100 or ≤ -100"),
        ("-99.99", OddsFormat.AMERICAN, "≥ \\+100 or ≤ -100"),
        ("0", OddsFormat.HONGKONG, "above 0"),
        ("0.00", OddsFormat.HONGKONG, "above 0"),
        ("-0.50", OddsFormat.HONGKONG, "above 0"),
        ("0", OddsFormat.INDONESIAN, "≥ 1 or ≤ -1"),
        ("0.99", OddsFormat.INDONESIAN, "≥ 1 or ≤ -1"),
        ("-0.5", OddsFormat.INDONESIAN, "≥ 1 or ≤ -1"),
        ("0", OddsFormat.MALAY, "\\[-1, 0\\) or \\(0, 1\\]"),
        ("-0.00", OddsFormat.MALAY, "\\[-1, 0\\) or \\(0, 1\\]"),
        ("1.01", OddsFormat.MALAY, "\\[-1, 0\\) or \\(0, 1\\]"),
        ("-1.5", OddsFormat.MALAY, "\\[-1, 0\\) or \\(0, 1\\]"),
        ("1", OddsFormat.DECIMAL, "above 1"),
        ("0.5", OddsFormat.DECIMAL, "above 1"),
        ("-2.5", OddsFormat.DECIMAL, "not a decimal"),
        ("5/2", OddsFormat.DECIMAL, "a fraction"),
        ("0/1", OddsFormat.FRACTIONAL, "above 0/1"),
        ("5/0", OddsFormat.FRACTIONAL, "not a decimal or fractional"),
        ("2.5", OddsFormat.FRACTIONAL, "expected a/b"),
        ("-5/2", OddsFormat.FRACTIONAL, "not a decimal or fractional"),
    ],
)
def test_parse_odds_range_errors_name_the_rule(text: str, fmt: OddsFormat, message: str) -> None:
    """RULES.md §7 validity rules, each a clear InvalidPrice naming the rule and the text."""
    with pytest.raises(InvalidPrice, match=message):
        parse_odds(text, fmt)


def test_parse_odds_refuses_odds_with_no_exact_wire_price() -> None:
    """-1234567.1 Indonesian is 1 + 10/12345671: valid odds, but no wire text holds them."""
    with pytest.raises(InvalidPrice, match="no exact wire price"):
        parse_odds("-1234567.1", OddsFormat.INDONESIAN)


signed_texts = st.from_regex(r"[+-]?[0-9]{1,7}(\.[0-9]{1,6})?", fullmatch=True)


@given(text=signed_texts, fmt=st.sampled_from(NUMERIC_FORMATS))
def test_any_parsed_price_round_trips_on_the_wire(text: str, fmt: OddsFormat) -> None:
    """Property: whatever parse_odds accepts is an exact Price whose wire text parses back
    to the same Price, with the odds of the text's exact value."""
    try:
        price = parse_odds(text, fmt)
    except InvalidPrice:
        return
    assert Price.parse(price.to_wire()) == price
    assert price.odds == to_decimal(Fraction(Decimal(text)), fmt)


def test_parse_error_quotes_the_text() -> None:
    with pytest.raises(InvalidPrice, match="'\\+99'"):
        parse_odds("+99", OddsFormat.AMERICAN)


# --- display --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("odds", "expected"),
    [
        (F(5, 2), "2.50"),
        (F(2), "2.00"),
        (F(1000), "1000.00"),
        (F(101, 100), "1.01"),
        (F(21, 11), "1.91"),  # 1.9090…
        (F(4, 3), "1.33"),
        (F(5, 3), "1.67"),
        (F(1005, 1000), "1.01"),  # half rounds up
        (F(1004, 1000), "1.004"),  # "1.00" would be an invalid price: one more place
    ],
)
def test_display_decimal_two_places_half_up(odds: Fraction, expected: str) -> None:
    """RULES.md §7: decimal displayed to 2 dp (ROUND_HALF_UP); a price above 1 never shows
    as the invalid "1.00"."""
    assert display_decimal(odds) == expected


@pytest.mark.parametrize(
    ("odds", "expected"),
    [
        (F(191, 100), "-110"),  # −109.89 → −110 (FIELD_CASES.md B07)
        (F(21, 10), "+110"),  # FIELD_CASES.md B07
        (F(5, 2), "+150"),
        (F(3, 2), "-200"),
        (F(2), "+100"),
        (F(21, 11), "-110"),
        (F(132, 100), "-313"),  # −312.5: half away from zero
        (F(1999, 1000), "-100"),  # −100.05
        (F(101, 100), "-10000"),
        (F(1000), "+99900"),
        (F(2005, 1000), "+101"),  # +100.5: half away from zero
    ],
)
def test_display_american_nearest_integer(odds: Fraction, expected: str) -> None:
    """RULES.md §7: American displayed as an integer with sign, nearest, halves away from 0."""
    assert display_american(odds) == expected


@pytest.mark.parametrize(
    ("odds", "hk", "indo", "malay"),
    [
        (F(191, 100), "0.91", "-1.10", "0.91"),
        (F(21, 10), "1.10", "1.10", "-0.91"),
        (F(101, 100), "0.01", "-100.00", "0.01"),
        (F(5, 2), "1.50", "1.50", "-0.67"),
        (F(201), "200.00", "200.00", "-0.01"),  # −0.005 rounds half away from zero
        (F(251), "250.00", "250.00", "-0.004"),  # −0.004 would show as "-0.00"
        (F(1000), "999.00", "999.00", "-0.001"),
        (F(1001, 1000), "0.001", "-1000.00", "0.001"),
    ],
)
def test_display_asian_formats(odds: Fraction, hk: str, indo: str, malay: str) -> None:
    """RULES.md §7: HK/Indonesian/Malay to 2 dp with "-" for negatives; a value that 2 dp
    would show as zero (an invalid price) gets just enough extra places to be non-zero."""
    assert display(odds, OddsFormat.HONGKONG) == hk
    assert display(odds, OddsFormat.INDONESIAN) == indo
    assert display(odds, OddsFormat.MALAY) == malay


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (Price.parse("2.5"), "6/4"),
        (Price.parse("1.91"), "10/11"),
        (Price.parse("2.1"), "11/10"),
        (Price.parse("1.67"), "4/6"),
        (Price.parse("3.4"), "5/2"),
        (Price.parse("2.0"), "1/1"),
        (Price.parse("1.01"), "1/100"),
        (Price.parse("501"), "500/1"),
        (Price.parse("1000"), "999/1"),  # above the ladder's top rung: nearest whole n/1
        (Price.from_fraction(2, 3), "4/6"),  # a fractional price keeps its customary text
        (Price.from_fraction(7, 3), "7/3"),  # ... even off the customary ladder
        (Price.from_fraction(3, 2), "6/4"),
    ],
)
def test_display_fractional_snaps_unless_fractional(price: Price, expected: str) -> None:
    """RULES.md §7: fractional display snaps to the customary ladder, not the reduced exact
    fraction; a fractionally priced Price shows its own customary text."""
    assert display_fractional(price) == expected


def test_display_fractional_of_a_bare_fraction_snaps() -> None:
    """A bare Fraction is decimal odds, not a fractional price: 10/3 (7/3 to 1) → "9/4"."""
    assert display_fractional(F(10, 3)) == "9/4"


def test_display_dispatches_every_format() -> None:
    price = Price.parse("2.5")
    assert {fmt.value: display(price, fmt) for fmt in OddsFormat} == {
        "decimal": "2.50",
        "fractional": "6/4",
        "american": "+150",
        "hongkong": "1.50",
        "malay": "-0.67",
        "indonesian": "1.50",
    }


# --- implied probability, overround ------------------------------------------------


def test_implied_probability_is_exact() -> None:
    """RULES.md §7: implied probability = 1/D."""
    assert implied_probability(F(5, 2)) == F(2, 5)
    assert implied_probability(Price.parse("1.91")) == F(100, 191)
    assert implied_probability(Price.from_fraction(1, 3)) == F(3, 4)


def test_overround_is_exact() -> None:
    """RULES.md §7: overround = Σ1/Dᵢ − 1."""
    assert overround([F(2), F(2)]) == 0
    assert overround([Price.parse("1.91"), Price.parse("1.91")]) == F(9, 191)
    assert overround([F(5, 2), F(3), F(4)]) == F(2, 5) + F(1, 3) + F(1, 4) - 1
    assert overround(p for p in [Price.parse("3"), Price.parse("3"), Price.parse("3")]) == 0


def test_overround_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty book"):
        overround([])


# --- properties -------------------------------------------------------------------

EXACT_PAIRS: list[tuple[Callable[[Fraction], Fraction], Callable[[Fraction], Fraction]]] = [
    (decimal_to_american, american_to_decimal),
    (decimal_to_hongkong, hongkong_to_decimal),
    (decimal_to_indonesian, indonesian_to_decimal),
    (decimal_to_malay, malay_to_decimal),
    (decimal_to_fractional, fractional_to_decimal),
]


@pytest.mark.parametrize(("forward", "back"), EXACT_PAIRS)
def test_every_classic_rung_round_trips_exactly(
    forward: Callable[[Fraction], Fraction], back: Callable[[Fraction], Fraction]
) -> None:
    """Every one of the 350 CLASSIC rungs (RULES.md §8): decimal → format → decimal is exact
    on the unrounded conversions."""
    assert [back(forward(odds)) for odds in CLASSIC_ODDS] == list(CLASSIC_ODDS)


@given(odds=any_valid_odds, fmt=st.sampled_from(list(OddsFormat)))
def test_any_odds_round_trip_exactly(odds: Fraction, fmt: OddsFormat) -> None:
    """Property: to_decimal(from_decimal(D, f), f) == D for every D > 1 and every format."""
    assert to_decimal(from_decimal(odds, fmt), fmt) == odds


@given(odds=any_valid_odds)
def test_converted_values_are_in_their_valid_ranges(odds: Fraction) -> None:
    """Property: RULES.md §7 ranges hold for every D > 1."""
    american = decimal_to_american(odds)
    indonesian = decimal_to_indonesian(odds)
    malay = decimal_to_malay(odds)
    assert american >= 100 or american <= -100
    assert indonesian >= 1 or indonesian <= -1
    assert indonesian * 100 == american
    assert (0 < malay <= 1) or (-1 <= malay < 0)
    assert decimal_to_hongkong(odds) > 0


def _assert_display_parses_back(odds: Fraction, fmt: OddsFormat) -> None:
    """The display string parses back, and its value is within half a unit of its last
    displayed place of the exact value in that format."""
    text = display(odds, fmt)
    parsed = parse_odds(text, fmt)
    shown = Fraction(Decimal(text))
    places = len(text.partition(".")[2])
    assert abs(shown - from_decimal(odds, fmt)) <= Fraction(1, 2 * 10**places)
    assert parsed.odds == to_decimal(shown, fmt)


def _assert_fractional_display_parses_back(odds: Fraction) -> None:
    parsed = parse_odds(display(odds, OddsFormat.FRACTIONAL), OddsFormat.FRACTIONAL)
    if odds - 1 > RUNGS[-1]:
        assert abs(parsed.odds - odds) <= Fraction(1, 2)
    else:
        assert parsed.odds == 1 + snap_nearest(odds)


def test_every_classic_rung_display_parses_back() -> None:
    """Every CLASSIC rung, every format: the display string parses back within display
    precision (2 dp, integer American, nearest customary fraction)."""
    for odds in CLASSIC_ODDS:
        for fmt in NUMERIC_FORMATS:
            _assert_display_parses_back(odds, fmt)
        _assert_fractional_display_parses_back(odds)


@given(odds=ladder_domain_odds, fmt=st.sampled_from(NUMERIC_FORMATS))
def test_any_display_parses_back_within_precision(odds: Fraction, fmt: OddsFormat) -> None:
    """Property over arbitrary exact odds in [1.01, 1000]."""
    _assert_display_parses_back(odds, fmt)


@given(odds=ladder_domain_odds)
def test_any_fractional_display_parses_back_to_the_nearest_rung(odds: Fraction) -> None:
    _assert_fractional_display_parses_back(odds)


def test_every_customary_rung_wire_round_trips() -> None:
    """Every customary fractional rung: Price wire text round trips exactly, is displayed
    as itself and parses back as the same Price."""
    for rung in RUNGS:
        price = Price(1 + rung, fractional=True)
        wire = price.to_wire()
        assert Price.parse(wire) == price
        assert display_fractional(price) == wire
        assert display_fractional(price.odds) == wire  # snapping a rung is the rung
        assert parse_odds(wire, OddsFormat.FRACTIONAL) == price


def test_every_ladder_price_in_every_format_parses_to_an_exact_price() -> None:
    """The exact value of a CLASSIC rung in each numeric format, written as a wire number
    when it terminates, parses back to the very rung."""
    for hundredths in CLASSIC.rungs:
        price = price_from_hundredths(hundredths)
        for fmt in NUMERIC_FORMATS:
            value = from_decimal(price, fmt)
            if (value * 10**6).denominator != 1:
                continue
            text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
            assert parse_odds(text, fmt).odds == price.odds
