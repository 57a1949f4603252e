"""The one module that adapts rsocket-py 0.4.20 for a server that faces the public.

Measured on this stack (issue 2): a client that requested 1,000,000 frames and
stopped reading grew rsocket-py's send queue to 618 MB in 7 s, a cancel still
flushed ~100K queued frames, WebSocket sessions outlived their socket and the
server never enforced the keepalive lifetime. This module changes that:

* **Write-aware send path.** ``writable()`` is False while more than
  ``high_water`` frames wait in the connection's send queue; the transport's own
  buffer is capped (TCP ``set_write_buffer_limits``, aiohttp's writer limit) and
  the sender awaits ``drain()``, so a producer that checks ``writable()`` never
  grows memory. When the queue drains, registered streams are told.
* **Cancel drops what is queued** for that stream (``discard_queued``).
* **Keepalive lifetime** is enforced: SETUP whose keepalive interval is not
  shorter than the effective lifetime is rejected (case B20); a connection with
  no KEEPALIVE for a lifetime is closed and its streams disposed (case B23).
* **SETUP first**: nothing else is handled before a SETUP is accepted (a request
  pipelined behind a refused SETUP is not served), and a connection that sends
  no SETUP within 10 s (or the max lifetime, if shorter) is closed.
* **Sessions end with their socket**: the WebSocket transport signals the end
  of the socket, and closing disposes every stream exactly once.
* **LEASE** (RSocket 1.0 "Lease Semantics"): a client whose SETUP has the lease
  flag is granted ``requests`` new requests per ``ttl_ms`` window, renewed each
  window; a request beyond the lease is answered ERROR[REJECTED] and not
  served. rsocket-py 0.4.20 sends LEASE frames but never enforces them as a
  responder, so the grant and the count live here. Resume is still refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import aiohttp
import orjson
from rsocket.error_codes import ErrorCode
from rsocket.exceptions import RSocketProtocolError, RSocketTransportError
from rsocket.frame import (
    Frame,
    LeaseFrame,
    PayloadFrame,
    RequestFireAndForgetFrame,
    SetupFrame,
    initiate_request_frame_types,
    serialize_prefix_with_frame_size_header,
)
from rsocket.helpers import cancel_if_task_exists, payload_from_frame, wrap_transport_exception
from rsocket.rsocket_server import RSocketServer
from rsocket.transports.aiohttp_websocket import TransportAioHttpWebsocket
from rsocket.transports.tcp import TransportTCP
from rsocket.transports.transport import Transport

log = logging.getLogger("sportsbook.transport")

HIGH_WATER_FRAMES = 2
TRANSPORT_WRITE_HIGH_WATER = 64 * 1024
DEFAULT_MAX_LIFETIME_S = 30.0
SETUP_TIMEOUT_S = 10.0  # a connection that never sends SETUP holds a socket for nothing

# Every live server session, for leak checks (case B23) and /health.
LIVE_SESSIONS: weakref.WeakSet[GuardedRSocketServer] = weakref.WeakSet()

LEASE_TTL_MS = 1000
DEFAULT_LEASE_RATE_PER_S = 50.0  # BettingConfig.account_rate_per_s: the default bets/s
MAX_LEASE_REQUESTS = 2**31 - 1  # the frame's 31-bit field


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """What one LEASE frame grants: ``requests`` new requests within ``ttl_ms``."""

    requests: int
    ttl_ms: int = LEASE_TTL_MS

    @classmethod
    def for_rate(cls, per_second: float, ttl_ms: int = LEASE_TTL_MS) -> LeaseTerms:
        """``per_second`` paced in windows of ``ttl_ms``; at least one request per window."""
        requests = int(per_second * ttl_ms / 1000)
        return cls(max(1, min(requests, MAX_LEASE_REQUESTS)), ttl_ms)


DEFAULT_LEASE = LeaseTerms.for_rate(DEFAULT_LEASE_RATE_PER_S)


@runtime_checkable
class LeaseGranter(Protocol):
    """A request handler that decides its connection's lease (after ``on_setup``)."""

    async def lease_terms(self) -> LeaseTerms: ...


class ResponderLease:
    """The server's side of LEASE: how many requests the client may still start.

    Nothing is allowed before the first grant. Each grant replaces the last (the
    renewal runs every ``ttl_ms``), so unused requests never carry over.
    """

    __slots__ = ("left", "terms")

    def __init__(self, terms: LeaseTerms) -> None:
        self.terms = terms
        self.left = 0

    def grant(self) -> LeaseFrame:
        self.left = self.terms.requests
        frame = LeaseFrame()
        frame.number_of_requests = self.terms.requests
        frame.time_to_live = self.terms.ttl_ms
        return frame

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True

    def refusal(self) -> RSocketProtocolError:
        terms = self.terms
        message = (
            f"lease exhausted: {terms.requests} requests per {terms.ttl_ms} ms; "
            "wait for the next LEASE"
        )
        data = orjson.dumps({"code": "RATE_LIMITED", "message": message}).decode()
        return RSocketProtocolError(ErrorCode.REJECTED, data=data)


class GuardedRSocketServer(RSocketServer):
    """An RSocketServer whose send path respects the socket and whose life is bounded."""

    def __init__(
        self,
        transport: Transport,
        *,
        high_water_frames: int = HIGH_WATER_FRAMES,
        max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S,
        **kwargs: Any,
    ) -> None:
        self._high_water = high_water_frames
        self._server_max_lifetime_s = max_lifetime_s
        self._writable_listeners: dict[int, Callable[[], None]] = {}
        self._last_keepalive = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._closing_task: asyncio.Task[None] | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._receiver_task: asyncio.Task[None] | None = None
        self._setup_state = "awaiting"  # → "accepted" | "refused"
        self._lease: ResponderLease | None = None  # None: the client did not ask for one
        self._lease_task: asyncio.Task[None] | None = None
        super().__init__(transport, **kwargs)
        self._setup_timer = asyncio.get_running_loop().call_later(
            min(SETUP_TIMEOUT_S, max_lifetime_s), self._setup_timed_out
        )
        LIVE_SESSIONS.add(self)

    # ---- write-aware send path -------------------------------------------
    def writable(self) -> bool:
        """True while the send queue is below its high-water mark."""
        return not self._is_closing and self._send_queue.qsize() < self._high_water

    def on_writable(self, stream_id: int, listener: Callable[[], None]) -> None:
        self._writable_listeners[stream_id] = listener

    def remove_writable(self, stream_id: int) -> None:
        self._writable_listeners.pop(stream_id, None)

    @asynccontextmanager
    async def _get_next_frame_to_send(self, transport: Transport) -> AsyncIterator[Frame]:
        async with super()._get_next_frame_to_send(transport) as frame:
            yield frame
        if self._writable_listeners and self._send_queue.qsize() < self._high_water:
            self._notify_writable()

    def _notify_writable(self) -> None:
        listeners = list(self._writable_listeners.values())
        for listener in listeners:
            if not self.writable():
                break
            listener()
        # Rotate so that no stream always goes first on a busy connection.
        if len(self._writable_listeners) > 1:
            first = next(iter(self._writable_listeners))
            self._writable_listeners[first] = self._writable_listeners.pop(first)

    @property
    def queued_frames(self) -> int:
        return self._send_queue.qsize()

    def discard_queued(self, stream_id: int) -> int:
        """Drop payload frames of ``stream_id`` not yet written; returns how many."""
        queue = self._send_queue._queue
        keep = [f for f in queue if not (isinstance(f, PayloadFrame) and f.stream_id == stream_id)]
        dropped = len(queue) - len(keep)
        if dropped:
            queue.clear()
            queue.extend(keep)
        return dropped

    # ---- SETUP first, and only once accepted ------------------------------
    async def _handle_next_frame(self, frame: Frame, handlers: Any) -> None:
        """Nothing but SETUP is handled before a SETUP was accepted.

        A client may pipeline a request right behind its SETUP; when that SETUP is
        refused (an unknown token) the request must not be served as anonymous
        in the 50 ms before the connection closes.
        """
        if self._setup_state == "accepted" or (
            self._setup_state == "awaiting" and isinstance(frame, SetupFrame)
        ):
            await super()._handle_next_frame(frame, handlers)

    async def _handle_frame_by_type(self, frame: Frame, handlers: Any) -> None:
        """Fragments are reassembled by now, so each request counts once against the lease."""
        lease = self._lease
        is_request = isinstance(frame, initiate_request_frame_types)
        if lease is not None and is_request and not lease.take():
            if not isinstance(frame, RequestFireAndForgetFrame):  # it has no stream to answer
                self.send_error(frame.stream_id, lease.refusal())
            return
        await super()._handle_frame_by_type(frame, handlers)

    def _setup_timed_out(self) -> None:
        if self._setup_state == "awaiting" and not self._is_closing:
            log.info("no SETUP in time", extra={"timeout_s": SETUP_TIMEOUT_S})
            self._setup_state = "refused"
            self._close_soon()

    # ---- keepalive lifetime (cases B20, B23) ------------------------------
    async def handle_setup(self, frame: SetupFrame) -> None:
        self._setup_timer.cancel()
        self._setup_state = "refused"  # until the checks below pass
        lifetime_ms = min(frame.max_lifetime_milliseconds, int(self._server_max_lifetime_s * 1000))
        if frame.keep_alive_milliseconds >= lifetime_ms:
            self._close_soon()
            raise RSocketProtocolError(
                ErrorCode.REJECTED_SETUP,
                data=(
                    f"keepalive interval {frame.keep_alive_milliseconds} ms must be shorter "
                    f"than the max lifetime {lifetime_ms} ms"
                ),
            )
        await self._setup_handler(frame)
        self._setup_state = "accepted"
        self._last_keepalive = time.monotonic()
        self._watchdog = asyncio.create_task(self._keepalive_watchdog(lifetime_ms / 1000))
        if self._lease is not None:  # granted before the next frame is read: none is refused early
            self.send_frame(self._lease.grant())
            self._lease_task = asyncio.create_task(self._renew_lease(self._lease))

    async def _setup_handler(self, frame: SetupFrame) -> None:
        """rsocket-py's setup minus its traceback log; any refusal closes the connection."""
        if frame.flags_resume:
            self._close_soon()
            raise RSocketProtocolError(ErrorCode.UNSUPPORTED_SETUP, data="resume is not supported")
        try:
            await self._handler.on_setup(
                frame.data_encoding, frame.metadata_encoding, payload_from_frame(frame)
            )
            if frame.flags_lease:
                self._lease = ResponderLease(await self._lease_terms())
        except RSocketProtocolError:
            self._close_soon()
            raise
        except Exception as exc:
            self._close_soon()
            raise RSocketProtocolError(ErrorCode.REJECTED_SETUP, data=str(exc)) from exc

    async def _lease_terms(self) -> LeaseTerms:
        if isinstance(self._handler, LeaseGranter):
            return await self._handler.lease_terms()
        return DEFAULT_LEASE

    async def _renew_lease(self, lease: ResponderLease) -> None:
        """A fresh grant every ``ttl_ms`` on a fixed schedule (no drift)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += lease.terms.ttl_ms / 1000
            await asyncio.sleep(max(0.0, due - loop.time()))
            if self._is_closing:
                return
            self.send_frame(lease.grant())

    def _update_last_keepalive(self) -> None:
        self._last_keepalive = time.monotonic()

    async def _keepalive_watchdog(self, lifetime_s: float) -> None:
        tick = min(1.0, lifetime_s / 4)
        while not self._is_closing:
            await asyncio.sleep(tick)
            if time.monotonic() - self._last_keepalive > lifetime_s:
                log.info("keepalive lifetime exceeded", extra={"lifetime_s": lifetime_s})
                self._close_soon()
                return

    # ---- closing -----------------------------------------------------------
    def _close_soon(self) -> None:
        """Close from outside the receiver task (it cannot await itself)."""
        if self._closing_task is None:
            self._closing_task = asyncio.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        await asyncio.sleep(0.05)  # let a queued ERROR frame reach the socket
        await cancel_if_task_exists(self._receiver_task)
        self._receiver_task = None
        await self._on_connection_closed()

    async def _on_connection_closed(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._is_closing = True
        self._setup_timer.cancel()
        self._writable_listeners.clear()
        self.stop_all_streams()
        await self._handler.on_close(self)
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        if self._lease_task is not None:
            self._lease_task.cancel()
        await cancel_if_task_exists(self._sender_task)
        self._sender_task = None
        with contextlib.suppress(Exception):
            await self._close_transport()
        LIVE_SESSIONS.discard(self)

    async def wait_closed(self) -> None:
        await self._closed.wait()


class GuardedTcpTransport(TransportTCP):
    """TCP with a capped write buffer, large reads and one write per frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer, read_buffer_size=64 * 1024)
        writer.transport.set_write_buffer_limits(high=TRANSPORT_WRITE_HIGH_WATER)

    async def send_frame(self, frame: Frame) -> None:
        """The same bytes in one ``write`` (rsocket-py makes two or three).

        On a socket with room each ``write`` is a ``send()`` system call: the
        profile of a 1,000-subscriber fan-out spent a third of its time there.
        """
        parts = [serialize_prefix_with_frame_size_header(frame)]
        frame.write_data_metadata(parts.append)
        with wrap_transport_exception():
            self._writer.write(b"".join(parts))
            await self._writer.drain()


class GuardedWebSocketTransport(TransportAioHttpWebsocket):
    """aiohttp WebSocket that tells the session when the socket is gone."""

    async def handle_incoming_ws_messages(self) -> None:
        try:
            async for message in self._message_generator():
                async for frame in self._frame_parser.receive_data(message, 0):
                    self._incoming_frame_queue.put_nowait(frame)
        except (asyncio.CancelledError, RSocketTransportError, aiohttp.ClientError):
            pass
        finally:
            self._incoming_frame_queue.put_nowait(RSocketTransportError("websocket closed"))
