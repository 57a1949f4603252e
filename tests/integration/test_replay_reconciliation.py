"""Live ledger → ``replay --export`` → ``replay --bets … --feed …``: the live book, to the penny.

The "live" run: a SQLite ledger with two accounts and bets on five real
recordings (a greyhound race's WIN and PLACE markets, a race with a non-runner,
a BASIC race with two, a basketball moneyline): a 5.00 single on every runner
at its last pre-play book price (runners later withdrawn included: those bets
are void), a double across two markets, one bet held
PENDING and rejected by its delay. The recordings then run through the live
results path (``ResultsFeed`` → in-process results channel →
``store.settle_market``). Its ``book_totals`` are the live figures.

The export of that ledger is replayed into a fresh ledger from the same
recordings; the printed reconciliation must equal the live figures exactly.
"""

from __future__ import annotations

import asyncio
import hashlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest

from clients.cli import main
from clients.replay_cli import FORMAT, read_bet_log
from ledger_store import LedgerStore, Outcome, Placement, open_store
from sportsbook_core.catalogue import MarketStatus
from sportsbook_core.changes import MarketChange
from sportsbook_core.prices import Price
from sportsbook_core.results import SettlementInstruction
from streams.replay import iter_changes
from streams.results import InProcessResultsChannel, ResultsFeed
from tests.testkit.data import betfair_market

RECORDINGS = (
    "flumine_1.197931750.jsonl",  # greyhounds WIN
    "flumine_1.197931751.jsonl",  # the same race, PLACE (2 winners)
    "nautilus_1.206064380.jsonl.bz2",  # a race with a non-runner
    "flumine_BASIC-1.132153978.jsonl",  # a race with two non-runners
    "nautilus_1.166811431.jsonl.bz2",  # NBA moneyline
)
STAKE = 500


def pre_play_prices(path: Path) -> dict[str, dict[str, Price]]:
    """marketId → selectionId → the product's last book price before in-play or close."""
    prices: dict[str, dict[str, Price]] = {}
    live: dict[str, bool] = {}
    for item in iter_changes(path):
        if not isinstance(item, MarketChange):
            continue
        definition = item.definition
        if definition is not None:
            live[item.market_id] = not definition.in_play and definition.status is MarketStatus.OPEN
        if not live.get(item.market_id, False):
            continue
        book = prices.setdefault(item.market_id, {})
        for selection_id, price in item.prices:
            if price is not None:
                book[selection_id] = price
    return prices


def receipt(
    request_id: str, legs: list[tuple[str, str, Price]], bet_type: str, status: str
) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "type": bet_type,
        "system": None,
        "eachWay": False,
        "status": status,
        "code": None,
        "message": None,
        "placedAt": "2026-12-03T18:00:00.000Z",
        "legs": [
            {"marketId": m, "selectionId": s, "price": p.to_wire(), "result": None}
            for m, s, p in legs
        ],
        "lines": 1,
        "stakePerLine": STAKE,
        "totalStake": STAKE,
        "potentialReturn": None,
        "currency": "GBP",
        "settlement": None,
    }


def placement(
    account: str,
    request_id: str,
    legs: list[tuple[str, str, Price]],
    status: str = "ACCEPTED",
) -> Placement:
    bet_type = "SINGLE" if len(legs) == 1 else "ACCUMULATOR"
    body = receipt(request_id, legs, bet_type, status)
    odds = Fraction(1)
    for _, _, price in legs:
        odds *= price.odds
    return Placement(
        account_id=account,
        request_id=request_id,
        body_hash=hashlib.sha256(orjson.dumps(body)).hexdigest(),
        total_stake=STAKE,
        status=status,
        exposures=[(m, s, int(STAKE * (odds - 1))) for m, s, _ in legs],
        liability_limit=None,
        receipt_for=lambda bet_id, balance: dict(body, betId=bet_id, balanceAfter=balance),
    )


async def live_run(url: str, files: list[Path]) -> dict[str, tuple[int, int]]:
    store = await open_store(url)
    try:
        for account in ("alice", "bob"):
            await store.create_account(account, "GBP", None, {})
            await store.deposit(account, 1_000_000, f"seed-{account}")
        markets: dict[str, dict[str, Price]] = {}
        for path in files:
            markets.update(pre_play_prices(path))
        n = 0
        for market_id, book in sorted(markets.items()):
            for selection_id, price in sorted(book.items()):
                n += 1
                account = "alice" if n % 2 else "bob"
                placed = await store.place_bet(
                    placement(account, f"r{n}", [(market_id, selection_id, price)])
                )
                assert placed.outcome is Outcome.PLACED
        # a double across the greyhound WIN market and the basketball
        win, nba = markets["1.197931750"], markets["1.166811431"]
        double = [
            ("1.197931750", "37947503", win["37947503"]),
            ("1.166811431", "60424", nba["60424"]),
        ]
        assert (
            await store.place_bet(placement("alice", "double", double))
        ).outcome is Outcome.PLACED
        # a bet held by an in-play delay and then refused
        held = await store.place_bet(
            placement("bob", "held", [("1.166811431", "237478", nba["237478"])], "PENDING")
        )
        assert held.bet_id is not None and held.receipt is not None
        await store.resolve_pending(held.bet_id, False, dict(held.receipt, status="REJECTED"))
        await settle_live(store, files)
        assert await store.audit() == []
        return await store.book_totals()
    finally:
        await store.close()


async def settle_live(store: LedgerStore, files: list[Path]) -> None:
    """The live path: feed → ResultsFeed → bounded in-process channel → settle_market."""
    channel = InProcessResultsChannel(capacity=4)
    prices_seen: list[str] = []

    async def prices(item: object) -> None:
        if isinstance(item, MarketChange):
            prices_seen.append(item.market_id)

    async def settle(instruction: SettlementInstruction) -> None:
        await store.settle_market(instruction)

    reader = asyncio.create_task(channel.run(settle))
    feed = ResultsFeed(prices, channel)
    for item in iter_changes(files):
        await feed(item)
    await asyncio.wait_for(channel.drained(), 30)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert feed.published == len(RECORDINGS)
    assert list(channel.unsettled) == []


@pytest.mark.usefixtures("restore_logging")
def test_export_and_replay_print_the_live_book_to_the_penny(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [betfair_market(name) for name in RECORDINGS]
    live_url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    live = asyncio.run(live_run(live_url, files))
    assert len(live) == len(RECORDINGS)

    assert main(["replay", "--export", "--database", live_url]) == 0
    exported = capsys.readouterr().out
    log = tmp_path / "bets.jsonl"
    log.write_text(exported)
    bets = read_bet_log(log)
    assert all(orjson.loads(line)["format"] == FORMAT for line in exported.splitlines())
    # settled, void (bets struck on runners later withdrawn) and one refused by its delay
    assert {b.status for b in bets} == {"SETTLED", "VOID", "REJECTED"}

    feeds = [str(p) for p in files]
    assert main(["replay", "--bets", str(log), "--feed", *feeds, "--json"]) == 0
    replayed = orjson.loads(capsys.readouterr().out)
    figures = {m: (v["staked"], v["returned"]) for m, v in replayed["markets"].items()}
    assert figures == live
    assert replayed["bets"] == len(bets)
    assert (replayed["results"], replayed["corrections"]) == (len(RECORDINGS), 0)
    staked = sum(s for s, _ in live.values())
    returned = sum(r for _, r in live.values())
    assert (replayed["staked"], replayed["returned"]) == (staked, returned)

    # the text form, into a named fresh database, says the same
    fresh = f"sqlite:///{tmp_path / 'replayed.sqlite3'}"
    assert main(["replay", "--bets", str(log), "--feed", *feeds, "--database", fresh]) == 0
    text = capsys.readouterr().out
    print(text)
    total = text.splitlines()[-2].split()
    assert total[0] == "total"
    assert [int(x.replace(",", "").replace(".", "")) for x in total[1:]] == [
        staked,
        returned,
        staked - returned,
    ]
    # a database that already has bets is refused
    assert main(["replay", "--bets", str(log), "--feed", *feeds, "--database", fresh]) == 2
