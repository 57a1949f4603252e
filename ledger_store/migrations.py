"""The ledger's schema, per backend, as numbered migrations applied on open.

Each migration is a tuple of statements run in one transaction together with its
row in ``schema_migrations``; opening a store applies the missing ones (so opening
is idempotent, and two processes opening at once apply each migration once:
SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's advisory lock). Append new migrations;
never edit a released one.

The two schemas are the same tables with the same constraints, so the database
itself guards the invariants the code relies on:

* ``ledger_entries`` is append-only (triggers refuse UPDATE and DELETE) and its
  CHECKs are the sign rules of :mod:`sportsbook_core.ledger`;
* ``accounts.balance`` is maintained by a trigger on every entry insert in the
  same transaction, so it is the SUM of the entries by construction, and
  ``CHECK (balance >= 0)`` makes an overdraft impossible even for a buggy caller;
* ``UNIQUE (account_id, request_id)`` on ``bets`` is the idempotency guard, one
  STAKE and at most one REFUND per bet, one DEPOSIT per (account, reference).
"""

from __future__ import annotations

from collections.abc import Iterable

from sportsbook_core.ledger import BET_KINDS, NON_BET_KINDS, SIGN_RULES, EntryKind, Sign

Migration = tuple[int, tuple[str, ...]]


def _in(kinds: Iterable[str]) -> str:
    values = sorted(str(k) for k in kinds)
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _entry_checks() -> str:
    """The sign and bet rules of :mod:`sportsbook_core.ledger` as SQL CHECKs."""
    by_sign = {sign: sorted(k.value for k, s in SIGN_RULES.items() if s is sign) for sign in Sign}
    op = {Sign.POSITIVE: "> 0", Sign.NEGATIVE: "< 0", Sign.NON_ZERO: "<> 0"}
    sign_terms = " OR ".join(
        f"(kind IN {_in(kinds)} AND amount {op[sign]})" for sign, kinds in by_sign.items() if kinds
    )
    return (
        f"CHECK (kind IN {_in(EntryKind)}),\n"
        f"    CHECK ({sign_terms}),\n"
        f"    CHECK (kind NOT IN {_in(BET_KINDS)} OR bet_id IS NOT NULL),\n"
        f"    CHECK (kind NOT IN {_in(NON_BET_KINDS)} OR bet_id IS NULL)"
    )


_STATUSES = "('PENDING', 'ACCEPTED', 'REJECTED', 'SETTLED', 'VOID')"

SQLITE: tuple[Migration, ...] = (
    (
        1,
        (
            """CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    token_hash TEXT UNIQUE,
    limits TEXT NOT NULL DEFAULT '{}',
    balance INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at TEXT NOT NULL
)""",
            """CREATE TABLE bets (
    seq INTEGER PRIMARY KEY,
    bet_id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    request_id TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN """
            + _STATUSES
            + """),
    total_stake INTEGER NOT NULL CHECK (total_stake > 0),
    receipt TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT bets_request_unique UNIQUE (account_id, request_id)
)""",
            "CREATE INDEX bets_by_account ON bets (account_id, seq)",
            f"""CREATE TABLE ledger_entries (
    entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    bet_id TEXT REFERENCES bets (bet_id),
    reference TEXT NOT NULL,
    created_at TEXT NOT NULL,
    {_entry_checks()}
)""",
            "CREATE INDEX ledger_entries_by_account ON ledger_entries (account_id, amount)",
            """CREATE UNIQUE INDEX ledger_entries_deposit_ref
    ON ledger_entries (account_id, reference) WHERE kind = 'DEPOSIT'""",
            """CREATE UNIQUE INDEX ledger_entries_one_stake
    ON ledger_entries (bet_id) WHERE kind = 'STAKE'""",
            """CREATE UNIQUE INDEX ledger_entries_one_refund
    ON ledger_entries (bet_id) WHERE kind = 'REFUND'""",
            """CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE account_id = NEW.account_id;
END""",
            """CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are immutable');
END""",
            """CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are immutable');
END""",
            """CREATE TABLE exposure (
    market_id TEXT NOT NULL,
    selection_id TEXT NOT NULL,
    liability INTEGER NOT NULL CHECK (liability >= 0),
    PRIMARY KEY (market_id, selection_id)
)""",
            """CREATE TABLE bet_exposures (
    bet_id TEXT NOT NULL REFERENCES bets (bet_id),
    market_id TEXT NOT NULL,
    selection_id TEXT NOT NULL,
    liability INTEGER NOT NULL CHECK (liability >= 0),
    PRIMARY KEY (bet_id, market_id, selection_id)
)""",
            """CREATE TABLE outbox (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    published_at TEXT
)""",
            "CREATE INDEX outbox_unpublished ON outbox (event_id) WHERE published_at IS NULL",
            """CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
)""",
            "INSERT INTO counters (name, value) VALUES ('bet', 0)",
        ),
    ),
)

POSTGRES: tuple[Migration, ...] = (
    (
        1,
        (
            """CREATE TABLE accounts (
    account_id text PRIMARY KEY,
    currency text NOT NULL CHECK (length(currency) = 3),
    token_hash text UNIQUE,
    limits jsonb NOT NULL DEFAULT '{}',
    balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at timestamptz NOT NULL
)""",
            """CREATE TABLE bets (
    seq bigint PRIMARY KEY,
    bet_id text NOT NULL UNIQUE,
    account_id text NOT NULL REFERENCES accounts (account_id),
    request_id text NOT NULL,
    body_hash text NOT NULL,
    status text NOT NULL CHECK (status IN """
            + _STATUSES
            + """),
    total_stake bigint NOT NULL CHECK (total_stake > 0),
    receipt jsonb NOT NULL,
    placed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT bets_request_unique UNIQUE (account_id, request_id)
)""",
            "CREATE INDEX bets_by_account ON bets (account_id, seq)",
            "CREATE SEQUENCE bet_seq AS bigint START 1",
            f"""CREATE TABLE ledger_entries (
    entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (account_id),
    kind text NOT NULL,
    amount bigint NOT NULL,
    bet_id text REFERENCES bets (bet_id),
    reference text NOT NULL,
    created_at timestamptz NOT NULL,
    {_entry_checks()}
)""",
            "CREATE INDEX ledger_entries_by_account ON ledger_entries (account_id, amount)",
            """CREATE UNIQUE INDEX ledger_entries_deposit_ref
    ON ledger_entries (account_id, reference) WHERE kind = 'DEPOSIT'""",
            """CREATE UNIQUE INDEX ledger_entries_one_stake
    ON ledger_entries (bet_id) WHERE kind = 'STAKE'""",
            """CREATE UNIQUE INDEX ledger_entries_one_refund
    ON ledger_entries (bet_id) WHERE kind = 'REFUND'""",
            """CREATE FUNCTION ledger_entry_apply() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE account_id = NEW.account_id;
    RETURN NULL;
END
$$""",
            """CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
FOR EACH ROW EXECUTE FUNCTION ledger_entry_apply()""",
            """CREATE FUNCTION ledger_entry_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable';
END
$$""",
            """CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries
FOR EACH ROW EXECUTE FUNCTION ledger_entry_immutable()""",
            """CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_immutable()""",
            """CREATE TABLE exposure (
    market_id text NOT NULL,
    selection_id text NOT NULL,
    liability bigint NOT NULL CHECK (liability >= 0),
    PRIMARY KEY (market_id, selection_id)
)""",
            """CREATE TABLE bet_exposures (
    bet_id text NOT NULL REFERENCES bets (bet_id),
    market_id text NOT NULL,
    selection_id text NOT NULL,
    liability bigint NOT NULL CHECK (liability >= 0),
    PRIMARY KEY (bet_id, market_id, selection_id)
)""",
            """CREATE TABLE outbox (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic text NOT NULL,
    key text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    published_at timestamptz
)""",
            "CREATE INDEX outbox_unpublished ON outbox (event_id) WHERE published_at IS NULL",
        ),
    ),
)
