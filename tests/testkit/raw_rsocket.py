"""Hand-built RSocket frames for clients that misbehave on purpose.

A library client always reads its socket and always answers keepalives; these
tests need one that requests a million frames and then stops reading, or that
vanishes without CANCEL, so they speak the wire protocol directly.
"""

from __future__ import annotations

from datetime import timedelta

from rsocket.frame import (
    Frame,
    KeepAliveFrame,
    serialize_with_frame_size_header,
)
from rsocket.frame_builders import to_cancel_frame, to_request_stream_frame, to_setup_frame
from rsocket.frame_parser import FrameParser
from rsocket.payload import Payload

from clients.client import route_metadata, setup_metadata

JSON = b"application/json"
COMPOSITE = b"message/x.rsocket.composite-metadata.v0"


def setup(keepalive_ms: int = 5000, lifetime_ms: int = 25000, token: str | None = None) -> Frame:
    return to_setup_frame(
        Payload(None, setup_metadata(token)),
        JSON,
        COMPOSITE,
        timedelta(milliseconds=keepalive_ms),
        timedelta(milliseconds=lifetime_ms),
        False,
    )


def odds_stream(stream_id: int, body: bytes = b"{}", initial_n: int = 1_000_000) -> Frame:
    return to_request_stream_frame(
        stream_id, Payload(body, route_metadata("odds.stream")), initial_request_n=initial_n
    )


def cancel(stream_id: int) -> Frame:
    return to_cancel_frame(stream_id)


def keepalive(respond: bool = True) -> Frame:
    frame = KeepAliveFrame()
    frame.flags_respond = respond
    return frame


def tcp_bytes(frame: Frame) -> bytes:
    """A frame with the 24-bit length prefix TCP needs."""
    return serialize_with_frame_size_header(frame)


def ws_bytes(frame: Frame) -> bytes:
    """A frame as one WebSocket binary message (no length prefix)."""
    return bytes(frame.serialize())


async def parse_ws(message: bytes) -> list[Frame]:
    parser = FrameParser()
    return [frame async for frame in parser.receive_data(message, 0)]


class TcpFrameReader:
    """Accumulates TCP bytes and yields whole frames."""

    def __init__(self) -> None:
        self._parser = FrameParser()

    async def feed(self, data: bytes) -> list[Frame]:
        return [frame async for frame in self._parser.receive_data(data)]
