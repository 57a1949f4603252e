"""sportsbook_core.results: instructions → bet settlements (RULES.md §2–§6, FIELD_CASES)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from sportsbook_core.bets import BetLeg, BetSlip, BetType, SystemBet
from sportsbook_core.catalogue import (
    EachWayTerms,
    MarketDefinition,
    MarketStatus,
    SelectionDefinition,
    SelectionStatus,
)
from sportsbook_core.prices import Price
from sportsbook_core.results import (
    Reduction,
    RunnerOutcome,
    RunnerResult,
    SettlementInstruction,
    exchange_reduced_price,
    instruction_from_definition,
    settle_slip,
)
from sportsbook_core.settlement import DeadHeat, InvalidSettlement, LegResult

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
T_OFF = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
REMOVED_AT = datetime(2026, 6, 1, 14, 30, tzinfo=UTC)
W, L, PL, RM = (
    RunnerOutcome.WINNER,
    RunnerOutcome.LOSER,
    RunnerOutcome.PLACED,
    RunnerOutcome.REMOVED,
)


def single(
    selection: str, price: str, stake: int, *, market: str = "1.1", ew: bool = False
) -> BetSlip:
    leg = BetLeg(market, selection, Price.parse(price))
    return BetSlip("r", BetType.SINGLE, None, (leg,), stake, ew)


def result(*runners: RunnerResult, **kw: object) -> dict[str, SettlementInstruction]:
    market = str(kw.pop("market_id", "1.1"))
    instruction = SettlementInstruction(market, 1, runners, T_OFF, **kw)  # type: ignore[arg-type]
    return {market: instruction}


def test_b01_unknown_number_of_winners_pays_every_winner_in_full() -> None:
    """B01: places 0/unknown, 70 make the cut: 10 at 1.50 on X returns 15.00; Y missed: 0."""
    runners = [RunnerResult(f"p{i}", W) for i in range(70)] + [RunnerResult("y", L)]
    for winners in (0, None):
        results = result(*runners, number_of_winners=winners)
        assert settle_slip(single("p7", "1.50", 1000), T0, results).amount == 1500  # type: ignore[union-attr]
        assert settle_slip(single("y", "2.00", 1000), T0, results).amount == 0  # type: ignore[union-attr]
        assert results["1.1"].review_reason() is None


def test_b01_kind_more_winners_than_places_without_a_stated_tie_is_held_for_review() -> None:
    """Never infer a dead heat from a bare winner count (B01, B02's kind)."""
    results = result(RunnerResult("a", W), RunnerResult("b", W), RunnerResult("c", L))
    assert results["1.1"].review_reason() == (
        "2 winners for 1 paying place(s) and no dead heat stated: settle by hand with --dead-heat"
    )


def test_rules_5_stated_dead_heat_halves_the_stake_at_full_odds() -> None:
    """RULES.md §5: two tie for 1st of 1 paying place: 10 at 5.0 → 5 × 5.0 = 25.00."""
    tie = DeadHeat(position=1, tied=2)
    results = result(RunnerResult("a", W, tie), RunnerResult("b", W, tie), RunnerResult("c", L))
    settled = settle_slip(single("a", "5.0", 1000), T0, results)
    assert settled is not None and settled.amount == 2500
    assert settled.legs[0].to_wire() == {"result": "WIN", "deadHeatFactor": "1/2"}
    assert results["1.1"].review_reason() is None


def b03_results(reduction: Reduction = Reduction.RULE4) -> dict[str, SettlementInstruction]:
    favourite = RunnerResult(
        "F", RM, removed_at=REMOVED_AT, price_at_removal=Price.from_fraction(2, 1)
    )
    return result(
        favourite,
        RunnerResult("H", W),
        RunnerResult("X", L),
        RunnerResult("Y", L),
        RunnerResult("Z", L),
        RunnerResult("Q", L),
        each_way=EachWayTerms(3, Fraction(1, 4)),
        reduction=reduction,
    )


@pytest.mark.parametrize(
    ("selection", "struck_at", "expected", "shown"),
    [
        ("H", T0, 4500, {"result": "WIN", "reductionFactor": "3/10"}),  # Bet 1: 45.00
        ("F", T0, 1000, {"result": "VOID"}),  # Bet 3: the withdrawn runner is void, 10.00
        ("H", datetime(2026, 6, 1, 14, 45, tzinfo=UTC), 6000, {"result": "WIN"}),  # Bet 4: 60.00
    ],
)
def test_b03_rule4_from_the_instruction(
    selection: str, struck_at: datetime, expected: int, shown: dict[str, str]
) -> None:
    settled = settle_slip(single(selection, "5/1", 1000), struck_at, b03_results())
    assert settled is not None
    assert (settled.amount, settled.legs[0].to_wire()) == (expected, shown)


def test_b03_bet2_each_way_placed_second_struck_before_the_withdrawal() -> None:
    """B03 Bet 2: 10 EW at 5/1, 1/4 odds, 3 places, 2nd: win 0 + 10 + 12.50 × 0.70 = 18.75."""
    results = b03_results()
    placed = {
        "1.1": SettlementInstruction(
            "1.1",
            1,
            tuple(
                RunnerResult("H", PL) if r.selection_id == "H" else r
                for r in results["1.1"].runners
            ),
            T_OFF,
            each_way=EachWayTerms(3, Fraction(1, 4)),
        )
    }
    settled = settle_slip(single("H", "5/1", 1000, ew=True), T0, placed)
    assert settled is not None and settled.amount == 1875


def test_rule4_price_at_withdrawal_defaults_to_betfair_adjustment_factor() -> None:
    """adjustmentFactor 33.333 → price 3.0 (2/1) → 30p (RULES.md §3 scale)."""
    runner = RunnerResult("F", RM, removed_at=REMOVED_AT, adjustment_factor=Decimal("33.333"))
    price = runner.withdrawal_price()
    assert price is not None and price.odds == Fraction(100_000, 33_333)
    results = result(runner, RunnerResult("H", W), RunnerResult("X", L))
    settled = settle_slip(single("H", "5/1", 1000), T0, results)
    assert settled is not None and settled.amount == 4500


def test_rules_3_exchange_reduction_factor_cuts_the_price() -> None:
    """RULES.md §3: 8.6 with RF 16.2 % becomes 7.21; off the whole return: 10 → 72.10."""
    removed = RunnerResult("F", RM, removed_at=REMOVED_AT, adjustment_factor=Decimal("16.2"))
    assert exchange_reduced_price(Price.parse("8.6"), [removed]).odds == Fraction(721, 100)
    results = result(
        removed, RunnerResult("H", W), RunnerResult("X", L), reduction=Reduction.EXCHANGE
    )
    settled = settle_slip(single("H", "8.6", 1000), T0, results)
    assert settled is not None and settled.amount == 7210


def test_b05_void_leg_counts_as_one_and_an_unresulted_leg_keeps_the_bet_open() -> None:
    """B05: treble 10: A 2.00 won, B 3.00 void, C 1.50 won → 30.00; C unplayed → open."""
    legs = (
        BetLeg("A", "a", Price.parse("2.00")),
        BetLeg("B", "b", Price.parse("3.00")),
        BetLeg("C", "c", Price.parse("1.50")),
    )
    treble = BetSlip("r", BetType.ACCUMULATOR, None, legs, 1000)
    results = {
        **result(RunnerResult("a", W), RunnerResult("x", L), market_id="A"),
        **result(RunnerResult("b", RunnerOutcome.VOID), RunnerResult("y", L), market_id="B"),
    }
    assert settle_slip(treble, T0, results) is None
    results |= result(RunnerResult("c", W), RunnerResult("z", L), market_id="C")
    settled = settle_slip(treble, T0, results)
    assert settled is not None and (settled.amount, settled.void) == (3000, False)
    all_void = {
        m: SettlementInstruction(m, 1, (RunnerResult(s, RunnerOutcome.VOID),), T_OFF)
        for m, s in (("A", "a"), ("B", "b"), ("C", "c"))
    }
    settled = settle_slip(treble, T0, all_void)
    assert settled is not None and (settled.amount, settled.void) == (1000, True)


def test_b14_return_capped_at_the_payout_cap_in_force_at_acceptance() -> None:
    """B14: settlement pays min(return, cap at acceptance)."""
    results = result(RunnerResult("a", W), RunnerResult("b", L))
    settled = settle_slip(single("a", "1000", 50_000), T0, results, payout_cap=25_000_000)
    assert settled is not None and settled.amount == 25_000_000


def test_yankee_with_a_void_leg_and_a_loser_settles_per_line() -> None:
    """RULES.md §4/§6: Yankee 1.00/line on 2.0, 3.0, 4.0 (void), 5.0 (lost): 11 lines.
    Doubles 2×3=6, 2×1=2, 3×1=3 (+3 losers); trebles 2×3×1=6 (+3 losers); fourfold lost → 17.00."""
    prices = ["2.0", "3.0", "4.0", "5.0"]
    legs = tuple(BetLeg(f"M{i}", "s", Price.parse(x)) for i, x in enumerate(prices))
    yankee = BetSlip("r", BetType.SYSTEM, SystemBet.YANKEE, legs, 100)
    outcomes = [W, W, RunnerOutcome.VOID, L]
    results = {}
    for i, outcome in enumerate(outcomes):
        results |= result(RunnerResult("s", outcome), RunnerResult("o", L), market_id=f"M{i}")
    settled = settle_slip(yankee, T0, results)
    assert settled is not None and settled.amount == 1700


def test_instruction_from_a_closed_betfair_definition() -> None:
    runners = (
        SelectionDefinition("1", "One", status=SelectionStatus.WINNER),
        SelectionDefinition("2", "Two", status=SelectionStatus.LOSER),
        SelectionDefinition(
            "3",
            "Three",
            status=SelectionStatus.REMOVED,
            adjustment_factor=Decimal("20"),
            removal_date=REMOVED_AT,
        ),
    )
    md = MarketDefinition(
        "1.9",
        "e",
        "E",
        "M",
        "WIN",
        "Horse Racing",
        T0,
        MarketStatus.CLOSED,
        True,
        0,
        runners,
        number_of_winners=1,
    )
    instruction = instruction_from_definition(md, 1, T_OFF)
    assert instruction is not None
    assert [(r.selection_id, r.outcome, r.removed_at) for r in instruction.runners] == [
        ("1", W, None),
        ("2", L, None),
        ("3", RM, REMOVED_AT),
    ]
    assert instruction.runners_count == 2
    open_md = MarketDefinition(
        "1.9", "e", "E", "M", "WIN", "Horse Racing", T0, MarketStatus.OPEN, True, 0, runners
    )
    assert instruction_from_definition(open_md, 1, T_OFF) is None


def test_unknown_runner_and_duplicate_runner_are_refused() -> None:
    results = result(RunnerResult("a", W))
    with pytest.raises(InvalidSettlement, match="has no runner zz"):
        settle_slip(single("zz", "2.0", 100), T0, results)
    with pytest.raises(InvalidSettlement, match="listed twice"):
        SettlementInstruction("m", 1, (RunnerResult("a", W), RunnerResult("a", L)), T_OFF)
    assert LegResult.WIN.value == "WIN"


def test_b04d_each_way_dead_heat_for_third_shows_the_place_terms_factor() -> None:
    """B04(d): 10 EW at 8.0 (7/1), 1/4 odds, 3 places, dead heat for 3rd with one other:
    win part 0, place 5 × (1 + 7/4) = 13.75; the leg shows deadHeatFactor 1/2."""
    tie = DeadHeat(position=3, tied=2)
    results = result(
        RunnerResult("h", PL, tie),
        RunnerResult("t", PL, tie),
        RunnerResult("w", W),
        RunnerResult("s", PL),
        *(RunnerResult(f"x{i}", L) for i in range(5)),
        each_way=EachWayTerms(3, Fraction(1, 4)),
    )
    settled = settle_slip(single("h", "8.0", 1000, ew=True), T0, results)
    assert settled is not None and settled.amount == 1375
    assert settled.legs[0].to_wire() == {"result": "PLACE", "deadHeatFactor": "1/2"}
