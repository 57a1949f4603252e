"""``sportsbook replay``: rebuild a ledger from recorded feeds and a bet log, and reconcile it.

``sportsbook replay --export --database URL > bets.jsonl`` writes the bet log
of a ledger: one JSON object per line for every bet the ledger wrote, oldest
first (format below). ``sportsbook replay --bets bets.jsonl --feed FILE…
[--database URL]`` places those bets into a fresh ledger, replays the Betfair
recordings through the product's results path (:mod:`streams.results`,
``settle_market`` for every result and correction, in feed order) and prints
the reconciliation: per market (a bet counts under the lowest marketId of its
legs, as ``book_totals`` does) the total staked, returned and the book's P&L,
then the totals. ``--json`` prints the same figures as one JSON object.

Bet log, one line per bet (``sportsbook.bet-log/1``)::

    {"format": "sportsbook.bet-log/1", "betId": "B-000001", "accountId": "alice",
     "currency": "GBP", "status": "SETTLED", "placedAt": "2026-12-03T18:00:00.123000Z",
     "totalStake": 1000, "receipt": {…the receipt as the ledger stored it: type, system,
     eachWay, legs [{marketId, selectionId, price}], stakePerLine, requestId…}}

``status`` is the bet's status when exported. A bet that was REJECTED after its
in-play delay is replayed as placed PENDING and rejected (its stake and refund
both count, as in the live ledger); a PENDING one as placed PENDING; every
other as ACCEPTED, so the replayed feed settles it.

Limits (docs/RESULTS.md): a bet is settled by the time it was placed *in the
replay* (the store stamps ``placed_at``), so Rule 4 sees the live and the
replayed bet alike only when both were struck after (or both before) every
withdrawal; results a trader entered by hand are not in the feed files.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sqlite3
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from ledger_store import LedgerStore, Outcome, Placement, open_store
from ledger_store.store import AccountExists, BetStatus
from streams.replay import iter_changes
from streams.results import ResultsTracker

FORMAT = "sportsbook.bet-log/1"
PAGE = 1000
PLACE_BATCH = 500  # concurrent placements: under the store's bounded write queue


class ReplayError(Exception):
    """A bet log or database that cannot be replayed (the message says which line)."""

    exit_code = 2


# --- the command line -----------------------------------------------------------------------


def add_replay_command(commands: Any) -> argparse.ArgumentParser:
    replay = commands.add_parser(
        "replay",
        help="rebuild a ledger from feed recordings and a bet log, and reconcile it",
    )
    replay.add_argument("--bets", type=Path, metavar="FILE", help="the bet log (JSONL)")
    replay.add_argument(
        "--feed", nargs="+", type=Path, default=[], metavar="FILE", help="Betfair recordings"
    )
    replay.add_argument(
        "--database",
        default=None,
        help="a fresh ledger (sqlite:///… or postgresql://…); default: a temporary SQLite file. "
        "With --export: the ledger to export",
    )
    replay.add_argument(
        "--export", action="store_true", help="write the bet log of --database to stdout"
    )
    replay.add_argument("--json", action="store_true", help="the reconciliation as JSON")
    return replay


async def run_replay(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = sys.stdout if out is None else out
    try:
        if args.export:
            if args.database is None:
                raise ReplayError("--export needs --database URL")
            await export_bets(args.database, out)
            return 0
        if args.bets is None or not args.feed:
            raise ReplayError("replay needs --bets FILE and --feed FILE… (or --export)")
        bets = read_bet_log(args.bets)
        if args.database is not None:
            report = await replay_into(args.database, bets, args.feed)
        else:
            with tempfile.TemporaryDirectory(prefix="sportsbook-replay-") as scratch:
                url = f"sqlite:///{Path(scratch) / 'ledger.sqlite3'}"
                report = await replay_into(url, bets, args.feed)
    except ReplayError as error:
        print(f"replay: {error}", file=sys.stderr)
        return error.exit_code
    out.write(report.to_json() if args.json else report.to_text())
    return 0


# --- the bet log ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedBet:
    bet_id: str
    account_id: str
    currency: str
    status: str
    placed_at: str
    total_stake: int
    receipt: dict[str, Any]

    def to_line(self) -> bytes:
        return orjson.dumps(
            {
                "format": FORMAT,
                "betId": self.bet_id,
                "accountId": self.account_id,
                "currency": self.currency,
                "status": self.status,
                "placedAt": self.placed_at,
                "totalStake": self.total_stake,
                "receipt": self.receipt,
            }
        )

    @property
    def markets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(str(leg["marketId"]) for leg in self.receipt["legs"]))


def _text(body: dict[str, Any], name: str, where: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ReplayError(f"{where}: {name} must be a non-empty string")
    return value


def parse_bet_line(line: bytes, where: str) -> LoggedBet:
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise ReplayError(f"{where}: not JSON ({error})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ReplayError(f"{where}: not a {FORMAT} line")
    stake = body.get("totalStake")
    if isinstance(stake, bool) or not isinstance(stake, int) or stake <= 0:
        raise ReplayError(f"{where}: totalStake must be a positive integer (minor units)")
    receipt = body.get("receipt")
    legs = receipt.get("legs") if isinstance(receipt, dict) else None
    if not isinstance(receipt, dict) or not isinstance(legs, list) or not legs:
        raise ReplayError(f"{where}: receipt must be an object with legs")
    for leg in legs:
        if not isinstance(leg, dict) or not all(
            isinstance(leg.get(k), str) for k in ("marketId", "selectionId", "price")
        ):
            raise ReplayError(f"{where}: every leg needs marketId, selectionId and price strings")
    status = _text(body, "status", where)
    if status not in BetStatus.__members__:
        raise ReplayError(f"{where}: unknown status {status!r}")
    return LoggedBet(
        bet_id=_text(body, "betId", where),
        account_id=_text(body, "accountId", where),
        currency=_text(body, "currency", where),
        status=status,
        placed_at=_text(body, "placedAt", where),
        total_stake=stake,
        receipt=receipt,
    )


def read_bet_log(path: Path) -> list[LoggedBet]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise ReplayError(f"cannot read {path}: {error.strerror or error}") from None
    return [parse_bet_line(line, f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()]


# --- export ------------------------------------------------------------------------------------


async def export_bets(url: str, out: IO[str]) -> int:
    """Write every bet of the ledger at ``url`` as a bet-log line, oldest first."""
    accounts = await _account_ids(url)
    store = await open_store(url)
    try:
        bets = [bet async for bet in _all_bets(store, accounts)]
    finally:
        await store.close()
    bets.sort(key=lambda b: (b.placed_at, b.bet_id))
    for bet in bets:
        out.write(bet.to_line().decode() + "\n")
    return len(bets)


async def _all_bets(store: LedgerStore, accounts: Sequence[str]) -> Any:
    for account_id in accounts:
        account = await store.account(account_id)
        currency = "GBP" if account is None else account.currency
        cursor: str | None = None
        while True:
            page, cursor = await store.list_bets(account_id, "ALL", PAGE, cursor)
            for stored in page:
                yield LoggedBet(
                    bet_id=stored.bet_id,
                    account_id=stored.account_id,
                    currency=currency,
                    status=stored.status,
                    placed_at=stored.placed_at.isoformat().replace("+00:00", "Z"),
                    total_stake=stored.total_stake,
                    receipt=stored.receipt,
                )
            if cursor is None:
                break


async def _account_ids(url: str) -> list[str]:
    """Every account id. The store protocol has no such read (yet), so: the table itself."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("//").removeprefix("/")
        return await asyncio.to_thread(_sqlite_account_ids, Path(path))
    import asyncpg  # noqa: PLC0415 - only for PostgreSQL

    conn = await asyncpg.connect(url)
    try:
        records = await conn.fetch("SELECT account_id FROM accounts ORDER BY account_id")
    finally:
        await conn.close()
    return [str(record["account_id"]) for record in records]


def _sqlite_account_ids(path: Path) -> list[str]:
    if not path.exists():
        raise ReplayError(f"no ledger at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT account_id FROM accounts ORDER BY account_id").fetchall()
    finally:
        conn.close()
    return [str(row[0]) for row in rows]


# --- replay ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reconciliation:
    markets: dict[str, tuple[int, int]]  # marketId → (staked, returned)
    bets: int
    results: int
    corrections: int

    @property
    def staked(self) -> int:
        return sum(s for s, _ in self.markets.values())

    @property
    def returned(self) -> int:
        return sum(r for _, r in self.markets.values())

    def to_text(self) -> str:
        lines = [f"{'market':<16}{'staked':>14}{'returned':>14}{'book P&L':>14}"]
        for market_id, (staked, returned) in sorted(self.markets.items()):
            lines.append(
                f"{market_id:<16}{money(staked):>14}{money(returned):>14}"
                f"{money(staked - returned):>14}"
            )
        lines.append(
            f"{'total':<16}{money(self.staked):>14}{money(self.returned):>14}"
            f"{money(self.staked - self.returned):>14}"
        )
        lines.append(
            f"{self.bets} bets, {self.results} results ({self.corrections} corrections) applied"
        )
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        body = {
            "markets": {
                m: {"staked": s, "returned": r, "bookPnl": s - r}
                for m, (s, r) in sorted(self.markets.items())
            },
            "staked": self.staked,
            "returned": self.returned,
            "bookPnl": self.staked - self.returned,
            "bets": self.bets,
            "results": self.results,
            "corrections": self.corrections,
        }
        return orjson.dumps(body).decode() + "\n"


def money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"


async def replay_into(url: str, bets: Sequence[LoggedBet], feeds: Sequence[Path]) -> Reconciliation:
    for path in feeds:
        if not path.exists():
            raise ReplayError(f"no such recording {path}")
    store = await open_store(url)
    try:
        if await store.book_totals():
            raise ReplayError(f"{url} is not a fresh ledger: it already has bets")
        await _place_all(store, bets)
        tracker = ResultsTracker()
        for instruction in _results(feeds, tracker):
            await store.settle_market(instruction)
        totals = await store.book_totals()
    finally:
        await store.close()
    return Reconciliation(dict(totals), len(bets), tracker.issued, tracker.corrections)


def _results(feeds: Sequence[Path], tracker: ResultsTracker) -> Iterator[Any]:
    for item in iter_changes(list(feeds)):
        instruction = tracker.observe(item)
        if instruction is not None:
            yield instruction


async def _place_all(store: LedgerStore, bets: Sequence[LoggedBet]) -> None:
    funding: dict[str, tuple[str, int]] = {}
    for bet in bets:
        currency, total = funding.get(bet.account_id, (bet.currency, 0))
        funding[bet.account_id] = (currency, total + bet.total_stake)
    for account_id, (currency, total) in funding.items():
        try:
            await store.create_account(account_id, currency, None, {})
        except AccountExists:
            raise ReplayError(f"account {account_id} already exists: not a fresh ledger") from None
        await store.deposit(account_id, total, "replay-funding")
    for start in range(0, len(bets), PLACE_BATCH):
        chunk = bets[start : start + PLACE_BATCH]
        outcomes = await asyncio.gather(*(store.place_bet(_placement(bet)) for bet in chunk))
        for bet, outcome in zip(chunk, outcomes, strict=True):
            if outcome.outcome is not Outcome.PLACED:
                raise ReplayError(f"bet {bet.bet_id} was not placed: {outcome.outcome.value}")
            if bet.status == BetStatus.REJECTED:
                assert outcome.bet_id is not None and outcome.receipt is not None
                rejected = dict(outcome.receipt, status=BetStatus.REJECTED.value)
                await store.resolve_pending(outcome.bet_id, False, rejected)


def _placement(bet: LoggedBet) -> Placement:
    pending = bet.status in (BetStatus.PENDING, BetStatus.REJECTED)
    status = BetStatus.PENDING if pending else BetStatus.ACCEPTED
    original = bet.receipt
    legs = [
        {
            "marketId": leg["marketId"],
            "selectionId": leg["selectionId"],
            "price": leg["price"],
            "result": None,
        }
        for leg in original["legs"]
    ]
    request_id = str(original.get("requestId") or bet.bet_id)
    body_hash = hashlib.sha256(orjson.dumps([request_id, legs, bet.total_stake])).hexdigest()

    def receipt_for(bet_id: str, balance: int) -> dict[str, Any]:
        return dict(
            original,
            betId=bet_id,
            replayOf=bet.bet_id,
            status=status.value,
            legs=legs,
            balanceAfter=balance,
            settlement=None,
        )

    return Placement(
        account_id=bet.account_id,
        request_id=request_id,
        body_hash=body_hash,
        total_stake=bet.total_stake,
        status=status,
        exposures=[(leg["marketId"], leg["selectionId"], 0) for leg in legs],
        liability_limit=None,
        receipt_for=receipt_for,
    )
