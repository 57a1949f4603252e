"""Error payloads: every code, as the ERROR frame's data, and the routes' real errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from rsocket.error_codes import ErrorCode as RsErrorCode
from rsocket.exceptions import RSocketProtocolError
from rsocket.frame import exception_to_error_frame
from rsocket.payload import Payload

from clients.client import route_metadata, setup_metadata
from rsocket_server.auth import StaticTokens
from rsocket_server.handler import SportsbookHandler
from rsocket_server.metadata import COMPOSITE, JSON
from schemas.errors import ApiError, ErrorCode
from schemas.json_schemas import load, validator
from streams.odds_hub import OddsHub


def test_the_schema_lists_exactly_the_server_codes() -> None:
    assert load("error")["properties"]["code"]["enum"] == [code.value for code in ErrorCode]


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_as_application_error_data_validates(code: ErrorCode) -> None:
    frame = exception_to_error_frame(1, ApiError(code, f"{code.value.lower()} happened"))

    assert frame.error_code == RsErrorCode.APPLICATION_ERROR
    data = orjson.loads(frame.data)
    validator("error").validate(data)
    assert data == {"code": code.value, "message": f"{code.value.lower()} happened"}


class Capture:
    """A reactive-streams subscriber that keeps the error of an ErrorStream."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.subscription: Any = None

    def on_subscribe(self, subscription: Any) -> None:
        self.subscription = subscription

    def on_next(self, value: Any, is_complete: bool = False) -> None:
        raise AssertionError(f"unexpected payload {value!r}")

    def on_error(self, exception: BaseException) -> None:
        self.error = exception

    def on_complete(self) -> None:
        raise AssertionError("unexpected completion")


def handler() -> SportsbookHandler:
    return SportsbookHandler(OddsHub("ep"), StaticTokens())


async def response_error(route: str, data: bytes) -> dict[str, Any]:
    future = await handler().request_response(Payload(data, route_metadata(route)))
    with pytest.raises(ApiError) as raised:
        await future
    frame = exception_to_error_frame(1, raised.value)
    assert frame.error_code == RsErrorCode.APPLICATION_ERROR
    body: dict[str, Any] = orjson.loads(frame.data)
    return body


@pytest.mark.parametrize(
    ("route", "data", "code"),
    [
        ("catalog.market", b'{"marketId": "1.404"}', "NOT_FOUND"),
        ("catalog.market", b"{}", "INVALID_REQUEST"),
        ("catalog.events", b'{"status": "open"}', "INVALID_REQUEST"),
        ("catalog.events", b"[1,", "INVALID_REQUEST"),
        ("bets.place", b"{}", "UNAVAILABLE"),  # this handler has no ledger
        ("bets.cancel", b"{}", "UNKNOWN_ROUTE"),
        ("odds.stream", b"{}", "UNKNOWN_ROUTE"),  # a stream route asked as request-response
    ],
)
async def test_request_response_errors_validate(route: str, data: bytes, code: str) -> None:
    body = await response_error(route, data)

    validator("error").validate(body)
    assert body["code"] == code


@pytest.mark.parametrize(
    ("route", "data", "code"),
    [
        ("odds.stream", b'{"oddsFormat": "decimals"}', "INVALID_REQUEST"),
        ("odds.stream", b'{"conflateMs": 1.5}', "INVALID_REQUEST"),
        ("account.stream", b"{}", "UNAVAILABLE"),
        ("bets.stream", b"{}", "UNKNOWN_ROUTE"),
    ],
)
async def test_request_stream_errors_validate(route: str, data: bytes, code: str) -> None:
    stream = await handler().request_stream(Payload(data, route_metadata(route)))
    capture = Capture()
    stream.subscribe(capture)
    capture.subscription.request(1)

    assert isinstance(capture.error, ApiError)
    body = orjson.loads(exception_to_error_frame(1, capture.error).data)
    validator("error").validate(body)
    assert body["code"] == code


@pytest.mark.parametrize(
    "body",
    [
        {"code": "NOPE", "message": "x"},
        {"code": "INTERNAL"},
        {"code": "INTERNAL", "message": "internal error", "traceback": "Traceback …"},
        {"code": "invalid_request", "message": "x"},
        {"code": "NOT_FOUND", "message": None},
    ],
)
def test_malformed_error_payloads_are_rejected(body: dict[str, Any]) -> None:
    assert not validator("error").is_valid(body)


async def test_an_unknown_bearer_token_is_refused_at_setup_with_an_error_body() -> None:
    """Not an APPLICATION_ERROR (SETUP has no stream): REJECTED_SETUP, data in error.json form."""
    payload = Payload(None, setup_metadata("no-such-token"))

    with pytest.raises(RSocketProtocolError) as raised:
        # rsocket-py's frame parser hands the MIME types over as bytearrays.
        await handler().on_setup(bytearray(JSON), bytearray(COMPOSITE), payload)

    assert raised.value.error_code == RsErrorCode.REJECTED_SETUP
    body = orjson.loads(raised.value.data)
    validator("error").validate(body)
    assert body["code"] == "UNAUTHENTICATED"
