"""sportsbook_core.settlement: exact returns from leg results (RULES.md §1–§6, FIELD_CASES B01–B07).

Every expected figure is in minor units (pence), taken from the worked numbers
in RULES.md and FIELD_CASES.md; the rule or case id is in each test's name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from sportsbook_core.bets import BetLeg, BetSlip, BetType, Line, SystemBet
from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.prices import Price
from sportsbook_core.settlement import (
    LOSE,
    PLACE,
    VOID,
    WIN,
    DeadHeat,
    InvalidSettlement,
    LegOutcome,
    LegResult,
    Withdrawal,
    asian_handicap_result,
    dead_heat_factor,
    leg_factor,
    line_factor,
    rule4_deduction,
    rule4_for_bet,
    rule4_total,
    settle_bet,
    settle_line,
    total_result,
    uk_place_terms,
)

QUARTER_3 = EachWayTerms(3, Fraction(1, 4))
R = LegResult


def p(text: str) -> Price:
    return Price.parse(text)


def single(price: str, stake: int, *, each_way: bool = False) -> BetSlip:
    return BetSlip("r", BetType.SINGLE, None, (BetLeg("m", "s", p(price)),), stake, each_way)


def slip(bet_type: BetType, system: SystemBet | None, prices: list[str], stake: int) -> BetSlip:
    legs = tuple(BetLeg(f"m{i}", "s", p(x)) for i, x in enumerate(prices))
    return BetSlip("r", bet_type, system, legs, stake)


# --- RULES.md §1: Asian handicap and totals ----------------------------------


@pytest.mark.parametrize(
    ("margin", "handicap", "expected"),
    [
        (0, "0", R.PUSH),  # whole line: push
        (-1, "1", R.PUSH),
        (1, "-1", R.PUSH),
        (0, "-0.5", R.LOSE),  # half line: win or lose only
        (0, "0.5", R.WIN),
        (1, "-0.25", R.WIN),  # −0.25: win by 1+ → full win
        (0, "-0.25", R.HALF_LOSE),  # −0.25 draw: half lost, half refunded
        (-1, "-0.25", R.LOSE),
        (0, "0.25", R.HALF_WIN),  # +0.25 draw: half win, half refund
        (1, "-0.75", R.HALF_WIN),  # −0.75 win by exactly 1: half win, half refund
        (2, "-0.75", R.WIN),
        (-1, "0.75", R.HALF_LOSE),  # +0.75 lose by exactly 1: half lost, half refunded
        (-2, "0.75", R.LOSE),
        (-1, "1.25", R.HALF_WIN),
    ],
)
def test_rules_1_asian_handicap_results(margin: int, handicap: str, expected: LegResult) -> None:
    assert asian_handicap_result(margin, Decimal(handicap)) is expected


@pytest.mark.parametrize(
    ("goals", "line", "over", "expected"),
    [
        (2, "2.25", True, R.HALF_LOSE),  # over 2.25, exactly 2 goals: half lost, half refunded
        (3, "2.75", True, R.HALF_WIN),  # over 2.75, 3 goals: half win, half refund
        (2, "2.25", False, R.HALF_WIN),
        (3, "2.5", True, R.WIN),
        (2, "2.5", True, R.LOSE),
        (2, "2", False, R.PUSH),
    ],
)
def test_rules_1_totals_results(goals: int, line: str, over: bool, expected: LegResult) -> None:
    assert total_result(goals, Decimal(line), over=over) is expected


def test_rules_1_handicap_must_be_quarter_steps() -> None:
    with pytest.raises(ValueError, match="quarter steps"):
        asian_handicap_result(0, Decimal("0.1"))


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (R.HALF_WIN, 1450),  # S/2·O + S/2 = 500×1.9 + 500
        (R.HALF_LOSE, 500),  # S/2
        (R.PUSH, 1000),  # S
        (R.VOID, 1000),
        (R.WIN, 1900),
        (R.LOSE, 0),
    ],
)
def test_rules_1_quarter_line_payouts(result: LegResult, expected: int) -> None:
    """RULES.md §1 payouts at O 1.90, S 10.00 (UOF: S·v + S·(1−v)·(r ? O : 0))."""
    assert settle_bet(single("1.9", 1000), [LegOutcome(result)]) == expected


# --- RULES.md §2, FIELD_CASES B04: each-way ---------------------------------


@pytest.mark.parametrize(
    ("price", "stake", "outcome", "terms", "expected"),
    [
        # B04(a): 10 EW at 2/1, 1/4 odds 3 places, 2nd: win 0 + place 10×(1+2/4) = 15.00
        ("3.0", 1000, PLACE, QUARTER_3, 1500),
        # B04(b): 1,300 EW at 16/1 wins: 1,300×17 + 1,300×5 = 28,600.00
        ("16/1", 130000, WIN, QUARTER_3, 2860000),
        # B04(c) wrongly booked 13,000 EW: 286,000.00 (the correction itself is the ledger's)
        ("16/1", 1300000, WIN, QUARTER_3, 28600000),
        # B04(d): 10 EW at 7/1, dead heat for 3rd with one other: 5×(1+7/4) = 13.75
        ("7/1", 1000, LegOutcome(R.PLACE, DeadHeat(3, 2)), QUARTER_3, 1375),
        ("7/1", 1000, LOSE, QUARTER_3, 0),
        ("7/1", 1000, VOID, QUARTER_3, 2000),  # both parts refunded
    ],
)
def test_b04_each_way(
    price: str, stake: int, outcome: LegOutcome, terms: EachWayTerms, expected: int
) -> None:
    assert settle_bet(single(price, stake, each_way=True), [outcome], [terms]) == expected


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (R.WIN, 6000),  # both parts settled as win bets at 2/1: 30 + 30
        (R.PLACE, 0),  # 2nd of 4 pays nothing: win only
    ],
)
def test_rules_2_one_to_four_runners_pay_win_only(result: LegResult, expected: int) -> None:
    outcome = LegOutcome(result, runners=4)
    assert settle_bet(single("3.0", 1000, each_way=True), [outcome], [QUARTER_3]) == expected


@pytest.mark.parametrize(
    ("runners", "handicap", "expected"),
    [
        (1, False, None),
        (4, True, None),
        (5, False, EachWayTerms(2, Fraction(1, 4))),
        (7, True, EachWayTerms(2, Fraction(1, 4))),
        (8, False, EachWayTerms(3, Fraction(1, 5))),
        (20, False, EachWayTerms(3, Fraction(1, 5))),
        (11, True, EachWayTerms(3, Fraction(1, 5))),
        (12, True, EachWayTerms(3, Fraction(1, 4))),
        (15, True, EachWayTerms(3, Fraction(1, 4))),
        (16, True, EachWayTerms(4, Fraction(1, 4))),
    ],
)
def test_rules_2_uk_place_terms(
    runners: int, handicap: bool, expected: EachWayTerms | None
) -> None:
    assert uk_place_terms(runners, handicap=handicap) == expected


def test_rules_2_place_line_needs_terms_and_no_half_results() -> None:
    ew = single("3.0", 1000, each_way=True)
    with pytest.raises(InvalidSettlement, match="each-way terms"):
        settle_bet(ew, [WIN])
    with pytest.raises(InvalidSettlement, match="no place part"):
        settle_bet(ew, [LegOutcome(R.HALF_WIN)], [QUARTER_3])


# --- RULES.md §3, FIELD_CASES B03: Rule 4 ------------------------------------

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
WITHDRAWN_F = Withdrawal(Fraction(30, 100), datetime(2026, 6, 1, 14, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("fractional", "pence"),
    [
        ((1, 9), 90),
        ((1, 10), 90),
        ((2, 17), 85),
        ((2, 11), 85),
        ((1, 5), 80),
        ((1, 4), 80),
        ((1, 3), 70),
        ((4, 6), 55),
        ((1, 1), 45),
        ((6, 4), 40),
        ((2, 1), 30),  # B03: favourite at 2/1 → 30p
        ((5, 2), 25),
        ((4, 1), 20),
        ((6, 1), 10),
        ((14, 1), 5),
        ((15, 1), 0),
    ],
)
def test_rules_3_tattersalls_scale(fractional: tuple[int, int], pence: int) -> None:
    assert rule4_deduction(Price.from_fraction(*fractional)) == Fraction(pence, 100)


def test_rules_3_deductions_add_capped_at_90p() -> None:
    assert rule4_total([Fraction(30, 100), Fraction(25, 100)]) == Fraction(55, 100)
    assert rule4_total([Fraction(1, 2), Fraction(1, 2)]) == Fraction(9, 10)
    assert rule4_total([]) == 0
    # 10 at 5/1, 90p cap: 10 + 50 × 0.10 = 15.00 (off winnings only, never the stake)
    outcome = LegOutcome(R.WIN, rule4=rule4_total([Fraction(1, 2), Fraction(1, 2)]))
    assert settle_bet(single("5/1", 1000), [outcome]) == 1500


def test_b03_only_bets_struck_before_the_withdrawal_carry_rule4() -> None:
    assert rule4_for_bet([WITHDRAWN_F], T0) == Fraction(30, 100)
    assert rule4_for_bet([WITHDRAWN_F], datetime(2026, 6, 1, 14, 45, tzinfo=UTC)) == 0


@pytest.mark.parametrize(
    ("struck_at", "price", "result", "each_way", "expected"),
    [
        # Bet 1: 10 win on H at 5/1 before F (2/1) withdrawn; wins: 10 + 50×0.70 = 45.00
        (T0, "5/1", R.WIN, False, 4500),
        # Bet 2: 10 EW at 5/1, 1/4, 3 places, 2nd: 10 + 12.50×0.70 = 18.75
        (T0, "5/1", R.PLACE, True, 1875),
        # Bet 3: 10 win on F itself (removed runner): void, 10.00 refunded
        (T0, "3/1", R.VOID, False, 1000),
        # Bet 4: struck after the market re-formed: no deduction, 60.00
        (datetime(2026, 6, 1, 14, 45, tzinfo=UTC), "5/1", R.WIN, False, 6000),
    ],
)
def test_b03_rule4(
    struck_at: datetime, price: str, result: LegResult, each_way: bool, expected: int
) -> None:
    outcome = LegOutcome(result, rule4=rule4_for_bet([WITHDRAWN_F], struck_at))
    bet = single(price, 1000, each_way=each_way)
    assert settle_bet(bet, [outcome], [QUARTER_3]) == expected


def test_rules_3_rule4_must_be_exact_and_at_most_90p() -> None:
    with pytest.raises(ValueError, match="within 0 and 9/10"):
        LegOutcome(R.WIN, rule4=Fraction(95, 100))
    with pytest.raises(TypeError, match="exact Fraction"):
        LegOutcome(R.WIN, rule4=0.3)  # type: ignore[arg-type]


# --- RULES.md §5, FIELD_CASES B01: dead heat ----------------------------------


@pytest.mark.parametrize(
    ("dead_heat", "paying_places", "expected"),
    [
        (DeadHeat(1, 2), 1, Fraction(1, 2)),  # two tie for 1st, win market
        (DeadHeat(3, 2), 3, Fraction(1, 2)),  # tied 3rd of 3 paid places with 2
        (DeadHeat(5, 3), 5, Fraction(1, 3)),  # golf top-5, three tie for 5th
        (DeadHeat(1, 2), 3, Fraction(1)),  # two tie for 1st of 3 places: both places paid
        (DeadHeat(2, 3), 3, Fraction(2, 3)),
        (DeadHeat(1, 70), None, Fraction(1)),  # B01: unknown winners → no reduction
        (DeadHeat(1, 70), 0, Fraction(1)),  # B01: reported 0 winners → no reduction
        (None, 1, Fraction(1)),
        (DeadHeat(4, 2), 3, Fraction(0)),  # tie wholly outside the places
    ],
)
def test_rules_5_dead_heat_factor(
    dead_heat: DeadHeat | None, paying_places: int | None, expected: Fraction
) -> None:
    assert dead_heat_factor(dead_heat, paying_places) == expected


def test_rules_5_dead_heat_reduces_the_stake_not_the_odds() -> None:
    """£10 at 4/1, two tie for 1st: returns £25, not £30."""
    outcome = LegOutcome(R.WIN, DeadHeat(1, 2))
    assert settle_bet(single("4/1", 1000), [outcome]) == 2500


def test_rules_5_each_way_place_part_dead_heat() -> None:
    """Place part at 16/1, 1/4 terms, tied 3rd of 3 with 2: place stake ÷ 2 at 4/1."""
    prices, outcomes = [p("16/1")], [LegOutcome(R.PLACE, DeadHeat(3, 2))]
    assert settle_line(Line((0,), place=True), prices, outcomes, 1000, [QUARTER_3]) == 2500
    assert settle_line(Line((0,)), prices, outcomes, 1000, [QUARTER_3]) == 0


def test_rules_5_golf_top5_three_tie_for_5th() -> None:
    """Stake × 1/3 at full odds: 10 at 11.0 → 36.666… → 36.66 (rounded down)."""
    outcome = LegOutcome(R.WIN, DeadHeat(5, 3), winners=5)
    assert settle_bet(single("11", 1000), [outcome]) == 3666


@pytest.mark.parametrize("winners", [None, 0])
def test_b01_unknown_number_of_winners_no_dead_heat_reduction(winners: int | None) -> None:
    """B01: 70 make the cut, places unknown/0: 10 at 1.50 on X → 15.00 (not 0.21)."""
    x = LegOutcome(R.WIN, DeadHeat(1, 70), winners=winners)
    assert settle_bet(single("1.5", 1000), [x]) == 1500
    # Y missed the cut → 0.00
    assert settle_bet(single("2.0", 1000), [LegOutcome(R.LOSE, winners=winners)]) == 0


# --- RULES.md §6, FIELD_CASES B05, B07: voids, multiples, rounding -------------


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([WIN, VOID, WIN], 3000),  # B05: B void → 2.00 × 1.50 = 3.00 → 30.00
        ([VOID, VOID, VOID], 1000),  # B05: all void → 10.00 refunded
        ([WIN, WIN, WIN], 9000),
        ([WIN, VOID, LOSE], 0),  # a losing leg: the line returns 0
        # §6: a partly void leg contributes v + (1−v)·O: half-won C → 2×(0.5+0.75) = 2.50
        ([WIN, VOID, LegOutcome(R.HALF_WIN)], 2500),
        ([WIN, VOID, LegOutcome(R.HALF_LOSE)], 1000),
    ],
)
def test_b05_void_leg_in_accumulator(outcomes: list[LegOutcome], expected: int) -> None:
    treble = slip(BetType.ACCUMULATOR, None, ["2.00", "3.00", "1.50"], 1000)
    assert settle_bet(treble, outcomes) == expected


@pytest.mark.parametrize(
    ("price", "stake", "expected"),
    [
        ("2.5", 1000, 2500),  # +150
        ("1.5", 1000, 1500),  # −200
        ("10/11", 1000, 1909),  # −110 = 10/11 → 1.9090… → 19.09 (down)
        ("5/2", 1000, 3500),
        ("1/3", 300, 400),  # exact: not 3.99 from a pre-rounded 1.33
    ],
)
def test_b07_exact_odds_rounded_down_once(price: str, stake: int, expected: int) -> None:
    assert settle_bet(single(price, stake), [WIN]) == expected


# Yankee / Lucky 15: A 5/2 wins, B 4/1 void (1.00), C 10/11 wins, D 7/2 loses, 1.00 a line.
YANKEE_PRICES = ["5/2", "4/1", "10/11", "7/2"]
YANKEE_OUTCOMES = [WIN, VOID, WIN, LOSE]


def test_rules_4_yankee_with_a_void_and_a_loser() -> None:
    """RULES.md §4/§6: 11 lines, each on its own; D's 5 lines return 0.

    Doubles AB 3.5, AC 3.5×21/11 = 73.5/11, BC 21/11; treble ABC 73.5/11:
    Σ = 3.5 + 168/11 = 206.5/11 = 18.7727… → 100p a line returns 1877
    (rounding each line first would give 350+668+190+668 = 1876).
    """
    yankee = slip(BetType.SYSTEM, SystemBet.YANKEE, YANKEE_PRICES, 100)
    assert settle_bet(yankee, YANKEE_OUTCOMES) == 1877


def test_rules_4_lucky15_with_a_void_and_a_loser() -> None:
    """Lucky 15 = 4 singles + Yankee: singles A 3.5, B 1.00 (refund), C 21/11, D 0.

    Σ = 206.5/11 + 70.5/11 = 277/11 = 25.1818… → 100p a line returns 2518.
    """
    lucky15 = slip(BetType.SYSTEM, SystemBet.LUCKY15, YANKEE_PRICES, 100)
    assert settle_bet(lucky15, YANKEE_OUTCOMES) == 2518


def test_rules_4_system_lines_settle_on_their_own() -> None:
    prices = [p(x) for x in YANKEE_PRICES]
    assert line_factor(Line((0, 1, 2)), prices, YANKEE_OUTCOMES) == Fraction(147, 22)
    assert line_factor(Line((0, 1, 2, 3)), prices, YANKEE_OUTCOMES) == 0
    assert line_factor(Line((1,)), prices, YANKEE_OUTCOMES) == 1


def test_leg_factor_place_leg_on_a_win_line_loses() -> None:
    assert leg_factor(p("5/1"), PLACE) == 0
    assert leg_factor(p("5/1"), PLACE, place=True, terms=QUARTER_3) == Fraction(9, 4)


def test_results_must_match_the_legs() -> None:
    with pytest.raises(InvalidSettlement, match="1 legs but 2 results"):
        settle_bet(single("2.0", 1000), [WIN, WIN])
