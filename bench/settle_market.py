"""Settlement benchmark (issue #5): bets settled/s for one market with 1,000,000 open bets,
SQLite and PostgreSQL, beside a plain-INSERT floor measured in the same database.

    .venv/bin/python bench/settle_market.py [--bets N] [--quick] [--targets sqlite,postgresql]

For each target it makes a fresh ledger (a SQLite file in WAL; a fresh schema on a
**private, durable** PostgreSQL cluster started for the run with ``pg.sh`` on its own
port, ``--pg-port`` (35432; never the project's 15432 or 25432), and state dir,
``/tmp/settle_market-pg-<port>``, ``PG_DURABLE=1``, stopped and deleted at the end even
on failure; or ``--pg-url``) and:

1. opens it with the product (``open_store``: migrations), creates ``--accounts``
   accounts (1,000) with a deposit each and settles the ten *other* markets the
   multiples' other legs are on (no bets on them yet: recorded and completed);
2. seeds ``--bets`` open bets on one market of 20 runners directly, in bulk, in the
   schema's shape (``bets`` with a receipt as ``bets.place`` writes it, a STAKE entry
   each, ``bet_exposures``, ``exposure``, the bet counter; no PLACED outbox events):
   ~90 % singles (a quarter of them each-way), ~10 % doubles, trebles and Yankees
   whose other legs are on the markets already resulted, struck over two hours in
   which one runner is withdrawn (Rule 4 for the bets struck before); not timed;
3. **baseline**: the same number of rows written by a plain ``executemany`` INSERT of
   one narrow row per bet into a fresh table of that database (primary key only), in
   transactions of the chunk size, each committed durably: the floor of one durable
   row per bet; the store writes four rows per bet (entry, bet_results, outbox, the
   bet's new receipt) plus the exposure and balances, and decides each bet;
4. **settle**: ``store.settle_market(instruction)`` on a freshly opened store, timed
   end to end (durable: SQLite ``synchronous=FULL`` as the product opens it;
   PostgreSQL with ``fsync`` and ``synchronous_commit`` on), chunk times from
   ``on_chunk``, CPU of this process and of the cluster;
5. **verify**: every bet SETTLED or VOID, one ``bet_results`` row per bet for this
   version, each bet's RETURN / REFUND equal to the amount this script computes with
   plain integer arithmetic (per distinct bet shape), ``audit() == []``, the
   market's exposure released, one outbox event per bet; and the same instruction
   again answers ``replayed`` (timed: the cost of a re-run with nothing open).

Speed is never asserted (STYLE.md rule 11). Writes ``bench/results/settle_market.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))  # this checkout's packages first (a copy of an older one too)

import bets_place as bp  # noqa: E402
import odds_fanout as fanout  # noqa: E402
from odds_fanout import log  # noqa: E402

TARGETS = ("sqlite", "postgresql")
BAR_BETS_PER_S = 50_000
PY_SPY = Path(sys.executable).parent / "py-spy"  # --profile
MARKET = "1.900000001"
OTHER_MARKETS = tuple(f"1.9000001{k:02d}" for k in range(10))
RUNNERS = 20
WINNER, PLACED, REMOVED = "1", ("2", "3"), "20"
T0 = dt.datetime(2026, 6, 1, 13, 0, tzinfo=dt.UTC)
REMOVED_AT = T0 + dt.timedelta(hours=1)
STRUCK_SPAN_S = 2 * 3600
RULE4_PENCE = 20  # the withdrawn runner's price at withdrawal, 5.0 (4/1): 20p in the pound
PLACE_TERMS = (3, 1, 5)  # 3 places at 1/5 of the odds
PRICES: tuple[str, ...] = ("1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5", "6", "7", "8")
PRICES += ("9", "10", "12", "15", "17", "21", "26", "34", "51")
OTHER_PRICES = ("1.5", "1.8", "2", "2.2", "2.62", "3")
STAKES = (100, 200, 250, 500, 1000, 1234, 2000, 5000)
DEPOSIT = 10**12
SEED_BATCH = 50_000


# ------------------------------------------------------------------- plan


@dataclass
class Plan:
    bets: int
    accounts: int
    targets: list[str]
    chunk_size: int | None
    multiples_share: float
    each_way_share: float
    profile: bool
    results_dir: Path
    quick: bool
    seed: int = 5


@dataclass
class Bet:
    """One seeded bet, and what this script expects its settlement to pay."""

    seq: int
    account: int
    kind: str  # SINGLE | ACCUMULATOR | YANKEE
    legs: tuple[tuple[str, str, str], ...]
    stake: int  # per line
    each_way: bool
    struck_s: int  # seconds after T0
    lines: int = 0
    expected: tuple[str, int] | None = None  # (entry kind, amount); None: a loser
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------- the independent arithmetic


def _ratio(price: str) -> tuple[int, int]:
    """A decimal price string as numerator / denominator (plain integers)."""
    whole, _, frac = price.partition(".")
    den = 10 ** len(frac)
    return int(whole + frac), den


def _main_leg(
    selection: str, price: str, before_removal: bool, place: bool
) -> tuple[int, int] | None:
    """The main market's leg factor as (num, den); None: void (factor 1, and it counts
    as void for the VOID rule)."""
    if selection == REMOVED:
        return None
    n, d = _ratio(price)
    r = RULE4_PENCE if before_removal else 0
    _places, fa, fb = PLACE_TERMS
    if place:  # the place line: winner or placed pays (O−1)·fraction, less Rule 4
        if selection == WINNER or selection in PLACED:
            # 1 + (n/d − 1)·(fa/fb)·(100 − r)/100
            den = d * fb * 100
            return den + (n - d) * fa * (100 - r), den
        return 0, 1
    if selection == WINNER:
        den = d * 100
        return den + (n - d) * (100 - r), den
    return 0, 1


def _other_leg(selection: str, price: str) -> tuple[int, int]:
    n, d = _ratio(price)
    return (n, d) if selection in ("1", "3") else (0, 1)


def _folds(n: int, kind: str) -> list[tuple[int, ...]]:
    if kind == "YANKEE":  # doubles, trebles and the fourfold of 4 legs: 11 lines
        out: list[tuple[int, ...]] = []
        for mask in range(1, 1 << n):
            legs = tuple(i for i in range(n) if mask >> i & 1)
            if len(legs) >= 2:
                out.append(legs)
        return out
    return [tuple(range(n))]


def expected_of(bet: Bet, cache: dict[tuple[Any, ...], tuple[str, int] | None]) -> None:
    """What the bet must pay: Σ stake × ∏ leg factors over its lines, floored once."""
    before = bet.struck_s < (REMOVED_AT - T0).total_seconds()
    key = (bet.kind, bet.legs, bet.stake, bet.each_way, before)
    if key in cache:
        bet.expected = cache[key]
        return
    num, den = 0, 1  # the exact sum of the lines' returns, as one fraction of integers
    all_void = True
    line_parts = [False, True] if bet.each_way else [False]
    for legs in _folds(len(bet.legs), bet.kind):
        for place in line_parts:
            ln, ld = bet.stake, 1
            for i in legs:
                market, selection, price = bet.legs[i]
                if market == MARKET:
                    factor = _main_leg(selection, price, before, place)
                    if factor is None:
                        factor = (1, 1)
                    else:
                        all_void = False
                else:
                    factor = _other_leg(selection, price)
                    all_void = False
                ln, ld = ln * factor[0], ld * factor[1]
            num, den = num * ld + ln * den, den * ld
    amount = num // den
    result: tuple[str, int] | None
    if all_void:  # every leg void: the stake back
        result = ("REFUND", amount)
    elif amount > 0:
        result = ("RETURN", amount)
    else:  # a loser: no entry
        result = None
    cache[key] = result
    bet.expected = result


# ------------------------------------------------------------------- seed


def make_bets(plan: Plan) -> Iterator[Bet]:
    """The bets, deterministic for ``plan.seed``; bet ids in seq order."""
    rng = random.Random(plan.seed)
    selections = [str(i) for i in range(1, RUNNERS + 1)]
    # Each runner is backed at 3 prices over the two hours (the price moves).
    prices = {s: rng.sample(PRICES, 3) for s in selections}
    others = {m: {s: rng.choice(OTHER_PRICES) for s in "1234"} for m in OTHER_MARKETS}
    cache: dict[tuple[Any, ...], tuple[str, int] | None] = {}
    for seq in range(1, plan.bets + 1):
        selection = rng.choice(selections)
        struck = rng.randrange(STRUCK_SPAN_S)
        price = prices[selection][struck * 3 // STRUCK_SPAN_S]
        main = (MARKET, selection, price)
        stake = rng.choice(STAKES)
        if rng.random() < plan.multiples_share:
            kind = rng.choice(("ACCUMULATOR", "ACCUMULATOR", "YANKEE"))
            n = 4 if kind == "YANKEE" else rng.choice((2, 3))
            markets = rng.sample(OTHER_MARKETS, n - 1)
            legs = [main]
            for m in markets:
                s = rng.choice("1234")
                legs.append((m, s, others[m][s]))
            bet = Bet(seq, rng.randrange(plan.accounts), kind, tuple(legs), stake, False, struck)
            bet.lines = len(_folds(n, kind))
        else:
            each_way = rng.random() < plan.each_way_share
            bet = Bet(seq, rng.randrange(plan.accounts), "SINGLE", (main,), stake, each_way, struck)
            bet.lines = 2 if each_way else 1
        expected_of(bet, cache)
        yield bet


def account_id(i: int) -> str:
    return f"acc-{i:04d}"


def receipt_of(bet: Bet, bet_id: str, placed_at: str) -> dict[str, Any]:
    """As ``rsocket_server.betting.accepted_receipt`` writes it."""
    n, d = 1, 1
    for _, _, price in bet.legs:
        pn, pd = _ratio(price)
        n, d = n * pn, d * pd
    return {
        "betId": bet_id,
        "requestId": f"settle-bench-{bet.seq}",
        "type": "SYSTEM" if bet.kind == "YANKEE" else bet.kind,
        "system": "YANKEE" if bet.kind == "YANKEE" else None,
        "eachWay": bet.each_way,
        "status": "ACCEPTED",
        "code": None,
        "message": None,
        "placedAt": placed_at,
        "legs": [
            {"marketId": m, "selectionId": s, "price": p, "result": None} for m, s, p in bet.legs
        ],
        "lines": bet.lines,
        "stakePerLine": bet.stake,
        "totalStake": bet.stake * bet.lines,
        "potentialReturn": bet.stake * bet.lines * n // d,
        "currency": "GBP",
        "balanceAfter": DEPOSIT,
        "settlement": None,
    }


def main_instruction() -> Any:
    from sportsbook_core.catalogue import EachWayTerms  # noqa: PLC0415
    from sportsbook_core.prices import Price  # noqa: PLC0415
    from sportsbook_core.results import (  # noqa: PLC0415
        RunnerOutcome,
        RunnerResult,
        SettlementInstruction,
    )

    runners = []
    for i in range(1, RUNNERS + 1):
        s = str(i)
        if s == WINNER:
            runners.append(RunnerResult(s, RunnerOutcome.WINNER))
        elif s in PLACED:
            runners.append(RunnerResult(s, RunnerOutcome.PLACED))
        elif s == REMOVED:
            runners.append(
                RunnerResult(
                    s, RunnerOutcome.REMOVED, removed_at=REMOVED_AT, price_at_removal=Price.of("5")
                )
            )
        else:
            runners.append(RunnerResult(s, RunnerOutcome.LOSER))
    from fractions import Fraction  # noqa: PLC0415

    places, fa, fb = PLACE_TERMS
    return SettlementInstruction(
        MARKET,
        1,
        tuple(runners),
        T0 + dt.timedelta(hours=3),
        each_way=EachWayTerms(places, Fraction(fa, fb)),
    )


def other_instruction(market: str) -> Any:
    from sportsbook_core.results import (  # noqa: PLC0415
        RunnerOutcome,
        RunnerResult,
        SettlementInstruction,
    )

    outcome = {"1": RunnerOutcome.WINNER, "3": RunnerOutcome.WINNER}
    runners = tuple(RunnerResult(s, outcome.get(s, RunnerOutcome.LOSER)) for s in "1234")
    return SettlementInstruction(
        market, 1, runners, T0 + dt.timedelta(hours=2), number_of_winners=2
    )


async def prepare(url: str, plan: Plan) -> None:
    """Accounts with a deposit, the other markets resulted (through the product)."""
    from ledger_store import open_store  # noqa: PLC0415

    store = await open_store(url)
    try:
        for start in range(0, plan.accounts, 100):
            ids = [account_id(i) for i in range(start, min(start + 100, plan.accounts))]
            await asyncio.gather(*(store.create_account(a, "GBP", None, {}) for a in ids))
            await asyncio.gather(*(store.deposit(a, DEPOSIT, "bench-seed") for a in ids))
        for market in OTHER_MARKETS:
            report = await store.settle_market(other_instruction(market))
            assert report.outcome == "settled", report
    finally:
        await store.close()


@dataclass
class Seeded:
    expected: dict[str, tuple[str, int] | None]
    kinds: dict[str, int]
    seconds: float


def _rows(plan: Plan, text_time: bool) -> Iterator[tuple[list[Any], list[Any], list[Any], Bet]]:
    """Per bet: its ``bets`` row, its STAKE entry, its exposure rows (and the bet)."""
    from sportsbook_core.ledger import bet_id_for  # noqa: PLC0415

    for bet in make_bets(plan):
        bet_id = bet_id_for(bet.seq)
        placed = T0 + dt.timedelta(seconds=bet.struck_s, microseconds=bet.seq % 1_000_000)
        placed_text = placed.isoformat()
        when: Any = placed_text if text_time else placed
        account = account_id(bet.account)
        total = bet.stake * bet.lines
        receipt = orjson.dumps(receipt_of(bet, bet_id, placed_text)).decode()
        bet_row = [bet.seq, bet_id, account, f"settle-bench-{bet.seq}", f"h{bet.seq}"]
        bet_row += ["ACCEPTED", total, receipt, when, when]
        entry = [account, "STAKE", -total, bet_id, f"settle-bench-{bet.seq}", when]
        exposures = [[bet_id, m, s, total] for m, s, _ in bet.legs]
        yield bet_row, entry, exposures, bet


def _collect(
    batch: tuple[list[Any], list[Any], list[Any]],
    exposure: dict[tuple[str, str], int],
    expected: dict[str, tuple[str, int] | None],
    kinds: dict[str, int],
    row: tuple[Any, Any, list[Any], Bet],
) -> None:
    """One seeded bet into the batch of rows, the exposure totals and the expectations."""
    bet_row, entry, exposures, bet = row
    batch[0].append(bet_row)
    batch[1].append(entry)
    batch[2].extend(exposures)
    for _, m, s, v in exposures:
        exposure[(m, s)] = exposure.get((m, s), 0) + v
    expected[bet_row[1]] = bet.expected
    kinds[_kind(bet)] = kinds.get(_kind(bet), 0) + 1


def _kind(bet: Bet) -> str:
    if bet.kind == "ACCUMULATOR":
        return "DOUBLE" if len(bet.legs) == 2 else "TREBLE"
    return f"{bet.kind} EACH-WAY" if bet.each_way else bet.kind


def _progress(done: int, total: int, started: float) -> None:
    rate = done / max(time.monotonic() - started, 1e-9)
    log(f"  seeded {done:,} / {total:,} bets ({rate:,.0f}/s)")


def seed_sqlite(path: Path, plan: Plan) -> Seeded:
    started = time.monotonic()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # seeding only; the store reopens it FULL
    conn.execute("PRAGMA cache_size=-262144")
    expected: dict[str, tuple[str, int] | None] = {}
    kinds: dict[str, int] = {}
    exposure: dict[tuple[str, str], int] = {}
    batch: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    done = 0

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO bets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch[0])
        conn.executemany(
            "INSERT INTO ledger_entries (account_id, kind, amount, bet_id, reference,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            batch[1],
        )
        conn.executemany("INSERT INTO bet_exposures VALUES (?, ?, ?, ?)", batch[2])
        conn.execute("COMMIT")
        for rows in batch:
            rows.clear()

    for bet_row, entry, exposures, bet in _rows(plan, text_time=True):
        _collect(batch, exposure, expected, kinds, (bet_row, entry, exposures, bet))
        done += 1
        if done % SEED_BATCH == 0:
            flush()
            _progress(done, plan.bets, started)
    if batch[0]:
        flush()
        _progress(done, plan.bets, started)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO exposure VALUES (?, ?, ?) ON CONFLICT (market_id, selection_id)"
        " DO UPDATE SET liability = liability + excluded.liability",
        [(m, s, v) for (m, s), v in exposure.items()],
    )
    conn.execute("UPDATE counters SET value = ? WHERE name = 'bet'", (plan.bets,))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return Seeded(expected, kinds, time.monotonic() - started)


async def seed_postgres(url: str, plan: Plan) -> Seeded:
    import asyncpg  # noqa: PLC0415

    started = time.monotonic()
    conn = await asyncpg.connect(url)
    expected: dict[str, tuple[str, int] | None] = {}
    kinds: dict[str, int] = {}
    exposure: dict[tuple[str, str], int] = {}
    batch: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    done = 0
    bet_cols = ["seq", "bet_id", "account_id", "request_id", "body_hash", "status"]
    bet_cols += ["total_stake", "receipt", "placed_at", "updated_at"]
    entry_cols = ["account_id", "kind", "amount", "bet_id", "reference", "created_at"]

    async def flush() -> None:
        async with conn.transaction():
            await conn.copy_records_to_table("bets", records=batch[0], columns=bet_cols)
            await conn.copy_records_to_table("ledger_entries", records=batch[1], columns=entry_cols)
            await conn.copy_records_to_table("bet_exposures", records=batch[2])
        for rows in batch:
            rows.clear()

    try:
        # The balance trigger would update an account row per STAKE: off while seeding,
        # the balances set to the sum of the entries after (audit() checks it).
        await conn.execute("ALTER TABLE ledger_entries DISABLE TRIGGER USER")
        for bet_row, entry, exposures, bet in _rows(plan, text_time=False):
            _collect(batch, exposure, expected, kinds, (bet_row, entry, exposures, bet))
            done += 1
            if done % SEED_BATCH == 0:
                await flush()
                _progress(done, plan.bets, started)
        if batch[0]:
            await flush()
            _progress(done, plan.bets, started)
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO exposure VALUES ($1, $2, $3) ON CONFLICT (market_id, selection_id)"
                " DO UPDATE SET liability = exposure.liability + excluded.liability",
                [(m, s, v) for (m, s), v in exposure.items()],
            )
            await conn.execute(
                "UPDATE accounts a SET balance = t.total FROM (SELECT account_id,"
                " SUM(amount) AS total FROM ledger_entries GROUP BY account_id) t"
                " WHERE t.account_id = a.account_id"
            )
            await conn.execute("SELECT setval('bet_seq', $1)", plan.bets)
    finally:
        await conn.execute("ALTER TABLE ledger_entries ENABLE TRIGGER USER")
        log("  VACUUM ANALYZE (autovacuum would, after a million inserts)")
        await conn.execute("VACUUM ANALYZE")
        await conn.close()
    return Seeded(expected, kinds, time.monotonic() - started)


# --------------------------------------------------------------- baseline


def baseline_sqlite(path: Path, n: int, chunk: int) -> float:
    """One narrow row per bet by executemany, chunk-sized transactions, WAL + FULL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE bench_floor (bet_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,"
        " amount INTEGER NOT NULL, reference TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    now = dt.datetime.now(dt.UTC).isoformat()
    started = time.perf_counter()
    for start in range(0, n, chunk):
        rows = [
            (f"B-{i:09d}", account_id(i % 1000), i % 5000 + 1, f"settle:{MARKET}:v1", now)
            for i in range(start, min(start + chunk, n))
        ]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO bench_floor VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.execute("DROP TABLE bench_floor")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return seconds


async def baseline_postgres(url: str, n: int, chunk: int) -> float:
    import asyncpg  # noqa: PLC0415

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE bench_floor (bet_id text PRIMARY KEY, account_id text NOT NULL,"
            " amount bigint NOT NULL, reference text NOT NULL, created_at timestamptz NOT NULL)"
        )
        now = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        for start in range(0, n, chunk):
            rows = [
                (f"B-{i:09d}", account_id(i % 1000), i % 5000 + 1, f"settle:{MARKET}:v1", now)
                for i in range(start, min(start + chunk, n))
            ]
            async with conn.transaction():
                await conn.executemany("INSERT INTO bench_floor VALUES ($1, $2, $3, $4, $5)", rows)
        seconds = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_floor")
        return seconds
    finally:
        await conn.close()


# ------------------------------------------------------------------ settle


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def settle(
    url: str, plan: Plan, pg_cpu: bp.PgCpu | None, profile: Path | None
) -> dict[str, Any]:
    from ledger_store import open_store  # noqa: PLC0415

    store = await open_store(url)
    instruction = main_instruction()
    chunk_ms: list[float] = []
    settled = 0
    last = time.perf_counter()
    next_log = [0.0]

    def on_chunk(changed: Sequence[Any]) -> None:
        nonlocal last, settled
        now = time.perf_counter()
        chunk_ms.append((now - last) * 1000)
        last = now
        settled += len(changed)
        if now >= next_log[0]:
            next_log[0] = now + 5
            log(f"  settled {settled:,} ({settled / (now - t0):,.0f}/s)")

    me = psutil.Process()
    spy: asyncio.subprocess.Process | None = None
    try:
        if profile is not None:
            spy = await asyncio.create_subprocess_exec(
                str(PY_SPY),
                *("record", "-p", str(os.getpid()), "-r", "200", "-f", "raw"),
                *("-o", str(profile), "--nonblocking"),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(1.0)
        cpu0 = me.cpu_times()
        busy0 = bp.machine_busy()
        if pg_cpu is not None:
            pg_cpu.start()
        t0 = last = time.perf_counter()
        kwargs: dict[str, Any] = {"on_chunk": on_chunk}
        if plan.chunk_size:
            kwargs["chunk_size"] = plan.chunk_size
        report = await store.settle_market(instruction, **kwargs)
        seconds = time.perf_counter() - t0
        cpu1 = me.cpu_times()
        busy = 100 * (bp.machine_busy() - busy0) / seconds
        pg_percent = pg_cpu.percent(seconds) if pg_cpu is not None else None
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(spy.wait(), 60)
        t1 = time.perf_counter()
        again = await store.settle_market(instruction)
        rerun_ms = (time.perf_counter() - t1) * 1000
        audit = await store.audit()
    finally:
        if spy is not None and spy.returncode is None:
            spy.kill()
            await spy.wait()
        await store.close()
    ours = 100 * (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / seconds
    return {
        "outcome": str(report.outcome),
        "bets_settled": report.bets_settled,
        "bets_open": report.bets_open,
        "seconds": round(seconds, 3),
        "settled_per_s": round(report.bets_settled / seconds, 1),
        "chunks": len(chunk_ms),
        "chunk_ms_p50": _round(_percentile(chunk_ms, 0.5)),
        "chunk_ms_p99": _round(_percentile(chunk_ms, 0.99)),
        "chunk_ms_max": _round(max(chunk_ms) if chunk_ms else None),
        "cpu_percent_bench": round(ours, 1),
        "cpu_percent_postgres": None if pg_percent is None else round(pg_percent, 1),
        "machine_busy_percent": round(busy, 1),
        "other_processes_percent": round(max(0.0, busy - ours - (pg_percent or 0.0)), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rerun": {
            "outcome": str(again.outcome),
            "bets_settled": again.bets_settled,
            "ms": round(rerun_ms, 2),
        },
        "audit": audit,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ------------------------------------------------------------------ verify

_CHECKS = {
    "statuses": "SELECT status, COUNT(*) FROM bets GROUP BY status",
    "bet_results": "SELECT COUNT(*) FROM bet_results WHERE market_id = '{m}' AND version = 1",
    "exposure": "SELECT COALESCE(SUM(liability), 0) FROM exposure WHERE market_id = '{m}'",
    "outbox": "SELECT COUNT(*) FROM outbox",
    "entries": "SELECT bet_id, kind, amount FROM ledger_entries WHERE reference = 'settle:{m}:v1'",
}


def verify_rows(
    seeded: Seeded,
    statuses: dict[str, int],
    bet_results: int,
    exposure: int,
    outbox: int,
    entries: list[tuple[str, str, int]],
) -> dict[str, Any]:
    n = len(seeded.expected)
    problems: list[str] = []
    if statuses.get("SETTLED", 0) + statuses.get("VOID", 0) != n:
        problems.append(f"bet statuses {statuses}, expected {n:,} SETTLED or VOID")
    if bet_results != n:
        problems.append(f"{bet_results:,} bet_results rows for v1, expected {n:,}")
    if exposure != 0:
        problems.append(f"exposure left on the market: {exposure}")
    if outbox != n:
        problems.append(f"{outbox:,} outbox events, expected {n:,}")
    got: dict[str, tuple[str, int]] = {}
    for bet_id, kind, amount in entries:
        if bet_id in got:
            problems.append(f"bet {bet_id}: two settlement entries")
        got[bet_id] = (kind, int(amount))
    wrong = 0
    returns = refunds = expected_returns = expected_refunds = 0
    for bet_id, want in seeded.expected.items():
        have = got.get(bet_id)
        if have != want:
            wrong += 1
            if wrong <= 5:
                problems.append(f"bet {bet_id}: entry {have}, expected {want}")
        if want is not None:
            if want[0] == "RETURN":
                expected_returns += want[1]
            else:
                expected_refunds += want[1]
    for kind, amount in got.values():
        if kind == "RETURN":
            returns += amount
        else:
            refunds += amount
    if wrong:
        problems.append(f"{wrong:,} bets paid other than computed")
    return {
        "ok": not problems,
        "problems": problems,
        "statuses": statuses,
        "return_entries": sum(1 for k, _ in got.values() if k == "RETURN"),
        "returned": returns,
        "returned_expected": expected_returns,
        "refunded": refunds,
        "refunded_expected": expected_refunds,
    }


def verify_sqlite(path: Path, seeded: Seeded) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        q = {k: v.format(m=MARKET) for k, v in _CHECKS.items()}
        return verify_rows(
            seeded,
            dict(conn.execute(q["statuses"]).fetchall()),
            conn.execute(q["bet_results"]).fetchone()[0],
            conn.execute(q["exposure"]).fetchone()[0],
            conn.execute(q["outbox"]).fetchone()[0],
            conn.execute(q["entries"]).fetchall(),
        )
    finally:
        conn.close()


async def verify_postgres(url: str, seeded: Seeded) -> dict[str, Any]:
    import asyncpg  # noqa: PLC0415

    conn = await asyncpg.connect(url)
    try:
        q = {k: v.format(m=MARKET) for k, v in _CHECKS.items()}
        return verify_rows(
            seeded,
            {r[0]: r[1] for r in await conn.fetch(q["statuses"])},
            await conn.fetchval(q["bet_results"]),
            await conn.fetchval(q["exposure"]),
            await conn.fetchval(q["outbox"]),
            [tuple(r) for r in await conn.fetch(q["entries"])],
        )
    finally:
        await conn.close()


# -------------------------------------------------------------------- run


def run_target(
    plan: Plan, target: str, tmp: Path, pg: bp.OwnPostgres | None, pg_base: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"target": target, "bets": plan.bets, "errors": []}
    ledger = bp.Ledger()
    try:
        ledger = bp.open_ledger(target, tmp, pg_base)
        assert ledger.url is not None
        log(f"{target}: accounts, other markets resulted")
        asyncio.run(prepare(ledger.url, plan))
        log(f"{target}: seeding {plan.bets:,} open bets")
        if ledger.sqlite_path is not None:
            seeded = seed_sqlite(ledger.sqlite_path, plan)
        else:
            seeded = asyncio.run(seed_postgres(ledger.url, plan))
        out["seed_seconds"] = round(seeded.seconds, 1)
        out["bet_kinds"] = seeded.kinds
        chunk = plan.chunk_size or _default_chunk()
        log(f"{target}: baseline, {plan.bets:,} rows by executemany in chunks of {chunk:,}")
        if ledger.sqlite_path is not None:
            base_s = baseline_sqlite(ledger.sqlite_path, plan.bets, chunk)
        else:
            base_s = asyncio.run(baseline_postgres(ledger.url, plan.bets, chunk))
        out["baseline"] = {"seconds": round(base_s, 3), "rows_per_s": round(plan.bets / base_s, 1)}
        log(f"  baseline: {plan.bets / base_s:,.0f} rows/s ({base_s:.2f} s)")
        log(f"  load average {os.getloadavg()[0]:.2f}")
        out["load_average_before_settle"] = [round(x, 2) for x in os.getloadavg()]
        log(f"{target}: settle_market")
        pg_cpu = bp.PgCpu(pg.postmaster()) if (pg is not None and target == "postgresql") else None
        profile = plan.results_dir / f"profile-settle_market-{target}.txt" if plan.profile else None
        out["settle"] = asyncio.run(settle(ledger.url, plan, pg_cpu, profile))
        if profile is not None and profile.exists():
            out["profile"] = str(profile)
            out["profile_summary"] = fanout.profile_summary(profile)
        out["load_average_after_settle"] = [round(x, 2) for x in os.getloadavg()]
        s = out["settle"]
        out["ratio_to_baseline"] = round(s["settled_per_s"] / out["baseline"]["rows_per_s"], 3)
        log(
            f"  settled {s['bets_settled']:,} in {s['seconds']:.2f} s: {s['settled_per_s']:,.0f}/s"
            f" (×{out['ratio_to_baseline']} of the baseline), chunks {s['chunks']} p50"
            f" {s['chunk_ms_p50']} ms p99 {s['chunk_ms_p99']} ms, CPU bench"
            f" {s['cpu_percent_bench']} % pg {s['cpu_percent_postgres']} %, other"
            f" {s['other_processes_percent']} %, re-run {s['rerun']['outcome']} in"
            f" {s['rerun']['ms']} ms"
        )
        log(f"{target}: verifying")
        if ledger.sqlite_path is not None:
            out["verify"] = verify_sqlite(ledger.sqlite_path, seeded)
        else:
            out["verify"] = asyncio.run(verify_postgres(ledger.url, seeded))
        v = out["verify"]
        ok = v["ok"] and s["audit"] == [] and s["bets_settled"] == plan.bets
        out["verified"] = ok
        log(
            f"  {'OK' if ok else 'FAILED'}: {v['statuses']}, {v['return_entries']:,} RETURNs"
            f" summing {v['returned']:,} (computed {v['returned_expected']:,}), refunds"
            f" {v['refunded']:,} (computed {v['refunded_expected']:,}), audit {s['audit']}"
        )
        for problem in v["problems"]:
            log(f"  ! {problem}")
    except Exception as exc:  # recorded in the result, the run goes on
        out["errors"].append(f"{type(exc).__name__}: {exc}")
        log(f"  ! {type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            bp.drop_ledger(ledger)
    return out


PROJECT_PG_PORTS = (15432, 25432)  # the project's own clusters: never this bench's


def own_postgres(port: int) -> bp.OwnPostgres:
    """A private durable pg.sh cluster on ``port``, state under /tmp (deleted by ``stop``)."""
    if port in PROJECT_PG_PORTS:
        raise SystemExit(f"--pg-port {port} belongs to the project's own PostgreSQL; pick another")
    pg = bp.OwnPostgres()
    pg.port = port
    pg.state = Path(f"/tmp/settle_market-pg-{port}")
    if pg.state.exists():  # another run's cluster (pg.sh would reuse it, stop would delete it)
        raise SystemExit(f"{pg.state} exists: another settle_market run? (else remove it)")
    pg.env.update(PG_PORT=str(port), PG_STATE_DIR=str(pg.state), PG_DURABLE="1")
    return pg


def _default_chunk() -> int:
    from ledger_store.settling import DEFAULT_CHUNK  # noqa: PLC0415

    return DEFAULT_CHUNK


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bets", type=int, default=None, help="open bets to settle (1,000,000)")
    p.add_argument("--quick", action="store_true", help="100,000 bets")
    p.add_argument("--accounts", type=int, default=1000)
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--chunk-size", type=int, default=None, help="the store's default if unset")
    p.add_argument("--multiples", type=float, default=0.10, help="share of multiples")
    p.add_argument("--each-way", type=float, default=0.25, help="share of singles each-way")
    p.add_argument("--pg-url", default=None, help="an existing PostgreSQL (else a private one)")
    p.add_argument("--pg-port", type=int, default=35432, help="the private cluster's port")
    p.add_argument("--profile", action="store_true", help="py-spy the settle (perturbs)")
    p.add_argument("--out", type=Path, default=BENCH / "results" / "settle_market.json")
    args = p.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    if not set(targets) <= set(TARGETS):
        p.error(f"--targets: choose from {', '.join(TARGETS)}")
    if args.profile and not PY_SPY.exists():
        p.error(f"--profile needs py-spy at {PY_SPY} (.venv/bin/pip install py-spy)")
    args.targets = targets
    return args


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    bets = args.bets or (100_000 if args.quick else 1_000_000)
    out_path: Path = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out_path.parent.mkdir(parents=True, exist_ok=True)
    plan = Plan(
        bets,
        args.accounts,
        args.targets,
        args.chunk_size,
        args.multiples,
        args.each_way,
        args.profile,
        out_path.parent,
        args.quick,
    )
    signal.signal(signal.SIGTERM, bp._terminate)
    started = time.monotonic()
    started_utc = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = fanout.machine()
    info["asyncpg"] = fanout._version("asyncpg")
    info["sqlite"] = sqlite3.sqlite_version
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    info["code"] = str(REPO)
    log(
        f"settle_market bench: {bets:,} bets, {args.accounts:,} accounts, targets"
        f" {', '.join(plan.targets)}, {info['cpu_count_logical']} cores (load"
        f" {info['load_average_at_start'][0]:.2f}), commit {info['git_commit'][:10]}"
        f"{' (dirty)' if info['git_dirty'] else ''}, code {REPO}"
    )
    pg: bp.OwnPostgres | None = None
    results: list[dict[str, Any]] = []
    try:
        pg_base = None
        if "postgresql" in plan.targets:
            if args.pg_url:
                pg_base = args.pg_url
            else:
                pg = own_postgres(args.pg_port)
                log(f"starting a private durable PostgreSQL on :{pg.port} (state {pg.state})")
                pg_base = pg.start()
            info["postgresql"] = {"own_cluster": pg is not None, **bp.pg_settings(pg_base)}
            if not info["postgresql"]["durable"]:
                log("! this PostgreSQL is NOT durable (fsync or synchronous_commit off)")
        for target in plan.targets:
            tmp = Path(tempfile.mkdtemp(prefix="settle_market-"))
            try:
                results.append(run_target(plan, target, tmp, pg, pg_base))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if pg is not None:
            log("stopping and deleting the private PostgreSQL")
            pg.stop()
    elapsed = time.monotonic() - started
    report = {
        "bench": "settle_market",
        "command": " ".join([".venv/bin/python", "bench/settle_market.py", *raw]),
        "started_utc": started_utc,
        "run_time_s": round(elapsed, 1),
        "machine": info,
        "plan": {
            "bets": bets,
            "accounts": args.accounts,
            "market": MARKET,
            "runners": RUNNERS,
            "other_markets": len(OTHER_MARKETS),
            "multiples_share": args.multiples,
            "each_way_share_of_singles": args.each_way,
            "chunk_size": plan.chunk_size or _default_chunk(),
            "result": "1 won, 2 and 3 placed (3 places at 1/5), 20 withdrawn at T0+1h at 5.0"
            " (Rule 4: 20p for bets struck before), the rest lost",
            "baseline": "executemany INSERT of one narrow row per bet (primary key only) into a"
            " fresh table of the same database, transactions of chunk_size, durable commits",
        },
        "bar_bets_per_s": BAR_BETS_PER_S,
        "results": results,
    }
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(
        f"{'target':>10}  {'bets':>10}  {'settled/s':>10}  {'baseline/s':>10}  {'ratio':>6}"
        f"  {'chunk p50/p99 ms':>17}  {'CPU% bench/pg':>13}  verified"
    )
    for r in results:
        s = r.get("settle")
        if s is None:
            print(f"{r['target']:>10}  FAILED: {r['errors']}")
            continue
        pg_cpu = "-" if s["cpu_percent_postgres"] is None else f"{s['cpu_percent_postgres']:.0f}"
        print(
            f"{r['target']:>10}  {r['bets']:>10,}  {s['settled_per_s']:>10,.0f}"
            f"  {r['baseline']['rows_per_s']:>10,.0f}  ×{r['ratio_to_baseline']:<5}"
            f"  {s['chunk_ms_p50']:>8} / {s['chunk_ms_p99']:<6}"
            f"  {s['cpu_percent_bench']:>5.0f} / {pg_cpu:<5}  {r.get('verified')}"
        )
    print(f"bar: >= {BAR_BETS_PER_S:,} bets settled/s")
    print(f"run time {elapsed:.0f} s; figures and machine info in {out_path}")
    return 0 if all(r.get("verified") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
