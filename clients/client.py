"""An async client for partners and load tests.

    async with SportsbookClient.connect("ws://127.0.0.1:8080/rsocket") as client:
        events = await client.events()
        async with client.odds_stream(market_ids=["1.2"], window=8) as stream:
            async for frame in stream:
                ...

``odds_stream`` keeps a request-n *window*: it asks for ``window`` frames, and
asks for more only as the caller consumes them, so the server never sends more
than the caller can hold (the local queue can never overflow).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import aiohttp
import orjson
from reactivestreams.subscriber import Subscriber
from reactivestreams.subscription import Subscription
from rsocket.error_codes import ErrorCode
from rsocket.exceptions import RSocketProtocolError
from rsocket.extensions.authentication import AuthenticationBearer
from rsocket.extensions.authentication_content import AuthenticationContent
from rsocket.extensions.composite_metadata import CompositeMetadata
from rsocket.extensions.mimetypes import WellKnownMimeTypes
from rsocket.extensions.routing import RoutingMetadata
from rsocket.helpers import single_transport_provider
from rsocket.payload import Payload
from rsocket.request_handler import BaseRequestHandler
from rsocket.rsocket_client import RSocketClient
from rsocket.transports.aiohttp_websocket import TransportAioHttpClient
from rsocket.transports.tcp import TransportTCP

DEFAULT_URL = "tcp://127.0.0.1:7878"
DEFAULT_TCP_PORT = 7878
DEFAULT_CONNECT_TIMEOUT_S = 10.0
URL_SCHEMES = ("tcp", "ws", "wss", "http", "https")
URL_HINT = "use tcp://HOST:PORT or ws://HOST:PORT/rsocket"


def check_url(url: str) -> str:
    """``url`` if the client can connect to it, else ValueError saying why."""
    parsed = urlparse(url)
    if parsed.scheme not in URL_SCHEMES:
        raise ValueError(f"unsupported URL {url!r}: {URL_HINT}")
    if not parsed.hostname:
        raise ValueError(f"no host in URL {url!r}: {URL_HINT}")
    try:
        parsed.port  # noqa: B018 - urllib checks the port only when it is read
    except ValueError:
        raise ValueError(f"invalid port in URL {url!r}: {URL_HINT}") from None
    return url


class ConnectFailed(ConnectionError):
    """No RSocket connection: the transport could not be opened, or the server
    dropped it. ``str()`` is the whole one-line explanation."""


class _QuietLateFrames(logging.Filter):
    """rsocket-py warns "Dropping frame from unknown stream N" for every frame
    already in flight when a stream is cancelled: expected, not an error. Let
    it through only when the ``pyrsocket`` logger is at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "Dropping frame from unknown stream" not in str(record.msg):
            return True
        return logging.getLogger("pyrsocket").isEnabledFor(logging.DEBUG)


def _quiet_late_frames() -> None:
    rsocket_log = logging.getLogger("pyrsocket")
    if not any(isinstance(f, _QuietLateFrames) for f in rsocket_log.filters):
        rsocket_log.addFilter(_QuietLateFrames())


_quiet_late_frames()


class SportsbookError(Exception):
    """An error the server answered with: ``code`` per PROTOCOL.md."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_exception(cls, exc: BaseException) -> SportsbookError:
        text = str(exc)
        try:
            body = orjson.loads(text)
            return cls(str(body["code"]), str(body.get("message", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return cls("PROTOCOL", text)


def route_metadata(route: str) -> bytes:
    return CompositeMetadata([RoutingMetadata([route])]).serialize()


def setup_metadata(token: str | None) -> bytes | None:
    if token is None:
        return None
    return CompositeMetadata([AuthenticationContent(AuthenticationBearer(token))]).serialize()


def _encode(body: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


class _ConnectionErrors(BaseRequestHandler):
    """An ERROR on stream 0 (the server refused the SETUP, e.g. an unknown token):
    remembered, and every open request and stream is failed at once. Over
    WebSocket rsocket-py would otherwise wait for ever on a socket the server
    has already closed."""

    def __init__(self) -> None:
        self.refused: SportsbookError | None = None
        self.rsocket: RSocketClient | None = None

    async def on_error(self, error_code: ErrorCode, payload: Payload) -> None:
        text = (payload.data or b"").decode("utf-8", "replace")
        refused = SportsbookError.from_exception(Exception(text))
        if refused.code == "PROTOCOL":  # not our JSON error body
            refused = SportsbookError(error_code.name, text)
        self.refused = refused
        if self.rsocket is not None:
            self.rsocket.stop_all_streams(error_code, payload.data or b"")


class SportsbookClient:
    def __init__(
        self,
        rsocket: RSocketClient,
        url: str = DEFAULT_URL,
        errors: _ConnectionErrors | None = None,
    ) -> None:
        self._rsocket = rsocket
        self._url = url
        self._answered = False
        self._errors = errors or _ConnectionErrors()
        self._errors.rsocket = rsocket

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        token: str | None = None,
        keepalive: timedelta = timedelta(seconds=5),
        lifetime: timedelta = timedelta(seconds=25),
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> AsyncIterator[SportsbookClient]:
        """Raises ConnectFailed when the server cannot be reached within
        ``connect_timeout`` seconds (refused, unknown host, HTTP error on the
        WebSocket upgrade, no answer)."""
        async with contextlib.AsyncExitStack() as cleanup:
            transport = await _transport_for(check_url(url), connect_timeout, cleanup)
            errors = _ConnectionErrors()
            client = RSocketClient(
                single_transport_provider(transport),
                data_encoding=WellKnownMimeTypes.APPLICATION_JSON,
                metadata_encoding=WellKnownMimeTypes.MESSAGE_RSOCKET_COMPOSITE_METADATA,
                setup_payload=Payload(None, setup_metadata(token)),
                keep_alive_period=keepalive,
                max_lifetime_period=lifetime,
                handler_factory=lambda: errors,
            )
            async with client as rsocket:
                yield cls(rsocket, url, errors)

    def _error(self, exc: BaseException) -> Exception:
        """The exception to raise for a failed request or stream."""
        if self._errors.refused is not None:
            return self._errors.refused
        if isinstance(exc, RSocketProtocolError) and exc.error_code == ErrorCode.CONNECTION_ERROR:
            # rsocket-py fails every open request with an empty CONNECTION_ERROR
            # when the connection drops: no answer from the server at all.
            if self._answered:
                return ConnectFailed("the server closed the connection")
            hint = " (is this the RSocket TCP port?)" if self._url.startswith("tcp:") else ""
            return ConnectFailed(f"the server closed the connection during setup{hint}")
        return SportsbookError.from_exception(exc)

    def _got_answer(self) -> None:
        self._answered = True

    async def request(self, route: str, body: dict[str, Any] | None = None) -> Any:
        """A request-response on ``route``; the JSON answer or a SportsbookError."""
        payload = Payload(_encode(body or {}), route_metadata(route))
        if self._errors.refused is not None:
            raise self._errors.refused
        try:
            answer = await self._rsocket.request_response(payload)
        except Exception as exc:
            raise self._error(exc) from None
        self._answered = True
        return orjson.loads(answer.data)

    async def events(
        self, sport: str | None = None, in_play: bool | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        answer = await self.request(
            "catalog.events", {"sport": sport, "inPlay": in_play, "status": status}
        )
        return list(answer["events"])

    async def market(self, market_id: str, odds_format: str | None = None) -> dict[str, Any]:
        return dict(
            await self.request("catalog.market", {"marketId": market_id, "oddsFormat": odds_format})
        )

    def odds_stream(
        self,
        *,
        market_ids: Iterable[str] | None = None,
        event_ids: Iterable[str] | None = None,
        sport: str | None = None,
        in_play_only: bool | None = None,
        conflate_ms: int | None = None,
        odds_format: str | None = None,
        resume: str | None = None,
        window: int = 16,
        raw: bool = False,
    ) -> OddsStream:
        body = {
            "marketIds": None if market_ids is None else list(market_ids),
            "eventIds": None if event_ids is None else list(event_ids),
            "sport": sport,
            "inPlayOnly": in_play_only,
            "conflateMs": conflate_ms,
            "oddsFormat": odds_format,
            "resume": resume,
        }
        return self._stream("odds.stream", _encode(body), window, raw)

    def stream(self, route: str, body: bytes, window: int = 16, raw: bool = False) -> OddsStream:
        """Any request-stream route with a raw JSON body (tests use it for bad input)."""
        return self._stream(route, body, window, raw)

    def channel(self, route: str, body: bytes, window: int = 16) -> OddsStream:
        """A request-channel opened with ``body`` (the server has no channel routes yet)."""
        return self._stream(route, body, window, False, channel=True)

    def _stream(
        self, route: str, body: bytes, window: int, raw: bool, *, channel: bool = False
    ) -> OddsStream:
        return OddsStream(
            self._rsocket,
            body,
            window,
            raw,
            route,
            channel=channel,
            on_error=self._error,
            on_frame=self._got_answer,
        )


async def _transport_for(url: str, limit_s: float, cleanup: contextlib.AsyncExitStack) -> Any:
    """An open transport to ``url`` (ConnectFailed if there is none within ``limit_s``);
    ``cleanup`` closes what it opened."""
    parsed = urlparse(url)
    try:
        async with asyncio.timeout(limit_s):
            if parsed.scheme == "tcp":
                reader, writer = await asyncio.open_connection(
                    parsed.hostname or "127.0.0.1",
                    parsed.port or DEFAULT_TCP_PORT,
                    limit=1024 * 1024,
                )
                return TransportTCP(reader, writer, read_buffer_size=64 * 1024)
            # rsocket-py would open the WebSocket inside RSocketClient.connect(),
            # which logs a failure and carries on with a client that never answers:
            # open it here so a wrong address fails at once.
            session = await cleanup.enter_async_context(aiohttp.ClientSession())
            websocket = await cleanup.enter_async_context(
                session.ws_connect(url.replace("http", "ws", 1))
            )
            return TransportAioHttpClient(websocket=websocket)
    except TimeoutError:
        raise ConnectFailed(
            f"cannot reach the server at {url}: no answer within {limit_s:g} s"
        ) from None
    except aiohttp.WSServerHandshakeError as exc:
        raise ConnectFailed(
            f"cannot reach the server at {url}: HTTP {exc.status} instead of a WebSocket upgrade "
            "(the RSocket endpoint is ws://HOST:PORT/rsocket)"
        ) from None
    except aiohttp.ClientConnectorError as exc:
        raise ConnectFailed(f"cannot reach the server at {url}: {_reason(exc.os_error)}") from None
    except aiohttp.ClientError as exc:
        detail = str(exc) or type(exc).__name__
        raise ConnectFailed(
            f"cannot reach the server at {url}: not a WebSocket server ({detail})"
        ) from None
    except OSError as exc:
        raise ConnectFailed(f"cannot reach the server at {url}: {_reason(exc)}") from None


def _reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return f"unknown host ({error.strerror})"
    if error.errno is not None and error.errno in errno.errorcode:
        return os.strerror(error.errno).lower()
    return str(error) or type(error).__name__


class _WindowSubscriber(Subscriber):
    """Puts frames into a queue that can never overflow: demand ≤ free slots."""

    def __init__(
        self,
        queue: asyncio.Queue[Any],
        on_error: Callable[[BaseException], Exception] = SportsbookError.from_exception,
    ) -> None:
        self.queue = queue
        self.on_error_to = on_error
        self.subscription: Subscription | None = None

    def on_subscribe(self, subscription: Subscription) -> None:
        self.subscription = subscription

    def on_next(self, value: Payload, is_complete: bool = False) -> None:
        self.queue.put_nowait(value.data)
        if is_complete:
            self.queue.put_nowait(StopAsyncIteration())

    def on_error(self, exception: Exception) -> None:
        self.queue.put_nowait(self.on_error_to(exception))

    def on_complete(self) -> None:
        self.queue.put_nowait(StopAsyncIteration())


class OddsStream:
    """An async iterator of decoded frames (``raw=True``: bytes) with a request-n window."""

    def __init__(
        self,
        rsocket: RSocketClient,
        body: bytes,
        window: int,
        raw: bool,
        route: str = "odds.stream",
        *,
        channel: bool = False,
        on_error: Callable[[BaseException], Exception] = SportsbookError.from_exception,
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self._window = window
        self._raw = raw
        self._on_frame = on_frame
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=window + 2)
        self._subscriber = _WindowSubscriber(self._queue, on_error)
        self._consumed = 0
        payload = Payload(body, route_metadata(route))
        self._requester = (
            rsocket.request_channel(payload) if channel else rsocket.request_stream(payload)
        )
        self._requester.initial_request_n(window)
        self._requester.subscribe(self._subscriber)
        self._done = False

    def request(self, n: int) -> None:
        """Ask for ``n`` more frames beyond the window (tests use it to probe demand)."""
        if self._subscriber.subscription is not None:
            self._subscriber.subscription.request(n)

    def __aiter__(self) -> OddsStream:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            if isinstance(item, StopAsyncIteration):
                raise item
            raise item
        if self._on_frame is not None:
            self._on_frame()
        self._consumed += 1
        if self._consumed >= max(1, self._window // 2):
            self.request(self._consumed)
            self._consumed = 0
        return item if self._raw else orjson.loads(item)

    async def next_frame(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - API
        return await asyncio.wait_for(self.__anext__(), timeout)

    def cancel(self) -> None:
        if not self._done and self._subscriber.subscription is not None:
            self._done = True
            self._subscriber.subscription.cancel()

    async def __aenter__(self) -> OddsStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()
