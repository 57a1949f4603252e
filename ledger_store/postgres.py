"""The production ledger: PostgreSQL through an asyncpg pool.

Same behaviour as :mod:`ledger_store.sqlite` (same tests). Each write is one
transaction on one pooled connection, READ COMMITTED, and serialises on the
account's row: ``SELECT … FOR UPDATE`` on ``accounts`` comes first, so the
balance check and the writes see every earlier placement on that account,
while placements on different accounts run in parallel. Rows are always locked
in one order — account, then bet, then exposure rows sorted by (market,
selection) — so two transactions cannot deadlock on each other.

A placement is four round trips (BEGIN; lock the account, look up the request
id and allocate the bet id; add the exposure and write the bet, its STAKE
entry, exposure rows and outbox event in one statement; COMMIT), each statement
prepared once per connection (asyncpg's statement cache). Commits stay
synchronous (durable before the receipt). Connections go back to the pool
without asyncpg's session reset query (see :func:`_keep_session`).

``UNIQUE (account_id, request_id)`` is the final guard: the idempotency
look-up reads the statement's snapshot, so should two retries of one request
both get past it, the loser's transaction fails on the constraint and is run
again, and then answers ``replayed`` (or ``conflict``).

Bet ids come from the sequence ``bet_seq`` (unique across restarts and
processes; a rolled-back transaction may leave a gap, never a duplicate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import asyncpg
import orjson

from ledger_store import migrations
from ledger_store.settling import (
    SETTLEABLE,
    Begun,
    BetWrite,
    Chunk,
    OpenBet,
    SettleCache,
    apply_balances,
    begin_outcome,
    bet_markets,
    check_stake_correction,
    held_report,
    merged_release,
    outbox_payload,
    plan_bet,
    plan_stake_correction,
    rerun_begun,
    run_chunks,
    settled_rows,
)
from ledger_store.store import (
    BETS_TOPIC,
    Account,
    AccountExists,
    AccountTerms,
    BetStatus,
    OutboxEvent,
    Outcome,
    Placement,
    PlaceOutcome,
    Receipt,
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
    bet_event,
    check_deposit,
    check_limit,
    decode_cursor,
    encode_cursor,
    liability_detail,
    list_filter,
)
from schemas.results import instruction_from_wire, instruction_to_wire
from sportsbook_core.ledger import EntryKind, LedgerEntry, bet_id_for
from sportsbook_core.results import SettlementInstruction

DEFAULT_POOL_SIZE = 10
DEFAULT_QUEUE_SIZE = 1024
MIGRATION_LOCK = 0x5B0_0C1ED6E  # pg_advisory_xact_lock key: one migrator at a time
REQUEST_UNIQUE = "bets_request_unique"

_ACCOUNT_BY_ID = """SELECT a.account_id, a.currency, a.limits, a.balance,
    (SELECT COUNT(*) FROM bets b
        WHERE b.account_id = a.account_id AND b.status IN ('PENDING', 'ACCEPTED')) AS open_bets
FROM accounts a WHERE a.account_id = $1"""
_ACCOUNT_BY_HASH = """SELECT a.account_id, a.currency, a.limits, a.balance,
    (SELECT COUNT(*) FROM bets b
        WHERE b.account_id = a.account_id AND b.status IN ('PENDING', 'ACCEPTED')) AS open_bets
FROM accounts a WHERE a.token_hash = $1"""
_ACCOUNT_TERMS = "SELECT currency, limits FROM accounts WHERE account_id = $1"
# Locks the account's row and reads its balance and the bet already placed with
# this request id (if any); when the bet can go ahead (new request, funds enough,
# and, read without locking, no selection would go over the liability limit $7)
# it allocates the bet id too: one round trip. Under READ COMMITTED the locked
# account row is re-read at its latest version after waiting for the lock; the
# bets side is the statement's snapshot, so a retry of the same request that
# committed while this one waited is not seen here: the bet's INSERT then fails on
# UNIQUE (account_id, request_id) and the placement runs again (and replays).
_LOCK_AND_LOOK = """SELECT a.balance, b.bet_id, b.body_hash, b.receipt,
    CASE WHEN b.bet_id IS NULL AND a.balance >= $3 AND NOT EXISTS (
        SELECT 1 FROM unnest($4::text[], $5::text[], $6::bigint[])
            AS u (market_id, selection_id, added)
        LEFT JOIN exposure x USING (market_id, selection_id)
        WHERE $7::bigint IS NOT NULL AND COALESCE(x.liability, 0) + u.added > $7::bigint
    ) THEN nextval('bet_seq') END AS seq
FROM accounts a LEFT JOIN bets b ON b.account_id = a.account_id AND b.request_id = $2
WHERE a.account_id = $1
FOR UPDATE OF a"""
# Adds the bet's liabilities to the book's exposure rows (locking them, in sorted
# order) and, unless one then exceeds the limit ($15, NULL: none), writes the bet,
# its STAKE entry (whose trigger debits accounts.balance, CHECK >= 0), its exposure
# rows and its outbox event: one statement. One row: the first selection over the
# limit (then nothing but the exposure was written: the caller rolls back), or NULLs.
_EXPOSE_AND_WRITE = """WITH up AS (
    INSERT INTO exposure AS x (market_id, selection_id, liability)
    SELECT * FROM unnest($10::text[], $11::text[], $12::bigint[])
    ON CONFLICT (market_id, selection_id) DO UPDATE SET liability = x.liability + excluded.liability
    RETURNING x.market_id, x.selection_id, x.liability
), over AS (
    SELECT market_id, selection_id, liability FROM up
    WHERE $15::bigint IS NOT NULL AND liability > $15::bigint
    ORDER BY market_id, selection_id LIMIT 1
), bet AS (
    INSERT INTO bets (seq, bet_id, account_id, request_id, body_hash, status, total_stake,
        receipt, placed_at, updated_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9 WHERE NOT EXISTS (SELECT 1 FROM over)
    RETURNING bet_id
), stake AS (
    INSERT INTO ledger_entries (account_id, kind, amount, bet_id, reference, created_at)
    SELECT $3, 'STAKE', -$7::bigint, bet.bet_id, $4, $9 FROM bet
), legs AS (
    INSERT INTO bet_exposures (bet_id, market_id, selection_id, liability)
    SELECT bet.bet_id, u.* FROM bet, unnest($10::text[], $11::text[], $12::bigint[]) AS u
), event AS (
    INSERT INTO outbox (topic, key, payload, created_at) SELECT $13, $3, $14, $9 FROM bet
)
SELECT over.market_id, over.selection_id, over.liability
FROM (VALUES (1)) AS one (n) LEFT JOIN over ON true"""
# The precise path, when the look-ahead above saw a selection over the limit.
# Adds the bet's liabilities to the book's exposure rows (locking them, in sorted
# order) and, unless one then exceeds the limit ($4, NULL: none), allocates the bet
# id. One row: the first selection over the limit, or seq.
_EXPOSE_AND_ALLOCATE = """WITH up AS (
    INSERT INTO exposure AS x (market_id, selection_id, liability)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
    ON CONFLICT (market_id, selection_id) DO UPDATE SET liability = x.liability + excluded.liability
    RETURNING x.market_id, x.selection_id, x.liability
), over AS (
    SELECT market_id, selection_id, liability FROM up
    WHERE $4::bigint IS NOT NULL AND liability > $4::bigint
    ORDER BY market_id, selection_id LIMIT 1
)
SELECT over.market_id, over.selection_id, over.liability,
    CASE WHEN over.market_id IS NULL THEN nextval('bet_seq') END AS seq
FROM (VALUES (1)) AS one (n) LEFT JOIN over ON true"""
# The bet, its STAKE entry, its exposure rows and its outbox event: one statement.
_WRITE_BET = """WITH bet AS (
    INSERT INTO bets (seq, bet_id, account_id, request_id, body_hash, status, total_stake,
        receipt, placed_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
), stake AS (
    INSERT INTO ledger_entries (account_id, kind, amount, bet_id, reference, created_at)
    VALUES ($3, 'STAKE', -$7::bigint, $2, $4, $9)
), legs AS (
    INSERT INTO bet_exposures (bet_id, market_id, selection_id, liability)
    SELECT $2, * FROM unnest($10::text[], $11::text[], $12::bigint[])
)
INSERT INTO outbox (topic, key, payload, created_at) VALUES ($13, $3, $14, $9)"""
_GET_BET = """SELECT bet_id, account_id, request_id, body_hash, status, total_stake, receipt,
    placed_at, updated_at
FROM bets WHERE bet_id = $1 AND account_id = $2"""
_LIST_BETS = """SELECT bet_id, account_id, request_id, body_hash, status, total_stake, receipt,
    placed_at, updated_at, seq
FROM bets
WHERE account_id = $1 AND status = ANY($2::text[]) AND seq < $3
ORDER BY seq DESC LIMIT $4"""


class _Rollback(Exception):
    """Raised inside a transaction to roll it back and still answer ``result``."""

    def __init__(self, result: PlaceOutcome) -> None:
        super().__init__()
        self.result = result


def _now() -> datetime:
    return datetime.now(UTC)


async def _init_connection(conn: Any) -> None:
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: Any) -> None:
    """The pool's reset on release, instead of asyncpg's default (``RESET ALL``,
    ``CLOSE ALL``, ``UNLISTEN *``, ``pg_advisory_unlock_all()``: one more round trip
    a bet). This store leaves no session state behind: it sets nothing, opens no
    cursor, listens to nothing and takes only transaction-scoped advisory locks. An
    open transaction is still rolled back on release (the pool does that before
    calling this)."""


def _entry(r: Any) -> LedgerEntry:
    kind = EntryKind(r["kind"])
    return LedgerEntry(
        r["entry_id"],
        r["account_id"],
        kind,
        r["amount"],
        r["bet_id"],
        r["reference"],
        r["created_at"],
    )


def _bet(row: Any) -> StoredBet:
    return StoredBet(
        row["bet_id"],
        row["account_id"],
        row["request_id"],
        row["body_hash"],
        row["status"],
        row["total_stake"],
        row["receipt"],
        row["placed_at"],
        row["updated_at"],
    )


class PostgresLedgerStore:
    def __init__(self, pool: Any, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._pool = pool
        self._closed = False
        self._queue_size = queue_size
        self._placing = 0  # placements waiting for or holding a connection
        self._results: dict[tuple[str, int], SettlementInstruction] = {}  # parsed, immutable

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        **_ignored: Any,
    ) -> PostgresLedgerStore:
        """Connects (a pool of ``pool_size``) and applies missing migrations. At most
        ``queue_size`` placements may be in flight; more raise :class:`StoreBusy`
        at once, as the SQLite store's full queue does. Options meant only for the
        SQLite store (``max_batch``, ``write_timeout``) are ignored."""
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=pool_size, init=_init_connection, reset=_keep_session
        )
        try:
            await _migrate(pool)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, queue_size=queue_size)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the ledger store is closed")

    # --- writes ----------------------------------------------------------------------

    async def create_account(
        self, account_id: str, currency: str, token_hash: str | None, limits: Mapping[str, Any]
    ) -> Account:
        self._check_open()
        try:
            await self._pool.execute(
                "INSERT INTO accounts (account_id, currency, token_hash, limits, created_at)"
                " VALUES ($1, $2, $3, $4, $5)",
                account_id,
                currency,
                token_hash,
                dict(limits),
                _now(),
            )
        except asyncpg.UniqueViolationError:
            raise AccountExists(f"account {account_id!r} or its token already exists") from None
        return Account(account_id, currency, 0, 0, orjson.loads(orjson.dumps(dict(limits))))

    async def deposit(self, account_id: str, amount: int, reference: str) -> int:
        check_deposit(amount, reference)
        self._check_open()
        for attempt in (1, 2):
            try:
                return await self._deposit_once(account_id, amount, reference)
            except asyncpg.UniqueViolationError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _deposit_once(self, account_id: str, amount: int, reference: str) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            balance = await _lock_account(conn, account_id)
            done = await conn.fetchval(
                "SELECT amount FROM ledger_entries"
                " WHERE account_id = $1 AND kind = 'DEPOSIT' AND reference = $2",
                account_id,
                reference,
            )
            if done is not None:
                if done != amount:
                    raise ReferenceConflict(f"deposit {reference!r} was {done}, not {amount}")
                return balance
            await _insert_entry(
                conn,
                account_id=account_id,
                kind=EntryKind.DEPOSIT,
                amount=amount,
                bet_id=None,
                reference=reference,
            )
            new_balance: int = await conn.fetchval(
                "SELECT balance FROM accounts WHERE account_id = $1", account_id
            )
            return new_balance

    async def place_bet(self, p: Placement) -> PlaceOutcome:
        self._check_open()
        if self._placing >= self._queue_size:
            raise StoreBusy(f"{self._placing} placements already in flight")
        self._placing += 1
        try:
            for attempt in (1, 2):
                try:
                    return await self._place_once(p)
                except _Rollback as rollback:
                    return rollback.result
                except asyncpg.UniqueViolationError as exc:
                    # Another transaction placed the same request first: run again to replay.
                    if attempt == 2 or exc.constraint_name != REQUEST_UNIQUE:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self._placing -= 1

    async def _place_once(self, p: Placement) -> PlaceOutcome:
        """BEGIN, lock-and-look, expose-and-write, COMMIT: four round trips. When the
        look-ahead sees a selection over the liability limit, the exposure is added
        under its row locks first and the bet id allocated only if it fits (so a
        refusal leaves no gap in the bet ids), then the bet written: five."""
        exposures = p.merged_exposures()
        markets = [market_id for market_id, _, _ in exposures]
        selections = [selection_id for _, selection_id, _ in exposures]
        added = [liability for _, _, liability in exposures]
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                _LOCK_AND_LOOK,
                p.account_id,
                p.request_id,
                p.total_stake,
                markets,
                selections,
                added,
                p.liability_limit,
            )
            if row is None:
                raise UnknownAccount(f"no account {p.account_id!r}")
            balance: int = row["balance"]
            if row["bet_id"] is not None:
                if row["body_hash"] != p.body_hash:
                    return PlaceOutcome(Outcome.CONFLICT, row["bet_id"], None, balance)
                return PlaceOutcome(Outcome.REPLAYED, row["bet_id"], row["receipt"], balance)
            if balance < p.total_stake:
                detail = {"balance": balance, "required": p.total_stake}
                return PlaceOutcome(Outcome.INSUFFICIENT_FUNDS, None, None, balance, detail)
            seq: int | None = row["seq"]
            exposed = False
            if seq is None:  # over the limit as last committed: check under the row locks
                over = await conn.fetchrow(
                    _EXPOSE_AND_ALLOCATE, markets, selections, added, p.liability_limit
                )
                if over["seq"] is None:
                    self._refuse_over_limit(p, exposures, over, balance)
                seq, exposed = over["seq"], True
            assert seq is not None
            bet_id = bet_id_for(seq)
            balance_after = balance - p.total_stake
            receipt = orjson.loads(orjson.dumps(p.receipt_for(bet_id, balance_after)))
            payload = bet_event("PLACED", bet_id, p.account_id, str(p.status), receipt)
            args = (
                seq,
                bet_id,
                p.account_id,
                p.request_id,
                p.body_hash,
                str(p.status),
                p.total_stake,
                receipt,
                _now(),
                markets,
                selections,
                added,
                BETS_TOPIC,
                payload,
            )
            if exposed:
                await conn.execute(_WRITE_BET, *args)
            else:
                over = await conn.fetchrow(_EXPOSE_AND_WRITE, *args, p.liability_limit)
                if over["market_id"] is not None:  # a concurrent bet took the room meanwhile
                    self._refuse_over_limit(p, exposures, over, balance)
            return PlaceOutcome(Outcome.PLACED, bet_id, receipt, balance_after)

    @staticmethod
    def _refuse_over_limit(
        p: Placement, exposures: list[tuple[str, str, int]], over: Any, balance: int
    ) -> NoReturn:
        """Rolls the transaction back and answers LIABILITY_LIMIT for ``over``'s selection."""
        key = (over["market_id"], over["selection_id"])
        already = over["liability"] - next(v for m, s, v in exposures if (m, s) == key)
        detail = liability_detail(
            over["market_id"], over["selection_id"], already, p.liability_limit or 0
        )
        raise _Rollback(PlaceOutcome(Outcome.LIABILITY_LIMIT, None, None, balance, detail))

    async def resolve_pending(self, bet_id: str, accepted: bool, receipt: Receipt) -> PlaceOutcome:
        self._check_open()
        receipt = orjson.loads(orjson.dumps(receipt))
        target = BetStatus.ACCEPTED if accepted else BetStatus.REJECTED
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(
                "SELECT account_id FROM bets WHERE bet_id = $1", bet_id
            )
            if account_id is None:
                return PlaceOutcome(Outcome.NOT_FOUND, bet_id)
            balance = await _lock_account(conn, account_id)
            bet = await conn.fetchrow(
                "SELECT status, total_stake, receipt FROM bets WHERE bet_id = $1 FOR UPDATE",
                bet_id,
            )
            status = bet["status"]
            if status != BetStatus.PENDING:
                outcome = Outcome.REPLAYED if status == target else Outcome.CONFLICT
                return PlaceOutcome(outcome, bet_id, bet["receipt"], balance, {"status": status})
            await conn.execute(
                "UPDATE bets SET status = $2, receipt = $3, updated_at = $4 WHERE bet_id = $1",
                bet_id,
                target.value,
                receipt,
                _now(),
            )
            if not accepted:
                stake: int = bet["total_stake"]
                await _insert_entry(
                    conn,
                    account_id=account_id,
                    kind=EntryKind.REFUND,
                    amount=stake,
                    bet_id=bet_id,
                    reference=f"rejected:{bet_id}",
                )
                await conn.execute(
                    "SELECT 1 FROM exposure x JOIN bet_exposures be USING (market_id, selection_id)"
                    " WHERE be.bet_id = $1 ORDER BY x.market_id, x.selection_id FOR UPDATE OF x",
                    bet_id,
                )
                await conn.execute(
                    "UPDATE exposure x SET liability = x.liability - be.liability"
                    " FROM bet_exposures be WHERE be.bet_id = $1"
                    " AND x.market_id = be.market_id AND x.selection_id = be.selection_id",
                    bet_id,
                )
                balance += stake
            payload = bet_event(target.value, bet_id, account_id, target.value, receipt)
            await _outbox(conn, account_id, payload)
            return PlaceOutcome(Outcome.RESOLVED, bet_id, receipt, balance)

    async def outbox_done(self, ids: list[int]) -> None:
        self._check_open()
        if ids:
            await self._pool.execute(
                "UPDATE outbox SET published_at = $2"
                " WHERE event_id = ANY($1::bigint[]) AND published_at IS NULL",
                list(ids),
                _now(),
            )

    # --- settlement (issue #5; docs/SETTLEMENT.md) ---------------------------------------

    async def settle_market(
        self,
        instruction: SettlementInstruction,
        *,
        chunk_size: int | None = None,
        on_chunk: Callable[[Sequence[SettledBet]], None] | None = None,
    ) -> SettleReport:
        """The result recorded (one transaction, under the market's advisory lock),
        then chunks of bets, each one transaction that locks its accounts (sorted),
        then its bets, then the exposure rows (sorted): the placements' lock order."""
        self._check_open()
        held = held_report(instruction)
        if held is not None:
            return held
        market_id, version = instruction.market_id, instruction.version
        begun = await self._settle_begin(instruction)
        if begun.after is None:
            return SettleReport(market_id, version, begun.outcome)
        cache = SettleCache()

        async def chunk(after: str, size: int) -> Chunk:
            self._check_open()
            return await self._settle_chunk(instruction, after, size, cache)

        async def finish() -> None:
            await self._pool.execute(
                "UPDATE market_results SET completed_at = COALESCE(completed_at, $3),"
                " swept_seq = GREATEST(COALESCE(swept_seq, -1), $4::bigint)"
                " WHERE market_id = $1 AND version = $2",
                market_id,
                version,
                _now(),
                begun.mark,
            )

        return await run_chunks(
            instruction,
            begun.outcome,
            chunk,
            finish,
            chunk_size=chunk_size,
            on_chunk=on_chunk,
            after=begun.after,
        )

    async def _settle_begin(self, instruction: SettlementInstruction) -> Begun:
        market_id, version = instruction.market_id, instruction.version
        wire = instruction_to_wire(instruction)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", market_id)
            row = await conn.fetchrow(
                "SELECT instruction, completed_at, applied, swept_seq FROM market_results"
                " WHERE market_id = $1 AND version = $2",
                market_id,
                version,
            )
            earlier = await conn.fetchval(
                "SELECT MAX(version) FROM market_results"
                " WHERE market_id = $1 AND applied AND version < $2",
                market_id,
                version,
            )
            mark = await conn.fetchval("SELECT COALESCE(MAX(seq), 0) FROM bets")
            if row is not None:
                if not instruction_from_wire(row["instruction"]).same_result(instruction):
                    raise ResultConflict(
                        f"market {market_id} v{version} was recorded with another result"
                    )
                if row["completed_at"] is not None:
                    in_force = await conn.fetchval(
                        "SELECT MAX(version) FROM market_results WHERE market_id = $1 AND applied",
                        market_id,
                    )
                    since = -1 if row["swept_seq"] is None else row["swept_seq"]
                    newer = await conn.fetchval(_OPEN_BETS_SINCE, since, market_id)
                    return rerun_begun(row["applied"], in_force, version, newer is not None, mark)
                outcome = SettleOutcome.SETTLED if earlier is None else SettleOutcome.RESETTLED
                return Begun(outcome, "", mark)
            newest = await conn.fetchval(
                "SELECT MAX(version) FROM market_results WHERE market_id = $1 AND applied",
                market_id,
            )
            outcome, applies = begin_outcome(version, instruction.post_official, newest)
            now = _now()
            await conn.execute(
                "INSERT INTO market_results (market_id, version, instruction, post_official,"
                " applied, received_at, completed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                market_id,
                version,
                wire,
                instruction.post_official,
                applies,
                now,
                None if applies else now,
            )
            return Begun(outcome, "" if applies else None, mark)

    async def _settle_chunk(
        self, trigger: SettlementInstruction, after: str, size: int, cache: SettleCache
    ) -> Chunk:
        async with self._pool.acquire() as conn, conn.transaction():
            candidates = await conn.fetch(
                _SETTLE_CANDIDATES,
                trigger.market_id,
                after,
                list(SETTLEABLE),
                trigger.version,
                size,
            )
            if not candidates:
                return Chunk(None, (), 0)
            ids = [r["bet_id"] for r in candidates]
            accounts = sorted({r["account_id"] for r in candidates})
            balances: dict[str, int] = {
                r["account_id"]: r["balance"] for r in await conn.fetch(_LOCK_ACCOUNTS, accounts)
            }
            bets = await self._open_bets(conn, ids)
            exposures = _pg_by_bet(await conn.fetch(_BET_EXPOSURES_OF, ids))
            results = await self._results_in_force(
                conn, {m for bet in bets for m in bet_markets(bet.receipt)}
            )
            now = _now()
            writes: list[BetWrite] = []
            waiting = 0
            for bet in bets:
                write = plan_bet(bet, results, trigger, now, cache)
                if write is not None:
                    writes.append(write)
                elif bet.status == BetStatus.ACCEPTED:
                    waiting += 1
            applied = await _write_settlements(
                conn, writes, exposures, trigger, now, balances=balances
            )
            return Chunk(candidates[-1]["bet_id"], settled_rows(applied), waiting)

    async def _open_bets(self, conn: Any, ids: list[str]) -> list[OpenBet]:
        """The bets, locked (in bet id order), as they are now; with their versions."""
        rows = await conn.fetch(_LOCK_BETS, ids, list(SETTLEABLE))
        versions = _pg_by_bet(await conn.fetch(_BET_RESULTS_OF, ids))
        return [
            OpenBet(
                r["bet_id"],
                r["account_id"],
                r["status"],
                r["total_stake"],
                r["receipt"],
                r["placed_at"],
                {m: v for m, v in versions.get(r["bet_id"], ())},
            )
            for r in rows
        ]

    async def _results_in_force(
        self, conn: Any, markets: set[str]
    ) -> dict[str, SettlementInstruction]:
        out: dict[str, SettlementInstruction] = {}
        for row in await conn.fetch(_RESULTS_IN_FORCE, sorted(markets)):
            key = (row["market_id"], row["version"])
            cached = self._results.get(key)
            if cached is None:
                if len(self._results) >= 100_000:
                    self._results.clear()
                cached = self._results[key] = instruction_from_wire(row["instruction"])
            out[row["market_id"]] = cached
        return out

    async def market_result(
        self, market_id: str, *, effective: bool = True
    ) -> SettlementInstruction | None:
        self._check_open()
        wire = await self._pool.fetchval(
            "SELECT instruction FROM market_results WHERE market_id = $1"
            " AND (applied OR $2) ORDER BY version DESC LIMIT 1",
            market_id,
            not effective,
        )
        return None if wire is None else instruction_from_wire(wire)

    async def book_totals(self, market_id: str | None = None) -> dict[str, tuple[int, int]]:
        self._check_open()
        rows = await self._pool.fetch(_BOOK_TOTALS, market_id)
        return {r["market_id"]: (r["staked"], r["returned"]) for r in rows}

    async def correct_bet_stake(
        self, bet_id: str, stake_per_line: int, reference: str
    ) -> SettledBet | None:
        check_stake_correction(stake_per_line, reference)
        self._check_open()
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(
                "SELECT account_id FROM bets WHERE bet_id = $1", bet_id
            )
            if account_id is None:
                return None
            balance = await _lock_account(conn, account_id)
            bets = await self._open_bets(conn, [bet_id])
            if not bets:
                raise ValueError(f"bet {bet_id} is not settled")
            bet = bets[0]
            results = await self._results_in_force(conn, set(bet_markets(bet.receipt)))
            write = plan_stake_correction(bet, stake_per_line, reference, results, _now())
            if write is None:  # this reference was applied before
                return SettledBet(account_id, bet_id, bet.receipt, balance, "CORRECTION", False)
            await conn.execute(
                "UPDATE bets SET total_stake = $2 WHERE bet_id = $1",
                bet_id,
                write.receipt["totalStake"],
            )
            applied = await _write_settlements(
                conn, [write], {}, None, _now(), balances={account_id: balance}
            )
            return settled_rows(applied)[0]

    # --- reads -----------------------------------------------------------------------

    async def _account(self, query: str, value: str) -> Account | None:
        self._check_open()
        row = await self._pool.fetchrow(query, value)
        if row is None:
            return None
        return Account(
            row["account_id"], row["currency"], row["balance"], row["open_bets"], row["limits"]
        )

    async def account(self, account_id: str) -> Account | None:
        return await self._account(_ACCOUNT_BY_ID, account_id)

    async def account_for_token(self, token_hash: str) -> Account | None:
        return await self._account(_ACCOUNT_BY_HASH, token_hash)

    async def account_terms(self, account_id: str) -> AccountTerms | None:
        self._check_open()
        row = await self._pool.fetchrow(_ACCOUNT_TERMS, account_id)
        return None if row is None else AccountTerms(account_id, row["currency"], row["limits"])

    async def get_bet(self, account_id: str, bet_id: str) -> StoredBet | None:
        self._check_open()
        row = await self._pool.fetchrow(_GET_BET, bet_id, account_id)
        return None if row is None else _bet(row)

    async def list_bets(
        self, account_id: str, status: str, limit: int, cursor: str | None
    ) -> tuple[list[StoredBet], str | None]:
        statuses = sorted(list_filter(status))
        check_limit(limit)
        before = decode_cursor(cursor)
        self._check_open()
        rows = await self._pool.fetch(
            _LIST_BETS,
            account_id,
            statuses,
            before if before is not None else 2**62,
            limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["seq"]) if more else None
        return [_bet(row) for row in rows], next_cursor

    async def entries(self, account_id: str) -> list[LedgerEntry]:
        self._check_open()
        rows = await self._pool.fetch(
            "SELECT entry_id, account_id, kind, amount, bet_id, reference, created_at"
            " FROM ledger_entries WHERE account_id = $1 ORDER BY entry_id",
            account_id,
        )
        return [
            LedgerEntry(
                r["entry_id"],
                r["account_id"],
                EntryKind(r["kind"]),
                r["amount"],
                r["bet_id"],
                r["reference"],
                r["created_at"],
            )
            for r in rows
        ]

    async def outbox_pending(self, limit: int) -> list[OutboxEvent]:
        check_limit(limit)
        self._check_open()
        rows = await self._pool.fetch(
            "SELECT event_id, topic, key, payload, created_at FROM outbox"
            " WHERE published_at IS NULL ORDER BY event_id LIMIT $1",
            limit,
        )
        return [
            OutboxEvent(r["event_id"], r["topic"], r["key"], r["payload"], r["created_at"])
            for r in rows
        ]

    async def audit(self) -> list[str]:
        self._check_open()
        problems = [
            f"account {r['account_id']}: balance {r['balance']}, entries sum to {r['total']}"
            for r in await self._pool.fetch(
                "SELECT a.account_id, a.balance, COALESCE(SUM(e.amount), 0)::bigint AS total"
                " FROM accounts a LEFT JOIN ledger_entries e ON e.account_id = a.account_id"
                " GROUP BY a.account_id, a.balance"
                " HAVING a.balance <> COALESCE(SUM(e.amount), 0) OR (a.balance < 0 AND NOT EXISTS"
                " (SELECT 1 FROM ledger_entries c WHERE c.account_id = a.account_id"
                "  AND c.kind = 'CORRECTION'))"
            )
        ]
        problems += [
            f"bet {r['bet_id']}: no STAKE entry"
            for r in await self._pool.fetch(
                "SELECT bet_id FROM bets b WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e"
                " WHERE e.bet_id = b.bet_id AND e.kind = 'STAKE')"
            )
        ]
        return problems


# --- statements ------------------------------------------------------------------------


async def _lock_account(conn: Any, account_id: str) -> int:
    balance: int | None = await conn.fetchval(
        "SELECT balance FROM accounts WHERE account_id = $1 FOR UPDATE", account_id
    )
    if balance is None:
        raise UnknownAccount(f"no account {account_id!r}")
    return balance


async def _insert_entry(
    conn: Any,
    *,
    account_id: str,
    kind: EntryKind,
    amount: int,
    bet_id: str | None,
    reference: str,
) -> None:
    await conn.execute(
        "INSERT INTO ledger_entries (account_id, kind, amount, bet_id, reference, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        account_id,
        kind.value,
        amount,
        bet_id,
        reference,
        _now(),
    )


async def _outbox(conn: Any, key: str, payload: Receipt) -> None:
    await conn.execute(
        "INSERT INTO outbox (topic, key, payload, created_at) VALUES ($1, $2, $3, $4)",
        BETS_TOPIC,
        key,
        payload,
        _now(),
    )


# --- settlement statements ---------------------------------------------------------------

_SETTLE_CANDIDATES = """SELECT DISTINCT be.bet_id, b.account_id
FROM bet_exposures be JOIN bets b ON b.bet_id = be.bet_id
LEFT JOIN bet_results r ON r.bet_id = be.bet_id AND r.market_id = be.market_id
WHERE be.market_id = $1 AND be.bet_id > $2 AND b.status = ANY($3::text[])
    AND (r.version IS NULL OR r.version < $4)
ORDER BY be.bet_id LIMIT $5"""
# An open bet on market $2 placed after bet seq $1: a range of the bets' primary key
# (the bets placed since), each probed in bet_exposures' primary key.
_OPEN_BETS_SINCE = """SELECT 1 FROM bets b WHERE b.seq > $1 AND b.status IN ('PENDING', 'ACCEPTED')
    AND EXISTS (SELECT 1 FROM bet_exposures be WHERE be.bet_id = b.bet_id AND be.market_id = $2)
LIMIT 1"""
_LOCK_ACCOUNTS = """SELECT account_id, balance FROM accounts
WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE"""
_LOCK_BETS = """SELECT bet_id, account_id, status, total_stake, receipt, placed_at FROM bets
WHERE bet_id = ANY($1::text[]) AND status = ANY($2::text[]) ORDER BY bet_id FOR UPDATE"""
_BET_EXPOSURES_OF = """SELECT bet_id, market_id, selection_id, liability FROM bet_exposures
WHERE bet_id = ANY($1::text[])"""
_BET_RESULTS_OF = """SELECT bet_id, market_id, version FROM bet_results
WHERE bet_id = ANY($1::text[])"""
_RESULTS_IN_FORCE = """SELECT DISTINCT ON (market_id) market_id, version, instruction
FROM market_results WHERE market_id = ANY($1::text[]) AND applied
ORDER BY market_id, version DESC"""
_BOOK_TOTALS = """WITH bm AS (
    SELECT bet_id, MIN(market_id) AS market_id FROM bet_exposures GROUP BY bet_id
)
SELECT bm.market_id,
    COALESCE(SUM(CASE WHEN e.kind = 'STAKE' THEN -e.amount ELSE 0 END), 0)::bigint AS staked,
    COALESCE(SUM(CASE WHEN e.kind <> 'STAKE' THEN e.amount ELSE 0 END), 0)::bigint AS returned
FROM bm JOIN ledger_entries e ON e.bet_id = bm.bet_id
WHERE $1::text IS NULL OR bm.market_id = $1::text
GROUP BY bm.market_id ORDER BY bm.market_id"""


def _pg_by_bet(rows: Any) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(tuple(row[1:]))
    return out


async def _write_settlements(
    conn: Any,
    writes: Sequence[BetWrite],
    exposures: Mapping[str, Sequence[tuple[str, str, int]]],
    trigger: SettlementInstruction | None,
    now: datetime,
    *,
    balances: dict[str, int],
) -> list[tuple[BetWrite, int]]:
    """The plans' rows (accounts and bets locked by the caller); the visible writes
    with each account's balance after them."""
    visible = [w for w in writes if not w.quiet]
    applied = apply_balances(visible, balances)
    await conn.executemany(
        "UPDATE bets SET status = $2, receipt = $3, updated_at = $4 WHERE bet_id = $1",
        [(w.bet.bet_id, w.status, w.receipt, now) for w in visible],
    )
    await conn.executemany(
        "INSERT INTO ledger_entries (account_id, kind, amount, bet_id, reference, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (w.bet.account_id, k.value, a, w.bet.bet_id, ref, now)
            for w in visible
            for k, a, ref in w.entries
        ],
    )
    await conn.executemany(
        "INSERT INTO bet_results (bet_id, market_id, version) VALUES ($1, $2, $3)"
        " ON CONFLICT (bet_id, market_id) DO UPDATE SET version = excluded.version",
        [(w.bet.bet_id, m, v) for w in writes for m, v in w.versions],
    )
    release = merged_release(visible, exposures)
    if release:
        markets, selections, amounts = (list(c) for c in zip(*release, strict=True))
        await conn.execute(
            "SELECT 1 FROM exposure x JOIN unnest($1::text[], $2::text[]) AS u (m, s)"
            " ON x.market_id = u.m AND x.selection_id = u.s"
            " ORDER BY x.market_id, x.selection_id FOR UPDATE OF x",
            markets,
            selections,
        )
        await conn.execute(
            "UPDATE exposure x SET liability = x.liability - u.v"
            " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u (m, s, v)"
            " WHERE x.market_id = u.m AND x.selection_id = u.s",
            markets,
            selections,
            amounts,
        )
    await conn.executemany(
        "INSERT INTO outbox (topic, key, payload, created_at) VALUES ($1, $2, $3, $4)",
        [(BETS_TOPIC, w.bet.account_id, outbox_payload(w, trigger), now) for w in visible],
    )
    return applied


async def _migrate(pool: Any) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        known = {version for version, _ in migrations.POSTGRES}
        if done - known:
            raise StoreError(f"database schema {max(done)} is newer than this code knows")
        for version, statements in migrations.POSTGRES:
            if version in done:
                continue
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                version,
                _now(),
            )
