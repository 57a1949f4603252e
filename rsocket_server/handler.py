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

from rsocket_server.account_stream import AccountStreamPublisher
from rsocket_server.auth import ANONYMOUS, Principal, TokenDirectory
from rsocket_server.betting import BettingServices, Permit
from rsocket_server.catalog import events_response
from rsocket_server.metadata import COMPOSITE, JSON, bearer_token_of, route_of
from rsocket_server.odds_stream import OddsStreamPublisher
from rsocket_server.settlement import trader_settle
from rsocket_server.transport_guard import DEFAULT_LEASE, LeaseTerms
from schemas.bets import PlaceBetRequest, decode_bet_id, decode_bets_list, decode_place_bet
from schemas.errors import ApiError, ErrorCode
from schemas.requests import (
    CatalogEventsRequest,
    CatalogMarketRequest,
    OddsStreamRequest,
    decode_object,
)
from streams.odds_hub import OddsHub

log = logging.getLogger("sportsbook.rsocket")

Responder = Callable[["SportsbookHandler", Payload], Awaitable[bytes]]


def _encoding_name(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SportsbookHandler(BaseRequestHandler):
    """One per connection: knows who is on it and serves the routes."""

    def __init__(
        self, hub: OddsHub, tokens: TokenDirectory, betting: BettingServices | None = None
    ) -> None:
        super().__init__()
        self.hub = hub
        self.tokens = tokens
        self.betting = betting
        self.principal: Principal = ANONYMOUS

    def account_id(self) -> str:
        """The connection's account; anonymous connections see nothing personal."""
        if self.principal.account_id is None:
            raise ApiError(ErrorCode.UNAUTHENTICATED, "sign in (a bearer token in SETUP) first")
        return self.principal.account_id

    def services(self) -> BettingServices:
        if self.betting is None:
            raise ApiError(ErrorCode.UNAVAILABLE, "betting is not enabled on this server")
        return self.betting

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
        account = await self.tokens.account_for(token)
        if account is None:
            raise RSocketProtocolError(
                RsErrorCode.REJECTED_SETUP,
                data=str(ApiError(ErrorCode.UNAUTHENTICATED, "unknown bearer token")),
            )
        self.principal = Principal(account)

    async def lease_terms(self) -> LeaseTerms:
        """LEASE (asked for in SETUP): the account's bets/s, granted per 1 s window.

        Windows do not overlap, so a client that honours the lease starts at
        most ``2 × rate`` requests in any second: within the bet bucket's burst,
        so its bets are never RATE_LIMITED (docs/WIRE.md, LEASE).
        """
        if self.betting is None:
            return DEFAULT_LEASE
        rate = self.betting.placement.config.account_rate_per_s
        if self.principal.account_id is not None:
            account = await self.betting.store.account(self.principal.account_id)
            if account is not None:
                rate = float(account.limits.get("betsPerSecond", rate))
        return LeaseTerms.for_rate(rate)

    _loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        """The connection's loop, remembered (``get_running_loop()`` costs a
        ``getpid()`` per call)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    _responding: set[asyncio.Task[None]] | None = None
    """The request-response routes running now (strong references; made on first use)."""

    async def request_response(self, payload: Payload) -> asyncio.Future[Payload]:
        """Returns the answer's future at once and runs the route in a task.

        rsocket-py's receiver awaits this method before it reads the next frame, so
        awaiting the route here would serve one request at a time per connection (a
        client's pipelined bets queued behind each other, KEEPALIVEs too, admission
        never seeing them). The task completes the future; a CANCEL frame or the
        connection closing cancels the future (the responder's ``dispose``), and that
        cancels the task. Only ``bets.place`` may wait here first, for a place among
        the placements in flight (``BettingConfig.admission_wait_ms``, then
        RATE_LIMITED): the connection's reader pauses meanwhile, which is the
        back-pressure on a client that sends faster than bets are made durable."""
        permit: Permit | None = None
        work: Awaitable[bytes] | None = None
        try:
            route = route_of(payload.metadata)
            responder = RESPONSE_ROUTES.get(route)
            if responder is None:
                raise ApiError(ErrorCode.UNKNOWN_ROUTE, f"no request-response route {route!r}")
            if route == "bets.place":
                permit = await _bets_place_admission(self)
                request = _decoded_bet(payload, permit)
                soon = _bets_place_soon(self, request, permit)
                if soon is not None:
                    return soon
                work = _bets_place_decoded(self, request, permit)
        except ApiError as error:
            return create_error_future(error)
        except Exception:
            log.exception("request-response failed")
            return create_error_future(ApiError(ErrorCode.INTERNAL, "internal error"))
        future: asyncio.Future[Payload] = create_future()
        if work is None:
            work = responder(self, payload)
        task = asyncio.create_task(_respond(work, future))
        if permit is not None:  # released however the task ends (also if it never started)
            task.add_done_callback(lambda _: permit.release())
        if self._responding is None:
            self._responding = set()
        self._responding.add(task)
        task.add_done_callback(self._responding.discard)
        future.add_done_callback(lambda done: task.cancel() if done.cancelled() else None)
        return future

    async def request_stream(self, payload: Payload) -> Any:
        try:
            route = route_of(payload.metadata)
            if route == "account.stream":
                services, account_id = self.services(), self.account_id()
                return AccountStreamPublisher(services.events, account_id)
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


async def _respond(work: Awaitable[bytes], future: asyncio.Future[Payload]) -> None:
    """Runs one route and completes its future: the answer, or the error frame's ApiError."""
    try:
        body = await work
    except ApiError as error:
        outcome: Payload | ApiError = error
    except asyncio.CancelledError:
        future.cancel()
        raise
    except Exception:
        log.exception("request-response failed")
        outcome = ApiError(ErrorCode.INTERNAL, "internal error")
    else:
        outcome = Payload(body)
    if future.done():  # cancelled meanwhile: nobody is waiting for the answer
        return
    if isinstance(outcome, ApiError):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


async def _catalog_events(handler: SportsbookHandler, payload: Payload) -> bytes:
    query = CatalogEventsRequest.decode(payload.data)
    return orjson.dumps(events_response(handler.hub.books(), query))


async def _catalog_market(handler: SportsbookHandler, payload: Payload) -> bytes:
    query = CatalogMarketRequest.decode(payload.data)
    snapshot = handler.hub.snapshot_json(query.market_id, query.odds_format)
    if snapshot is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no market {query.market_id!r}")
    return snapshot


async def _bets_place_admission(handler: SportsbookHandler) -> Permit:
    """As the request arrives, before any work: who is asking, then a place among the
    placements in flight (waiting briefly for one, in the connection's reader)."""
    services, _ = handler.services(), handler.account_id()
    return await services.placement.admit()


async def _bets_place(
    handler: SportsbookHandler, payload: Payload, permit: Permit | None = None
) -> bytes:
    services, account_id = handler.services(), handler.account_id()
    request = decode_place_bet(decode_object(payload.data))
    return orjson.dumps(await services.placement.place(account_id, request, permit))


def _decoded_bet(payload: Payload, permit: Permit) -> PlaceBetRequest:
    """The bet, decoded; a malformed one gives its place back at once."""
    try:
        return decode_place_bet(decode_object(payload.data))
    except BaseException:
        permit.release()
        raise


async def _bets_place_decoded(
    handler: SportsbookHandler, request: PlaceBetRequest, permit: Permit
) -> bytes:
    services, account_id = handler.services(), handler.account_id()
    return orjson.dumps(await services.placement.place(account_id, request, permit))


def _bets_place_soon(
    handler: SportsbookHandler, request: PlaceBetRequest, permit: Permit
) -> asyncio.Future[Payload] | None:
    """``bets.place`` without a task when the placement needs no wait but the
    store's (:meth:`PlacementService.place_soon`): the answer's future is completed
    from the store's. None: not taken, run :func:`_bets_place_decoded` in a task.
    Errors as :func:`_respond` maps them; cancelling the answer (a CANCEL frame, the
    connection closing) withdraws the bet if it is not written yet, as cancelling
    the task would."""
    services, account_id = handler.services(), handler.account_id()
    answer: asyncio.Future[Payload] = handler.loop().create_future()

    def settle(outcome: dict[str, Any] | BaseException) -> None:
        if answer.done():  # cancelled meanwhile: nobody is waiting for the answer
            return
        if isinstance(outcome, dict):
            answer.set_result(Payload(orjson.dumps(outcome)))
        elif isinstance(outcome, asyncio.CancelledError):  # as _respond: no answer
            answer.cancel()
        elif isinstance(outcome, ApiError):
            answer.set_exception(outcome)
        else:
            log.error("request-response failed", exc_info=outcome)
            answer.set_exception(ApiError(ErrorCode.INTERNAL, "internal error"))

    stored = services.placement.place_soon(account_id, request, permit, settle)
    if stored is False:
        return None
    if isinstance(stored, asyncio.Future):
        answer.add_done_callback(lambda done: stored.cancel() if done.cancelled() else None)
    return answer


async def _bets_get(handler: SportsbookHandler, payload: Payload) -> bytes:
    services, account_id = handler.services(), handler.account_id()
    bet_id = decode_bet_id(decode_object(payload.data))
    bet = await services.store.get_bet(account_id, bet_id)
    if bet is None:  # another account's bet is exactly as unknown as a missing one
        raise ApiError(ErrorCode.NOT_FOUND, f"no bet {bet_id!r}")
    return orjson.dumps({**bet.receipt, "status": bet.status})


async def _bets_list(handler: SportsbookHandler, payload: Payload) -> bytes:
    services, account_id = handler.services(), handler.account_id()
    query = decode_bets_list(decode_object(payload.data))
    try:
        bets, cursor = await services.store.list_bets(
            account_id, query.status, query.limit, query.cursor
        )
    except ValueError as error:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"cursor: {error}") from None
    body: dict[str, Any] = {"bets": [{**b.receipt, "status": b.status} for b in bets]}
    if cursor is not None:
        body["cursor"] = cursor
    return orjson.dumps(body)


async def _account_get(handler: SportsbookHandler, payload: Payload) -> bytes:
    services, account_id = handler.services(), handler.account_id()
    if fields := decode_object(payload.data):  # like every route: bad input is refused
        raise ApiError(ErrorCode.INVALID_REQUEST, f"account.get takes no fields: {sorted(fields)}")
    account = await services.store.account(account_id)
    if account is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such account")
    return orjson.dumps(
        {
            "accountId": account.account_id,
            "currency": account.currency,
            "balance": account.balance,
            "openBets": account.open_bets,
            "limits": dict(account.limits),
        }
    )


async def _trader_settle(handler: SportsbookHandler, payload: Payload) -> bytes:
    services, account_id = handler.services(), handler.account_id()
    if services.settlement is None:
        raise ApiError(ErrorCode.UNAVAILABLE, "settlement is not enabled on this server")
    return await trader_settle(services.settlement, account_id, payload.data)


RESPONSE_ROUTES: dict[str, Responder] = {
    "catalog.events": _catalog_events,
    "catalog.market": _catalog_market,
    "bets.place": _bets_place,
    "bets.get": _bets_get,
    "bets.list": _bets_list,
    "account.get": _account_get,
    "trader.settle": _trader_settle,
}
