"""The ledger's settlement fast path (ledger_store.settling.SettleCache) pays exactly
what the domain core's ``settle_slip`` pays, for every bet (RULES.md §4 lines, §2
each-way, Rule 4 by struck time, dead heats; FIELD_CASES B14's payout cap).

The cache settles each bet *shape* once and sums lines as integer ratios; the core
sums Fractions. Hypothesis draws markets, results and bets of every type; both must
agree to the penny and on every leg as shown, and a second bet of the same shape (a
cache hit) must get the same settlement as the core gives it on its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_store.settling import OpenBet, SettleCache, slip_of
from sportsbook_core.bets import SystemBet
from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.results import (
    Reduction,
    RunnerOutcome,
    RunnerResult,
    SettlementInstruction,
    settle_slip,
)
from sportsbook_core.settlement import DeadHeat, InvalidSettlement

T0 = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
PRICES = ("1.01", "1.5", "2", "2.62", "3.25", "5", "11", "101", "5/2", "7/4", "1/3")
OUTCOMES = (RunnerOutcome.WINNER, RunnerOutcome.LOSER, RunnerOutcome.PLACED)


@st.composite
def instructions(draw: st.DrawFn, market_id: str) -> SettlementInstruction:
    """A market of 2–8 runners: outcomes, maybe a dead heat for first, maybe up to two
    withdrawals (each at its own time, by adjustment factor), maybe place terms."""
    size = draw(st.integers(2, 8))
    runners: list[RunnerResult] = []
    tied = draw(st.sampled_from((None, 2, 3)))
    for i in range(size):
        sid = str(i + 1)
        removed = i >= size - 2 and draw(st.booleans())
        if removed:
            minute = draw(st.integers(0, 120))
            factor = draw(st.sampled_from(("4.5", "12.3", "33.3", "61.0")))
            runners.append(
                RunnerResult(
                    sid,
                    RunnerOutcome.REMOVED,
                    removed_at=T0 + timedelta(minutes=minute),
                    adjustment_factor=Decimal(factor),
                )
            )
            continue
        outcome = draw(st.sampled_from(OUTCOMES))
        heat = DeadHeat(1, tied) if tied and outcome is RunnerOutcome.WINNER else None
        runners.append(RunnerResult(sid, outcome, dead_heat=heat))
    terms = draw(
        st.sampled_from((None, EachWayTerms(2, Fraction(1, 4)), EachWayTerms(3, Fraction(1, 5))))
    )
    reduction = draw(st.sampled_from((Reduction.RULE4, Reduction.EXCHANGE)))
    return SettlementInstruction(
        market_id,
        draw(st.integers(1, 3)),
        tuple(runners),
        T0 + timedelta(hours=3),
        number_of_winners=draw(st.sampled_from((None, 1, 2))),
        each_way=terms,
        reduction=reduction,
    )


@st.composite
def receipts(draw: st.DrawFn, markets: list[str]) -> dict[str, Any]:
    """A bet's stored receipt: a single, an accumulator or a system bet, each-way or not."""
    kind = draw(st.sampled_from(("SINGLE", "ACCUMULATOR", *(s.value for s in SystemBet))))
    count = 1
    if kind == "ACCUMULATOR" and len(markets) >= 2:
        count = draw(st.integers(2, len(markets)))
    elif kind not in ("SINGLE", "ACCUMULATOR"):
        system = SystemBet(kind)
        low = system.selections or system.min_selections
        if low <= len(markets):
            count = low if system.selections else draw(st.integers(low, len(markets)))
    if count == 1:
        kind = "SINGLE"
    chosen = draw(st.permutations(markets))[:count]
    legs = [
        {
            "marketId": m,
            "selectionId": str(draw(st.integers(1, 8))),
            "price": draw(st.sampled_from(PRICES)),
        }
        for m in chosen
    ]
    receipt: dict[str, Any] = {
        "requestId": "r",
        "type": "SYSTEM" if kind not in ("SINGLE", "ACCUMULATOR") else kind,
        "legs": legs,
        "eachWay": draw(st.booleans()),
        "stakePerLine": draw(st.sampled_from((1, 7, 100, 250, 1234))),
    }
    if receipt["type"] == "SYSTEM":
        receipt["system"] = kind
    if draw(st.booleans()):
        receipt["maxPayout"] = draw(st.integers(0, 10**7))
    return receipt


def _open(bet_id: str, receipt: dict[str, Any], placed_at: datetime) -> OpenBet:
    return OpenBet(bet_id, "acct", "ACCEPTED", 0, receipt, placed_at, {})


def _core(bet: OpenBet, results: dict[str, SettlementInstruction]) -> Any:
    slip = slip_of(bet.receipt, bet.total_stake)
    cap = bet.receipt.get("maxPayout")
    try:
        return settle_slip(slip, bet.placed_at, results, payout_cap=cap)
    except InvalidSettlement:
        return None


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, SettlementInstruction], OpenBet, OpenBet]:
    markets = [f"1.{k}" for k in range(draw(st.integers(1, 8)))]
    results = {m: draw(instructions(m)) for m in markets}
    receipt = draw(receipts(markets))
    for leg in receipt["legs"]:  # a selection the market has
        size = len(results[leg["marketId"]].runners)
        leg["selectionId"] = str((int(leg["selectionId"]) - 1) % size + 1)
    first = T0 + timedelta(minutes=draw(st.integers(0, 150)))
    second = T0 + timedelta(minutes=draw(st.integers(0, 150)))
    return results, _open("B-1", receipt, first), _open("B-2", dict(receipt), second)


@settings(max_examples=400, deadline=None)
@given(cases())
def test_the_cache_pays_what_settle_slip_pays_for_every_bet_shape(
    case: tuple[dict[str, SettlementInstruction], OpenBet, OpenBet],
) -> None:
    """RULES.md §4: Σ stake × ∏ leg factors over the lines, rounded down once; the same
    amount and legs as the core, for the first bet of a shape and for a later one
    struck at another time (a hit only when on the same side of every withdrawal)."""
    results, first, second = case
    cache = SettleCache()
    for bet in (first, second):
        markets = [leg["marketId"] for leg in bet.receipt["legs"]]
        expected = _core(bet, results)
        got = cache.settle(bet, markets, results)
        if expected is None:
            assert got is None
        else:
            assert got is not None
            assert (got.settlement.amount, got.settlement.legs) == (
                expected.amount,
                expected.legs,
            )
            assert got.status == ("VOID" if expected.void else "SETTLED")


def test_a_repeated_shape_is_a_hit_and_a_struck_time_across_a_withdrawal_is_not() -> None:
    """Rule 4 reads only which withdrawals came after the bet: two bets struck before
    the withdrawal share a settlement; one struck after it does not (no deduction)."""
    results = {
        "1.1": SettlementInstruction(
            "1.1",
            1,
            (
                RunnerResult("1", RunnerOutcome.WINNER),
                RunnerResult("2", RunnerOutcome.LOSER),
                RunnerResult(
                    "3",
                    RunnerOutcome.REMOVED,
                    removed_at=T0 + timedelta(hours=1),
                    adjustment_factor=Decimal("20"),  # price 5.0 (4/1): Rule 4 20p
                ),
            ),
            T0 + timedelta(hours=2),
        )
    }
    receipt = {
        "legs": [{"marketId": "1.1", "selectionId": "1", "price": "3"}],
        "type": "SINGLE",
        "stakePerLine": 1000,
    }
    cache = SettleCache()
    early = cache.settle(_open("B-1", receipt, T0), ["1.1"], results)
    again = cache.settle(_open("B-2", receipt, T0 + timedelta(minutes=5)), ["1.1"], results)
    late = cache.settle(_open("B-3", receipt, T0 + timedelta(hours=1, minutes=1)), ["1.1"], results)
    assert early is not None and again is not None and late is not None
    # £10 at 3.0 less 20p in the pound of the £20 winnings: 1000 + 2000 × 0.8 = 2600.
    assert early.settlement.amount == 2600
    assert again is early
    assert late.settlement.amount == 3000
    assert (cache.hits, cache.misses) == (1, 2)
