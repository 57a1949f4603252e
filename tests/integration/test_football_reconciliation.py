"""A season of real football results settled by the product, reconciled per league to the penny.

Data: every match of ``football-data-csv`` (six leagues, football-data.co.uk
layout; PROVENANCE.md), in file order. For each match the product gets a
match-odds market (selections ``H``, ``D``, ``A``) priced at Bet365's
``B365H``/``B365D``/``B365A`` and, after the bets, a settlement instruction from
the full-time result ``FTR`` (the named selection WINNER, the other two LOSER).

The bet set (docs/RESULTS.md):

* 10.00 win single on each of home, draw and away of every match;
* 10.00 treble on every three consecutive matches of a league in file order
  (matches 1–3, 4–6, …; a league's last one or two matches left over join no
  treble), each leg on that match's favourite: its shortest Bet365 price,
  home before draw before away on equal prices.

The product side goes through the real ledger (SQLite, ``ledger_store``):
accounts, ``place_bet`` with stored receipts, ``settle_market`` per match,
``book_totals``. It is also checked straight through the core
(``settle_slip`` with one ``SettlementInstruction`` per match).

The independent side is integer arithmetic over the CSV text only: a price
``"2.63"`` is 263 hundredths; a winning single of 1000 pence returns
``10 × hundredths``; a winning treble ``⌊1000·a·b·c / 10⁶⌋``; losers return 0.
Book P&L = staked − returned, per league.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson

from ledger_store import LedgerStore, Outcome, Placement, open_store
from sportsbook_core.bets import BetLeg, BetSlip, BetType
from sportsbook_core.prices import Price
from sportsbook_core.results import (
    RunnerOutcome,
    RunnerResult,
    SettlementInstruction,
    settle_slip,
)
from tests.testkit.data import shared_file

STAKE = 1000  # 10.00
PLACE_BATCH = 500
OUTCOMES = ("H", "D", "A")
PRICE_COLUMNS = {"H": "B365H", "D": "B365D", "A": "B365A"}


def league_files() -> list[Path]:
    base = shared_file("football-data-csv")
    files = sorted(base.glob("*.csv"))
    assert len(files) == 6, files
    return files


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row.get("FTR")]


# --- the independent computation: integers over the CSV text --------------------------------


def hundredths(text: str) -> int:
    """``"2.63"`` → 263, ``"13"`` → 1300, ``"1.5"`` → 150 (exact, from the digits)."""
    whole, _, frac = text.strip().partition(".")
    assert whole.isdigit() and (frac == "" or frac.isdigit()) and len(frac) <= 2, text
    return int(whole) * 100 + int(frac.ljust(2, "0") or "0")


def favourite(row: dict[str, str]) -> str:
    prices = [(hundredths(row[PRICE_COLUMNS[o]]), i, o) for i, o in enumerate(OUTCOMES)]
    return min(prices)[2]


def triples(rows: list[dict[str, str]]) -> Iterator[tuple[int, int, int]]:
    for first in range(0, len(rows) - 2, 3):
        yield first, first + 1, first + 2


def independent_book(rows: list[dict[str, str]]) -> tuple[int, int, int]:
    """(bets, staked, returned) for one league, in pence."""
    bets = staked = returned = 0
    for row in rows:
        for outcome in OUTCOMES:
            bets += 1
            staked += STAKE
            if row["FTR"] == outcome:
                returned += STAKE * hundredths(row[PRICE_COLUMNS[outcome]]) // 100
    for trio in triples(rows):
        bets += 1
        staked += STAKE
        picks = [(rows[i], favourite(rows[i])) for i in trio]
        if all(row["FTR"] == pick for row, pick in picks):
            product = 1
            for row, pick in picks:
                product *= hundredths(row[PRICE_COLUMNS[pick]])
            returned += STAKE * product // 100**3
    return bets, staked, returned


# --- the product's side ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    market_id: str
    row: dict[str, str]

    def price(self, outcome: str) -> Price:
        return Price.parse(self.row[PRICE_COLUMNS[outcome]])

    def instruction(self) -> SettlementInstruction:
        day, month, year = (int(part) for part in self.row["Date"].split("/"))
        return SettlementInstruction(
            market_id=self.market_id,
            version=1,
            runners=tuple(
                RunnerResult(
                    o, RunnerOutcome.WINNER if self.row["FTR"] == o else RunnerOutcome.LOSER
                )
                for o in OUTCOMES
            ),
            settled_at=datetime(year, month, day, 23, 59, tzinfo=UTC),
            source="football-data.co.uk",
        )


@dataclass(frozen=True, slots=True)
class Bet:
    request_id: str
    slip: BetSlip


def league_bets(league: str, rows: list[dict[str, str]]) -> tuple[list[Match], list[Bet]]:
    """The product's markets and the bet set (the same set as :func:`independent_book`)."""
    matches = [Match(f"{league}.{n:04d}", row) for n, row in enumerate(rows, 1)]
    bets: list[Bet] = []
    for match in matches:
        for outcome in OUTCOMES:
            leg = BetLeg(match.market_id, outcome, match.price(outcome))
            request_id = f"{match.market_id}-{outcome}"
            bets.append(Bet(request_id, BetSlip(request_id, BetType.SINGLE, None, (leg,), STAKE)))
    for trio in triples(rows):
        legs = tuple(
            BetLeg(matches[i].market_id, pick, matches[i].price(pick))
            for i in trio
            for pick in (favourite(rows[i]),)
        )
        request_id = f"{legs[0].market_id}-treble"
        bets.append(Bet(request_id, BetSlip(request_id, BetType.ACCUMULATOR, None, legs, STAKE)))
    return matches, bets


def core_book(league: str, rows: list[dict[str, str]]) -> tuple[int, int, int]:
    matches, bets = league_bets(league, rows)
    results = {m.market_id: m.instruction() for m in matches}
    struck = datetime(2024, 7, 1, tzinfo=UTC)
    returned = 0
    for bet in bets:
        settled = settle_slip(bet.slip, struck, results)
        assert settled is not None
        returned += settled.amount
    return len(bets), STAKE * len(bets), returned


def _receipt(bet: Bet, bet_id: str, balance: int) -> dict[str, Any]:
    """The receipt as the server stores it (rsocket_server.betting.accepted_receipt's shape)."""
    slip = bet.slip
    return {
        "betId": bet_id,
        "requestId": slip.request_id,
        "type": slip.bet_type.value,
        "system": None,
        "eachWay": False,
        "status": "ACCEPTED",
        "code": None,
        "message": None,
        "placedAt": "2024-07-01T00:00:00.000Z",
        "legs": [
            {
                "marketId": leg.market_id,
                "selectionId": leg.selection_id,
                "price": leg.price.to_wire(),
                "result": None,
            }
            for leg in slip.legs
        ],
        "lines": 1,
        "stakePerLine": slip.stake_per_line,
        "totalStake": slip.stake_per_line,
        "potentialReturn": None,
        "currency": "GBP",
        "balanceAfter": balance,
        "settlement": None,
    }


def placement(account_id: str, bet: Bet) -> Placement:
    legs = [(leg.market_id, leg.selection_id, str(leg.price.odds)) for leg in bet.slip.legs]
    body_hash = hashlib.sha256(orjson.dumps(legs)).hexdigest()
    odds = Fraction(1)
    for leg in bet.slip.legs:
        odds *= leg.price.odds
    liability = int(STAKE * (odds - 1))
    return Placement(
        account_id=account_id,
        request_id=bet.request_id,
        body_hash=body_hash,
        total_stake=STAKE,
        status="ACCEPTED",
        exposures=[(leg.market_id, leg.selection_id, liability) for leg in bet.slip.legs],
        liability_limit=None,
        receipt_for=lambda bet_id, balance: _receipt(bet, bet_id, balance),
    )


async def store_books(
    store: LedgerStore, leagues: dict[str, list[dict[str, str]]]
) -> dict[str, tuple[int, int, int]]:
    """Per league (bets, staked, returned) as the ledger's ``book_totals`` reports them."""
    bets_per_league: dict[str, int] = {}
    for league, rows in leagues.items():
        matches, bets = league_bets(league, rows)
        account = f"punter-{league}"
        await store.create_account(account, "GBP", None, {})
        await store.deposit(account, STAKE * len(bets), f"seed-{league}")
        for start in range(0, len(bets), PLACE_BATCH):  # the store's write queue is bounded
            chunk = bets[start : start + PLACE_BATCH]
            outcomes = await asyncio.gather(
                *(store.place_bet(placement(account, b)) for b in chunk)
            )
            assert {o.outcome for o in outcomes} == {Outcome.PLACED}
        bets_per_league[league] = len(bets)
        for match in matches:
            await store.settle_market(match.instruction())
    totals = await store.book_totals()
    books: dict[str, tuple[int, int, int]] = {}
    for league, count in bets_per_league.items():
        staked = sum(s for m, (s, _) in totals.items() if m.startswith(f"{league}."))
        returned = sum(r for m, (_, r) in totals.items() if m.startswith(f"{league}."))
        books[league] = (count, staked, returned)
    return books


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"


def _report(books: dict[str, tuple[int, int, int]]) -> None:
    for league, (bets, staked, returned) in books.items():
        print(
            f"\n{league}: {bets} bets, staked {_money(staked)}, returned {_money(returned)}, "
            f"book P&L {_money(staked - returned)}"
        )
    staked = sum(b[1] for b in books.values())
    returned = sum(b[2] for b in books.values())
    print(
        f"\nall: staked {_money(staked)}, returned {_money(returned)}, "
        f"book P&L {_money(staked - returned)}"
    )


def all_leagues() -> dict[str, list[dict[str, str]]]:
    leagues: dict[str, list[dict[str, str]]] = {}
    for path in league_files():
        rows = read_rows(path)
        leagues[rows[0]["Div"]] = rows
    assert sum(len(rows) for rows in leagues.values()) == 1587
    return leagues


def test_every_league_reconciles_through_the_core() -> None:
    leagues = all_leagues()
    independent = {league: independent_book(rows) for league, rows in leagues.items()}
    product = {league: core_book(league, rows) for league, rows in leagues.items()}
    _report(independent)
    assert product == independent


async def test_every_league_reconciles_through_the_ledger(tmp_path: Path) -> None:
    leagues = all_leagues()
    independent = {league: independent_book(rows) for league, rows in leagues.items()}
    started = time.monotonic()
    store = await open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        books = await store_books(store, leagues)
        assert await store.audit() == []
    finally:
        await store.close()
    print(f"\nledger: placed and settled in {time.monotonic() - started:.1f}s")
    _report(books)
    assert books == independent
