"""``account.stream``: one account's BET and BALANCE events, sent only with demand.

Events are not conflatable (each BET status change is a fact), so each
subscriber has a **bounded** buffer: one that falls ``MAX_BUFFERED`` events
behind is ended with ``RATE_LIMITED`` (re-read state with ``bets.list`` and
subscribe again) rather than costing the server unbounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from typing import Any

import orjson
from reactivestreams.publisher import Publisher
from reactivestreams.subscription import Subscription as RsSubscription
from rsocket.payload import Payload

from schemas.errors import ApiError, ErrorCode

MAX_BUFFERED = 1000
HEARTBEAT_S = 5.0


class AccountEvents:
    """Fan-out of per-account events to that account's ``account.stream`` subscribers."""

    def __init__(self, heartbeat_s: float = HEARTBEAT_S) -> None:
        self._subscribers: dict[str, dict[int, AccountStreamPublisher]] = {}
        self._heartbeat_s = heartbeat_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._heartbeats(), name="account-heartbeats")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def bet(self, account_id: str, receipt: dict[str, Any]) -> None:
        self.publish(account_id, {"kind": "BET", "bet": receipt})
        balance = receipt.get("balanceAfter")
        if receipt.get("betId") is not None and balance is not None:
            self.balance(account_id, balance, receipt["currency"], "BET", receipt["betId"])

    def balance(
        self, account_id: str, balance: int, currency: str, reason: str, bet_id: str | None = None
    ) -> None:
        event: dict[str, Any] = {
            "kind": "BALANCE",
            "balance": balance,
            "currency": currency,
            "reason": reason,
        }
        if bet_id is not None:
            event["betId"] = bet_id
        self.publish(account_id, event)

    def publish(self, account_id: str, event: dict[str, Any]) -> None:
        frame = orjson.dumps(event)
        for subscriber in list(self._subscribers.get(account_id, {}).values()):
            subscriber.offer(frame)

    def add(self, account_id: str, publisher: AccountStreamPublisher) -> None:
        self._subscribers.setdefault(account_id, {})[publisher.id] = publisher

    def remove(self, account_id: str, publisher: AccountStreamPublisher) -> None:
        subscribers = self._subscribers.get(account_id, {})
        subscribers.pop(publisher.id, None)
        if not subscribers:
            self._subscribers.pop(account_id, None)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s / 2)
            for subscribers in list(self._subscribers.values()):
                for subscriber in list(subscribers.values()):
                    subscriber.heartbeat_if_idle(self._heartbeat_s)


class AccountStreamPublisher(Publisher, RsSubscription):
    _ids = itertools.count(1)

    def __init__(self, events: AccountEvents, account_id: str) -> None:
        self.id = next(self._ids)
        self._events, self._account_id = events, account_id
        self._subscriber: Any = None
        self._buffer: deque[bytes] = deque()
        self._demand = 0
        self._closed = False
        self._last_sent = asyncio.get_running_loop().time()

    def subscribe(self, subscriber: Any) -> None:
        self._subscriber = subscriber
        subscriber.on_subscribe(self)
        self._events.add(self._account_id, self)
        self._socket.on_writable(self._stream_id, self._drain)

    @property
    def _socket(self) -> Any:
        return self._subscriber.socket

    @property
    def _stream_id(self) -> int:
        return int(self._subscriber.stream_id)

    def request(self, n: int) -> None:
        if n > 0 and not self._closed:
            self._demand = min(self._demand + n, 2**31 - 1)
            self._drain()

    def cancel(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._events.remove(self._account_id, self)
        self._buffer.clear()
        self._socket.remove_writable(self._stream_id)
        self._socket.discard_queued(self._stream_id)

    def offer(self, frame: bytes) -> None:
        if self._closed:
            return
        if len(self._buffer) >= MAX_BUFFERED:
            self._overflow()
            return
        self._buffer.append(frame)
        self._drain()

    def heartbeat_if_idle(self, interval_s: float) -> None:
        now = asyncio.get_running_loop().time()
        if not self._buffer and now - self._last_sent >= interval_s:
            self.offer(b'{"kind":"heartbeat"}')

    def _drain(self) -> None:
        while self._buffer and self._demand > 0 and self._socket.writable():
            self._demand -= 1
            self._last_sent = asyncio.get_running_loop().time()
            self._subscriber.on_next(Payload(self._buffer.popleft()))

    def _overflow(self) -> None:
        subscriber = self._subscriber
        self.cancel()
        error = ApiError(
            ErrorCode.RATE_LIMITED,
            f"account.stream fell {MAX_BUFFERED} events behind; read bets.list and subscribe again",
        )
        subscriber.on_error(error)
