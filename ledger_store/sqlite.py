"""The embedded ledger: SQLite (stdlib ``sqlite3``), WAL, durable group commit.

One writer. Every write (placements, deposits, resolutions, outbox marks) is a
job on a **bounded** ``asyncio.Queue``; one writer task takes whatever is queued
(up to ``max_batch`` jobs) and runs it as **one** transaction (``BEGIN
IMMEDIATE`` … ``COMMIT``). Consecutive placements of a batch are decided in
order against the writer's copies of balances, exposures and the bet counter
and written with one ``executemany`` per table in one ``SAVEPOINT``
(:meth:`SqliteLedgerStore._place_run`); every other job runs in its own
``SAVEPOINT`` so a job that fails or is refused is rolled back alone.
``BEGIN IMMEDIATE`` is tried on the event loop and waits for another process's
write lock on a dedicated writer thread; ``COMMIT`` runs on that thread; the
jobs' statements, pure computation once the lock is held, run on the event
loop (see ``_run_batch``: on a thread they fought the loop for the GIL
statement by statement). The ``COMMIT`` is durable (``synchronous=FULL``: the
WAL is fsynced) before any job's future is resolved, so a receipt is never
sent for a bet that a crash could lose, and many concurrent placements share
one fsync instead of paying one each. While a batch commits, the next one
gathers in the queue.

Back-pressure: when the queue is full ``place_bet`` raises :class:`StoreBusy`
at once (nothing written; the caller answers UNAVAILABLE and the client retries
with the same request id). Other writes wait for room for up to
``write_timeout`` seconds, then raise :class:`StoreBusy`.

Reads use a second connection on a second thread; WAL lets them run while the
writer commits, and they see only committed data.

Why the stdlib and not aiosqlite: aiosqlite also runs one thread per connection,
but hops to it for every statement; a batch is a dozen calls into SQLite, so
one hop a batch is much cheaper, and it needs no extra dependency.

The balance check is safe without locks: SQLite has one writer at a time (also
across processes: ``BEGIN IMMEDIATE`` takes the write lock), jobs in a batch
run in order, each seeing the ones before it, and the writer's copies are
dropped whenever ``PRAGMA data_version`` says another connection has committed
(or a transaction failed, or a non-placement write ran), so they are the
database's values. The schema's constraints (the overdraft trigger on ledger
entries, ``UNIQUE (account_id, request_id)``, …) still hold every row.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

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

T = TypeVar("T")

DEFAULT_QUEUE_SIZE = 1024
DEFAULT_MAX_BATCH = 256
DEFAULT_WRITE_TIMEOUT_S = 5.0
BUSY_TIMEOUT_MS = 5000  # another process holding the write lock
WRITER_CACHE_KIB = -65536
"""The writer's page cache, 64 MiB (negative: KiB; SQLite's default is 2 MiB). Bets
insert into per-account places of several indexes; with the default cache those
pages were read back (through the WAL index) batch after batch."""


class _Rollback(Exception):
    """Raised by a job to roll its savepoint back and still deliver ``result``."""

    def __init__(self, result: object) -> None:
        super().__init__()
        self.result = result


@dataclass(slots=True)
class _Job:
    op: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    placement: Placement | None = None
    """Set for ``place_bet``: run on the batched path (:meth:`_place_run`)."""
    keeps_state: bool = False
    """True for ops that touch no balance, exposure or bet counter (outbox marks)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _path_of(url: str) -> Path:
    """``sqlite:///relative.db`` or ``sqlite:////abs/path.db`` (as SQLAlchemy), or a path."""
    if url.startswith("sqlite:///"):
        url = url.removeprefix("sqlite:///")
    elif url.startswith("sqlite:"):
        raise ValueError(f"expected sqlite:///PATH, got {url!r}")
    if not url or url == ":memory:":
        raise ValueError("the ledger needs a file (WAL, two connections), not :memory:")
    return Path(url)


class SqliteLedgerStore:
    def __init__(
        self,
        path: str | Path,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_batch: int = DEFAULT_MAX_BATCH,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT_S,
    ) -> None:
        if queue_size < 1 or max_batch < 1:
            raise ValueError("queue_size and max_batch must be at least 1")
        self.path = _path_of(str(path))
        self._max_batch = max_batch
        self._write_timeout = write_timeout
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=queue_size)
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite-reader")
        self._wconn: sqlite3.Connection | None = None  # used only on the writer thread
        self._rconn: sqlite3.Connection | None = None  # used only on the reader thread
        self._writer_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the writer's (set by open)
        self._closed = False
        self.batches = 0  # committed transactions (for benchmarks and tests)
        self.jobs = 0
        # The writer's copy of what placing needs, read from the database on first
        # use and kept while only this connection writes (see _check_data_version):
        self._balances: dict[str, int] = {}
        self._exposure: dict[tuple[str, str], int] = {}
        self._bet_seq: int | None = None
        self._results: dict[tuple[str, int], SettlementInstruction] = {}  # parsed, immutable
        self._data_version: int | None = None

    # --- lifecycle -------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path, **options: Any) -> SqliteLedgerStore:
        store = cls(path, **options)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(store._writer_pool, store._open_writer)
            await loop.run_in_executor(store._reader_pool, store._open_reader)
        except BaseException:
            await store._close_connections()
            raise
        store._loop = loop
        store._writer_task = asyncio.create_task(store._writer(), name="ledger-sqlite-writer")
        return store

    def _open_writer(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened here, then used by the writer thread and the event loop in turn
        # (never at once: see _run_batch).
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
        self._wconn = conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: could not switch to WAL (journal_mode={mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA cache_size={WRITER_CACHE_KIB}")
        # Savepoints keep the original of each page a job changes in a sub-journal,
        # a temporary file once past 64 KiB: in memory, no open()/pwrite() per batch.
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _migrate(conn)
        # From now on the writer never waits inside a statement on the event loop: see
        # _begin (it waits for another process's lock on the writer thread instead).
        conn.execute("PRAGMA busy_timeout=0")

    def _open_reader(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self._rconn = conn
        conn.execute("PRAGMA query_only=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    async def close(self) -> None:
        """Finishes every write already queued, then closes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._writer_task is not None:
            if not self._writer_task.done():
                await self._queue.put(None)
            await self._writer_task
        while not self._queue.empty():  # jobs that raced with close
            job = self._queue.get_nowait()
            if job is not None and not job.future.done():
                job.future.set_exception(StoreClosed("the ledger store was closed"))
        await self._close_connections()

    async def _close_connections(self) -> None:
        loop = asyncio.get_running_loop()
        if self._wconn is not None:
            await loop.run_in_executor(self._writer_pool, self._wconn.close)
        if self._rconn is not None:
            await loop.run_in_executor(self._reader_pool, self._rconn.close)
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)

    # --- the writer ------------------------------------------------------------------

    async def _submit(
        self,
        op: Callable[[sqlite3.Connection], T],
        *,
        refuse_when_full: bool,
        keeps_state: bool = False,
    ) -> T:
        if self._closed:
            raise StoreClosed("the ledger store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        job = _Job(op, future, None, keeps_state)
        if refuse_when_full:
            try:
                self._queue.put_nowait(job)
            except asyncio.QueueFull:
                raise StoreBusy(f"ledger write queue full ({self._queue.maxsize})") from None
        else:
            try:
                async with asyncio.timeout(self._write_timeout):
                    await self._queue.put(job)
            except TimeoutError:
                raise StoreBusy(
                    f"ledger write queue full for {self._write_timeout}s ({self._queue.maxsize})"
                ) from None
        if self._writer_task is None or self._writer_task.done():  # queued after close()
            raise StoreClosed("the ledger store is closed")
        return await future

    async def _writer(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take_batch(await self._queue.get())
            if not batch:
                continue
            try:
                results = await self._run_batch(batch)
            except Exception as exc:  # the whole transaction failed: nothing is committed
                results = [(False, exc)] * len(batch)
            for job, (ok, value) in zip(batch, results, strict=True):
                if job.future.done():
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)

    def _take_batch(self, first: _Job | None) -> tuple[list[_Job], bool]:
        """``first`` and whatever else is queued (up to ``max_batch``), less the jobs
        whose caller has gone; and whether the stop mark was reached."""
        if first is None:
            return [], True
        batch = [first]
        stopping = False
        while len(batch) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if job is None:
                stopping = True
                break
            batch.append(job)
        return [job for job in batch if not job.future.cancelled()], stopping

    async def _run_batch(self, jobs: Sequence[_Job]) -> list[tuple[bool, Any]]:
        """Every job in one transaction: placements in runs (:meth:`_place_run`), the
        other ops in a savepoint each.

        The waits are on the writer thread: ``BEGIN IMMEDIATE`` (which may wait for
        another process's write lock) and ``COMMIT`` (the WAL's fsync). The jobs run
        here, on the event loop: once the write lock is held they only compute
        (SQLite in WAL mode makes no writer wait for readers). On a second thread
        every statement handed the GIL back and forth with the loop, and while the
        loop was busy each hand-over could wait out the interpreter's switch
        interval (5 ms): with the loop saturated the writer all but stopped."""
        conn = self._wconn
        assert conn is not None
        loop = asyncio.get_running_loop()
        await self._begin(conn)
        try:
            self._check_data_version(conn)
            results: list[tuple[bool, Any]] = []
            i = 0
            while i < len(jobs):
                if jobs[i].placement is None:
                    job = jobs[i]
                    results += _run_jobs(conn, [job.op])
                    if not job.keeps_state:
                        self._forget_state()
                    i += 1
                    continue
                j = i
                while j < len(jobs) and jobs[j].placement is not None:
                    j += 1
                run = [job.placement for job in jobs[i:j] if job.placement is not None]
                results += self._place_run(conn, run)
                i = j
        except BaseException:
            self._forget_state()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # Shielded: once started, the COMMIT finishes (or fails and rolls back) on the
        # writer thread, even if this task is cancelled meanwhile.
        try:
            await asyncio.shield(loop.run_in_executor(self._writer_pool, _commit, conn))
        except BaseException:
            self._forget_state()  # not committed: what was counted here is not so
            raise
        self.batches += 1
        self.jobs += len(jobs)
        return results

    async def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``: tried here first (the busy timeout is 0, so it never
        waits: the write lock is free unless another process holds it), else on the
        writer thread with the busy timeout. Saves a hop to the thread per batch."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction or exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            await asyncio.get_running_loop().run_in_executor(
                self._writer_pool, _begin_waiting, conn
            )

    # --- placing in batches --------------------------------------------------------------

    def _forget_state(self) -> None:
        """Drops the writer's copies: they are read again from the database on use."""
        self._balances.clear()
        self._exposure.clear()
        self._bet_seq = None

    def _check_data_version(self, conn: sqlite3.Connection) -> None:
        """With the write lock held: if another connection (another process) has
        committed since this one last looked, the copies may be stale: drop them."""
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        if version != self._data_version:
            self._forget_state()
            self._data_version = version

    def _balance_of(self, conn: sqlite3.Connection, account_id: str) -> int:
        balance = self._balances.get(account_id)
        if balance is None:
            balance = _locked_balance(conn, account_id)
            self._balances[account_id] = balance
        return balance

    def _exposure_of(self, conn: sqlite3.Connection, key: tuple[str, str]) -> int:
        liability = self._exposure.get(key)
        if liability is None:
            rows = conn.execute(
                "SELECT liability FROM exposure WHERE market_id = ? AND selection_id = ?", key
            ).fetchall()
            liability = rows[0][0] if rows else 0
            self._exposure[key] = liability
        return liability

    def _place_run(
        self, conn: sqlite3.Connection, placements: Sequence[Placement]
    ) -> list[tuple[bool, Any]]:
        """Consecutive placements of a batch, decided against the writer's copies of
        the balances, exposures and bet counter (no statement per bet), then written
        with one ``executemany`` per table inside a savepoint. Each is decided exactly
        as :func:`_place` would, in order, each seeing the ones before it; refusals
        write nothing. The schema's constraints still hold every row (balance ≥ 0 via
        the entry trigger, one bet per (account, request id), …): if the batched
        write breaks one anyway, the savepoint is rolled back, the copies dropped,
        and the run placed again one by one by :func:`_place`."""
        conn.execute("SAVEPOINT run")
        try:
            results = self._decide_and_write(conn, placements)
        except sqlite3.DatabaseError:
            if not conn.in_transaction:
                raise
            conn.execute("ROLLBACK TO run")
            conn.execute("RELEASE run")
            self._forget_state()
            results = _run_jobs(conn, [partial(_place, p=p) for p in placements])
            self._forget_state()
            return results
        except BaseException:
            self._forget_state()
            raise
        conn.execute("RELEASE run")
        return results

    def _decide_and_write(
        self, conn: sqlite3.Connection, placements: Sequence[Placement]
    ) -> list[tuple[bool, Any]]:
        if len(self._balances) >= _STATE_LIMIT or len(self._exposure) >= _STATE_LIMIT:
            self._forget_state()  # bounded; only between runs (the copies hold its debits)
        # Which of these requests were placed before: one statement for the run.
        keys = orjson.dumps([[p.account_id, p.request_id] for p in placements]).decode()
        placed: dict[tuple[str, str], tuple[str, str, Any]] = {
            (r[0], r[1]): (r[2], r[3], r[4]) for r in conn.execute(_PLACED_BEFORE, (keys,))
        }
        if self._bet_seq is None:
            self._bet_seq = conn.execute(
                "SELECT value FROM counters WHERE name = 'bet'"
            ).fetchone()[0]
        rows = _RunRows(self._bet_seq, _now().isoformat())
        results: list[tuple[bool, Any]] = []
        for p in placements:
            try:
                results.append((True, self._decide(conn, p, placed, rows)))
            except Exception as exc:  # an unknown account, the caller's receipt: alone
                results.append((False, exc))
        self._bet_seq = rows.seq
        rows.write(conn)
        return results

    def _decide(
        self,
        conn: sqlite3.Connection,
        p: Placement,
        placed: dict[tuple[str, str], tuple[str, str, Any]],
        rows: _RunRows,
    ) -> PlaceOutcome:
        """One placement, as :func:`_place` decides it; a placed bet's rows go to ``rows``
        and the copies are updated (only once nothing can fail any more)."""
        account_id = p.account_id
        balance = self._balance_of(conn, account_id)
        before = placed.get((account_id, p.request_id))
        if before is not None:
            bet_id, body_hash, receipt = before
            if body_hash != p.body_hash:
                return PlaceOutcome(Outcome.CONFLICT, bet_id, None, balance)
            if isinstance(receipt, str):
                receipt = orjson.loads(receipt)
            return PlaceOutcome(Outcome.REPLAYED, bet_id, receipt, balance)
        if balance < p.total_stake:
            detail = {"balance": balance, "required": p.total_stake}
            return PlaceOutcome(Outcome.INSUFFICIENT_FUNDS, None, None, balance, detail)
        exposures = p.merged_exposures()
        limit = p.liability_limit
        for market_id, selection_id, added in exposures:
            current = self._exposure_of(conn, (market_id, selection_id))
            if limit is not None and current + added > limit:
                detail = liability_detail(market_id, selection_id, current, limit)
                return PlaceOutcome(Outcome.LIABILITY_LIMIT, None, None, balance, detail)
        bet_id = bet_id_for(rows.seq + 1)
        balance_after = balance - p.total_stake
        receipt = p.receipt_for(bet_id, balance_after)
        receipt_json = orjson.dumps(receipt).decode()
        status = str(p.status)
        payload = _json(bet_event("PLACED", bet_id, account_id, status, receipt))
        # Nothing below can fail: the bet is in the run.
        rows.add(
            p,
            bet_id=bet_id,
            status=status,
            receipt_json=receipt_json,
            payload=payload,
            exposures=exposures,
        )
        self._balances[account_id] = balance_after
        for market_id, selection_id, added in exposures:
            self._exposure[(market_id, selection_id)] += added
        placed[(account_id, p.request_id)] = (bet_id, p.body_hash, receipt_json)
        return PlaceOutcome(Outcome.PLACED, bet_id, receipt, balance_after)

    # --- writes ----------------------------------------------------------------------

    async def create_account(
        self, account_id: str, currency: str, token_hash: str | None, limits: Mapping[str, Any]
    ) -> Account:
        limits_json = _json(dict(limits))

        def op(conn: sqlite3.Connection) -> Account:
            taken = conn.execute(
                "SELECT 1 FROM accounts WHERE account_id = ? OR (? IS NOT NULL AND token_hash = ?)",
                (account_id, token_hash, token_hash),
            ).fetchall()
            if taken:
                raise AccountExists(f"account {account_id!r} or its token already exists")
            conn.execute(
                "INSERT INTO accounts (account_id, currency, token_hash, limits, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (account_id, currency, token_hash, limits_json, _now().isoformat()),
            )
            return Account(account_id, currency, 0, 0, orjson.loads(limits_json))

        return await self._submit(op, refuse_when_full=False)

    async def deposit(self, account_id: str, amount: int, reference: str) -> int:
        check_deposit(amount, reference)

        def op(conn: sqlite3.Connection) -> int:
            balance = _locked_balance(conn, account_id)
            done = conn.execute(
                "SELECT amount FROM ledger_entries"
                " WHERE account_id = ? AND kind = 'DEPOSIT' AND reference = ?",
                (account_id, reference),
            ).fetchall()
            if done:
                if done[0][0] != amount:
                    raise ReferenceConflict(f"deposit {reference!r} was {done[0][0]}, not {amount}")
                return balance
            _insert_entry(
                conn,
                account_id=account_id,
                kind=EntryKind.DEPOSIT,
                amount=amount,
                bet_id=None,
                reference=reference,
            )
            return _locked_balance(conn, account_id)

        return await self._submit(op, refuse_when_full=False)

    async def place_bet(self, p: Placement) -> PlaceOutcome:
        return await self.submit_placement(p)

    def submit_placement(self, p: Placement) -> asyncio.Future[PlaceOutcome]:
        """:meth:`place_bet` as a future (no coroutine, for callers that would make a
        task of it): queued now, or :class:`StoreBusy` / :class:`StoreClosed` at once.
        Cancelling the future before the writer takes the job withdraws it."""
        if self._closed or self._loop is None or self._writer_task is None:
            raise StoreClosed("the ledger store is closed")
        if self._writer_task.done():
            raise StoreClosed("the ledger store is closed")
        # The writer's loop, remembered: get_running_loop() costs a getpid() per call.
        future: asyncio.Future[PlaceOutcome] = self._loop.create_future()
        try:
            self._queue.put_nowait(_Job(partial(_place, p=p), future, p))
        except asyncio.QueueFull:
            raise StoreBusy(f"ledger write queue full ({self._queue.maxsize})") from None
        return future

    async def resolve_pending(self, bet_id: str, accepted: bool, receipt: Receipt) -> PlaceOutcome:
        receipt_json = _json(receipt)
        return await self._submit(
            lambda conn: _resolve(conn, bet_id, accepted, receipt_json), refuse_when_full=False
        )

    async def outbox_done(self, ids: list[int]) -> None:
        if not ids:
            return
        wanted = list(ids)

        def op(conn: sqlite3.Connection) -> None:
            now = _now().isoformat()
            conn.executemany(
                "UPDATE outbox SET published_at = ? WHERE event_id = ? AND published_at IS NULL",
                [(now, event_id) for event_id in wanted],
            )

        await self._submit(op, refuse_when_full=False, keeps_state=True)

    # --- settlement (issue #5; docs/SETTLEMENT.md) ---------------------------------------

    async def settle_market(
        self,
        instruction: SettlementInstruction,
        *,
        chunk_size: int | None = None,
        on_chunk: Callable[[Sequence[SettledBet]], None] | None = None,
    ) -> SettleReport:
        """Each step is a job on the writer's queue (one transaction each, between
        placements): record the result, then chunks of bets, then mark it completed.
        The writer's copies of balances and exposures are dropped after each job
        (``keeps_state`` False), so a bet placed after a settlement sees its credit."""
        held = held_report(instruction)
        if held is not None:
            return held
        wire = _json(instruction_to_wire(instruction))
        market_id, version = instruction.market_id, instruction.version
        begun = await self._submit(
            lambda conn: _settle_begin(conn, instruction, wire), refuse_when_full=False
        )
        if begun.after is None:
            return SettleReport(market_id, version, begun.outcome)
        cache = SettleCache()

        async def chunk(after: str, size: int) -> Chunk:
            return await self._submit(
                lambda conn: self._settle_chunk(conn, instruction, after, size, cache),
                refuse_when_full=False,
            )

        async def finish() -> None:
            await self._submit(
                lambda conn: _settle_finish(conn, market_id, version, begun.mark),
                refuse_when_full=False,
                keeps_state=True,
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

    def _settle_chunk(
        self,
        conn: sqlite3.Connection,
        trigger: SettlementInstruction,
        after: str,
        size: int,
        cache: SettleCache | None = None,
    ) -> Chunk:
        rows = conn.execute(
            _SETTLE_CANDIDATES,
            (trigger.market_id, after, _json(SETTLEABLE), trigger.version, size),
        ).fetchall()
        if not rows:
            return Chunk(None, (), 0)
        ids = _json([r[0] for r in rows])
        exposures = _by_bet(conn.execute(_BET_EXPOSURES_OF, (ids,)).fetchall())
        versions = _by_bet(conn.execute(_BET_RESULTS_OF, (ids,)).fetchall())
        bets = [
            OpenBet(
                r[0],
                r[1],
                r[2],
                r[3],
                orjson.loads(r[4]),
                _ts(r[5]),
                {m: v for m, v in versions.get(r[0], ())},
            )
            for r in rows
        ]
        markets = {m for bet in bets for m in bet_markets(bet.receipt)}
        results = self._results_in_force(conn, markets)
        now = _now()
        writes: list[BetWrite] = []
        waiting = 0
        for bet in bets:
            write = plan_bet(bet, results, trigger, now, cache)
            if write is not None:
                writes.append(write)
            elif bet.status == BetStatus.ACCEPTED:
                waiting += 1
        applied = _write_settlements(conn, writes, exposures, trigger, now.isoformat())
        return Chunk(rows[-1][0], settled_rows(applied), waiting)

    def _results_in_force(
        self, conn: sqlite3.Connection, markets: set[str]
    ) -> dict[str, SettlementInstruction]:
        out: dict[str, SettlementInstruction] = {}
        for market_id, version, text in conn.execute(_RESULTS_IN_FORCE, (_json(sorted(markets)),)):
            key = (market_id, version)
            cached = self._results.get(key)
            if cached is None:
                if len(self._results) >= _STATE_LIMIT:
                    self._results.clear()
                cached = self._results[key] = instruction_from_wire(orjson.loads(text))
            out[market_id] = cached
        return out

    async def market_result(
        self, market_id: str, *, effective: bool = True
    ) -> SettlementInstruction | None:
        def fn(conn: sqlite3.Connection) -> SettlementInstruction | None:
            rows = conn.execute(
                "SELECT instruction FROM market_results WHERE market_id = ?"
                " AND (applied OR ?) ORDER BY version DESC LIMIT 1",
                (market_id, 0 if effective else 1),
            ).fetchall()
            return instruction_from_wire(orjson.loads(rows[0][0])) if rows else None

        return await self._read(fn)

    async def book_totals(self, market_id: str | None = None) -> dict[str, tuple[int, int]]:
        def fn(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
            rows = conn.execute(_BOOK_TOTALS, (market_id, market_id)).fetchall()
            return {r[0]: (r[1], r[2]) for r in rows}

        return await self._read(fn)

    async def correct_bet_stake(
        self, bet_id: str, stake_per_line: int, reference: str
    ) -> SettledBet | None:
        check_stake_correction(stake_per_line, reference)

        def op(conn: sqlite3.Connection) -> SettledBet | None:
            rows = conn.execute(_BET_FOR_CORRECTION, (bet_id,)).fetchall()
            if not rows:
                return None
            r = rows[0]
            versions = dict(
                conn.execute(
                    "SELECT market_id, version FROM bet_results WHERE bet_id = ?", (bet_id,)
                ).fetchall()
            )
            bet = OpenBet(r[0], r[1], r[2], r[3], orjson.loads(r[4]), _ts(r[5]), versions)
            results = self._results_in_force(conn, set(bet_markets(bet.receipt)))
            write = plan_stake_correction(bet, stake_per_line, reference, results, _now())
            if write is None:  # this reference was applied before
                balance = _locked_balance(conn, bet.account_id)
                return SettledBet(bet.account_id, bet_id, bet.receipt, balance, "CORRECTION", False)
            conn.execute(
                "UPDATE bets SET total_stake = ? WHERE bet_id = ?",
                (write.receipt["totalStake"], bet_id),
            )
            applied = _write_settlements(conn, [write], {}, None, _now().isoformat())
            return settled_rows(applied)[0]

        return await self._submit(op, refuse_when_full=False)

    # --- reads -----------------------------------------------------------------------

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreClosed("the ledger store is closed")
        conn = self._rconn
        assert conn is not None
        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, fn, conn)

    async def account(self, account_id: str) -> Account | None:
        return await self._read(lambda conn: _account(conn, _ACCOUNT_BY_ID, account_id))

    async def account_for_token(self, token_hash: str) -> Account | None:
        return await self._read(lambda conn: _account(conn, _ACCOUNT_BY_HASH, token_hash))

    async def account_terms(self, account_id: str) -> AccountTerms | None:
        def fn(conn: sqlite3.Connection) -> AccountTerms | None:
            rows = conn.execute(_ACCOUNT_TERMS, (account_id,)).fetchall()
            if not rows:
                return None
            currency, limits = rows[0]
            return AccountTerms(account_id, currency, orjson.loads(limits))

        return await self._read(fn)

    async def get_bet(self, account_id: str, bet_id: str) -> StoredBet | None:
        def fn(conn: sqlite3.Connection) -> StoredBet | None:
            rows = conn.execute(_GET_BET, (bet_id, account_id)).fetchall()
            return _bet(rows[0]) if rows else None

        return await self._read(fn)

    async def list_bets(
        self, account_id: str, status: str, limit: int, cursor: str | None
    ) -> tuple[list[StoredBet], str | None]:
        statuses = sorted(list_filter(status))
        check_limit(limit)
        before = decode_cursor(cursor)

        def fn(conn: sqlite3.Connection) -> tuple[list[StoredBet], str | None]:
            position = before if before is not None else 2**62
            rows = conn.execute(
                _LIST_BETS, (account_id, _json(statuses), position, limit + 1)
            ).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            next_cursor = encode_cursor(rows[-1][-1]) if more else None
            return [_bet(row) for row in rows], next_cursor

        return await self._read(fn)

    async def entries(self, account_id: str) -> list[LedgerEntry]:
        def fn(conn: sqlite3.Connection) -> list[LedgerEntry]:
            rows = conn.execute(
                "SELECT entry_id, account_id, kind, amount, bet_id, reference, created_at"
                " FROM ledger_entries WHERE account_id = ? ORDER BY entry_id",
                (account_id,),
            ).fetchall()
            return [
                LedgerEntry(r[0], r[1], EntryKind(r[2]), r[3], r[4], r[5], _ts(r[6])) for r in rows
            ]

        return await self._read(fn)

    async def outbox_pending(self, limit: int) -> list[OutboxEvent]:
        check_limit(limit)

        def fn(conn: sqlite3.Connection) -> list[OutboxEvent]:
            rows = conn.execute(
                "SELECT event_id, topic, key, payload, created_at FROM outbox"
                " WHERE published_at IS NULL ORDER BY event_id LIMIT ?",
                (limit,),
            ).fetchall()
            return [OutboxEvent(r[0], r[1], r[2], orjson.loads(r[3]), _ts(r[4])) for r in rows]

        return await self._read(fn)

    async def audit(self) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            problems = [
                f"account {r[0]}: balance {r[1]}, entries sum to {r[2]}"
                for r in conn.execute(
                    "SELECT a.account_id, a.balance, COALESCE(SUM(e.amount), 0) AS total"
                    " FROM accounts a LEFT JOIN ledger_entries e ON e.account_id = a.account_id"
                    " GROUP BY a.account_id, a.balance"
                    " HAVING a.balance <> total OR (a.balance < 0 AND NOT EXISTS (SELECT 1"
                    "  FROM ledger_entries c WHERE c.account_id = a.account_id"
                    "  AND c.kind = 'CORRECTION'))"
                ).fetchall()
            ]
            problems += [
                f"bet {r[0]}: no STAKE entry"
                for r in conn.execute(
                    "SELECT bet_id FROM bets b WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e"
                    " WHERE e.bet_id = b.bet_id AND e.kind = 'STAKE')"
                ).fetchall()
            ]
            return problems

        return await self._read(fn)


# --- statements (run on the writer or reader thread) ----------------------------------


class _RunRows:
    """The rows of a run's placed bets, written with one ``executemany`` per table."""

    __slots__ = ("bet_exposures", "bets", "entries", "exposure", "now", "outbox", "seq")

    def __init__(self, seq: int, now: str) -> None:
        self.seq = seq  # the last bet number allocated
        self.now = now
        self.bets: list[tuple[Any, ...]] = []
        self.entries: list[tuple[str, int, str, str, str]] = []
        self.bet_exposures: list[tuple[str, str, str, int]] = []
        self.exposure: dict[tuple[str, str], int] = {}
        self.outbox: list[tuple[str, str, str, str]] = []

    def add(
        self,
        p: Placement,
        *,
        bet_id: str,
        status: str,
        receipt_json: str,
        payload: str,
        exposures: Sequence[tuple[str, str, int]],
    ) -> None:
        self.seq += 1
        now = self.now
        self.bets.append(
            (
                self.seq,
                bet_id,
                p.account_id,
                p.request_id,
                p.body_hash,
                status,
                p.total_stake,
                receipt_json,
                now,
                now,
            )
        )
        self.entries.append((p.account_id, -p.total_stake, bet_id, p.request_id, now))
        for market_id, selection_id, added in exposures:
            key = (market_id, selection_id)
            self.exposure[key] = self.exposure.get(key, 0) + added
            self.bet_exposures.append((bet_id, market_id, selection_id, added))
        self.outbox.append((BETS_TOPIC, p.account_id, payload, now))

    def write(self, conn: sqlite3.Connection) -> None:
        """Bets first (the entries and exposures refer to them); the entry trigger
        applies each STAKE to ``accounts.balance`` (an overdraft trigger refuses one too big)."""
        if not self.bets:
            return
        conn.executemany(_INSERT_BET, self.bets)
        conn.executemany(_INSERT_STAKE, self.entries)
        conn.executemany(_INSERT_BET_EXPOSURE, self.bet_exposures)
        conn.executemany(_ADD_EXPOSURE, [(m, s, v) for (m, s), v in self.exposure.items()])
        conn.executemany(_INSERT_OUTBOX, self.outbox)
        conn.execute("UPDATE counters SET value = ? WHERE name = 'bet'", (self.seq,))


def _bet(row: Sequence[Any]) -> StoredBet:
    bet_id, account_id, request_id, body_hash, status, stake, receipt, placed, updated = row[:9]
    return StoredBet(
        bet_id,
        account_id,
        request_id,
        body_hash,
        status,
        stake,
        orjson.loads(receipt),
        _ts(placed),
        _ts(updated),
    )


_ACCOUNT_BY_ID = """SELECT a.account_id, a.currency, a.limits, a.balance,
    (SELECT COUNT(*) FROM bets b
        WHERE b.account_id = a.account_id AND b.status IN ('PENDING', 'ACCEPTED'))
FROM accounts a WHERE a.account_id = ?"""
_ACCOUNT_BY_HASH = """SELECT a.account_id, a.currency, a.limits, a.balance,
    (SELECT COUNT(*) FROM bets b
        WHERE b.account_id = a.account_id AND b.status IN ('PENDING', 'ACCEPTED'))
FROM accounts a WHERE a.token_hash = ?"""
_ACCOUNT_TERMS = "SELECT currency, limits FROM accounts WHERE account_id = ?"
_BET_SEQ = "SELECT value FROM counters WHERE name = 'bet'"
_STATE_LIMIT = 100_000  # accounts or selections the writer keeps; beyond, it starts over
# The bets already placed for a run's (account id, request id) pairs, a JSON array.
_PLACED_BEFORE = """SELECT b.account_id, b.request_id, b.bet_id, b.body_hash, b.receipt
FROM json_each(?) AS j JOIN bets AS b
    ON b.account_id = json_extract(j.value, '$[0]')
    AND b.request_id = json_extract(j.value, '$[1]')"""
_INSERT_BET = """INSERT INTO bets (seq, bet_id, account_id, request_id, body_hash, status,
    total_stake, receipt, placed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_INSERT_STAKE = """INSERT INTO ledger_entries (account_id, kind, amount, bet_id, reference,
    created_at) VALUES (?, 'STAKE', ?, ?, ?, ?)"""
_INSERT_BET_EXPOSURE = """INSERT INTO bet_exposures (bet_id, market_id, selection_id, liability)
VALUES (?, ?, ?, ?)"""
_ADD_EXPOSURE = """INSERT INTO exposure (market_id, selection_id, liability) VALUES (?, ?, ?)
ON CONFLICT (market_id, selection_id) DO UPDATE SET liability = liability + excluded.liability"""
_INSERT_OUTBOX = "INSERT INTO outbox (topic, key, payload, created_at) VALUES (?, ?, ?, ?)"
# The account's balance and, if this request was placed before, its bet: one read.
_BALANCE_AND_PLACED = """SELECT a.balance, b.bet_id, b.body_hash, b.receipt
FROM accounts a LEFT JOIN bets b ON b.account_id = a.account_id AND b.request_id = ?
WHERE a.account_id = ?"""
_GET_BET = """SELECT bet_id, account_id, request_id, body_hash, status, total_stake, receipt,
    placed_at, updated_at
FROM bets WHERE bet_id = ? AND account_id = ?"""
_LIST_BETS = """SELECT bet_id, account_id, request_id, body_hash, status, total_stake, receipt,
    placed_at, updated_at, seq
FROM bets
WHERE account_id = ? AND status IN (SELECT value FROM json_each(?)) AND seq < ?
ORDER BY seq DESC LIMIT ?"""


# --- settlement statements ---------------------------------------------------------------

# Bets with a leg on market ?1 after bet id ?2, open or settled on an older version
# of it than ?4: a range scan of bet_exposures_by_market, in bet id order.
_SETTLE_CANDIDATES = """SELECT DISTINCT be.bet_id, b.account_id, b.status, b.total_stake,
    b.receipt, b.placed_at
FROM bet_exposures be JOIN bets b ON b.bet_id = be.bet_id
LEFT JOIN bet_results r ON r.bet_id = be.bet_id AND r.market_id = be.market_id
WHERE be.market_id = ? AND be.bet_id > ?
    AND b.status IN (SELECT value FROM json_each(?))
    AND (r.version IS NULL OR r.version < ?)
ORDER BY be.bet_id LIMIT ?"""
# An open bet on market ?2 placed after bet seq ?1: a range of the bets' primary key
# (the bets placed since), each probed in bet_exposures' primary key.
_OPEN_BETS_SINCE = """SELECT 1 FROM bets b WHERE b.seq > ? AND b.status IN ('PENDING', 'ACCEPTED')
    AND EXISTS (SELECT 1 FROM bet_exposures be WHERE be.bet_id = b.bet_id AND be.market_id = ?)
LIMIT 1"""
_BET_EXPOSURES_OF = """SELECT be.bet_id, be.market_id, be.selection_id, be.liability
FROM json_each(?) j JOIN bet_exposures be ON be.bet_id = j.value"""
_BET_RESULTS_OF = """SELECT r.bet_id, r.market_id, r.version
FROM json_each(?) j JOIN bet_results r ON r.bet_id = j.value"""
_RESULTS_IN_FORCE = """SELECT m.market_id, m.version, m.instruction
FROM json_each(?) j JOIN market_results m ON m.market_id = j.value
WHERE m.applied AND m.version = (SELECT MAX(x.version) FROM market_results x
    WHERE x.market_id = m.market_id AND x.applied)"""
_BET_FOR_CORRECTION = """SELECT bet_id, account_id, status, total_stake, receipt, placed_at
FROM bets WHERE bet_id = ?"""
# Per bet, the lowest marketId of its legs; its STAKE and everything paid back.
_BOOK_TOTALS = """WITH bm AS (
    SELECT bet_id, MIN(market_id) AS market_id FROM bet_exposures GROUP BY bet_id
)
SELECT bm.market_id,
    COALESCE(SUM(CASE WHEN e.kind = 'STAKE' THEN -e.amount ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN e.kind <> 'STAKE' THEN e.amount ELSE 0 END), 0)
FROM bm JOIN ledger_entries e ON e.bet_id = bm.bet_id
WHERE ? IS NULL OR bm.market_id = ?
GROUP BY bm.market_id ORDER BY bm.market_id"""


def _by_bet(rows: Sequence[Sequence[Any]]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(tuple(row[1:]))
    return out


def _settle_begin(conn: sqlite3.Connection, instruction: SettlementInstruction, wire: str) -> Begun:
    """Records the instruction (once per (market, version)) and says what to do."""
    market_id, version = instruction.market_id, instruction.version
    rows = conn.execute(
        "SELECT instruction, completed_at, applied, swept_seq FROM market_results"
        " WHERE market_id = ? AND version = ?",
        (market_id, version),
    ).fetchall()
    (latest,) = conn.execute(
        "SELECT MAX(version) FROM market_results WHERE market_id = ? AND applied AND version < ?",
        (market_id, version),
    ).fetchone()
    (mark,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM bets").fetchone()
    if rows:
        text, completed_at, applied, swept_seq = rows[0]
        if not instruction_from_wire(orjson.loads(text)).same_result(instruction):
            raise ResultConflict(f"market {market_id} v{version} was recorded with another result")
        if completed_at is not None:
            (in_force,) = conn.execute(
                "SELECT MAX(version) FROM market_results WHERE market_id = ? AND applied",
                (market_id,),
            ).fetchone()
            since = -1 if swept_seq is None else swept_seq
            newer = conn.execute(_OPEN_BETS_SINCE, (since, market_id)).fetchall()
            return rerun_begun(bool(applied), in_force, version, bool(newer), mark)
        outcome = SettleOutcome.SETTLED if latest is None else SettleOutcome.RESETTLED
        return Begun(outcome, "", mark)
    (newest,) = conn.execute(
        "SELECT MAX(version) FROM market_results WHERE market_id = ? AND applied", (market_id,)
    ).fetchone()
    outcome, applies = begin_outcome(version, instruction.post_official, newest)
    now = _now().isoformat()
    conn.execute(
        "INSERT INTO market_results (market_id, version, instruction, post_official, applied,"
        " received_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            market_id,
            version,
            wire,
            instruction.post_official,
            applies,
            now,
            None if applies else now,
        ),
    )
    return Begun(outcome, "" if applies else None, mark)


def _settle_finish(conn: sqlite3.Connection, market_id: str, version: int, mark: int) -> None:
    conn.execute(
        "UPDATE market_results SET completed_at = COALESCE(completed_at, ?),"
        " swept_seq = MAX(COALESCE(swept_seq, -1), ?) WHERE market_id = ? AND version = ?",
        (_now().isoformat(), mark, market_id, version),
    )


def _write_settlements(
    conn: sqlite3.Connection,
    writes: Sequence[BetWrite],
    exposures: Mapping[str, Sequence[tuple[str, str, int]]],
    trigger: SettlementInstruction | None,
    now: str,
) -> list[tuple[BetWrite, int]]:
    """The plans' rows; returns the visible writes with each account's balance after."""
    visible = [w for w in writes if not w.quiet]
    accounts = sorted({w.bet.account_id for w in visible})
    balances = dict(
        conn.execute(
            "SELECT account_id, balance FROM accounts WHERE account_id IN"
            " (SELECT value FROM json_each(?))",
            (_json(accounts),),
        ).fetchall()
    )
    applied = apply_balances(visible, balances)
    conn.executemany(
        "UPDATE bets SET status = ?, receipt = ?, updated_at = ? WHERE bet_id = ?",
        [(w.status, _json(w.receipt), now, w.bet.bet_id) for w in visible],
    )
    conn.executemany(
        "INSERT INTO ledger_entries (account_id, kind, amount, bet_id, reference, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (w.bet.account_id, k.value, a, w.bet.bet_id, ref, now)
            for w in visible
            for k, a, ref in w.entries
        ],
    )
    conn.executemany(
        "INSERT INTO bet_results (bet_id, market_id, version) VALUES (?, ?, ?)"
        " ON CONFLICT (bet_id, market_id) DO UPDATE SET version = excluded.version",
        [(w.bet.bet_id, m, v) for w in writes for m, v in w.versions],
    )
    conn.executemany(
        "UPDATE exposure SET liability = liability - ? WHERE market_id = ? AND selection_id = ?",
        [(v, m, s) for m, s, v in merged_release(visible, exposures)],
    )
    conn.executemany(
        "INSERT INTO outbox (topic, key, payload, created_at) VALUES (?, ?, ?, ?)",
        [(BETS_TOPIC, w.bet.account_id, _json(outbox_payload(w, trigger)), now) for w in visible],
    )
    return applied


def _account(conn: sqlite3.Connection, query: str, value: str) -> Account | None:
    rows = conn.execute(query, (value,)).fetchall()
    if not rows:
        return None
    r = rows[0]
    return Account(r[0], r[1], r[3], r[4], orjson.loads(r[2]))


def _migrate(conn: sqlite3.Connection) -> None:
    """Applies the missing migrations in one transaction.

    Foreign keys are off while it runs (SQLite's way to rebuild a table that
    others reference: a DROP would count every child row as a violation) and
    checked before the commit, so a migration still cannot leave an orphan."""
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        _migrate_unchecked(conn)
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


def _migrate_unchecked(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
        known = {version for version, _ in migrations.SQLITE}
        if done - known:
            raise StoreError(f"database schema {max(done)} is newer than this code knows")
        for version, statements in migrations.SQLITE:
            if version in done:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, _now().isoformat()),
            )
        orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
        if orphans:
            raise StoreError(f"migration would leave rows without their parent: {orphans[:3]}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _run_jobs(
    conn: sqlite3.Connection, ops: Sequence[Callable[[sqlite3.Connection], Any]]
) -> list[tuple[bool, Any]]:
    """Inside the open transaction: each op in its own savepoint, rolled back alone
    when it fails or refuses (:class:`_Rollback`)."""
    results: list[tuple[bool, Any]] = []
    for op in ops:
        conn.execute("SAVEPOINT job")
        try:
            result: tuple[bool, Any] = (True, op(conn))
        except _Rollback as rollback:
            conn.execute("ROLLBACK TO job")
            result = (True, rollback.result)
        except Exception as exc:
            if not conn.in_transaction:  # SQLite gave up the whole transaction
                raise
            conn.execute("ROLLBACK TO job")
            result = (False, exc)
        conn.execute("RELEASE job")
        results.append(result)
    return results


def _begin_waiting(conn: sqlite3.Connection) -> None:
    """On the writer thread: ``BEGIN IMMEDIATE``, waiting up to the busy timeout for
    another process's write lock."""
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout=0")


def _commit(conn: sqlite3.Connection) -> None:
    """On the writer thread: COMMIT (durable: ``synchronous=FULL``), else ROLLBACK."""
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _locked_balance(conn: sqlite3.Connection, account_id: str) -> int:
    """The account's balance (the writer holds the database's write lock)."""
    rows = conn.execute(
        "SELECT balance FROM accounts WHERE account_id = ?", (account_id,)
    ).fetchall()
    if not rows:
        raise UnknownAccount(f"no account {account_id!r}")
    balance: int = rows[0][0]
    return balance


def _insert_entry(
    conn: sqlite3.Connection,
    *,
    account_id: str,
    kind: EntryKind,
    amount: int,
    bet_id: str | None,
    reference: str,
    now: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO ledger_entries (account_id, kind, amount, bet_id, reference, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (account_id, kind.value, amount, bet_id, reference, now or _now().isoformat()),
    )


def _outbox(conn: sqlite3.Connection, key: str, payload: Receipt, now: str | None = None) -> None:
    conn.execute(
        "INSERT INTO outbox (topic, key, payload, created_at) VALUES (?, ?, ?, ?)",
        (BETS_TOPIC, key, _json(payload), now or _now().isoformat()),
    )


def _place(conn: sqlite3.Connection, p: Placement) -> PlaceOutcome:
    rows = conn.execute(_BALANCE_AND_PLACED, (p.request_id, p.account_id)).fetchall()
    if not rows:
        raise UnknownAccount(f"no account {p.account_id!r}")
    balance, bet_id, body_hash, receipt = rows[0]
    if bet_id is not None:
        if body_hash != p.body_hash:
            return PlaceOutcome(Outcome.CONFLICT, bet_id, None, balance)
        return PlaceOutcome(Outcome.REPLAYED, bet_id, orjson.loads(receipt), balance)
    if balance < p.total_stake:
        detail = {"balance": balance, "required": p.total_stake}
        return PlaceOutcome(Outcome.INSUFFICIENT_FUNDS, None, None, balance, detail)
    exposures = p.merged_exposures()
    for market_id, selection_id, added in exposures:
        (total,) = conn.execute(
            "INSERT INTO exposure (market_id, selection_id, liability) VALUES (?, ?, ?)"
            " ON CONFLICT (market_id, selection_id)"
            " DO UPDATE SET liability = liability + excluded.liability RETURNING liability",
            (market_id, selection_id, added),
        ).fetchall()[0]
        if p.liability_limit is not None and total > p.liability_limit:
            detail = liability_detail(market_id, selection_id, total - added, p.liability_limit)
            raise _Rollback(PlaceOutcome(Outcome.LIABILITY_LIMIT, None, None, balance, detail))
    (seq,) = conn.execute(
        "UPDATE counters SET value = value + 1 WHERE name = 'bet' RETURNING value"
    ).fetchall()[0]
    bet_id = bet_id_for(seq)
    balance_after = balance - p.total_stake
    receipt_json = _json(p.receipt_for(bet_id, balance_after))
    now = _now().isoformat()
    conn.execute(
        "INSERT INTO bets (seq, bet_id, account_id, request_id, body_hash, status, total_stake,"
        " receipt, placed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            bet_id,
            p.account_id,
            p.request_id,
            p.body_hash,
            str(p.status),
            p.total_stake,
            receipt_json,
            now,
            now,
        ),
    )
    _insert_entry(
        conn,
        account_id=p.account_id,
        kind=EntryKind.STAKE,
        amount=-p.total_stake,
        bet_id=bet_id,
        reference=p.request_id,
        now=now,
    )
    conn.executemany(
        "INSERT INTO bet_exposures (bet_id, market_id, selection_id, liability)"
        " VALUES (?, ?, ?, ?)",
        [(bet_id, m, s, v) for m, s, v in exposures],
    )
    receipt = orjson.loads(receipt_json)
    payload = bet_event("PLACED", bet_id, p.account_id, str(p.status), receipt)
    _outbox(conn, p.account_id, payload, now)
    return PlaceOutcome(Outcome.PLACED, bet_id, receipt, balance_after)


def _resolve(
    conn: sqlite3.Connection, bet_id: str, accepted: bool, receipt_json: str
) -> PlaceOutcome:
    rows = conn.execute(
        "SELECT account_id, status, total_stake, receipt FROM bets WHERE bet_id = ?", (bet_id,)
    ).fetchall()
    if not rows:
        return PlaceOutcome(Outcome.NOT_FOUND, bet_id)
    account_id, status, stake, stored = rows[0]
    target = BetStatus.ACCEPTED if accepted else BetStatus.REJECTED
    balance = _locked_balance(conn, account_id)
    if status != BetStatus.PENDING:
        outcome = Outcome.REPLAYED if status == target else Outcome.CONFLICT
        return PlaceOutcome(outcome, bet_id, orjson.loads(stored), balance, {"status": status})
    conn.execute(
        "UPDATE bets SET status = ?, receipt = ?, updated_at = ? WHERE bet_id = ?",
        (target.value, receipt_json, _now().isoformat(), bet_id),
    )
    if not accepted:
        _insert_entry(
            conn,
            account_id=account_id,
            kind=EntryKind.REFUND,
            amount=stake,
            bet_id=bet_id,
            reference=f"rejected:{bet_id}",
        )
        conn.execute(
            "UPDATE exposure SET liability = liability - (SELECT be.liability FROM bet_exposures be"
            "  WHERE be.bet_id = ? AND be.market_id = exposure.market_id"
            "  AND be.selection_id = exposure.selection_id)"
            " WHERE (market_id, selection_id) IN"
            "  (SELECT market_id, selection_id FROM bet_exposures WHERE bet_id = ?)",
            (bet_id, bet_id),
        )
        balance += stake
    receipt = orjson.loads(receipt_json)
    _outbox(conn, account_id, bet_event(target.value, bet_id, account_id, target.value, receipt))
    return PlaceOutcome(Outcome.RESOLVED, bet_id, receipt, balance)
