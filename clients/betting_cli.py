"""``sportsbook bet`` / ``bets`` / ``account …``: betting from the command line.

``bet`` and ``bets`` and ``account show`` talk to a server over RSocket with a
bearer token. ``account create`` and ``account deposit`` are operator commands
on the ledger itself (the wire protocol has no route that mints accounts or
money): they open the same database the server uses.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from clients.client import SportsbookClient
from ledger_store import open_store
from ledger_store.store import AccountExists, UnknownAccount
from rsocket_server.auth import new_token, token_hash

DEFAULT_LEDGER = Path(".data/ledger.sqlite3")
POLICIES = ("NONE", "HIGHER", "ANY")


class BetCliError(Exception):
    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _minor_units(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"expected whole minor units ≥ 1 (1000 = £10.00), got {text!r}"
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
    create = actions.add_parser("create", help="create an account in the ledger; prints its token")
    create.add_argument("account_id")
    create.add_argument("--currency", default="GBP")
    database_option(create)
    deposit = actions.add_parser("deposit", help="deposit into an account in the ledger")
    deposit.add_argument("account_id")
    deposit.add_argument("amount", type=_minor_units)
    deposit.add_argument("--reference", help="idempotency reference (default: a new one)")
    database_option(deposit)
    return [bet, bets, show, create, deposit]


async def run_bet(args: argparse.Namespace) -> dict[str, Any]:
    async with SportsbookClient.connect(args.url, args.token) as client:
        leg: dict[str, Any] = {"marketId": args.market_id, "selectionId": args.selection_id}
        if args.price is None:
            leg.update(await _live_leg(client, args.market_id, args.selection_id))
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
        return dict(await client.request("bets.place", body))


async def _live_leg(client: SportsbookClient, market_id: str, selection_id: str) -> dict[str, Any]:
    market = await client.market(market_id)
    for selection in market["selections"]:
        if selection["selectionId"] == selection_id:
            if selection.get("price") is None:
                raise BetCliError(f"selection {selection_id} has no price now")
            return {"price": selection["price"], "seq": market["seq"]}
    raise BetCliError(f"market {market_id} has no selection {selection_id}")


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
        raise BetCliError(f"account {args.account_id!r} already exists", 1) from None
    finally:
        await store.close()
    return {"accountId": account.account_id, "currency": account.currency, "token": token}


async def run_account_deposit(args: argparse.Namespace) -> dict[str, Any]:
    store = await _ledger(args)
    try:
        reference = args.reference or f"cli-{uuid.uuid4().hex}"
        balance = await store.deposit(args.account_id, args.amount, reference)
    except UnknownAccount:
        raise BetCliError(f"no account {args.account_id!r}", 1) from None
    finally:
        await store.close()
    return {"accountId": args.account_id, "balance": balance, "reference": reference}


async def _ledger(args: argparse.Namespace) -> Any:
    if args.database is None:
        with contextlib.suppress(OSError):
            args.ledger.parent.mkdir(parents=True, exist_ok=True)
    return await open_store(args.database, default_path=args.ledger)


def describe_receipt(receipt: dict[str, Any]) -> str:
    """One line for people; ``--json`` callers get the receipt itself."""
    if receipt["status"] == "REJECTED":
        return f"REJECTED {receipt['code']}: {receipt['message']}"
    leg = receipt["legs"][0]
    return (
        f"{receipt['status']} {receipt['betId']}: {pounds(receipt['totalStake'])} on "
        f"{leg['selectionId']} @ {leg['price']}, potential return "
        f"{pounds(receipt['potentialReturn'])}, balance {pounds(receipt['balanceAfter'])}"
    )


def pounds(minor: int | None) -> str:
    """Minor units shown as £1,234.56, exactly (integer arithmetic, no float)."""
    if minor is None:
        return "-"
    sign = "-" if minor < 0 else ""
    whole, pence = divmod(abs(minor), 100)
    return f"{sign}£{whole:,}.{pence:02d}"


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
