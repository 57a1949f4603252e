"""``account.stream``: one account's BET, BALANCE and MARKET events, sent only with demand.

Events are not conflatable (each BET status change is a fact), so each
subscriber has a **bounded** buffer: one that falls ``MAX_BUFFERED`` events
behind is ended with ``RATE_LIMITED`` (re-read state with ``bets.list`` and
subscribe again) rather than costing the server unbounded memory.

MARKET events: for every account with a subscriber, the markets of its open
(PENDING or ACCEPTED) bets are known — read from the ledger when its first
subscriber arrives, then kept current from the BET events relayed here — and
the hub's status changes of those markets are relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

import orjson
from reactivestreams.publisher import Publisher
from reactivestreams.subscription import Subscription as RsSubscription
from rsocket.payload import Payload

from ledger_store.store import OPEN_STATUSES, LedgerStore
from schemas.errors import ApiError, ErrorCode
from sportsbook_core.catalogue import MarketStatus
from streams.odds_hub import OddsHub

log = logging.getLogger("sportsbook.account")

MAX_BUFFERED = 1000
HEARTBEAT_S = 5.0
OPEN_BETS_PAGE = 100


def _bet_markets(receipt: dict[str, Any]) -> frozenset[str]:
    return frozenset(str(leg["marketId"]) for leg in receipt.get("legs") or ())


class OpenMarkets:
    """Per watched account: its open bets' markets, and per market the accounts on it.

    Only accounts with an ``account.stream`` subscriber are watched, so memory
    follows the subscribers, not the ledger.
    """

    def __init__(self) -> None:
        self._bets: dict[str, dict[str, frozenset[str]]] = {}  # account → betId → markets
        self._on_market: dict[str, dict[str, int]] = {}  # market → account → open bets
        self._loading: dict[str, list[dict[str, Any]]] = {}  # account → BETs seen meanwhile

    def watch(self, account_id: str) -> list[dict[str, Any]]:
        """Start watching; the returned list collects BETs until :meth:`loaded`."""
        self._bets[account_id] = {}
        buffer: list[dict[str, Any]] = []
        self._loading[account_id] = buffer
        return buffer

    def loaded(
        self, account_id: str, buffer: list[dict[str, Any]], receipts: Iterable[dict[str, Any]]
    ) -> None:
        """The ledger's open bets, then the BETs relayed while reading them (newer)."""
        if self._loading.get(account_id) is not buffer:
            return  # unwatched (or watched again) meanwhile: this read is stale
        del self._loading[account_id]
        for receipt in [*receipts, *buffer]:
            self.bet(account_id, receipt)

    def is_open(self, account_id: str, bet_id: str) -> bool:
        """Tracked as open (PENDING or ACCEPTED) for a watched account."""
        return bet_id in self._bets.get(account_id, ())

    def ready(self, account_id: str) -> bool:
        """Watched, and its open bets read from the ledger."""
        return account_id in self._bets and account_id not in self._loading

    def unwatch(self, account_id: str) -> None:
        self._loading.pop(account_id, None)
        for bet_id in list(self._bets.get(account_id, ())):
            self._close(account_id, bet_id)
        self._bets.pop(account_id, None)

    def bet(self, account_id: str, receipt: dict[str, Any]) -> None:
        """A BET event (or a stored bet): open ones are tracked, closed ones dropped."""
        bets, bet_id = self._bets.get(account_id), receipt.get("betId")
        if bets is None or bet_id is None:
            return  # not watched, or refused before it was written
        if account_id in self._loading:
            self._loading[account_id].append(receipt)
        elif receipt.get("status") in OPEN_STATUSES:
            self._open(account_id, str(bet_id), _bet_markets(receipt))
        else:
            self._close(account_id, str(bet_id))

    def accounts_on(self, market_id: str) -> list[str]:
        return list(self._on_market.get(market_id, ()))

    def _open(self, account_id: str, bet_id: str, markets: frozenset[str]) -> None:
        bets = self._bets[account_id]
        if bet_id in bets:
            return
        bets[bet_id] = markets
        for market_id in markets:
            counts = self._on_market.setdefault(market_id, {})
            counts[account_id] = counts.get(account_id, 0) + 1

    def _close(self, account_id: str, bet_id: str) -> None:
        for market_id in self._bets[account_id].pop(bet_id, frozenset()):
            counts = self._on_market[market_id]
            counts[account_id] -= 1
            if counts[account_id] == 0:
                del counts[account_id]
            if not counts:
                del self._on_market[market_id]


class AccountEvents:
    """Fan-out of per-account events to that account's ``account.stream`` subscribers."""

    def __init__(
        self,
        heartbeat_s: float = HEARTBEAT_S,
        *,
        store: LedgerStore | None = None,
        hub: OddsHub | None = None,
    ) -> None:
        self._subscribers: dict[str, dict[int, AccountStreamPublisher]] = {}
        self._heartbeat_s = heartbeat_s
        self._task: asyncio.Task[None] | None = None
        self._store = store
        self.open_markets = OpenMarkets()
        self._loads: set[asyncio.Task[None]] = set()
        if hub is not None:
            hub.status_listeners.append(self.market_status)

    def start(self) -> None:
        self._task = asyncio.create_task(self._heartbeats(), name="account-heartbeats")

    async def stop(self) -> None:
        tasks = [*self._loads, *([self._task] if self._task is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def bet(
        self,
        account_id: str,
        receipt: dict[str, Any],
        *,
        balance: int | None = None,
        reason: str | None = None,
    ) -> None:
        """A BET event (and the open-bet bookkeeping for MARKET events), then a BALANCE.

        Without ``reason`` (a placement or its resolution) the BALANCE is the
        receipt's ``balanceAfter`` with reason ``BET``, and none for a PENDING bet
        becoming ACCEPTED (no money moved; PROTOCOL.md: BALANCE on every movement).
        With one (settlement: ``SETTLEMENT``, ``CORRECTION``, ``REJECTED``) it is
        ``balance``, and none when ``balance`` is None (a settled loser moves no money)."""
        bet_id = receipt.get("betId")
        held = bet_id is not None and self.open_markets.is_open(account_id, str(bet_id))
        self.open_markets.bet(account_id, receipt)
        if account_id not in self._subscribers:  # nobody listens: no events to encode
            return
        self.publish(account_id, {"kind": "BET", "bet": receipt})
        if reason is None:
            if held and receipt.get("status") == "ACCEPTED":
                return  # accepted after its in-play hold: the stake moved when it was PENDING
            balance, reason = receipt.get("balanceAfter"), "BET"
        if receipt.get("betId") is not None and balance is not None:
            self.balance(account_id, balance, receipt["currency"], reason, receipt["betId"])

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

    def market_status(self, market_id: str, status: MarketStatus) -> None:
        """From the hub: tell every watched account with open bets on ``market_id``."""
        event = {"kind": "MARKET", "marketId": market_id, "status": status.value}
        for account_id in self.open_markets.accounts_on(market_id):
            self.publish(account_id, event)

    def publish(self, account_id: str, event: dict[str, Any]) -> None:
        subscribers = self._subscribers.get(account_id)
        if not subscribers:
            return
        frame = orjson.dumps(event)
        for subscriber in list(subscribers.values()):
            subscriber.offer(frame)

    def add(self, account_id: str, publisher: AccountStreamPublisher) -> None:
        first = account_id not in self._subscribers
        self._subscribers.setdefault(account_id, {})[publisher.id] = publisher
        if first and self._store is not None:
            buffer = self.open_markets.watch(account_id)
            task = asyncio.create_task(self._load(account_id, buffer), name="account-open-bets")
            self._loads.add(task)
            task.add_done_callback(self._loads.discard)

    def remove(self, account_id: str, publisher: AccountStreamPublisher) -> None:
        subscribers = self._subscribers.get(account_id, {})
        subscribers.pop(publisher.id, None)
        if not subscribers:
            self._subscribers.pop(account_id, None)
            self.open_markets.unwatch(account_id)

    async def _load(self, account_id: str, buffer: list[dict[str, Any]]) -> None:
        """The account's open bets, every page.

        If the ledger cannot be read, only bets seen from now on are tracked
        (logged); the buffer is closed either way so it cannot grow.
        """
        assert self._store is not None
        receipts: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            while True:
                bets, cursor = await self._store.list_bets(
                    account_id, "OPEN", OPEN_BETS_PAGE, cursor
                )
                receipts.extend({**b.receipt, "status": b.status} for b in bets)
                if cursor is None:
                    break
        except Exception:
            log.exception("reading open bets failed", extra={"accountId": account_id})
            receipts = []
        self.open_markets.loaded(account_id, buffer, receipts)

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
