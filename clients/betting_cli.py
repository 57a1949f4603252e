"""``sportsbook bet`` / ``bets`` / ``account …``: betting from the command line.

``bet`` and ``bets`` and ``account show`` / ``account watch`` talk to a server over
RSocket with a bearer token. ``account create`` and ``account deposit`` are operator commands
on the ledger itself (the wire protocol has no route that mints accounts or
money): they open the same database the server uses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from clients.client import SportsbookClient
from ledger_store import open_store
from ledger_store.store import AccountExists, ReferenceConflict, UnknownAccount
from rsocket_server.auth import new_token, token_hash
from schemas.bets import MAX_STAKE_MINOR
from streams.results import Closing

DEFAULT_LEDGER = Path(".data/ledger.sqlite3")
POLICIES = ("NONE", "HIGHER", "ANY")
# A balance stays far inside a signed 64-bit column (and the ledger's own sums).
MAX_BALANCE_MINOR = 2**62


class BetCliError(Exception):
    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _minor_units(text: str) -> int:
    """1..MAX_STAKE_MINOR whole minor units: a stake's bounds, and a deposit's."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_STAKE_MINOR:
        raise argparse.ArgumentTypeError(
            f"expected whole minor units from 1 to {MAX_STAKE_MINOR} (1000 = £10.00), got {text!r}"
        )
    return int(text)


def database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        default=os.environ.get("SPORTSBOOK_DATABASE"),
        help="postgresql://… (default: the SQLite ledger at --ledger, or $SPORTSBOOK_DATABASE)",
    )
    parser.add_argument("--ledger", type=Path, default=DEFAULT_LEDGER, help="SQLite ledger file")


def add_commands(
    commands: Any, common_client: Callable[[argparse.ArgumentParser], None]
) -> list[argparse.ArgumentParser]:
    bet = commands.add_parser("bet", help="place a single bet at the live price")
    common_client(bet)
    bet.add_argument("--market", required=True, dest="market_id")
    bet.add_argument("--selection", required=True, dest="selection_id")
    bet.add_argument("--stake", required=True, type=_minor_units, help="minor units (1000 = £10)")
    bet.add_argument("--price", help="the price you accept (default: the live price now)")
    bet.add_argument("--accept", choices=POLICIES, default="NONE", help="if the price moved")
    bet.add_argument("--each-way", action="store_true")
    bet.add_argument("--request-id", help="idempotency key (default: a new one)")

    bets = commands.add_parser("bets", help="your bets, newest first")
    common_client(bets)
    bets.add_argument("--status", choices=("OPEN", "SETTLED", "ALL"), default="ALL")
    bets.add_argument("--limit", type=int, default=20)

    account = commands.add_parser("account", help="accounts: show (RSocket), create, deposit")
    actions = account.add_subparsers(dest="account_command", required=True)
    show = actions.add_parser("show", help="your account over RSocket (needs --token)")
    common_client(show)
    watch = actions.add_parser(
        "watch",
        help="your account's events as they happen (account.stream): bets, balance, markets",
    )
    common_client(watch)
    create = actions.add_parser("create", help="create an account in the ledger; prints its token")
    create.add_argument("account_id")
    create.add_argument("--currency", default="GBP")
    database_option(create)
    deposit = actions.add_parser("deposit", help="deposit into an account in the ledger")
    deposit.add_argument("account_id")
    deposit.add_argument("amount", type=_minor_units)
    deposit.add_argument("--reference", help="idempotency reference (default: a new one)")
    database_option(deposit)
    return [bet, bets, show, watch, create, deposit]


async def run_bet(args: argparse.Namespace) -> dict[str, Any]:
    async with SportsbookClient.connect(args.url, args.token) as client:
        leg: dict[str, Any] = {"marketId": args.market_id, "selectionId": args.selection_id}
        market: Mapping[str, Any] | None = None
        if args.price is None:
            market = await client.market(args.market_id)
            leg.update(_live_leg(market, args.selection_id))
        else:
            leg["price"] = args.price
        body = {
            "requestId": args.request_id or uuid.uuid4().hex,
            "type": "SINGLE",
            "legs": [leg],
            "stake": args.stake,
            "eachWay": args.each_way,
            "acceptPriceChange": args.accept,
        }
        if sys.stderr.isatty():  # a person waiting: say why the answer may take seconds
            print(placing_line(args.stake, leg, market), file=sys.stderr, flush=True)
        return dict(await client.request("bets.place", body))


def _live_leg(market: Mapping[str, Any], selection_id: str) -> dict[str, Any]:
    for selection in market["selections"]:
        if selection["selectionId"] == selection_id:
            if selection.get("price") is None:
                status = market.get("status")
                why = f"market {market['marketId']} is {status}" if status != "OPEN" else ""
                raise BetCliError(why or f"selection {selection_id} has no price now")
            return {"price": selection["price"], "seq": market["seq"]}
    raise BetCliError(f"market {market['marketId']} has no selection {selection_id}")


def placing_line(stake: int, leg: Mapping[str, Any], market: Mapping[str, Any] | None) -> str:
    """What the CLI is doing while it waits for the receipt (market None: not read)."""
    head = f"placing {pounds(stake)} on {leg['marketId']} / {leg['selectionId']} @ {leg['price']}"
    if market is not None and not _live(market):
        return f"{head} …"
    return f"{head} … (in-play bets are held for the market's bet delay, ≥5 s, then re-checked)"


def _live(market: Mapping[str, Any]) -> bool:
    """In-play, or past its start time: the server holds such a bet (acceptance.py)."""
    try:
        start = datetime.fromisoformat(str(market.get("startTime")))
    except ValueError:
        return True  # no start time known: the hold may apply
    return bool(market.get("inPlay")) or datetime.now(UTC) >= start


async def run_bets(args: argparse.Namespace) -> dict[str, Any]:
    async with SportsbookClient.connect(args.url, args.token) as client:
        return dict(await client.request("bets.list", {"status": args.status, "limit": args.limit}))


async def run_account_show(args: argparse.Namespace) -> dict[str, Any]:
    async with SportsbookClient.connect(args.url, args.token) as client:
        return dict(await client.request("account.get", {}))


async def run_account_create(args: argparse.Namespace) -> dict[str, Any]:
    token = new_token()
    store = await _ledger(args)
    try:
        account = await store.create_account(args.account_id, args.currency, token_hash(token), {})
    except AccountExists:
        raise BetCliError(f"account {args.account_id!r} already exists") from None
    finally:
        await store.close()
    return {"accountId": account.account_id, "currency": account.currency, "token": token}


async def run_account_deposit(args: argparse.Namespace) -> dict[str, Any]:
    store = await _ledger(args)
    try:
        reference = args.reference or f"cli-{uuid.uuid4().hex}"
        await _check_room(store, args.account_id, args.amount)
        balance = await store.deposit(args.account_id, args.amount, reference)
    except UnknownAccount:
        raise BetCliError(f"no account {args.account_id!r}") from None
    except ReferenceConflict as error:
        raise BetCliError(str(error)) from None
    finally:
        await store.close()
    return {"accountId": args.account_id, "balance": balance, "reference": reference}


async def _check_room(store: Any, account_id: str, amount: int) -> None:
    """Refuse a deposit that would take the balance beyond MAX_BALANCE_MINOR."""
    account = await store.account(account_id)
    if account is None:
        raise UnknownAccount(account_id)
    if account.balance + amount > MAX_BALANCE_MINOR:
        raise BetCliError(
            f"deposit refused: account {account_id!r} would hold {account.balance + amount}, "
            f"more than the maximum balance {MAX_BALANCE_MINOR}"
        )


async def _ledger(args: argparse.Namespace) -> Any:
    if args.database is None:
        with contextlib.suppress(OSError):
            args.ledger.parent.mkdir(parents=True, exist_ok=True)
    return await open_store(args.database, default_path=args.ledger)


def describe_receipt(receipt: dict[str, Any]) -> str:
    """One line for people; ``--json`` callers get the receipt itself."""
    if receipt["status"] == "REJECTED":
        head = f"REJECTED {receipt['code']}: {receipt['message']}"
        return "\n".join([head, *_detail_lines(receipt.get("details") or {})])
    leg = receipt["legs"][0]
    return (
        f"{receipt['status']} {receipt['betId']}: {pounds(receipt['totalStake'])} on "
        f"{leg['selectionId']} @ {leg['price']}, potential return "
        f"{pounds(receipt['potentialReturn'])}, balance {pounds(receipt['balanceAfter'])}"
    )


def _detail_lines(details: Mapping[str, Any]) -> list[str]:
    """A rejection's ``details`` (what would pass now), indented under its line."""
    lines = [
        f"  now {p.get('marketId')} / {p.get('selectionId')} @ {p.get('price')} "
        f"(you asked {p.get('requested')})"
        for p in details.get("prices") or ()
        if isinstance(p, Mapping)
    ]
    rest = [f"{key}={value}" for key, value in details.items() if key != "prices"]
    if rest:
        lines.append(f"  details: {', '.join(rest)}")
    return lines


def pounds(minor: int | None) -> str:
    """Minor units shown as £1,234.56, exactly (integer arithmetic, no float)."""
    if minor is None:
        return "-"
    sign = "-" if minor < 0 else ""
    whole, pence = divmod(abs(minor), 100)
    return f"{sign}£{whole:,}.{pence:02d}"


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


# --- account watch -----------------------------------------------------------------------


async def run_account_watch(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    """Print one line per account.stream event (heartbeats skipped) until the stream ends
    or SIGINT/SIGTERM (Ctrl-C): then the stream is cancelled and the answer is 0."""
    if not args.token:
        raise BetCliError("account watch needs --token (or $SPORTSBOOK_TOKEN)")
    loop = asyncio.get_running_loop()
    watching = asyncio.current_task()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        if watching is not None:
            watching.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        async with SportsbookClient.connect(args.url, args.token) as client:
            if sys.stderr.isatty():
                print("watching your account (Ctrl-C to stop) …", file=sys.stderr, flush=True)
            async with client.stream("account.stream", b"{}") as stream:
                async for event in stream:
                    line = describe_account_event(event)
                    if line is not None:
                        out(line)
    except asyncio.CancelledError:
        if not stopped:
            raise
        if watching is not None:
            watching.uncancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def describe_account_event(event: Mapping[str, Any]) -> str | None:
    """One line per BET / BALANCE / MARKET event (None for a heartbeat), e.g.
    ``BET B-000004 SETTLED return £12.50``, ``BALANCE £1,012.50 (SETTLEMENT B-000004)``,
    ``MARKET 1.197931750 SETTLED``."""
    kind = event.get("kind")
    if kind == "heartbeat":
        return None
    if kind == "BET":
        return _describe_bet_event(event.get("bet") or {})
    if kind == "BALANCE":
        cause = " ".join(str(p) for p in (event.get("reason"), event.get("betId")) if p)
        return f"BALANCE {pounds(event.get('balance'))} ({cause})"
    if kind == "MARKET":
        return f"MARKET {event.get('marketId')} {event.get('status')}"
    return f"{kind} {orjson.dumps(event).decode()}"


def _describe_bet_event(bet: Mapping[str, Any]) -> str:
    status = bet.get("status")
    head = f"BET {bet.get('betId') or '-'} {status}"
    settlement = bet.get("settlement") or {}
    if status in ("SETTLED", "VOID") and "return" in settlement:
        line = f"{head} return {pounds(settlement['return'])}"
        if settlement.get("resettled"):
            line += f" (resettled, was {pounds(settlement.get('previousReturn'))})"
        return line
    if status == "REJECTED":
        return f"{head} {bet.get('code')}: {bet.get('message')}"
    legs = bet.get("legs") or []
    if len(legs) == 1:
        leg = legs[0]
        what = f"{leg.get('marketId')} / {leg.get('selectionId')} @ {leg.get('price')}"
    else:
        what = f"{len(legs)} legs"
    return (
        f"{head} {pounds(bet.get('totalStake'))} on {what}, "
        f"potential return {pounds(bet.get('potentialReturn'))}"
    )


# --- the serve banner: how to watch a race settle ---------------------------------------

# A market open at least this long (wall seconds of a pass) leaves time to place a bet
# (held ≥ 5 s in play) before it closes.
BETTABLE_S = 30.0


def _duration(seconds: float) -> str:
    whole = max(int(seconds + 0.5), 1)  # half up
    return f"~{whole} s" if whole < 60 else f"~{whole // 60}m{whole % 60:02d}s"


def _next_close(closing: Closing, elapsed_s: float) -> float:
    """Seconds from now to the next time ``closing`` closes (``elapsed_s`` into the replay)."""
    if elapsed_s <= closing.closes_at_s or not closing.every_s:
        return closing.closes_at_s - elapsed_s
    passes = math.ceil((elapsed_s - closing.closes_at_s) / closing.every_s)
    return closing.closes_at_s + passes * closing.every_s - elapsed_s


def results_banner(closings: Sequence[Closing], elapsed_s: float) -> list[str]:
    """The banner's lines on results: which market settles first from the feed, and which
    to bet on to see a bet settle (one open long enough to bet on)."""
    if not closings:
        return []

    def when(closing: Closing) -> str:
        again = "" if closing.every_s is None else f", again every {_duration(closing.every_s)}"
        return f"in {_duration(_next_close(closing, elapsed_s))}{again}"

    closings = [c for c in closings if _next_close(c, elapsed_s) >= 0]  # not looped: past
    if not closings:
        return []
    soonest = min(closings, key=lambda c: _next_close(c, elapsed_s))
    lines = [
        "  results:   markets settle from the feed as they close; first "
        f"{soonest.market_id} ({soonest.label}) {when(soonest)}"
    ]
    bettable = [c for c in closings if c.open_s >= BETTABLE_S]
    if bettable:
        pick = min(bettable, key=lambda c: _next_close(c, elapsed_s))
        lines.append(
            f"  see one:   bet on {pick.market_id} ({pick.label}), then `account watch`: "
            f"it closes {when(pick)}"
        )
    return lines


# --- settle (trader) -------------------------------------------------------------------


def _dead_heat(text: str) -> tuple[str, int]:
    """``SEL:TIED`` → (selectionId, number tied ≥ 2)."""
    selection, _, tied = text.rpartition(":")
    if not selection or not tied.isascii() or not tied.isdigit() or not 2 <= int(tied) <= 100:
        raise argparse.ArgumentTypeError(
            f"expected SELECTION:TIED with TIED from 2 to 100, got {text!r}"
        )
    return selection, int(tied)


def add_settle_command(
    commands: Any, common_client: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    settle = commands.add_parser(
        "settle", help="settle a market (trader accounts): runners not named lose"
    )
    common_client(settle)
    settle.add_argument("market_id", metavar="MARKET")
    settle.add_argument("--winner", action="append", default=[], metavar="SEL", dest="winners")
    settle.add_argument("--placed", action="append", default=[], metavar="SEL")
    settle.add_argument("--removed", action="append", default=[], metavar="SEL")
    settle.add_argument(
        "--dead-heat",
        action="append",
        default=[],
        type=_dead_heat,
        metavar="SEL:TIED",
        help="SEL tied with TIED runners in all (a winner: for 1st; placed: the last place)",
    )
    settle.add_argument(
        "--version", type=int, default=None, help="result version (default: the next one)"
    )
    settle.add_argument(
        "--post-official",
        action="store_true",
        help="a change after the result was official: recorded, settled bets stand",
    )
    return settle


async def run_settle(args: argparse.Namespace) -> dict[str, Any]:
    if not args.winners and not args.placed and not args.removed:
        raise BetCliError("name at least one --winner, --placed or --removed runner")
    body: dict[str, Any] = {
        "marketId": args.market_id,
        "winners": args.winners,
        "placed": args.placed,
        "removed": args.removed,
        "deadHeat": dict(args.dead_heat),
        "postOfficial": args.post_official,
    }
    if args.version is not None:
        body["version"] = args.version
    async with SportsbookClient.connect(args.url, args.token) as client:
        return dict(await client.request("trader.settle", body))


def describe_settlement(report: Mapping[str, Any]) -> str:
    """One line: what the settlement did."""
    head = f"{report['outcome'].upper()} {report['marketId']} v{report['version']}"
    if report["outcome"] == "held":
        return f"{head}: nothing settled ({report.get('detail')})"
    settled, waiting = report["betsSettled"], report["betsOpen"]
    line = f"{head}: {settled} bet{'' if settled == 1 else 's'} settled"
    if waiting:
        line += f", {waiting} waiting on another leg's market"
    if report.get("detail"):
        line += f" ({report['detail']})"
    return line
