"""The exact JSON codec for records on the Kafka price bus (topic ``sportsbook.prices``).

The public wire (``schemas.frames``) renders for people: times to the
millisecond in UTC, decimals normalised. The bus is how servers share one
market's state, so a record must decode to the *identical* value it was
encoded from — ``decode_record(encode_update(u)) == u`` — or two servers would
disagree about a market. Hence: prices as exact strings, decimals as their own
text, times as full ISO strings with their offset, never a float.

Record values (camelCase; ``v`` is :data:`BUS_FORMAT_VERSION`)::

    {"v":1,"type":"update","marketId":"1.2","seq":7,"publishedAt":<epoch ms>,
     "book":{<definition fields>,"prices":{"<selectionId>":"<price>"|null}},
     "delta":{"status"?,"inPlay"?,"betDelayMs"?,"selections"?,"resync"?}}
    {"v":1,"type":"status","publishedAt":<epoch ms>,"healthy":true,"reason":null}

A field whose value is None (in a delta also an empty ``selections`` and a
false ``resync``) is left out; the decoder restores the default. Prices:
``"2.5"`` exact decimal odds; ``"5/2"`` fractional odds (a fractional
:class:`Price`, odds 3.5); ``"=32/11"`` exact decimal odds whose decimal does
not terminate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from types import MappingProxyType
from typing import Any, TypeVar

import orjson

from sportsbook_core.catalogue import (
    EachWayTerms,
    MarketDefinition,
    MarketStatus,
    SelectionDefinition,
    SelectionStatus,
)
from sportsbook_core.changes import FeedStatus
from sportsbook_core.ladder import LadderType
from sportsbook_core.market_book import BookUpdate, MarketBook, MarketDelta, SelectionChange
from sportsbook_core.prices import Price

__all__ = [
    "BUS_FORMAT_VERSION",
    "BusDecodeError",
    "decode_record",
    "encode_status",
    "encode_update",
    "record_key",
]

BUS_FORMAT_VERSION = 1
_STATUS_KEY = b"feed-status"

_DECIMAL_ODDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_RATIO = re.compile(r"(=?)([0-9]+)/([0-9]+)")
_SIGNED_RATIO = re.compile(r"-?[0-9]+/[0-9]+")
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:E[+-][0-9]+)?")

_T = TypeVar("_T")
_E = TypeVar("_E", bound=Enum)


class BusDecodeError(ValueError):
    """A bus record that cannot be read back exactly: refused, never guessed at."""


def record_key(item: BookUpdate | FeedStatus) -> bytes:
    """The Kafka key: a market's records share one partition, so they stay in order."""
    if isinstance(item, FeedStatus):
        return _STATUS_KEY
    return item.market_id.encode()


# -------------------------------------------------------------------- encoding


def encode_update(update: BookUpdate) -> bytes:
    """One sequenced update; ``book`` alone rebuilds the market (a compacted topic)."""
    book, delta = update.book, update.delta
    if (delta.market_id, delta.seq) != (book.market_id, book.seq):
        # The record carries marketId and seq once: a mismatch could not come back.
        raise ValueError(
            f"delta {delta.market_id}#{delta.seq} does not belong to book "
            f"{book.market_id}#{book.seq}"
        )
    book_fields = _definition_fields(book.definition)
    book_fields["prices"] = {sid: _optional_price(p) for sid, p in book.prices.items()}
    return orjson.dumps(
        {
            "v": BUS_FORMAT_VERSION,
            "type": "update",
            "marketId": book.market_id,
            "seq": book.seq,
            "materialSeq": book.material_seq,
            "publishedAt": book.updated_at_ms,
            "book": book_fields,
            "delta": _delta_fields(delta),
        }
    )


def encode_status(status: FeedStatus) -> bytes:
    """Feed health; ``reason`` is always present (null when healthy)."""
    return orjson.dumps(
        {
            "v": BUS_FORMAT_VERSION,
            "type": "status",
            "publishedAt": status.published_at_ms,
            "healthy": status.healthy,
            "reason": status.reason,
        }
    )


def _compact(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop None fields: the decoder defaults them, the record stays small."""
    return {key: value for key, value in fields.items() if value is not None}


def _definition_fields(d: MarketDefinition) -> dict[str, Any]:
    return _compact(
        {
            "eventId": d.event_id,
            "eventName": d.event_name,
            "name": d.name,
            "marketType": d.market_type,
            "sport": d.sport,
            "startTime": _time_text(d.start_time),
            "status": d.status.value,
            "inPlay": d.in_play,
            "betDelayMs": d.bet_delay_ms,
            "selections": [_selection_fields(s) for s in d.selections],
            "competition": d.competition,
            "country": d.country,
            "eachWay": None if d.each_way is None else d.each_way.to_wire(),
            "numberOfWinners": d.number_of_winners,
            "ladder": d.ladder.value,
            "fractional": d.fractional,
            "version": d.version,
        }
    )


def _selection_fields(s: SelectionDefinition) -> dict[str, Any]:
    return _compact(
        {
            "selectionId": s.selection_id,
            "name": s.name,
            "handicap": None if s.handicap is None else _decimal_text(s.handicap),
            "status": s.status.value,
            "sortPriority": s.sort_priority,
            "adjustmentFactor": (
                None if s.adjustment_factor is None else _decimal_text(s.adjustment_factor)
            ),
            "removalDate": None if s.removal_date is None else _time_text(s.removal_date),
        }
    )


def _delta_fields(delta: MarketDelta) -> dict[str, Any]:
    return _compact(
        {
            "status": None if delta.status is None else delta.status.value,
            "inPlay": delta.in_play,
            "betDelayMs": delta.bet_delay_ms,
            "selections": [_change_fields(c) for c in delta.selections] or None,
            "resync": delta.resync or None,
        }
    )


def _change_fields(change: SelectionChange) -> dict[str, Any]:
    """``price`` is present exactly when ``price_set``: null then means "no price now"."""
    if change.price is not None and not change.price_set:
        raise ValueError(f"selection {change.selection_id}: a price without price_set")
    fields: dict[str, Any] = {"selectionId": change.selection_id}
    if change.price_set:
        fields["price"] = _optional_price(change.price)
    if change.status is not None:
        fields["status"] = change.status.value
    return fields


def _optional_price(price: Price | None) -> str | None:
    return None if price is None else _price_text(price)


def _price_text(price: Price) -> str:
    """The public wire text when it is exact for this Price, else ``=num/den`` decimal odds."""
    text = price.to_wire()  # fractional: "5/2" (exact); decimal: "2.5", or a ratio if endless
    if price.fractional or ("/" not in text and Fraction(text) == price.odds):
        return text
    return f"={price.odds.numerator}/{price.odds.denominator}"


def _decimal_text(value: Decimal) -> str:
    """``str`` keeps digits and exponent ("12.50" stays "12.50"): ``Decimal(text)`` is identical."""
    if not value.is_finite():
        raise ValueError(f"{value} cannot travel on the bus")
    return str(value)


def _time_text(value: datetime) -> str:
    """Full ISO text with microseconds and offset: ``fromisoformat`` gives it back equal."""
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: bus times carry their offset")
    return value.isoformat()


# -------------------------------------------------------------------- decoding


def decode_record(value: bytes) -> BookUpdate | FeedStatus:
    """The update or status ``value`` encodes; BusDecodeError says what is wrong with it."""
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BusDecodeError(f"bus record is not JSON: {exc}") from None
    record = _Fields(raw, "record")
    version = record.get("v", int)
    if version != BUS_FORMAT_VERSION:
        raise BusDecodeError(
            f"record.v: bus format version {version} unknown (this codec reads "
            f"{BUS_FORMAT_VERSION})"
        )
    kind = record.get("type", str)
    if kind == "update":
        return _decode_update(record)
    if kind == "status":
        return FeedStatus(
            record.get("publishedAt", int), record.get("healthy", bool), record.opt("reason", str)
        )
    raise BusDecodeError(f"record.type: unknown record type {kind!r}")


class _Fields:
    """One JSON object of a record, read with its path so that errors say where."""

    __slots__ = ("_path", "_raw")

    def __init__(self, raw: object, path: str) -> None:
        if not isinstance(raw, dict):
            raise BusDecodeError(f"{path}: expected an object, got {_kind(raw)}")
        self._raw: dict[str, object] = raw
        self._path = path

    def at(self, key: str) -> str:
        return f"{self._path}.{key}"

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def has(self, key: str) -> bool:
        return key in self._raw

    def get(self, key: str, kind: type[_T]) -> _T:
        if key not in self._raw:
            raise BusDecodeError(f"{self.at(key)}: missing")
        return _typed(self._raw[key], kind, self.at(key))

    def opt(self, key: str, kind: type[_T]) -> _T | None:
        value = self._raw.get(key)
        return None if value is None else _typed(value, kind, self.at(key))

    def obj(self, key: str) -> _Fields:
        return _Fields(self.get(key, dict), self.at(key))

    def objects(self, key: str) -> Iterator[_Fields]:
        for index, item in enumerate(self.get(key, list)):
            yield _Fields(item, f"{self.at(key)}[{index}]")

    def member(self, key: str, enum: type[_E]) -> _E:
        return _member(self.get(key, str), enum, self.at(key))

    def opt_member(self, key: str, enum: type[_E]) -> _E | None:
        text = self.opt(key, str)
        return None if text is None else _member(text, enum, self.at(key))

    def opt_price(self, key: str) -> Price | None:
        text = self.opt(key, str)
        return None if text is None else _parse_price(text, self.at(key))

    def opt_decimal(self, key: str) -> Decimal | None:
        text = self.opt(key, str)
        if text is None:
            return None
        if not _DECIMAL_TEXT.fullmatch(text):
            raise BusDecodeError(f"{self.at(key)}: not a decimal {text!r}")
        return Decimal(text)

    def time(self, key: str) -> datetime:
        return _parse_time(self.get(key, str), self.at(key))

    def opt_time(self, key: str) -> datetime | None:
        text = self.opt(key, str)
        return None if text is None else _parse_time(text, self.at(key))


_JSON_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    dict: "an object",
    list: "an array",
}


def _kind(value: object) -> str:
    """The JSON name of ``value``'s type, for error messages."""
    return "null" if value is None else _JSON_NAMES.get(type(value), type(value).__name__)


def _typed(value: object, kind: type[_T], path: str) -> _T:
    # bool is an int to isinstance; a JSON true must not pass for a number.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BusDecodeError(f"{path}: expected {_JSON_NAMES[kind]}, got {_kind(value)}")
    return value


def _member(text: str, enum: type[_E], path: str) -> _E:
    try:
        return enum(text)
    except ValueError:
        raise BusDecodeError(f"{path}: not a {enum.__name__}: {text!r}") from None


def _parse_price(text: str, path: str) -> Price:
    ratio = _RATIO.fullmatch(text)
    if ratio is None and not _DECIMAL_ODDS.fullmatch(text):
        raise BusDecodeError(f"{path}: not a price {text!r}")
    try:
        if ratio is None:
            return Price(Fraction(text))
        exact, numerator, denominator = ratio.groups()
        value = Fraction(int(numerator), int(denominator))
        return Price(value) if exact else Price(1 + value, fractional=True)
    except (ValueError, ZeroDivisionError) as exc:
        raise BusDecodeError(f"{path}: bad price {text!r}: {exc}") from None


def _parse_time(text: str, path: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BusDecodeError(f"{path}: not an ISO date-time {text!r}") from None
    if moment.utcoffset() is None:
        raise BusDecodeError(f"{path}: date-time without an offset {text!r}")
    return moment


def _decode_update(record: _Fields) -> BookUpdate:
    market_id, seq = record.get("marketId", str), record.get("seq", int)
    book = record.obj("book")
    prices = book.obj("prices")
    market_book = MarketBook(
        _decode_definition(market_id, book),
        MappingProxyType({sid: prices.opt_price(sid) for sid in prices}),
        seq,
        record.get("publishedAt", int),
        _material_seq(record, seq),
    )
    return BookUpdate(market_book, _decode_delta(market_id, seq, record.obj("delta")))


def _material_seq(record: _Fields, seq: int) -> int:
    """The seq of the last material change (B10); a record without it counts as changed now."""
    material = record.opt("materialSeq", int)
    return seq if material is None else material


def _decode_definition(market_id: str, f: _Fields) -> MarketDefinition:
    each_way = None if f.opt("eachWay", dict) is None else _decode_each_way(f.obj("eachWay"))
    return MarketDefinition(
        market_id=market_id,
        event_id=f.get("eventId", str),
        event_name=f.get("eventName", str),
        name=f.get("name", str),
        market_type=f.get("marketType", str),
        sport=f.get("sport", str),
        start_time=f.time("startTime"),
        status=f.member("status", MarketStatus),
        in_play=f.get("inPlay", bool),
        bet_delay_ms=f.get("betDelayMs", int),
        selections=tuple(_decode_selection(s) for s in f.objects("selections")),
        competition=f.opt("competition", str),
        country=f.opt("country", str),
        each_way=each_way,
        number_of_winners=f.opt("numberOfWinners", int),
        ladder=f.member("ladder", LadderType),
        fractional=f.get("fractional", bool),
        version=f.get("version", int),
    )


def _decode_each_way(f: _Fields) -> EachWayTerms:
    text = f.get("fraction", str)
    if not _SIGNED_RATIO.fullmatch(text):
        raise BusDecodeError(f"{f.at('fraction')}: not a fraction {text!r}")
    try:
        fraction = Fraction(text)
    except ZeroDivisionError:
        raise BusDecodeError(f"{f.at('fraction')}: zero denominator {text!r}") from None
    return EachWayTerms(f.get("places", int), fraction)


def _decode_selection(f: _Fields) -> SelectionDefinition:
    return SelectionDefinition(
        selection_id=f.get("selectionId", str),
        name=f.get("name", str),
        handicap=f.opt_decimal("handicap"),
        status=f.member("status", SelectionStatus),
        sort_priority=f.get("sortPriority", int),
        adjustment_factor=f.opt_decimal("adjustmentFactor"),
        removal_date=f.opt_time("removalDate"),
    )


def _decode_delta(market_id: str, seq: int, f: _Fields) -> MarketDelta:
    changes = () if f.opt("selections", list) is None else f.objects("selections")
    return MarketDelta(
        market_id,
        seq,
        status=f.opt_member("status", MarketStatus),
        in_play=f.opt("inPlay", bool),
        bet_delay_ms=f.opt("betDelayMs", int),
        selections=tuple(_decode_change(c) for c in changes),
        resync=f.opt("resync", bool) or False,
    )


def _decode_change(f: _Fields) -> SelectionChange:
    return SelectionChange(
        f.get("selectionId", str),
        f.opt_price("price"),
        f.has("price"),
        f.opt_member("status", SelectionStatus),
    )
