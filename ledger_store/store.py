"""The durable ledger's interface: the :class:`LedgerStore` protocol and its values.

Two implementations with the same behaviour (and the same test suite,
``tests/integration/test_ledger_store.py``): :mod:`ledger_store.sqlite` (the
embedded default) and :mod:`ledger_store.postgres` (production). Money is always
``int`` minor units. A bet's receipt is an opaque JSON object that the caller
builds (:attr:`Placement.receipt_for`); the store keeps it and hands it back.

A bet that is refused at placement (insufficient funds, liability limit,
idempotency conflict) is **never written**: it is a :class:`PlaceOutcome`, not a
row, so a retry after topping up the account can still succeed with the same
request id. Only a bet that was written (as PENDING) and then refused by the
in-play delay is kept, as REJECTED with a REFUND entry (:meth:`resolve_pending`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sportsbook_core.ledger import LedgerEntry
from sportsbook_core.results import SettlementInstruction

BETS_TOPIC = "sportsbook.bets"

Receipt = dict[str, Any]


class BetStatus(StrEnum):
    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    SETTLED = "SETTLED"
    VOID = "VOID"


OPEN_STATUSES: frozenset[str] = frozenset({BetStatus.PENDING, BetStatus.ACCEPTED})
CLOSED_STATUSES: frozenset[str] = frozenset({BetStatus.SETTLED, BetStatus.VOID, BetStatus.REJECTED})
LIST_FILTERS: Mapping[str, frozenset[str]] = {
    **{status.value: frozenset({status.value}) for status in BetStatus if status != "SETTLED"},
    "OPEN": OPEN_STATUSES,
    "SETTLED": CLOSED_STATUSES,
    "ALL": OPEN_STATUSES | CLOSED_STATUSES,
}
"""``bets.list`` filters: OPEN (PENDING, ACCEPTED), SETTLED (every closed bet:
SETTLED, VOID and REJECTED-after-delay), ALL, or one other exact status (PENDING,
ACCEPTED, REJECTED, VOID)."""


class Outcome(StrEnum):
    PLACED = "placed"
    REPLAYED = "replayed"
    CONFLICT = "conflict"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    LIABILITY_LIMIT = "liability_limit"
    RESOLVED = "resolved"
    NOT_FOUND = "not_found"


REJECT_CODES: Mapping[Outcome, str] = {
    Outcome.CONFLICT: "IDEMPOTENCY_CONFLICT",
    Outcome.INSUFFICIENT_FUNDS: "INSUFFICIENT_FUNDS",
    Outcome.LIABILITY_LIMIT: "LIABILITY_LIMIT",
}


class StoreError(Exception):
    """Base of the store's errors."""


class StoreBusy(StoreError):
    """The store's bounded write queue is full: refused at once, nothing written.
    Callers answer it as ``UNAVAILABLE`` (retry later with the same request id)."""


class StoreClosed(StoreError):
    """The store was closed."""


class UnknownAccount(StoreError):
    """No account with that id."""


class AccountExists(StoreError):
    """``create_account`` for an id (or token hash) that is already taken."""


class ReferenceConflict(StoreError):
    """A deposit reference reused with a different amount."""


class ResultConflict(StoreError):
    """A settlement instruction whose (market, version) was recorded with other content."""


class SettleOutcome(StrEnum):
    """What :meth:`LedgerStore.settle_market` did (docs/SETTLEMENT.md)."""

    SETTLED = "settled"
    """The market's first result: its bets settled (or still waiting on other legs)."""
    REPLAYED = "replayed"
    """This (market, version) was done before, or is older than the result in force:
    nothing changed."""
    RESETTLED = "resettled"
    """A correction (a higher version): earlier settlements reversed and restated."""
    POST_OFFICIAL_IGNORED = "post_official_ignored"
    """A post-official change to a settled market: recorded, bets left as they are."""
    HELD = "held"
    """The result needs a trader (:meth:`SettlementInstruction.review_reason`): not settled."""


@dataclass(frozen=True, slots=True)
class SettledBet:
    """One bet that settlement changed: what the service tells the account.

    ``reason``: the BALANCE event's reason (``SETTLEMENT``, ``CORRECTION``,
    ``REJECTED`` for a PENDING bet refused because its market was settled);
    ``moved``: a ledger entry was written (a loser's settlement moves no money, so
    it has a BET event but no BALANCE event)."""

    account_id: str
    bet_id: str
    receipt: Receipt
    balance_after: int
    reason: str
    moved: bool


@dataclass(frozen=True, slots=True)
class SettleReport:
    market_id: str
    version: int
    outcome: SettleOutcome
    bets_settled: int = 0
    """Bets written by this call (settled, voided, resettled or rejected)."""
    bets_open: int = 0
    """Bets on the market left open: another leg's market has no result yet (B05)."""
    changed: tuple[SettledBet, ...] = ()
    """The bets written, unless ``on_chunk`` took them as they were committed."""
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    currency: str
    balance: int
    """The stored ``accounts.balance``: a trigger adds every ledger entry to it in
    the entry's own transaction, so it equals the SUM of the account's entries
    (:meth:`LedgerStore.audit` checks that) without summing them on every read."""
    open_bets: int
    """Bets PENDING or ACCEPTED."""
    limits: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AccountTerms:
    """What placing a bet needs to know about its account: one primary-key read."""

    account_id: str
    currency: str
    limits: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Placement:
    """One bet to place, already validated and priced by the caller.

    ``exposures``: (marketId, selectionId, added liability) — the book's extra
    liability on each selection if this bet wins; summed across every account.
    ``liability_limit``: the most the book may owe on any one selection (None: no
    check). ``receipt_for(bet_id, balance_after)`` builds the receipt; it runs
    inside the transaction (for SQLite, while the batch holds the write lock), so it
    must be fast, pure and must not touch the store.
    """

    account_id: str
    request_id: str
    body_hash: str
    total_stake: int
    status: BetStatus | str
    exposures: Sequence[tuple[str, str, int]]
    liability_limit: int | None
    receipt_for: Callable[[str, int], Receipt]
    bet_id_hint: str | None = None
    """Unused: bet ids are always allocated by the store (kept for the caller's logs)."""

    def __post_init__(self) -> None:
        if not self.account_id or not self.request_id or not self.body_hash:
            raise ValueError("placement needs account_id, request_id and body_hash")
        if not isinstance(self.total_stake, int) or self.total_stake <= 0:
            raise ValueError(f"total_stake must be a positive int, got {self.total_stake!r}")
        if self.status not in (BetStatus.ACCEPTED, BetStatus.PENDING):
            raise ValueError(f"a bet is placed ACCEPTED or PENDING, not {self.status!r}")
        for market_id, selection_id, liability in self.exposures:
            if not market_id or not selection_id or not isinstance(liability, int):
                raise ValueError(f"bad exposure {(market_id, selection_id, liability)!r}")
            if liability < 0:
                raise ValueError(f"exposure must not be negative: {liability}")

    def merged_exposures(self) -> list[tuple[str, str, int]]:
        """Exposures summed per (market, selection), sorted: the order rows are locked in."""
        merged: dict[tuple[str, str], int] = {}
        for market_id, selection_id, liability in self.exposures:
            key = (market_id, selection_id)
            merged[key] = merged.get(key, 0) + liability
        return [(m, s, v) for (m, s), v in sorted(merged.items())]


@dataclass(frozen=True, slots=True)
class PlaceOutcome:
    """What ``place_bet`` / ``resolve_pending`` did.

    ``placed``: written now; ``replayed``: the same request (or resolution) was
    already done, here is the stored receipt, nothing written; ``conflict``: the
    request id was used with another body (or the bet is no longer PENDING);
    ``insufficient_funds`` / ``liability_limit``: refused, nothing written
    (``detail`` says why); ``resolved``: a PENDING bet accepted or rejected now;
    ``not_found``: no such bet.
    """

    outcome: Outcome
    bet_id: str | None = None
    receipt: Receipt | None = None
    balance: int | None = None
    """After the placement (placed/resolved), or the balance that was too low."""
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        """The protocol's reject code (IDEMPOTENCY_CONFLICT, …), or None."""
        return REJECT_CODES.get(self.outcome)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.PLACED, Outcome.REPLAYED, Outcome.RESOLVED)


@dataclass(frozen=True, slots=True)
class StoredBet:
    bet_id: str
    account_id: str
    request_id: str
    body_hash: str
    status: str
    total_stake: int
    receipt: Receipt
    placed_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A bet event waiting to be published (at least once) to ``topic``, keyed by
    ``key`` (the account id, so one account's events stay in order)."""

    event_id: int
    topic: str
    key: str
    payload: dict[str, Any]
    created_at: datetime


class LedgerStore(Protocol):
    """The durable ledger. Every method is safe to call concurrently."""

    async def create_account(
        self, account_id: str, currency: str, token_hash: str | None, limits: Mapping[str, Any]
    ) -> Account:
        """A new account with balance 0. :class:`AccountExists` if the id or the
        token hash is taken (a token names exactly one account)."""
        ...

    async def account_for_token(self, token_hash: str) -> Account | None: ...

    async def account(self, account_id: str) -> Account | None:
        """The stored balance (= SUM of the account's entries); open_bets = PENDING +
        ACCEPTED."""
        ...

    async def account_terms(self, account_id: str) -> AccountTerms | None:
        """The account's currency and limits (no balance, no bet count): the cheap
        read that every placement makes."""
        ...

    async def deposit(self, account_id: str, amount: int, reference: str) -> int:
        """A DEPOSIT entry of ``amount`` (> 0); returns the balance after it.
        Idempotent per (account, reference): a repeat writes nothing and returns the
        current balance; the same reference with another amount raises
        :class:`ReferenceConflict`. :class:`UnknownAccount` for an unknown id."""
        ...

    async def place_bet(self, p: Placement) -> PlaceOutcome:
        """In one transaction: replay or conflict on a known (account, request id);
        lock the account and refuse if balance < stake; add the exposures and refuse
        over the liability limit; allocate the bet id, write the bet, a STAKE entry
        of −stake, its exposures and an outbox event; commit — and only then answer
        ``placed``. Refusals write nothing. :class:`StoreBusy` when the store's
        bounded queue is full; :class:`UnknownAccount` for an unknown account."""
        ...

    async def resolve_pending(self, bet_id: str, accepted: bool, receipt: Receipt) -> PlaceOutcome:
        """End a PENDING bet's in-play delay, in one transaction: ACCEPTED, or
        REJECTED with a REFUND entry of its stake and its exposure released; stores
        ``receipt`` and an outbox event. ``resolved`` now, ``replayed`` if already
        resolved the same way (nothing written), ``conflict`` if the bet is in any
        other status, ``not_found``."""
        ...

    async def get_bet(self, account_id: str, bet_id: str) -> StoredBet | None:
        """The bet if it belongs to ``account_id`` — never another account's."""
        ...

    async def list_bets(
        self, account_id: str, status: str, limit: int, cursor: str | None
    ) -> tuple[list[StoredBet], str | None]:
        """Newest first, at most ``limit``; ``status`` is a :data:`LIST_FILTERS` key.
        Returns the next page's opaque cursor, or None on the last page.
        ValueError for an unknown status, a bad cursor or limit < 1."""
        ...

    async def entries(self, account_id: str) -> list[LedgerEntry]:
        """The account's ledger entries, oldest first."""
        ...

    async def outbox_pending(self, limit: int) -> list[OutboxEvent]:
        """Unpublished events, oldest first (a publisher sends them, then calls
        :meth:`outbox_done`: at least once, in order per account)."""
        ...

    async def outbox_done(self, ids: list[int]) -> None:
        """Marks events published (idempotent)."""
        ...

    async def audit(self) -> list[str]:
        """Accounts whose stored balance differs from the SUM of their entries or is
        negative without a CORRECTION behind it (a corrected settlement may leave a
        balance below zero: docs/SETTLEMENT.md), and bets whose STAKE entry is
        missing; [] when consistent."""
        ...

    async def settle_market(
        self,
        instruction: SettlementInstruction,
        *,
        chunk_size: int | None = None,
        on_chunk: Callable[[Sequence[SettledBet]], None] | None = None,
    ) -> SettleReport:
        """Records the instruction (idempotent per (market, version)) and settles
        every bet with a leg on the market whose legs all have results, in durable
        transactions of ``chunk_size`` bets (restartable: a run cut short is finished
        by running it again; every bet is settled once per result version).
        ``on_chunk`` gets each committed chunk's bets (then the report's ``changed``
        is empty). :class:`ResultConflict` for a known (market, version) with other
        content. See docs/SETTLEMENT.md for corrections and post-official results."""
        ...

    async def market_result(
        self, market_id: str, *, effective: bool = True
    ) -> SettlementInstruction | None:
        """The result in force (the highest version that settled), or with
        ``effective=False`` the highest version recorded (post-official ones too)."""
        ...

    async def book_totals(self, market_id: str | None = None) -> dict[str, tuple[int, int]]:
        """marketId → (staked, returned), exact minor units, over bets that were
        written (REJECTED-after-delay bets count their stake and refund). A bet counts
        once, under the lowest marketId of its legs. ``returned`` is RETURN + REFUND +
        CORRECTION entries; the book's P&L is staked − returned."""
        ...

    async def correct_bet_stake(
        self, bet_id: str, stake_per_line: int, reference: str
    ) -> SettledBet | None:
        """Restates a bet booked at the wrong stake (FIELD_CASES B04(c)): a CORRECTION
        of the stake difference and, if it was settled, its return reversed and
        restated at the new stake. Idempotent per ``reference``; None for an unknown
        bet. ValueError for a stake that is not smaller than the booked one."""
        ...

    async def close(self) -> None:
        """Finishes the writes already accepted, then closes. Idempotent."""
        ...


# --- helpers shared by the backends -------------------------------------------------

CURSOR_PREFIX = "c1."


def encode_cursor(seq: int) -> str:
    """An opaque ``bets.list`` cursor: continue with bets older than ``seq``."""
    return f"{CURSOR_PREFIX}{seq:x}"


def decode_cursor(cursor: str | None) -> int | None:
    """The position in a cursor made by :func:`encode_cursor`; ValueError if malformed."""
    if cursor is None:
        return None
    hex_part = cursor.removeprefix(CURSOR_PREFIX)
    try:
        if hex_part == cursor or not hex_part.isascii():
            raise ValueError
        seq = int(hex_part, 16)
    except ValueError:
        raise ValueError(f"invalid cursor {cursor!r}") from None
    if seq < 1:
        raise ValueError(f"invalid cursor {cursor!r}")
    return seq


def list_filter(status: str) -> frozenset[str]:
    try:
        return LIST_FILTERS[status.upper()]
    except KeyError:
        raise ValueError(f"unknown bets.list status {status!r}") from None


def check_limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    return limit


def check_deposit(amount: int, reference: str) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValueError(f"deposit amount must be a positive int, got {amount!r}")
    if not reference:
        raise ValueError("deposit needs a reference (its idempotency key)")


def bet_event(kind: str, bet_id: str, account_id: str, status: str, receipt: Receipt) -> Receipt:
    """The outbox payload for a bet lifecycle event (``sportsbook.bets``)."""
    return {
        "kind": kind,
        "betId": bet_id,
        "accountId": account_id,
        "status": status,
        "bet": receipt,
    }


def liability_detail(market_id: str, selection_id: str, exposure: int, limit: int) -> Receipt:
    return {
        "marketId": market_id,
        "selectionId": selection_id,
        "exposure": exposure,
        "limit": limit,
    }
