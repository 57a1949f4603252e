"""The durable ledger (issue #4): accounts, bets, immutable ledger entries, outbox.

``open_store(url)`` picks the backend from the URL:

* ``None`` → SQLite at ``default_path`` (the caller's default file);
* ``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` → SQLite (embedded);
* ``postgresql://user:password@host:port/db`` (or ``postgres://``) → PostgreSQL.
  Extra query parameters become PostgreSQL settings (``?search_path=ledger``).

Both apply their migrations on open (idempotent). See :mod:`ledger_store.store`
for the protocol and the values it speaks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger_store.store import (
    Account,
    AccountExists,
    AccountTerms,
    BetStatus,
    LedgerStore,
    OutboxEvent,
    Outcome,
    Placement,
    PlaceOutcome,
    ReferenceConflict,
    ResultConflict,
    SettledBet,
    SettleOutcome,
    SettleReport,
    StoreBusy,
    StoreClosed,
    StoredBet,
    StoreError,
    UnknownAccount,
)

__all__ = [
    "Account",
    "AccountExists",
    "AccountTerms",
    "BetStatus",
    "LedgerStore",
    "OutboxEvent",
    "Outcome",
    "PlaceOutcome",
    "Placement",
    "ReferenceConflict",
    "ResultConflict",
    "SettleOutcome",
    "SettleReport",
    "SettledBet",
    "StoreBusy",
    "StoreClosed",
    "StoreError",
    "StoredBet",
    "UnknownAccount",
    "open_store",
]


async def open_store(
    url: str | None, *, default_path: str | Path | None = None, **options: Any
) -> LedgerStore:
    """Opens (creating or migrating) the ledger at ``url``.

    ``options`` go to the backend: both take ``queue_size`` (placements queued or in
    flight before ``place_bet`` raises :class:`StoreBusy`); SQLite also takes
    ``max_batch`` (placements per group commit) and ``write_timeout``;
    PostgreSQL ``pool_size``. Each ignores the other's options.
    """
    if url is None:
        if default_path is None:
            raise ValueError("no ledger URL and no default SQLite path")
        url = f"sqlite:///{default_path}"
    if url.startswith(("postgresql://", "postgres://")):
        from ledger_store.postgres import PostgresLedgerStore  # noqa: PLC0415 - asyncpg only here

        return await PostgresLedgerStore.open(url, **options)
    if url.startswith("sqlite:"):
        from ledger_store.sqlite import SqliteLedgerStore  # noqa: PLC0415 - symmetry

        sqlite_options = {k: v for k, v in options.items() if k != "pool_size"}
        return await SqliteLedgerStore.open(url, **sqlite_options)
    raise ValueError(f"unsupported ledger URL {url!r} (sqlite:///PATH or postgresql://…)")
