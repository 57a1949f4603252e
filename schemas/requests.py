"""Requests decoded from JSON into frozen values (STYLE.md 2).

Unknown fields are ignored; wrong types, missing required fields, non-finite
numbers and oversized payloads are an ``INVALID_REQUEST`` ApiError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.errors import invalid
from sportsbook_core.odds_formats import OddsFormat

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_IDS = 1000
MAX_CONFLATE_MS = 60_000
MAX_TEXT = 200


def decode_object(data: bytes | None) -> Mapping[str, Any]:
    """A JSON object from a payload; an empty payload is ``{}``."""
    if not data:
        return {}
    if len(data) > MAX_PAYLOAD_BYTES:
        raise invalid(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"payload is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise invalid("payload must be a JSON object")
    return value


def _optional_bool(body: Mapping[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(f"{name} must be a boolean")
    return value


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise invalid(f"{name} must be a non-empty string of at most {MAX_TEXT} characters")
    return value


def _required_text(body: Mapping[str, Any], name: str) -> str:
    value = _optional_text(body, name)
    if value is None:
        raise invalid(f"{name} is required")
    return value


def _optional_ids(body: Mapping[str, Any], name: str) -> frozenset[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_IDS:
        raise invalid(f"{name} must be a list of at most {MAX_IDS} strings")
    if not all(isinstance(item, str) and 0 < len(item) <= MAX_TEXT for item in value):
        raise invalid(f"{name} must contain only non-empty strings")
    return frozenset(value)


def _optional_int(body: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(f"{name} must be an integer from {low} to {high}")
    return value


def _odds_format(body: Mapping[str, Any]) -> OddsFormat | None:
    value = body.get("oddsFormat")
    if value is None:
        return None
    try:
        return OddsFormat(value)
    except ValueError:
        names = ", ".join(f.value for f in OddsFormat)
        raise invalid(f"oddsFormat must be one of {names}") from None


@dataclass(frozen=True, slots=True)
class OddsStreamRequest:
    """``odds.stream``: which markets, how, and where to resume from."""

    market_ids: frozenset[str] | None = None
    event_ids: frozenset[str] | None = None
    sport: str | None = None
    in_play_only: bool = False
    conflate_ms: int = 0
    odds_format: OddsFormat | None = None
    resume: str | None = None

    @classmethod
    def decode(cls, data: bytes | None) -> OddsStreamRequest:
        body = decode_object(data)
        return cls(
            market_ids=_optional_ids(body, "marketIds"),
            event_ids=_optional_ids(body, "eventIds"),
            sport=_optional_text(body, "sport"),
            in_play_only=bool(_optional_bool(body, "inPlayOnly")),
            conflate_ms=_optional_int(body, "conflateMs", 0, MAX_CONFLATE_MS) or 0,
            odds_format=_odds_format(body),
            resume=_optional_text(body, "resume"),
        )


@dataclass(frozen=True, slots=True)
class CatalogEventsRequest:
    """``catalog.events``: optional filters."""

    sport: str | None = None
    in_play: bool | None = None
    status: str | None = None

    @classmethod
    def decode(cls, data: bytes | None) -> CatalogEventsRequest:
        body = decode_object(data)
        status = _optional_text(body, "status")
        if status is not None and status not in {"OPEN", "SUSPENDED", "CLOSED", "SETTLED"}:
            raise invalid("status must be OPEN, SUSPENDED, CLOSED or SETTLED")
        return cls(_optional_text(body, "sport"), _optional_bool(body, "inPlay"), status)


@dataclass(frozen=True, slots=True)
class CatalogMarketRequest:
    """``catalog.market``: one market's snapshot."""

    market_id: str
    odds_format: OddsFormat | None = None

    @classmethod
    def decode(cls, data: bytes | None) -> CatalogMarketRequest:
        body = decode_object(data)
        return cls(_required_text(body, "marketId"), _odds_format(body))
