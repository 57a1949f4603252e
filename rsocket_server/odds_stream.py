"""``odds.stream``: a Reactive Streams publisher owned by the hub's demand.

The hub only calls ``send`` while the subscriber has demand and the
connection is writable; this adapter forwards REQUEST_N and CANCEL to the hub
and tells it when the connection drains. No hot Observable, no queue here.
"""

from __future__ import annotations

from typing import Any

from reactivestreams.publisher import Publisher
from reactivestreams.subscription import Subscription as RsSubscription
from rsocket.payload import Payload

from schemas.requests import OddsStreamRequest
from streams.odds_hub import OddsHub, Subscription


class OddsStreamPublisher(Publisher, RsSubscription):
    def __init__(self, hub: OddsHub, request: OddsStreamRequest) -> None:
        self._hub = hub
        self._request = request
        self._subscriber: Any = None
        self._subscription: Subscription | None = None

    # Publisher -----------------------------------------------------------
    def subscribe(self, subscriber: Any) -> None:
        self._subscriber = subscriber
        subscriber.on_subscribe(self)
        self._subscription = self._hub.subscribe(self._request, self)
        self._socket.on_writable(self._stream_id, self._subscription.writable)

    @property
    def _socket(self) -> Any:
        return self._subscriber.socket

    @property
    def _stream_id(self) -> int:
        return int(self._subscriber.stream_id)

    # Subscription (from the client's REQUEST_N / CANCEL) ---------------------
    def request(self, n: int) -> None:
        if self._subscription is not None:
            self._subscription.request(n)

    def cancel(self) -> None:
        if self._subscription is None:
            return
        self._hub.unsubscribe(self._subscription)
        self._subscription = None
        self._socket.remove_writable(self._stream_id)
        self._socket.discard_queued(self._stream_id)

    # FrameSink (from the hub) -------------------------------------------------
    def writable(self) -> bool:
        return bool(self._socket.writable())

    def send(self, frame: bytes) -> None:
        self._subscriber.on_next(Payload(frame))
