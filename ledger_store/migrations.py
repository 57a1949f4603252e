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
  (migration 2) a trigger refuses any STAKE or WITHDRAWAL that would take it below
  zero, so an overdraft is impossible even for a buggy caller (only a settlement
  correction may leave it negative, and only as the SUM of the entries);
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


# --- 2: settlement (issue #5) ----------------------------------------------------------
#
# * ``market_results``: every settlement instruction received, per (market, version)
#   (idempotency); ``applied`` false for one that settles nothing (post-official, or
#   older than the result in force); ``completed_at`` set when every bet was processed
#   (a run cut short is finished by running it again).
# * ``bet_results``: per (bet, market) the result version the bet was last settled on.
# * ``bet_exposures (market_id, bet_id)``: the bets on a market, in a range scan.
# * ``ledger_entries (bet_id, kind, reference)`` unique: a bet's settlement by one
#   result version is written once (references ``settle:M:vN`` / ``reverse:M:vN``).
# * A corrected settlement may take a balance below zero: the ``balance >= 0`` CHECK
#   goes; a trigger still refuses a STAKE or WITHDRAWAL that would overdraw (B13), and
#   another refuses a negative balance that is not the SUM of the account's entries
#   (a direct ``UPDATE accounts SET balance = -1`` still fails).

_SETTLEMENT_TABLES = (
    """CREATE TABLE market_results (
    market_id {text} NOT NULL,
    version {int} NOT NULL CHECK (version >= 1),
    instruction {json} NOT NULL,
    post_official boolean NOT NULL,
    applied boolean NOT NULL,
    received_at {ts} NOT NULL,
    completed_at {ts},
    PRIMARY KEY (market_id, version)
)""",
    """CREATE TABLE bet_results (
    bet_id {text} NOT NULL REFERENCES bets (bet_id),
    market_id {text} NOT NULL,
    version {int} NOT NULL,
    PRIMARY KEY (bet_id, market_id)
)""",
    "CREATE INDEX bet_exposures_by_market ON bet_exposures (market_id, bet_id)",
    """CREATE UNIQUE INDEX ledger_entries_once_per_reference
    ON ledger_entries (bet_id, kind, reference)""",
)


def _tables(text: str, integer: str, json: str, ts: str) -> tuple[str, ...]:
    return tuple(s.format(text=text, int=integer, json=json, ts=ts) for s in _SETTLEMENT_TABLES)


SQLITE += (
    (
        2,
        (
            *_tables("TEXT", "INTEGER", "TEXT", "TEXT"),
            # Rebuild accounts without CHECK (balance >= 0) (SQLite cannot drop a CHECK).
            # The entry trigger names accounts: dropped first, made again after.
            "DROP TRIGGER ledger_entries_apply",
            """CREATE TABLE accounts_v2 (
    account_id TEXT PRIMARY KEY,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    token_hash TEXT UNIQUE,
    limits TEXT NOT NULL DEFAULT '{}',
    balance INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
)""",
            """INSERT INTO accounts_v2
SELECT account_id, currency, token_hash, limits, balance, created_at FROM accounts""",
            "DROP TABLE accounts",
            "ALTER TABLE accounts_v2 RENAME TO accounts",
            """CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE account_id = NEW.account_id;
END""",
            """CREATE TRIGGER accounts_negative_only_by_entries BEFORE UPDATE OF balance ON accounts
WHEN NEW.balance < 0 AND NEW.balance <> (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries
    WHERE account_id = NEW.account_id)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: a negative balance must be its entries');
END""",
            """CREATE TRIGGER ledger_entries_no_overdraft BEFORE INSERT ON ledger_entries
WHEN NEW.kind IN ('STAKE', 'WITHDRAWAL') AND (SELECT balance FROM accounts
    WHERE account_id = NEW.account_id) + NEW.amount < 0
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: balance >= 0 (overdraft)');
END""",
        ),
    ),
)

POSTGRES += (
    (
        2,
        (
            *_tables("text", "bigint", "jsonb", "timestamptz"),
            "ALTER TABLE accounts DROP CONSTRAINT accounts_balance_check",
            """CREATE FUNCTION ledger_entry_no_overdraft() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.kind IN ('STAKE', 'WITHDRAWAL') AND (SELECT balance FROM accounts
            WHERE account_id = NEW.account_id) + NEW.amount < 0 THEN
        RAISE EXCEPTION 'balance would go below 0 (overdraft)'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$""",
            """CREATE TRIGGER ledger_entries_no_overdraft BEFORE INSERT ON ledger_entries
FOR EACH ROW EXECUTE FUNCTION ledger_entry_no_overdraft()""",
            """CREATE FUNCTION accounts_negative_only_by_entries() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.balance <> (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries
            WHERE account_id = NEW.account_id) THEN
        RAISE EXCEPTION 'a negative balance must be the sum of its entries'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$""",
            """CREATE TRIGGER accounts_negative_only_by_entries BEFORE UPDATE OF balance ON accounts
FOR EACH ROW WHEN (NEW.balance < 0) EXECUTE FUNCTION accounts_negative_only_by_entries()""",
        ),
    ),
)


# --- 3: settlement re-runs (issue #5) ---------------------------------------------------
#
# * ``market_results.swept_seq``: the highest bet ``seq`` when the last run of this
#   (market, version) began. Running a completed instruction again settles the bets
#   placed on the market since (a market that re-opens, takes bets and closes with the
#   same result: the replayed demo); when there is none, one range probe of ``bets``
#   by ``seq`` (its primary key) says so. NULL (a run completed before this migration):
#   every open bet on the market counts.

SQLITE += ((3, ("ALTER TABLE market_results ADD COLUMN swept_seq INTEGER",)),)

POSTGRES += ((3, ("ALTER TABLE market_results ADD COLUMN swept_seq bigint",)),)
