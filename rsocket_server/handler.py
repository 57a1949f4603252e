"""Routes: decode the request, call the hub or core, encode; errors per PROTOCOL.md."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from rsocket.error_codes import ErrorCode as RsErrorCode
from rsocket.exceptions import RSocketProtocolError
from rsocket.helpers import create_error_future, create_future
from rsocket.payload import Payload
from rsocket.request_handler import BaseRequestHandler
from rsocket.streams.error_stream import ErrorStream

from rsocket_server.auth import ANONYMOUS, Principal, TokenDirectory
from rsocket_server.catalog import events_response
from rsocket_server.metadata import COMPOSITE, JSON, bearer_token_of, route_of
from rsocket_server.odds_stream import OddsStreamPublisher
from schemas.errors import ApiError, ErrorCode
from schemas.requests import CatalogEventsRequest, CatalogMarketRequest, OddsStreamRequest
from streams.odds_hub import OddsHub

log = logging.getLogger("sportsbook.rsocket")

Responder = Callable[["SportsbookHandler", Payload], Awaitable[bytes]]


def _encoding_name(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SportsbookHandler(BaseRequestHandler):
    """One per connection: knows who is on it and serves the routes."""

    def __init__(self, hub: OddsHub, tokens: TokenDirectory) -> None:
        super().__init__()
        self.hub = hub
        self.tokens = tokens
        self.principal: Principal = ANONYMOUS

    async def on_setup(
        self, data_encoding: bytes, metadata_encoding: bytes, payload: Payload
    ) -> None:
        if _encoding_name(data_encoding) != JSON:
            raise RSocketProtocolError(
                RsErrorCode.UNSUPPORTED_SETUP, data="data MIME must be application/json"
            )
        if _encoding_name(metadata_encoding) != COMPOSITE:
            raise RSocketProtocolError(
                RsErrorCode.UNSUPPORTED_SETUP, data=f"metadata MIME must be {COMPOSITE}"
            )
        token = bearer_token_of(payload.metadata)
        if token is None:
            return
        account = self.tokens.account_for(token)
        if account is None:
            raise RSocketProtocolError(
                RsErrorCode.REJECTED_SETUP,
                data=str(ApiError(ErrorCode.UNAUTHENTICATED, "unknown bearer token")),
            )
        self.principal = Principal(account)

    async def request_response(self, payload: Payload) -> asyncio.Future[Payload]:
        try:
            route = route_of(payload.metadata)
            responder = RESPONSE_ROUTES.get(route)
            if responder is None:
                raise ApiError(ErrorCode.UNKNOWN_ROUTE, f"no request-response route {route!r}")
            return create_future(Payload(await responder(self, payload)))
        except ApiError as error:
            return create_error_future(error)
        except Exception:
            log.exception("request-response failed")
            return create_error_future(ApiError(ErrorCode.INTERNAL, "internal error"))

    async def request_stream(self, payload: Payload) -> Any:
        try:
            route = route_of(payload.metadata)
            if route != "odds.stream":
                raise ApiError(ErrorCode.UNKNOWN_ROUTE, f"no request-stream route {route!r}")
            request = OddsStreamRequest.decode(payload.data)
            await self.hub.catch_up_to(request.resume)
            return OddsStreamPublisher(self.hub, request)
        except ApiError as error:
            return ErrorStream(error)
        except Exception:
            log.exception("request-stream failed")
            return ErrorStream(ApiError(ErrorCode.INTERNAL, "internal error"))

    async def request_channel(self, payload: Payload) -> Any:
        """No channel routes yet (betslip.channel is later): UNKNOWN_ROUTE, as for the others."""
        try:
            route = route_of(payload.metadata)
        except ApiError as error:
            return ErrorStream(error), None
        return ErrorStream(
            ApiError(ErrorCode.UNKNOWN_ROUTE, f"no request-channel route {route!r}")
        ), None

    async def request_fire_and_forget(self, payload: Payload) -> None:
        return None

    async def on_metadata_push(self, metadata: Payload) -> None:
        return None


async def _catalog_events(handler: SportsbookHandler, payload: Payload) -> bytes:
    query = CatalogEventsRequest.decode(payload.data)
    return orjson.dumps(events_response(handler.hub.books(), query))


async def _catalog_market(handler: SportsbookHandler, payload: Payload) -> bytes:
    query = CatalogMarketRequest.decode(payload.data)
    snapshot = handler.hub.snapshot_json(query.market_id, query.odds_format)
    if snapshot is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no market {query.market_id!r}")
    return snapshot


RESPONSE_ROUTES: dict[str, Responder] = {
    "catalog.events": _catalog_events,
    "catalog.market": _catalog_market,
}
