"""PlacementService: a bet from the wire to a durable receipt (issue #4).

Order of work for one ``bets.place``: admission (bounded in-flight, per-account
rate) → the core's acceptance pipeline against the hub's **live** books →
one store transaction (idempotency, funds, liability, bet + STAKE entry +
outbox) → receipt. A bet with an in-play delay is written PENDING (its stake
debited, so two racing bets cannot both spend it: B13), held for the delay,
re-checked against the market as it is then, and resolved ACCEPTED or
REJECTED (with a REFUND entry) before the request is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from ledger_store.store import (
    AccountTerms,
    BetStatus,
    LedgerStore,
    Outcome,
    Placement,
    PlaceOutcome,
    StoreBusy,
)
from rsocket_server.account_stream import AccountEvents
from schemas.bets import PlaceBetRequest
from schemas.errors import ApiError, ErrorCode
from sportsbook_core.acceptance import (
    AcceptanceContext,
    Accepted,
    BettingLimits,
    Rejection,
    check_bet,
    recheck_after_delay,
    selection_liability,
)
from sportsbook_core.bets import BetSlip
from sportsbook_core.market_book import MarketBook
from sportsbook_core.prices import Price
from streams.odds_hub import OddsHub

log = logging.getLogger("sportsbook.bets")

DEFAULT_LIMITS = BettingLimits(
    min_stake=10, max_stake=10_000_000, max_payout=25_000_000, liability_per_selection=100_000_000
)


@dataclass(frozen=True, slots=True)
class BettingConfig:
    limits: Mapping[str, BettingLimits] = field(default_factory=lambda: {"GBP": DEFAULT_LIMITS})
    default_in_play_delay_ms: int = 5_000
    max_in_flight: int = 64
    """Placements being made durable at once (an in-play bet's delay not included).
    By Little's law a placement's time in the server is about ``in flight ÷ bets a
    second``: at the ~2,000/s one server process makes durable on SQLite
    (bench/README.md) 64 keeps that near 30 ms where 512 let it pass 200 ms,
    and 64 still fill the store's group commits and PostgreSQL's pool."""
    admission_wait_ms: int = 50
    """A placement that finds ``max_in_flight`` taken waits this long for a place
    (first come, first served), then is answered RATE_LIMITED with a retry hint.
    It waits in the connection's reader, so that connection's next frames wait
    too (TCP back-pressure): a flood costs at most one refusal per connection per
    wait, not one per request (refusing at once let clients that ignore the hint
    spend the server's CPU on refusals: bench/README.md)."""
    terms_ttl_s: float = 1.0
    """How long an account's currency and limits are reused between placements
    (the balance is always the store's, inside the placement's transaction)."""
    account_rate_per_s: float = 50.0
    account_burst: int = 100


class _Bucket:
    """Per-account token bucket: a flood from one account never starves the others."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, burst: int, now: float) -> None:
        self.tokens, self.stamp = float(burst), now

    def take(self, rate: float, burst: int, now: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Permit:
    """A placement's place in the admission bound; :meth:`release` is idempotent."""

    __slots__ = ("_admission",)

    def __init__(self, admission: _Admission) -> None:
        self._admission: _Admission | None = admission

    def release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:
            admission.release()


class _Admission:
    """At most ``limit`` permits out; waiters are served first come, first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> Permit | None:
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return Permit(self)
        return None

    async def take(self, wait_s: float) -> Permit | None:
        """A permit, waiting up to ``wait_s`` for one; None if none came."""
        permit = self.try_take()
        if permit is not None or wait_s <= 0:
            return permit
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(wait_s):
                await waiter
        except TimeoutError:
            pass
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over just as the wait was cancelled: pass it on
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        if waiter.done() and not waiter.cancelled():
            return Permit(self)  # handed over by release(): in_use already counts it
        return None

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the permit passes to the first waiter
                return
        self.in_use -= 1


@dataclass(frozen=True, slots=True)
class BettingServices:
    """What the bet and account routes need, owned by the server."""

    placement: PlacementService
    store: LedgerStore
    events: AccountEvents
    settlement: Any = None
    """The :class:`rsocket_server.settlement.SettlementService` (``trader.settle``)."""


class PlacementService:
    def __init__(
        self,
        hub: OddsHub,
        store: LedgerStore,
        config: BettingConfig | None = None,
        *,
        on_receipt: Callable[[str, dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub, self.store = hub, store
        self.config = config or BettingConfig()
        self.on_receipt = on_receipt
        self._clock = clock
        self._admission = _Admission(self.config.max_in_flight)
        self._buckets: dict[str, _Bucket] = {}
        self._terms: dict[str, tuple[float, AccountTerms]] = {}
        self._resolving: set[asyncio.Task[dict[str, Any]]] = set()

    # ---- admission -------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Placements holding a place in the admission bound now."""
        return self._admission.in_use

    async def admit(self) -> Permit:
        """A place among the ``max_in_flight``, waiting up to ``admission_wait_ms``
        for one; else RATE_LIMITED with a retry hint. The route calls it as the
        request arrives, before decoding the bet, and hands the permit to
        :meth:`place`."""
        permit = await self._admission.take(self.config.admission_wait_ms / 1000)
        if permit is None:
            raise _busy()
        return permit

    def _admit_account(self, account_id: str, limits: Mapping[str, Any]) -> None:
        """Per account: ``betsPerSecond`` from the account's limits, else the default."""
        rate = float(limits.get("betsPerSecond", self.config.account_rate_per_s))
        burst = max(int(rate * 2), self.config.account_burst)
        now = self._clock()
        bucket = self._buckets.setdefault(account_id, _Bucket(burst, now))
        if not bucket.take(rate, burst, now):
            wait_ms = int(1000 / rate) + 1
            raise ApiError(
                ErrorCode.RATE_LIMITED,
                f"too many bets from this account: retry in {wait_ms} ms (retryAfterMs={wait_ms})",
            )

    # ---- placing -----------------------------------------------------------------
    async def place(
        self, account_id: str, request: PlaceBetRequest, permit: Permit | None = None
    ) -> dict[str, Any]:
        """Places the bet; ``permit`` from :meth:`admit`, else one is taken now (or
        RATE_LIMITED at once). The permit is released when the bet is durable (for
        an in-play bet: before its delay) or refused."""
        if permit is None:
            permit = self._admission.try_take()
            if permit is None:
                raise _busy()
        try:
            return await self._place(account_id, request, permit)
        finally:
            permit.release()

    def place_soon(
        self,
        account_id: str,
        request: PlaceBetRequest,
        permit: Permit,
        settle: Callable[[dict[str, Any] | BaseException], None],
    ) -> asyncio.Future[Any] | bool:
        """:meth:`place` without a task, when it needs no wait but the store's: the
        account's terms are cached and the store takes placements as futures
        (``submit_placement``: SQLite). The same checks and outcomes; ``settle``
        gets the receipt or the exception :meth:`place` would raise.

        False: not taken (nothing done, the permit untouched): use :meth:`place`.
        True: answered already (refused before the store). Else the store's future:
        cancel it to withdraw the bet if it is not written yet (as cancelling
        :meth:`place` would). Raises what :meth:`place` raises before the store (the
        permit is released then)."""
        submit: Callable[[Placement], asyncio.Future[PlaceOutcome]] | None = getattr(
            self.store, "submit_placement", None
        )
        terms = self._cached_terms(account_id)
        if submit is None or terms is None:
            return False
        try:
            prepared = self._prepare(account_id, request, terms)
            if isinstance(prepared, dict):
                permit.release()
                settle(prepared)
                return True
            stored = submit(prepared.placement)
        except StoreBusy:
            permit.release()
            raise _ledger_busy() from None
        except BaseException:
            permit.release()
            raise
        stored.add_done_callback(partial(self._stored_soon, prepared, permit, settle))
        return stored

    def _stored_soon(
        self,
        prepared: _Prepared,
        permit: Permit,
        settle: Callable[[dict[str, Any] | BaseException], None],
        stored: asyncio.Future[PlaceOutcome],
    ) -> None:
        if stored.cancelled():  # withdrawn: not written
            permit.release()
            return
        result: dict[str, Any] | asyncio.Task[dict[str, Any]] | BaseException
        try:
            result = self._finish(prepared, stored.result(), permit)
        except StoreBusy:
            result = _ledger_busy()
        except Exception as exc:
            result = exc
        if not isinstance(result, asyncio.Task):
            permit.release()
            settle(result)
            return
        # In-play: its delay, then the resolution, in the task _finish started.
        result.add_done_callback(partial(_settle_from, settle))

    def _cached_terms(self, account_id: str) -> AccountTerms | None:
        cached = self._terms.get(account_id)
        if cached is not None and self._clock() - cached[0] < self.config.terms_ttl_s:
            return cached[1]
        return None

    async def _account_terms(self, account_id: str) -> AccountTerms | None:
        """The account's currency and limits, read at most once per ``terms_ttl_s``."""
        now = self._clock()
        cached = self._terms.get(account_id)
        if cached is not None and now - cached[0] < self.config.terms_ttl_s:
            return cached[1]
        terms = await self.store.account_terms(account_id)
        if terms is not None:
            if len(self._terms) >= 100_000:  # bounded: forget the lot, re-read on demand
                self._terms.clear()
            self._terms[account_id] = (now, terms)
        return terms

    async def _place(
        self, account_id: str, request: PlaceBetRequest, permit: Permit
    ) -> dict[str, Any]:
        account = await self._account_terms(account_id)
        if account is None:
            raise ApiError(ErrorCode.FORBIDDEN, "no such account")
        prepared = self._prepare(account_id, request, account)
        if isinstance(prepared, dict):
            return prepared
        try:
            outcome = await self.store.place_bet(prepared.placement)
        except StoreBusy:
            raise _ledger_busy() from None
        result = self._finish(prepared, outcome, permit)
        if isinstance(result, asyncio.Task):
            return await asyncio.shield(result)
        return result

    def _prepare(
        self, account_id: str, request: PlaceBetRequest, account: AccountTerms
    ) -> dict[str, Any] | _Prepared:
        """Before the store: the account's rate, the acceptance checks against the
        live books; a refused bet's receipt, or the placement to write."""
        self._admit_account(account_id, account.limits)
        limits = self.config.limits.get(account.currency)
        if limits is None:
            raise ApiError(ErrorCode.UNAVAILABLE, f"no betting limits for {account.currency}")
        slip = request.slip
        result = check_bet(slip, self._context(limits, slip))
        if isinstance(result, Rejection):
            return rejected_receipt(
                slip, result.code.value, result.message, result.details, account.currency
            )
        status = BetStatus.PENDING if result.delay_ms > 0 else BetStatus.ACCEPTED
        placement = self._placement(
            account_id, request, result, status=status, currency=account.currency, limits=limits
        )
        return _Prepared(account_id, request, result, status, account.currency, limits, placement)

    def _finish(
        self, prepared: _Prepared, outcome: PlaceOutcome, permit: Permit
    ) -> dict[str, Any] | asyncio.Task[dict[str, Any]]:
        """After the store: the receipt, or for an in-play bet the task that holds
        it for its delay and resolves it (its permit released: it is durable)."""
        account_id, slip = prepared.account_id, prepared.request.slip
        receipt = self._receipt_of(outcome, slip, prepared.currency)
        if outcome.outcome is Outcome.PLACED:
            self._tell(account_id, receipt)
            if prepared.status is BetStatus.PENDING:
                permit.release()  # durable now: the delay holds no place in the bound
                # Its stake is debited: it is resolved even if the requester goes away
                # (a cancelled request or a closed connection cancels only the wait).
                task = asyncio.create_task(
                    self._after_delay(
                        account_id, receipt, prepared.request, prepared.accepted, prepared.limits
                    )
                )
                self._resolving.add(task)
                task.add_done_callback(self._resolving.discard)
                return task
        return receipt

    def _context(self, limits: BettingLimits, slip: BetSlip) -> AcceptanceContext:
        """The slip's markets' live books, looked up now: the checks run synchronously
        right after, so this is the hub's state at check time (not a snapshot that
        could go stale), in a plain dict (the checks look a market up ~10 times)."""
        hub = self.hub
        books: dict[str, MarketBook] = {}
        for leg in slip.legs:
            book = hub.book(leg.market_id)
            if book is not None:
                books[leg.market_id] = book
        return AcceptanceContext(
            books=books,
            now=datetime.now(UTC),
            limits=limits,
            feed_healthy=self.hub.feed_healthy,
            default_in_play_delay_ms=self.config.default_in_play_delay_ms,
        )

    def _placement(
        self,
        account_id: str,
        request: PlaceBetRequest,
        accepted: Accepted,
        *,
        status: BetStatus,
        currency: str,
        limits: BettingLimits,
    ) -> Placement:
        exposures = [(m, s, v) for (m, s), v in selection_liability(accepted).items()]
        return Placement(
            account_id=account_id,
            request_id=request.slip.request_id,
            body_hash=request.body_hash,
            total_stake=accepted.total_stake,
            status=status,
            exposures=exposures,
            liability_limit=limits.liability_per_selection,
            receipt_for=lambda bet_id, balance: accepted_receipt(
                bet_id,
                request.slip,
                accepted,
                status=status.value,
                currency=currency,
                balance_after=balance,
                max_payout=limits.max_payout,
            ),
        )

    def _receipt_of(self, outcome: PlaceOutcome, slip: BetSlip, currency: str) -> dict[str, Any]:
        if outcome.receipt is not None and outcome.ok:
            return outcome.receipt
        code = outcome.code or "INVALID_BET"
        message = {
            "IDEMPOTENCY_CONFLICT": "this requestId was used for a different bet",
            "INSUFFICIENT_FUNDS": "the balance does not cover the total stake",
            "LIABILITY_LIMIT": "the book cannot take more on this selection",
        }.get(code, code)
        return rejected_receipt(slip, code, message, dict(outcome.detail), currency)

    async def _after_delay(
        self,
        account_id: str,
        pending: dict[str, Any],
        request: PlaceBetRequest,
        accepted: Accepted,
        limits: BettingLimits,
    ) -> dict[str, Any]:
        """In-play: hold for the delay, then re-check against the market as it is now."""
        await asyncio.sleep(accepted.delay_ms / 1000)
        slip, bet_id, currency = request.slip, pending["betId"], pending["currency"]
        final = recheck_after_delay(accepted, slip, self._context(limits, slip))
        if isinstance(final, Accepted):  # the stake was debited when it was PENDING
            receipt = accepted_receipt(
                bet_id,
                slip,
                final,
                status="ACCEPTED",
                currency=currency,
                balance_after=pending["balanceAfter"],
                max_payout=limits.max_payout,
            )
        else:
            receipt = rejected_receipt(
                slip, final.code.value, final.message, final.details, currency
            )
            receipt["betId"] = bet_id
        outcome = await self.store.resolve_pending(bet_id, isinstance(final, Accepted), receipt)
        resolved = dict(outcome.receipt if outcome.receipt is not None else receipt)
        if resolved["status"] == "REJECTED" and outcome.balance is not None:
            resolved["balanceAfter"] = outcome.balance  # after the refund
        self._tell(account_id, resolved)
        return resolved

    def _tell(self, account_id: str, receipt: dict[str, Any]) -> None:
        if self.on_receipt is not None:
            self.on_receipt(account_id, receipt)


def _busy() -> ApiError:
    return ApiError(ErrorCode.RATE_LIMITED, "server busy: retry in 50 ms (retryAfterMs=50)")


def _settle_from(
    settle: Callable[[dict[str, Any] | BaseException], None], done: asyncio.Task[dict[str, Any]]
) -> None:
    if done.cancelled():
        settle(asyncio.CancelledError())
    else:
        settle(done.exception() or done.result())


def _ledger_busy() -> ApiError:
    return ApiError(ErrorCode.RATE_LIMITED, "ledger busy: retry in 20 ms (retryAfterMs=20)")


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A bet that passed the checks, between :meth:`PlacementService._prepare` and
    :meth:`PlacementService._finish`."""

    account_id: str
    request: PlaceBetRequest
    accepted: Accepted
    status: BetStatus
    currency: str
    limits: BettingLimits
    placement: Placement


# ---- receipts (PROTOCOL.md, Bet receipt) --------------------------------------------------


_clock_text: list[Any] = [None, ""]  # (the millisecond, its text): receipts in one ms share it


def _now_text() -> str:
    now = datetime.now(UTC)
    stamp = (
        now.year,
        now.month,
        now.day,
        now.hour,
        now.minute,
        now.second,
        now.microsecond // 1000,
    )
    if _clock_text[0] != stamp:
        _clock_text[0] = stamp
        _clock_text[1] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    text: str = _clock_text[1]
    return text


_WIRE_PRICES: dict[tuple[int, int, bool], str] = {}


def _wire(price: Price) -> str:
    """``price.to_wire()``, remembered per price (a few hundred distinct on a ladder)."""
    odds = price.odds
    key = (odds.numerator, odds.denominator, price.fractional)
    text = _WIRE_PRICES.get(key)
    if text is None:
        if len(_WIRE_PRICES) >= 10_000:
            _WIRE_PRICES.clear()
        text = _WIRE_PRICES[key] = price.to_wire()
    return text


def _slip_fields(slip: BetSlip) -> dict[str, Any]:
    return {
        "requestId": slip.request_id,
        "type": slip.bet_type.value,
        "system": None if slip.system is None else slip.system.value,
        "eachWay": slip.each_way,
    }


def accepted_receipt(
    bet_id: str,
    slip: BetSlip,
    accepted: Accepted,
    *,
    status: str,
    currency: str,
    balance_after: int | None,
    max_payout: int | None = None,
) -> dict[str, Any]:
    """An accepted (or PENDING) bet's receipt. ``maxPayout`` (an extension): the payout
    cap in force at acceptance, which settlement pays at most (FIELD_CASES B14)."""
    receipt = {
        "betId": bet_id,
        **_slip_fields(slip),
        "status": status,
        "code": None,
        "message": None,
        "placedAt": _now_text(),
        "legs": [
            {
                "marketId": leg.market_id,
                "selectionId": leg.selection_id,
                "price": _wire(leg.price),
                "result": None,
            }
            for leg in accepted.legs
        ],
        "lines": len(accepted.lines),
        "stakePerLine": accepted.stake_per_line,
        "totalStake": accepted.total_stake,
        "potentialReturn": accepted.potential_return,
        "currency": currency,
        "balanceAfter": balance_after,
        "settlement": None,
    }
    if max_payout is not None:
        receipt["maxPayout"] = max_payout
    return receipt


def rejected_receipt(
    slip: BetSlip, code: str, message: str, details: Mapping[str, object], currency: str
) -> dict[str, Any]:
    """Refused, nothing written or debited; ``details`` (an extension) says what would pass."""
    return {
        "betId": None,
        **_slip_fields(slip),
        "status": "REJECTED",
        "code": code,
        "message": message,
        "details": dict(details),
        "placedAt": _now_text(),
        "legs": [
            {
                "marketId": leg.market_id,
                "selectionId": leg.selection_id,
                "price": _wire(leg.price),
                "result": None,
            }
            for leg in slip.legs
        ],
        "lines": 0,
        "stakePerLine": slip.stake_per_line,
        "totalStake": 0,
        "potentialReturn": 0,
        "currency": currency,
        "balanceAfter": None,
        "settlement": None,
    }
