"""streams.bus_codec: the Kafka price bus record format, pinned, and exact round trips."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sportsbook_core.catalogue import (
    EachWayTerms,
    MarketDefinition,
    MarketStatus,
    SelectionDefinition,
    SelectionStatus,
)
from sportsbook_core.changes import FeedStatus
from sportsbook_core.fractional_ladder import RUNGS
from sportsbook_core.ladder import CLASSIC, LadderType
from sportsbook_core.market_book import (
    BookUpdate,
    MarketBook,
    MarketDelta,
    SelectionChange,
    apply_change,
)
from sportsbook_core.prices import Price
from streams.bus_codec import (
    BUS_FORMAT_VERSION,
    BusDecodeError,
    decode_record,
    encode_status,
    encode_update,
    record_key,
)
from streams.replay import iter_changes
from tests.testkit.data import betfair_market


def assert_identical(decoded: object, original: object, path: str = "update") -> None:
    """Equal, and of the same types all the way down.

    ``==`` alone is not enough: ``Fraction(5, 2) == 2.5`` and ``Decimal("12.50") ==
    Decimal("12.5")``, so a float or a re-spelled decimal would pass it.
    """
    if is_dataclass(original):
        assert type(decoded) is type(original), path
        for f in fields(original):
            name = f"{path}.{f.name}"
            assert_identical(getattr(decoded, f.name), getattr(original, f.name), name)
    elif isinstance(original, Mapping):
        assert isinstance(decoded, MappingProxyType), path  # a frozen book stays read-only
        assert list(decoded) == list(original), path
        for key, value in original.items():
            assert_identical(decoded[key], value, f"{path}[{key!r}]")
    elif isinstance(original, tuple):
        assert type(decoded) is tuple, path
        assert len(decoded) == len(original), path
        for index, (got, want) in enumerate(zip(decoded, original, strict=True)):
            assert_identical(got, want, f"{path}[{index}]")
    else:
        assert type(decoded) is type(original), path
        assert decoded == original, path
        if isinstance(original, Decimal):
            assert str(decoded) == str(original), path
        if isinstance(original, datetime):
            assert isinstance(decoded, datetime)
            assert decoded.utcoffset() == original.utcoffset(), path


def round_trip(update: BookUpdate) -> BookUpdate:
    decoded = decode_record(encode_update(update))
    assert isinstance(decoded, BookUpdate)
    assert decoded == update
    assert update == decoded
    assert_identical(decoded, update)
    return decoded


# ----------------------------------------------------------- real recordings


@pytest.mark.parametrize(
    ("recording", "updates"),
    [
        # UK racing: fractional prices, REMOVED runners with adjustment factors, removal dates
        ("flumine_BASIC-1.132153978.jsonl", 361),
        # Asian handicap + match odds: handicapped selectionIds and Decimal handicaps
        ("betfair_parser_1.242971311.jsonl.bz2", 1765),
        # place market: removals, many None prices, status changes in deltas
        ("betfair_parser_1.205822330.jsonl.bz2", 1162),
        # football BTTS: decimal prices, in-play
        ("betfair_database_1.145405534.jsonl.bz2", 193),
    ],
)
def test_every_update_of_a_recording_round_trips(recording: str, updates: int) -> None:
    books: dict[str, MarketBook] = {}
    checked = 0
    for item in iter_changes(betfair_market(recording)):
        if isinstance(item, FeedStatus):
            assert decode_record(encode_status(item)) == item
            continue
        result = apply_change(books.get(item.market_id), item)
        if result.rejected is not None:
            continue
        if result.book is not None:
            books[item.market_id] = result.book
        if result.book is None or result.delta is None:
            continue
        update = BookUpdate(result.book, result.delta)
        round_trip(update)
        assert record_key(update) == item.market_id.encode()
        checked += 1
    assert checked == updates


# ------------------------------------------------------------------- status


@pytest.mark.parametrize(
    "status",
    [FeedStatus(1718717102123, True), FeedStatus(1718717102456, False, "503: feed lagging")],
)
def test_feed_status_round_trips(status: FeedStatus) -> None:
    encoded = encode_status(status)
    assert decode_record(encoded) == status
    assert record_key(status) == b"feed-status"


def test_feed_status_wire_format_is_pinned() -> None:
    encoded = encode_status(FeedStatus(1718717102456, False, "503: feed lagging"))
    assert encoded == (
        b'{"v":1,"type":"status","publishedAt":1718717102456,"healthy":false,'
        b'"reason":"503: feed lagging"}'
    )
    healthy = encode_status(FeedStatus(1718717102123, True))
    assert (
        healthy
        == b'{"v":1,"type":"status","publishedAt":1718717102123,"healthy":true,"reason":null}'
    )


# --------------------------------------------------------- pinned wire format

START = datetime(2024, 6, 18, 14, 30, tzinfo=UTC)
REMOVED_AT = datetime(2024, 6, 18, 13, 5, 2, 123456, tzinfo=UTC)


def small_market() -> BookUpdate:
    """Three runners: one at 5/2, one without a price, one REMOVED with its factor."""
    definition = MarketDefinition(
        market_id="1.234",
        event_id="29001",
        event_name="Ascot 18th Jun",
        name="Each Way",
        market_type="EACH_WAY",
        sport="horse-racing",
        start_time=START,
        status=MarketStatus.OPEN,
        in_play=False,
        bet_delay_ms=0,
        selections=(
            SelectionDefinition("101", "Alpha", sort_priority=1),
            SelectionDefinition("102", "Bravo", sort_priority=2),
            SelectionDefinition(
                "103",
                "Charlie",
                status=SelectionStatus.REMOVED,
                sort_priority=3,
                adjustment_factor=Decimal("12.50"),
                removal_date=REMOVED_AT,
            ),
        ),
        country="GB",
        each_way=EachWayTerms(3, Fraction(1, 5)),
        number_of_winners=3,
        fractional=True,
        version=7,
    )
    five_to_two = Price.from_fraction(5, 2)
    prices = MappingProxyType({"101": five_to_two, "102": None, "103": None})
    book = MarketBook(definition, prices, 4, 1718717102123, material_seq=3)
    delta = MarketDelta(
        "1.234",
        4,
        selections=(
            SelectionChange("101", five_to_two, True),
            SelectionChange("102", None, True),
            SelectionChange("103", None, True, SelectionStatus.REMOVED),
        ),
    )
    return BookUpdate(book, delta)


SMALL_MARKET_WIRE: dict[str, Any] = {
    "v": 1,
    "type": "update",
    "marketId": "1.234",
    "seq": 4,
    "materialSeq": 3,
    "publishedAt": 1718717102123,
    "book": {
        "eventId": "29001",
        "eventName": "Ascot 18th Jun",
        "name": "Each Way",
        "marketType": "EACH_WAY",
        "sport": "horse-racing",
        "startTime": "2024-06-18T14:30:00+00:00",
        "status": "OPEN",
        "inPlay": False,
        "betDelayMs": 0,
        "selections": [
            {"selectionId": "101", "name": "Alpha", "status": "ACTIVE", "sortPriority": 1},
            {"selectionId": "102", "name": "Bravo", "status": "ACTIVE", "sortPriority": 2},
            {
                "selectionId": "103",
                "name": "Charlie",
                "status": "REMOVED",
                "sortPriority": 3,
                "adjustmentFactor": "12.50",
                "removalDate": "2024-06-18T13:05:02.123456+00:00",
            },
        ],
        "country": "GB",
        "eachWay": {"places": 3, "fraction": "1/5"},
        "numberOfWinners": 3,
        "ladder": "CLASSIC",
        "fractional": True,
        "version": 7,
        "prices": {"101": "5/2", "102": None, "103": None},
    },
    "delta": {
        "selections": [
            {"selectionId": "101", "price": "5/2"},
            {"selectionId": "102", "price": None},
            {"selectionId": "103", "price": None, "status": "REMOVED"},
        ]
    },
}


def test_update_wire_format_is_pinned() -> None:
    update = small_market()
    # orjson keeps dict order, so this pins the key order as well as the values.
    assert encode_update(update) == orjson.dumps(SMALL_MARKET_WIRE)
    assert record_key(update) == b"1.234"
    round_trip(update)


def test_the_pinned_bytes_decode_to_the_hand_built_update() -> None:
    assert decode_record(orjson.dumps(SMALL_MARKET_WIRE)) == small_market()


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (Price.parse("2.5"), "2.5"),
        (Price.parse("1000"), "1000"),
        (Price.parse("1.01"), "1.01"),
        (Price.parse("1.000001"), "1.000001"),
        (Price.from_fraction(5, 2), "5/2"),
        (Price.from_fraction(2, 3), "4/6"),  # customary spelling, as the public wire
        (Price.from_fraction(7, 3), "7/3"),
        (Price(Fraction(32, 11)), "=32/11"),  # decimal odds that do not terminate
        (Price(Fraction(10**30 + 1, 10)), "=1000000000000000000000000000001/10"),
    ],
)
def test_price_text_is_pinned(price: Price, text: str) -> None:
    update = with_price(price)
    wire = orjson.loads(encode_update(update))
    assert wire["book"]["prices"]["101"] == text
    assert wire["delta"]["selections"] == [{"selectionId": "101", "price": text}]
    round_trip(update)


def test_every_optional_field_and_odd_value_round_trips() -> None:
    """What the recordings lack: each-way, competition, a ladder, offsets, exponents."""
    base = small_market()
    plus_five_thirty = timezone(timedelta(hours=5, minutes=30))
    definition = replace(
        base.book.definition,
        start_time=datetime(2024, 6, 18, 20, 0, 0, 7, tzinfo=plus_five_thirty),
        status=MarketStatus.SUSPENDED,
        in_play=True,
        bet_delay_ms=5000,
        competition="Royal Ascot",
        each_way=EachWayTerms(4, Fraction(1, 4)),
        ladder=LadderType.LINE_RANGE,
        fractional=False,
        selections=(
            SelectionDefinition("101@-0.25", "Home -0.25", handicap=Decimal("-0.25")),
            SelectionDefinition("102@0", "Away 0", handicap=Decimal("0.00"), sort_priority=2),
            SelectionDefinition(
                "103",
                "Void",
                status=SelectionStatus.VOID,
                adjustment_factor=Decimal("1E-7"),
                removal_date=datetime(2024, 6, 18, 12, 0, tzinfo=timezone(timedelta(hours=-4))),
            ),
        ),
    )
    prices = {"101@-0.25": Price(Fraction(32, 11)), "102@0": Price.parse("1.01"), "103": None}
    book = MarketBook(definition, prices, 9, 1718717102999)
    delta = MarketDelta(
        "1.234",
        9,
        status=MarketStatus.SUSPENDED,
        in_play=True,
        bet_delay_ms=5000,
        selections=(SelectionChange("103", status=SelectionStatus.VOID),),
        resync=True,
    )
    decoded = round_trip(BookUpdate(book, delta))
    assert str(decoded.book.definition.selections[1].handicap) == "0.00"
    assert decoded.delta.selections[0].price_set is False


@pytest.mark.parametrize("status", list(MarketStatus))
def test_every_market_status_round_trips(status: MarketStatus) -> None:
    base = small_market()
    book = replace(base.book, definition=replace(base.book.definition, status=status))
    round_trip(BookUpdate(book, replace(base.delta, status=status)))


@pytest.mark.parametrize("status", list(SelectionStatus))
def test_every_selection_status_round_trips(status: SelectionStatus) -> None:
    base = small_market()
    runner = replace(base.book.definition.selections[0], status=status)
    definition = replace(base.book.definition, selections=(runner,))
    book = replace(base.book, definition=definition, prices={"101": None})
    delta = replace(base.delta, selections=(SelectionChange("101", status=status),))
    round_trip(BookUpdate(book, delta))


@pytest.mark.parametrize("ladder", list(LadderType))
def test_every_ladder_round_trips(ladder: LadderType) -> None:
    base = small_market()
    book = replace(base.book, definition=replace(base.book.definition, ladder=ladder))
    round_trip(BookUpdate(book, base.delta))


def test_an_empty_delta_stays_empty() -> None:
    base = small_market()
    update = BookUpdate(base.book, MarketDelta("1.234", 4))
    assert orjson.loads(encode_update(update))["delta"] == {}
    round_trip(update)


# ------------------------------------------------------------ refused values


def test_values_that_could_not_come_back_are_refused_when_encoding() -> None:
    base = small_market()
    with pytest.raises(ValueError, match=r"delta 1\.234#5 does not belong to book 1\.234#4"):
        encode_update(BookUpdate(base.book, replace(base.delta, seq=5)))
    stale_price = SelectionChange("101", Price.parse("2.5"), price_set=False)
    with pytest.raises(ValueError, match="101: a price without price_set"):
        encode_update(BookUpdate(base.book, replace(base.delta, selections=(stale_price,))))
    naive = replace(base.book.definition, start_time=datetime(2024, 6, 18, 14, 30))  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive datetime"):
        encode_update(BookUpdate(replace(base.book, definition=naive), base.delta))


def wire_with(path: tuple[str | int, ...], value: object) -> bytes:
    """SMALL_MARKET_WIRE with one field replaced (``...`` removes it)."""
    record = orjson.loads(orjson.dumps(SMALL_MARKET_WIRE))
    target = record
    for step in path[:-1]:
        target = target[step]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return orjson.dumps(record)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "not JSON"),
        (b'{"v":1,"type":"status"', "not JSON"),
        (b"[1, 2]", "record: expected an object, got an array"),
        (b'{"type":"status","publishedAt":1,"healthy":true}', r"record\.v: missing"),
        (
            b'{"v":2,"type":"status","publishedAt":1,"healthy":true}',
            "version 2 unknown",
        ),
        (b'{"v":"1","type":"status"}', r"record\.v: expected an integer, got a string"),
        (b'{"v":1,"type":"change"}', "unknown record type 'change'"),
        (b'{"v":1,"type":"status","publishedAt":1}', r"record\.healthy: missing"),
        (
            b'{"v":1,"type":"status","publishedAt":1.5,"healthy":true}',
            "expected an integer, got a float",
        ),
        (
            b'{"v":1,"type":"status","publishedAt":true,"healthy":true}',
            "expected an integer, got a boolean",
        ),
        (wire_with(("book",), ...), r"record\.book: missing"),
        (wire_with(("book", "eventId"), ...), r"record\.book\.eventId: missing"),
        (wire_with(("book", "prices", "101"), 2.5), r"prices\.101: expected a string, got a float"),
        (
            wire_with(("book", "prices", "101"), 3),
            r"prices\.101: expected a string, got an integer",
        ),
        (
            wire_with(("delta", "selections", 0, "price"), 3.5),
            r"record\.delta\.selections\[0\]\.price: expected a string, got a float",
        ),
        (wire_with(("book", "prices", "101"), "2.5e0"), "not a price '2.5e0'"),
        (wire_with(("book", "prices", "101"), " 2.5"), "not a price"),
        (wire_with(("book", "prices", "101"), "1.00"), "odds must be above 1"),
        (wire_with(("book", "prices", "101"), "0/1"), "odds must be above 1"),
        (wire_with(("book", "prices", "101"), "=5/0"), "bad price '=5/0'"),
        (wire_with(("book", "status"), "RUNNING"), r"book\.status: not a MarketStatus"),
        (
            wire_with(("book", "selections", 2, "status"), "GONE"),
            r"selections\[2\]\.status: not a SelectionStatus",
        ),
        (wire_with(("book", "ladder"), "COARSE"), "not a LadderType"),
        (wire_with(("book", "startTime"), "18 June"), "not an ISO date-time"),
        (wire_with(("book", "startTime"), "2024-06-18T14:30:00"), "without an offset"),
        (wire_with(("book", "selections", 2, "adjustmentFactor"), "NaN"), "not a decimal"),
        (
            wire_with(("book", "selections", 2, "adjustmentFactor"), 12.5),
            "expected a string, got a float",
        ),
        (
            wire_with(("book", "eachWay", "fraction"), 0.2),
            r"book\.eachWay\.fraction: expected a string, got a float",
        ),
        (wire_with(("book", "eachWay", "fraction"), "1/0"), "zero denominator"),
        (wire_with(("book", "selections"), {}), "expected an array, got an object"),
        (wire_with(("delta",), []), r"record\.delta: expected an object, got an array"),
    ],
)
def test_malformed_records_are_refused(value: bytes, message: str) -> None:
    with pytest.raises(BusDecodeError, match=message):
        decode_record(value)


def test_bus_decode_error_is_a_value_error() -> None:
    assert issubclass(BusDecodeError, ValueError)
    assert BUS_FORMAT_VERSION == 1


# ------------------------------------------------------------ property: prices


def with_price(price: Price) -> BookUpdate:
    """The small market with runner 101 at ``price`` (in the book and the delta)."""
    base = small_market()
    prices = MappingProxyType({**base.book.prices, "101": price})
    delta = replace(base.delta, selections=(SelectionChange("101", price, True),))
    return BookUpdate(replace(base.book, prices=prices), delta)


ladder_prices = st.sampled_from(CLASSIC.rungs).map(
    lambda hundredths: Price(Fraction(hundredths, 100))
)
fractional_ladder_prices = st.sampled_from(RUNGS).map(lambda profit: Price(1 + profit, True))
decimal_prices = st.builds(  # terminating decimals of any length: exact decimal text
    lambda places, extra: Price(1 + Fraction(extra, 10**places)),
    st.integers(0, 30),
    st.integers(1, 10**40),
)
arbitrary_prices = st.builds(
    lambda num, den, fractional: Price(1 + Fraction(num, den), fractional),
    st.integers(1, 10**40),
    st.integers(1, 10**40),
    st.booleans(),
)


@given(st.one_of(ladder_prices, fractional_ladder_prices, decimal_prices, arbitrary_prices))
def test_any_price_round_trips_exactly(price: Price) -> None:
    wire = orjson.loads(encode_update(with_price(price)))
    assert isinstance(wire["book"]["prices"]["101"], str)
    decoded = round_trip(with_price(price))
    got = decoded.book.prices["101"]
    assert got is not None
    assert type(got.odds) is Fraction
    assert (got.odds, got.fractional) == (price.odds, price.fractional)
