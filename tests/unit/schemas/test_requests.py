"""Request schemas accept exactly what schemas/requests.py accepts, case by case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from schemas.errors import ApiError, ErrorCode
from schemas.json_schemas import validator
from schemas.requests import (
    MAX_PAYLOAD_BYTES,
    CatalogEventsRequest,
    CatalogMarketRequest,
    OddsStreamRequest,
    decode_object,
)

Decoder = Callable[[bytes | None], object]

ROUTES: dict[str, tuple[str, Decoder]] = {
    "odds.stream": ("odds-stream-request", OddsStreamRequest.decode),
    "catalog.events": ("catalog-events-request", CatalogEventsRequest.decode),
    "catalog.market": ("catalog-market-request", CatalogMarketRequest.decode),
}

ACCEPT, REJECT = True, False

CASES: list[tuple[str, Any, bool]] = [
    # odds.stream
    ("odds.stream", None, ACCEPT),  # an empty payload is {}
    ("odds.stream", {}, ACCEPT),
    (
        "odds.stream",
        {
            "marketIds": ["1.242972279"],
            "eventIds": ["34258638"],
            "sport": "football",
            "inPlayOnly": True,
            "conflateMs": 250,
            "oddsFormat": "hongkong",
            "resume": "e5c0d31a.17",
        },
        ACCEPT,
    ),
    ("odds.stream", {"marketIds": [], "conflateMs": 60_000}, ACCEPT),
    ("odds.stream", {"sport": None, "oddsFormat": None, "resume": None}, ACCEPT),
    ("odds.stream", {"betslip": [1, 2], "marketIds": ["1.1"]}, ACCEPT),  # unknown field
    ("odds.stream", {"marketIds": "1.1"}, REJECT),
    ("odds.stream", {"marketIds": [1]}, REJECT),
    ("odds.stream", {"eventIds": [""]}, REJECT),
    ("odds.stream", {"marketIds": [f"1.{i}" for i in range(1001)]}, REJECT),
    ("odds.stream", {"sport": ""}, REJECT),
    ("odds.stream", {"sport": "x" * 201}, REJECT),
    ("odds.stream", {"inPlayOnly": "true"}, REJECT),
    ("odds.stream", {"inPlayOnly": 1}, REJECT),
    ("odds.stream", {"conflateMs": -1}, REJECT),
    ("odds.stream", {"conflateMs": 60_001}, REJECT),
    ("odds.stream", {"conflateMs": "250"}, REJECT),
    ("odds.stream", {"conflateMs": True}, REJECT),
    ("odds.stream", {"oddsFormat": "Decimal"}, REJECT),
    ("odds.stream", {"oddsFormat": "hk"}, REJECT),
    ("odds.stream", {"oddsFormat": ["decimal"]}, REJECT),
    ("odds.stream", {"resume": 17}, REJECT),
    ("odds.stream", [], REJECT),
    ("odds.stream", "odds", REJECT),
    # catalog.events
    ("catalog.events", None, ACCEPT),
    ("catalog.events", {"sport": "football", "inPlay": False, "status": "SUSPENDED"}, ACCEPT),
    ("catalog.events", {"status": None, "inPlay": None, "page": 2}, ACCEPT),
    ("catalog.events", {"status": "open"}, REJECT),
    ("catalog.events", {"status": "LIVE"}, REJECT),
    ("catalog.events", {"status": 1}, REJECT),
    ("catalog.events", {"inPlay": "false"}, REJECT),
    ("catalog.events", {"sport": ""}, REJECT),
    ("catalog.events", 42, REJECT),
    # catalog.market
    ("catalog.market", {"marketId": "1.242972279"}, ACCEPT),
    ("catalog.market", {"marketId": "1.242972279", "oddsFormat": "american"}, ACCEPT),
    ("catalog.market", {"marketId": "1.1", "oddsFormat": None, "seq": 3}, ACCEPT),
    ("catalog.market", None, REJECT),
    ("catalog.market", {}, REJECT),
    ("catalog.market", {"marketId": None}, REJECT),
    ("catalog.market", {"marketId": 1.1}, REJECT),
    ("catalog.market", {"marketId": ""}, REJECT),
    ("catalog.market", {"marketId": "1.1", "oddsFormat": "fraction"}, REJECT),
    ("catalog.market", {"marketId": "1.1", "oddsFormat": 2}, REJECT),
]


def decoded(decode: Decoder, payload: bytes) -> ApiError | None:
    try:
        decode(payload)
    except ApiError as error:
        return error
    return None


@pytest.mark.parametrize(("route", "body", "expected"), CASES)
def test_decoder_and_schema_agree(route: str, body: Any, expected: bool) -> None:
    schema, decode = ROUTES[route]
    payload = b"" if body is None else orjson.dumps(body)
    instance = decode_object(payload) if isinstance(body, dict) or body is None else body

    error = decoded(decode, payload)
    valid = validator(schema).is_valid(instance)

    assert (error is None) == expected, error
    assert valid == expected
    if error is not None:
        assert error.code is ErrorCode.INVALID_REQUEST
        validator("error").validate(orjson.loads(error.to_json()))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b'{"conflateMs": 250.0}', "an integer written with a fraction"),
        (b'{"conflateMs": 1e2}', "an integer written with an exponent"),
        (orjson.dumps({"marketIds": ["x" * 200] * 400}), "a payload over 64 KiB"),
    ],
)
def test_what_only_the_decoder_can_see(payload: bytes, why: str) -> None:
    """Documented in the schema's description and docs/WIRE.md: JSON Schema sees values, not
    their spelling or size, so these pass the schema and are still INVALID_REQUEST."""
    error = decoded(OddsStreamRequest.decode, payload)
    body = orjson.loads(payload)

    assert error is not None, why
    assert error.code is ErrorCode.INVALID_REQUEST
    assert validator("odds-stream-request").is_valid(body), why
    if "marketIds" in body:
        assert len(payload) > MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("payload", [b"{", b"NaN", b'{"conflateMs": Infinity}'])
def test_what_is_not_json_is_rejected_before_any_schema(payload: bytes) -> None:
    error = decoded(OddsStreamRequest.decode, payload)

    assert error is not None
    assert error.code is ErrorCode.INVALID_REQUEST
