"""The ledger's rules: every money movement is an immutable, signed entry.

An account's balance is, always, the sum of its entries' amounts (integer minor
units). Nothing here does I/O: the stores in ``ledger_store`` persist entries and
use these rules; tests and audits use :func:`balance_of` and
:func:`ledger_violations` to check what the stores hold.

Sign rules (per kind): money in (DEPOSIT, RETURN, REFUND) is positive, money out
(WITHDRAWAL, STAKE) is negative, a CORRECTION may go either way but is never zero.
STAKE, RETURN and REFUND belong to a bet; DEPOSIT and WITHDRAWAL never do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum

BET_ID_PREFIX = "B-"
BET_ID_DIGITS = 6


class EntryKind(StrEnum):
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    STAKE = "STAKE"
    RETURN = "RETURN"
    REFUND = "REFUND"
    CORRECTION = "CORRECTION"


class Sign(Enum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    NON_ZERO = "non-zero"


SIGN_RULES: dict[EntryKind, Sign] = {
    EntryKind.DEPOSIT: Sign.POSITIVE,
    EntryKind.WITHDRAWAL: Sign.NEGATIVE,
    EntryKind.STAKE: Sign.NEGATIVE,
    EntryKind.RETURN: Sign.POSITIVE,
    EntryKind.REFUND: Sign.POSITIVE,
    EntryKind.CORRECTION: Sign.NON_ZERO,
}

BET_KINDS: frozenset[EntryKind] = frozenset({EntryKind.STAKE, EntryKind.RETURN, EntryKind.REFUND})
"""Kinds that must name a bet."""

NON_BET_KINDS: frozenset[EntryKind] = frozenset({EntryKind.DEPOSIT, EntryKind.WITHDRAWAL})
"""Kinds that must not name a bet (a CORRECTION may or may not)."""


class LedgerError(ValueError):
    """An entry that breaks the ledger's rules."""


def sign_ok(kind: EntryKind, amount: int) -> bool:
    """Whether ``amount`` has the sign that ``kind`` requires."""
    rule = SIGN_RULES[kind]
    if rule is Sign.POSITIVE:
        return amount > 0
    if rule is Sign.NEGATIVE:
        return amount < 0
    return amount != 0


def entry_violation(kind: EntryKind, amount: int, bet_id: str | None) -> str | None:
    """Why an entry of ``kind`` for ``amount`` (and ``bet_id``) is illegal, or None."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        return f"{kind} amount must be an int of minor units, not {type(amount).__name__}"
    if not sign_ok(kind, amount):
        return f"{kind} amount must be {SIGN_RULES[kind].value}, got {amount}"
    if kind in BET_KINDS and not bet_id:
        return f"{kind} entry must name its bet"
    if kind in NON_BET_KINDS and bet_id is not None:
        return f"{kind} entry must not name a bet"
    return None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One money movement. ``amount`` is signed (minor units); ``created_at`` is UTC."""

    entry_id: int
    account_id: str
    kind: EntryKind
    amount: int
    bet_id: str | None
    reference: str
    created_at: datetime

    def __post_init__(self) -> None:
        problem = entry_violation(self.kind, self.amount, self.bet_id)
        if problem is not None:
            raise LedgerError(f"entry {self.entry_id}: {problem}")
        if self.created_at.tzinfo is None:
            raise LedgerError(f"entry {self.entry_id}: created_at must be timezone-aware (UTC)")


def balance_of(entries: Iterable[LedgerEntry]) -> int:
    """The balance the entries make: the sum of their amounts."""
    return sum(entry.amount for entry in entries)


def running_balances(entries: Iterable[LedgerEntry]) -> list[int]:
    """The balance after each entry, in the order given."""
    balance = 0
    out: list[int] = []
    for entry in entries:
        balance += entry.amount
        out.append(balance)
    return out


def ledger_violations(entries: Iterable[LedgerEntry]) -> list[str]:
    """Everything wrong with one account's entries (in entry order), or []: mixed
    accounts, entries out of order or duplicated, a balance that ever goes below
    zero, more than one STAKE or REFUND per bet, or a REFUND that exceeds its
    bet's stake."""
    problems: list[str] = []
    balance = 0
    last_id: int | None = None
    account: str | None = None
    stakes: dict[str, int] = {}
    refunds: dict[str, int] = {}
    for entry in entries:
        if account is None:
            account = entry.account_id
        elif entry.account_id != account:
            problems.append(f"entry {entry.entry_id} is for {entry.account_id}, not {account}")
        if last_id is not None and entry.entry_id <= last_id:
            problems.append(f"entry {entry.entry_id} follows entry {last_id}")
        last_id = entry.entry_id
        balance += entry.amount
        if balance < 0:
            problems.append(f"balance {balance} after entry {entry.entry_id}")
        if entry.bet_id is not None and entry.kind in (EntryKind.STAKE, EntryKind.REFUND):
            seen = stakes if entry.kind is EntryKind.STAKE else refunds
            if entry.bet_id in seen:
                problems.append(f"second {entry.kind} for bet {entry.bet_id}")
            seen[entry.bet_id] = entry.amount
            if entry.kind is EntryKind.REFUND and entry.amount > -stakes.get(entry.bet_id, 0):
                problems.append(f"refund {entry.amount} exceeds the stake of bet {entry.bet_id}")
    return problems


def bet_id_for(seq: int) -> str:
    """The human-readable id of the ``seq``-th bet: ``B-000123`` (more digits past 999999)."""
    if seq < 1:
        raise ValueError(f"bet sequence numbers start at 1, got {seq}")
    return f"{BET_ID_PREFIX}{seq:0{BET_ID_DIGITS}d}"


def bet_seq_of(bet_id: str) -> int | None:
    """The sequence number in a bet id made by :func:`bet_id_for`, or None."""
    digits = bet_id.removeprefix(BET_ID_PREFIX)
    if digits == bet_id or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)
