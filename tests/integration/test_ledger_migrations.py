"""Opening a ledger written by an older schema migrates it in place, keeping every row.

Migration 2 rebuilds ``accounts`` (SQLite cannot drop the old ``balance >= 0`` CHECK);
accounts are referenced by bets and ledger entries, so the rebuild must keep every
reference whole (it once failed with FOREIGN KEY constraint failed on a populated
ledger from a previous ``make run``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ledger_store import migrations
from ledger_store.sqlite import SqliteLedgerStore

pytestmark = pytest.mark.asyncio
T = "'2026-12-01T00:00:00+00:00'"


def _v1_ledger(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    version, statements = migrations.SQLITE[0]
    assert version == 1
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"INSERT INTO schema_migrations VALUES (1, {T})")
    conn.execute(
        f"INSERT INTO accounts (account_id, currency, created_at) VALUES ('alice', 'GBP', {T})"
    )
    conn.execute(
        "INSERT INTO ledger_entries (account_id, kind, amount, reference, created_at)"
        f" VALUES ('alice', 'DEPOSIT', 10000, 'd1', {T})"
    )
    conn.execute(
        "INSERT INTO bets (seq, bet_id, account_id, request_id, body_hash, status, total_stake,"
        " receipt, placed_at, updated_at)"
        f" VALUES (1, 'B-000001', 'alice', 'r1', 'h', 'ACCEPTED', 250, '{{}}', {T}, {T})"
    )
    conn.execute(
        "INSERT INTO ledger_entries (account_id, kind, amount, bet_id, reference, created_at)"
        f" VALUES ('alice', 'STAKE', -250, 'B-000001', 'r1', {T})"
    )
    conn.close()


async def test_a_populated_v1_ledger_migrates_with_its_rows_and_references(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _v1_ledger(path)
    store = await SqliteLedgerStore.open(path)
    try:
        account = await store.account("alice")
        assert account is not None and account.balance == 9750
        assert [(e.kind, e.amount) for e in await store.entries("alice")] == [
            ("DEPOSIT", 10000),
            ("STAKE", -250),
        ]
        assert await store.audit() == []
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (
            max(v for v, _ in migrations.SQLITE),
        )
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (0,)
    finally:
        conn.close()
