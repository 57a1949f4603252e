"""Real Betfair markets settled by the product, checked against arithmetic read from the raw files.

For every recording under ``betfair-esa/markets`` (listed, not named): the
product replays it (``streams.replay.iter_changes``), derives the settlement
instruction (``streams.results``) and settles a fixed set of bets with
``settle_slip``. The test reads the same file as plain JSON and works out every
bet's return on its own, with the rules written out below from RULES.md — no
product code on that side.

The bet set (documented in docs/RESULTS.md):

* the strike time T of a market is 1 ms before the earliest of: its first
  runner removal that carries a reduction (``removalDate`` and
  ``adjustmentFactor`` in the closing definition), its first in-play
  definition, its first CLOSED definition — so every bet is struck before any
  withdrawal that reduces it (a removal without a factor, the golf market's,
  reduces nothing; the bet on that runner is void either way);
* on every runner, a 10.00 win single at its price at T: its last traded price
  (``ltp``) at or before T, else its last best available back price (highest
  ``atb`` with size) at or before T; a runner with neither gets no bet
  (counted, printed);
* no each-way bets: no recording carries each-way terms (``marketType``
  EACH_WAY with ``eachWayDivisor``), so there are none to strike.

The expected return of a bet of S on runner r at price P (RULES.md):

* r REMOVED: void, S;  LOSER (or PLACED in a win single): 0;
* WINNER: ``S + S·(P−1)·(1−D)``, rounded down to the penny once. ``D`` is the
  Rule 4 deduction: for every runner removed after the bet was struck that has
  an ``adjustmentFactor`` (its win chance in percent, so its price at
  withdrawal is ``100/adjustmentFactor``), the band of that price in the
  Tattersalls table (§3, the fractional column, which RULES.md names as the
  authority: a price falls in the first band whose longest odds it does not
  exceed), summed and capped at 90p. No dead-heat reduction: the test checks
  no market has more winners than ``numberOfWinners``.
"""

from __future__ import annotations

import bz2
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from sportsbook_core.bets import BetLeg, BetSlip, BetType
from sportsbook_core.prices import Price
from sportsbook_core.results import SettlementInstruction, settle_slip
from streams.replay import iter_changes
from streams.results import results_of
from tests.testkit.data import betfair_recordings

STAKE = 1000  # 10.00 in pence

# RULES.md §3, Tattersalls Rule 4(c): (longest fractional odds of the band, pence per £).
RULE4_FRACTIONAL = (
    (Fraction(1, 9), 90),
    (Fraction(2, 11), 85),
    (Fraction(1, 4), 80),
    (Fraction(3, 10), 75),
    (Fraction(2, 5), 70),
    (Fraction(8, 15), 65),
    (Fraction(8, 13), 60),
    (Fraction(4, 5), 55),
    (Fraction(20, 21), 50),
    (Fraction(6, 5), 45),
    (Fraction(6, 4), 40),
    (Fraction(7, 4), 35),
    (Fraction(9, 4), 30),
    (Fraction(3, 1), 25),
    (Fraction(4, 1), 20),
    (Fraction(11, 2), 15),
    (Fraction(9, 1), 10),
    (Fraction(14, 1), 5),
)
# The same table's "decimal (approx.)" column: (highest decimal price of the band, pence).
RULE4_DECIMAL = (
    (Decimal("1.12"), 90),
    (Decimal("1.19"), 85),
    (Decimal("1.27"), 80),
    (Decimal("1.33"), 75),
    (Decimal("1.44"), 70),
    (Decimal("1.57"), 65),
    (Decimal("1.66"), 60),
    (Decimal("1.83"), 55),
    (Decimal("1.99"), 50),
    (Decimal("2.24"), 45),
    (Decimal("2.59"), 40),
    (Decimal("2.79"), 35),
    (Decimal("3.39"), 30),
    (Decimal("4.19"), 25),
    (Decimal("5.49"), 20),
    (Decimal("6.99"), 15),
    (Decimal("10.99"), 10),
    (Decimal("15.0"), 5),
)


def rule4_pence(price: Fraction) -> int:
    """Pence per £ of winnings for one withdrawn runner at ``price`` (fractional column)."""
    odds_against = price - 1
    for longest, pence in RULE4_FRACTIONAL:
        if odds_against <= longest:
            return pence
    return 0


def rule4_pence_decimal_column(price: Fraction) -> int:
    """The decimal column's band for the price to 2 dp (for the report only)."""
    two_dp = Decimal(price.numerator * 100 // price.denominator) / 100
    for highest, pence in RULE4_DECIMAL:
        if two_dp <= highest:
            return pence
    return 0


# --- the independent reading of a recording -------------------------------------------------


def _millis(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000)


@dataclass
class RawMarket:
    market_id: str
    closed: dict[str, Any] | None = None  # the last CLOSED marketDefinition
    closed_pt: int | None = None
    in_play_pt: int | None = None
    # per runner id: [(pt, ltp)] and [(pt, {price: size})] as the file has them
    ltp: dict[int, list[tuple[int, Decimal]]] = field(default_factory=dict)
    atb: dict[int, dict[Decimal, Decimal]] = field(default_factory=dict)
    best_back: dict[int, list[tuple[int, Decimal | None]]] = field(default_factory=dict)


def _messages(path: Path) -> Iterator[dict[str, Any]]:
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rt") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line, parse_float=Decimal)


def read_raw(path: Path) -> dict[str, RawMarket]:
    markets: dict[str, RawMarket] = {}
    for message in _messages(path):
        if message.get("op") != "mcm":
            continue
        for change in message.get("mc") or ():
            market = markets.setdefault(str(change["id"]), RawMarket(str(change["id"])))
            _fold(market, change, message["pt"])
    return markets


def _fold(market: RawMarket, change: dict[str, Any], pt: int) -> None:
    if change.get("img"):
        market.atb = {}
    definition = change.get("marketDefinition")
    if definition is not None:
        if definition.get("inPlay") and market.in_play_pt is None:
            market.in_play_pt = pt
        if definition.get("status") == "CLOSED":
            market.closed = definition
            market.closed_pt = market.closed_pt or pt
    for runner in change.get("rc") or ():
        rid = runner["id"]
        if runner.get("ltp") is not None:
            market.ltp.setdefault(rid, []).append((pt, Decimal(runner["ltp"])))
        if runner.get("atb") is not None:
            ladder = market.atb.setdefault(rid, {})
            for price, size in runner["atb"]:
                if size == 0:
                    ladder.pop(Decimal(price), None)
                else:
                    ladder[Decimal(price)] = Decimal(size)
            market.best_back.setdefault(rid, []).append((pt, max(ladder) if ladder else None))


def has_result(market: RawMarket) -> bool:
    """Closed with every runner WINNER/LOSER/PLACED/REMOVED (HIDDEN runners are not offered)."""
    if market.closed is None:
        return False
    statuses = [r.get("status") for r in market.closed["runners"] if r.get("status") != "HIDDEN"]
    done = {"WINNER", "LOSER", "PLACED", "REMOVED", "REMOVED_VACANT"}
    return bool(statuses) and all(s in done for s in statuses)


def strike_time(market: RawMarket) -> int:
    """1 ms before the first removal that carries a reduction factor, in-play or close."""
    assert market.closed is not None and market.closed_pt is not None
    moments = [market.closed_pt]
    if market.in_play_pt is not None:
        moments.append(market.in_play_pt)
    moments += [
        _millis(r["removalDate"])
        for r in market.closed["runners"]
        if r.get("removalDate") and r.get("adjustmentFactor") is not None
    ]
    return min(moments) - 1


def price_at(market: RawMarket, runner_id: int, at: int) -> Decimal | None:
    traded = [p for pt, p in market.ltp.get(runner_id, ()) if pt <= at]
    if traded:
        return traded[-1]
    backs = [p for pt, p in market.best_back.get(runner_id, ()) if pt <= at and p is not None]
    return backs[-1] if backs else None


def expected_return(
    market: RawMarket, runner: dict[str, Any], price: Decimal, struck: int
) -> Fraction:
    """The exact return of a 10.00 win single (before the final rounding down)."""
    assert market.closed is not None
    status = runner["status"]
    if status in ("REMOVED", "REMOVED_VACANT"):
        return Fraction(STAKE)
    if status != "WINNER":
        return Fraction(0)
    pence = 0
    for other in market.closed["runners"]:
        if other.get("status") not in ("REMOVED", "REMOVED_VACANT"):
            continue
        factor = other.get("adjustmentFactor")
        if factor is None or not other.get("removalDate"):
            continue
        if _millis(other["removalDate"]) > struck:
            pence += rule4_pence(Fraction(100) / Fraction(factor))
    deduction = Fraction(min(pence, 90), 100)
    odds = Fraction(price)
    return STAKE + STAKE * (odds - 1) * (1 - deduction)


# --- the product --------------------------------------------------------------------------


def product_instructions(path: Path) -> list[SettlementInstruction]:
    return results_of(iter_changes(path))


def product_return(
    instruction: SettlementInstruction, selection_id: str, price: Decimal, struck: int
) -> int:
    slip = BetSlip(
        request_id=f"{instruction.market_id}-{selection_id}",
        bet_type=BetType.SINGLE,
        system=None,
        legs=(BetLeg(instruction.market_id, selection_id, Price(Fraction(price))),),
        stake_per_line=STAKE,
    )
    struck_at = datetime.fromtimestamp(struck / 1000, UTC)
    settled = settle_slip(slip, struck_at, {instruction.market_id: instruction})
    assert settled is not None
    return settled.amount


@dataclass
class MarketTotals:
    market_id: str
    bets: int
    unpriced: int
    staked: int
    returned: int
    withdrawals: list[str]

    @property
    def book(self) -> int:
        return self.staked - self.returned


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"


def _withdrawal(runner: dict[str, Any]) -> str:
    factor = runner["adjustmentFactor"]
    price = Fraction(100) / Fraction(factor)
    return (
        f"{runner['id']} AF {factor} → price {price.numerator / price.denominator:.3f}: "
        f"{rule4_pence(price)}p (decimal column {rule4_pence_decimal_column(price)}p)"
    )


RECORDINGS = betfair_recordings()


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.name for p in RECORDINGS])
def test_every_closed_market_settles_as_the_rules_say(path: Path) -> None:
    raw = read_raw(path)
    resulted = {market_id: m for market_id, m in raw.items() if has_result(m)}
    instructions = product_instructions(path)

    # Exactly one instruction (version 1) per market that closed with results.
    assert sorted(i.market_id for i in instructions) == sorted(resulted)
    assert all(i.version == 1 for i in instructions)

    totals: list[MarketTotals] = []
    for instruction in instructions:
        market = resulted[instruction.market_id]
        assert market.closed is not None
        runners = [r for r in market.closed["runners"] if r.get("status") != "HIDDEN"]
        winners = sum(1 for r in runners if r["status"] == "WINNER")
        assert winners <= (market.closed.get("numberOfWinners") or winners)
        assert instruction.review_reason() is None
        assert instruction.number_of_winners == market.closed.get("numberOfWinners")

        struck = strike_time(market)
        staked = returned = bets = unpriced = 0
        for runner in runners:
            price = price_at(market, runner["id"], struck)
            if price is None:
                unpriced += 1
                continue
            expected = expected_return(market, runner, price, struck)
            got = product_return(instruction, str(runner["id"]), price, struck)
            assert got == int(expected), (instruction.market_id, runner["id"], price, expected)
            bets += 1
            staked += STAKE
            returned += got
        withdrawals = [
            _withdrawal(r)
            for r in runners
            if r["status"] == "REMOVED" and r.get("adjustmentFactor") is not None
        ]
        totals.append(
            MarketTotals(instruction.market_id, bets, unpriced, staked, returned, withdrawals)
        )

    for t in totals:
        print(
            f"\n{path.name} {t.market_id}: {t.bets} bets ({t.unpriced} runners unpriced), "
            f"staked {_money(t.staked)}, returned {_money(t.returned)}, book P&L {_money(t.book)}"
        )
        for line in t.withdrawals:
            print(f"    withdrawn {line}")


def test_the_recordings_include_the_markets_that_make_settlement_hard() -> None:
    """The set above covers multi-winner place, golf top-5 and races with non-runners."""
    kinds: dict[str, set[str]] = {"multi-winner": set(), "removed": set(), "resulted": set()}
    for path in RECORDINGS:
        for market_id, market in read_raw(path).items():
            if not has_result(market):
                continue
            assert market.closed is not None
            kinds["resulted"].add(market_id)
            if (market.closed.get("numberOfWinners") or 1) > 1:
                kinds["multi-winner"].add(market_id)
            if any(r.get("status") == "REMOVED" for r in market.closed["runners"]):
                kinds["removed"].add(market_id)
    assert {"1.197931751", "1.205822330", "1.230478683"} <= kinds["multi-winner"]
    assert {"1.132153978", "1.206064380", "1.205822330", "1.230478683"} <= kinds["removed"]
    assert len(kinds["resulted"]) == 10


def test_the_rule4_table_columns_disagree_between_9_4_and_5_2() -> None:
    """RULES.md §3's two columns differ for prices between 9/4 (3.25) and 5/2 (3.5):
    the decimal column puts 3.26–3.39 in the 30p band, the fractional column (the
    authority) leaves no band there, and the longer band (25p) applies. The Moe race
    (1.206064380) has such a withdrawal: adjustmentFactor 30.01 → 3.332."""
    price = Fraction(100) / Fraction(Decimal("30.01"))
    assert (rule4_pence(price), rule4_pence_decimal_column(price)) == (25, 30)
