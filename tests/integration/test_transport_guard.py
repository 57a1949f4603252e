"""rsocket_server/transport_guard.py: one test per behaviour it adds to rsocket-py.

Behaviours tested elsewhere over real sockets: SETUP keepalive ≥ lifetime is
rejected (tests/acceptance/test_b20_*), a half-open connection is closed after
the lifetime and a WebSocket session ends with its socket (test_b23_*), the
stalled reader's queue stays at the high-water mark (test_backpressure_memory).
"""

from __future__ import annotations

import asyncio
from typing import Any

from rsocket.frame import Frame, PayloadFrame
from rsocket.payload import Payload
from rsocket.transports.transport import Transport

from rsocket_server.transport_guard import LIVE_SESSIONS, GuardedRSocketServer


class GatedTransport(Transport):
    """A transport whose writes complete only when the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.sent: list[Frame] = []
        self._incoming: asyncio.Queue[Any] = asyncio.Queue()

    async def send_frame(self, frame: Frame) -> None:
        await self.gate.wait()
        self.sent.append(frame)

    async def next_frame_generator(self) -> Any:
        item = await self._incoming.get()
        if item is None:
            return None
        raise item

    async def close(self) -> None:
        self._incoming.put_nowait(None)


def _payload(server: GuardedRSocketServer, stream_id: int, text: bytes) -> None:
    server.send_payload(stream_id, Payload(text))


async def test_writable_is_false_at_the_high_water_mark_and_listeners_hear_the_drain() -> None:
    transport = GatedTransport()
    server = GuardedRSocketServer(transport, high_water_frames=2)
    heard: list[str] = []
    server.on_writable(1, lambda: heard.append("drained"))
    await asyncio.sleep(0)
    assert server.writable() is True
    _payload(server, 1, b"a")
    _payload(server, 1, b"b")
    _payload(server, 1, b"c")
    await asyncio.sleep(0.01)
    # One frame is with the (blocked) transport, two wait in the queue.
    assert (server.queued_frames, server.writable()) == (2, False)
    transport.gate.set()
    await asyncio.sleep(0.01)
    assert [f.data for f in transport.sent] == [b"a", b"b", b"c"]
    assert (server.queued_frames, server.writable()) == (0, True)
    assert heard and set(heard) == {"drained"}
    server.stop_all_streams()
    await server._on_connection_closed()


async def test_discard_queued_drops_only_that_streams_payload_frames() -> None:
    transport = GatedTransport()
    server = GuardedRSocketServer(transport, high_water_frames=100)
    await asyncio.sleep(0)
    for text in (b"s1-a", b"s3-a", b"s1-b", b"s3-b", b"s1-c"):
        _payload(server, 1 if text.startswith(b"s1") else 3, text)
    await asyncio.sleep(0.01)  # s1-a is now with the transport
    assert server.discard_queued(1) == 2
    transport.gate.set()
    await asyncio.sleep(0.01)
    sent = [(f.stream_id, f.data) for f in transport.sent if isinstance(f, PayloadFrame)]
    assert sent == [(1, b"s1-a"), (3, b"s3-a"), (3, b"s3-b")]
    await server._on_connection_closed()


async def test_closing_disposes_streams_once_and_leaves_no_live_session() -> None:
    transport = GatedTransport()
    transport.gate.set()
    server = GuardedRSocketServer(transport)
    await asyncio.sleep(0)
    assert server in LIVE_SESSIONS
    disposed: list[int] = []

    class Stream:
        def frame_received(self, frame: Frame) -> None:
            pass

        def dispose(self) -> None:
            disposed.append(1)

    from rsocket.disposable import Disposable

    Disposable.register(Stream)
    server._register_stream(2, Stream())
    await server._on_connection_closed()
    await server._on_connection_closed()
    assert disposed == [1]
    assert server not in LIVE_SESSIONS
    assert server.writable() is False


class RecordingWriter:
    """The slice of ``asyncio.StreamWriter`` a TCP transport writes through."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.transport = self

    def set_write_buffer_limits(self, high: int) -> None:
        self.high = high

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    async def drain(self) -> None:
        return None


async def test_tcp_frame_is_one_write_of_the_bytes_rsocket_py_would_send() -> None:
    """GuardedTcpTransport: one ``write`` (one send() syscall) per frame, byte-identical."""
    from rsocket.frame_builders import to_payload_frame
    from rsocket.transports.tcp import TransportTCP

    from rsocket_server.transport_guard import TRANSPORT_WRITE_HIGH_WATER, GuardedTcpTransport

    frame = to_payload_frame(7, Payload(b'{"kind":"heartbeat","clk":"e.1"}', b"\x00meta"))
    plain, guarded = RecordingWriter(), RecordingWriter()
    await TransportTCP(None, plain).send_frame(frame)  # type: ignore[arg-type]
    await GuardedTcpTransport(None, guarded).send_frame(frame)  # type: ignore[arg-type]
    assert len(plain.writes) == 3  # rsocket-py: header, metadata, data
    assert guarded.writes == [b"".join(plain.writes)]
    assert guarded.writes[0][:3] == (len(guarded.writes[0]) - 3).to_bytes(3, "big")
    assert guarded.high == TRANSPORT_WRITE_HIGH_WATER


async def _frames_until_closed(reader: asyncio.StreamReader) -> list[Frame]:
    from tests.testkit.raw_rsocket import TcpFrameReader

    frames = TcpFrameReader()
    received: list[Frame] = []
    async with asyncio.timeout(15):
        while data := await reader.read(65536):
            received.extend(await frames.feed(data))
    return received


async def test_a_request_pipelined_behind_a_refused_setup_is_not_served() -> None:
    """SETUP with an unknown token + catalog.events in one write: one REJECTED_SETUP, no data."""
    from rsocket.error_codes import ErrorCode
    from rsocket.frame import ErrorFrame
    from rsocket.frame_builders import to_request_response_frame

    from clients.client import route_metadata
    from tests.testkit import raw_rsocket as raw
    from tests.testkit.live_server import live_server

    async with live_server(tokens={"good": "A-1"}) as live:
        reader, writer = await asyncio.open_connection("127.0.0.1", live.server.tcp_port)
        request = to_request_response_frame(1, Payload(b"{}", route_metadata("catalog.events")))
        writer.write(raw.tcp_bytes(raw.setup(token="bogus")) + raw.tcp_bytes(request))
        received = await _frames_until_closed(reader)
        writer.close()
    assert [(type(f), f.stream_id) for f in received] == [(ErrorFrame, 0)]
    assert received[0].error_code == ErrorCode.REJECTED_SETUP


async def test_a_connection_that_never_sends_setup_is_closed() -> None:
    """No SETUP within min(10 s, max lifetime): the server closes it and forgets the session."""
    import time

    from tests.testkit.live_server import live_server

    async with live_server(max_lifetime_s=2.0) as live:
        reader, writer = await asyncio.open_connection("127.0.0.1", live.server.tcp_port)
        await asyncio.sleep(0.2)
        assert len(LIVE_SESSIONS) == 1
        started = time.monotonic()
        assert await _frames_until_closed(reader) == []
        waited = time.monotonic() - started
        writer.close()
        await asyncio.sleep(0.1)
        assert 1.5 <= waited <= 3.5
        assert len(LIVE_SESSIONS) == 0
