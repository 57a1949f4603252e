"""sportsbook_core.bets: lines and exact returns (RULES.md §2, §4; PROTOCOL.md Numbers)."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations
from math import floor, prod

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sportsbook_core.bets import (
    MAX_LEGS,
    BetLeg,
    BetSlip,
    BetType,
    InvalidBet,
    Line,
    PriceChangePolicy,
    SystemBet,
    combined_odds,
    expand_lines,
    fold_sizes,
    line_count,
    max_stake_for_payout,
    place_odds,
    potential_return,
    shape_problem,
    total_stake,
)
from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.ladder import CLASSIC, price_from_hundredths
from sportsbook_core.prices import Price

QUARTER = EachWayTerms(3, Fraction(1, 4))
FIFTH = EachWayTerms(3, Fraction(1, 5))


def legs(*texts: str) -> tuple[BetLeg, ...]:
    return tuple(BetLeg(f"1.{i}", "11", Price.parse(t)) for i, t in enumerate(texts))


def slip(
    *texts: str,
    kind: BetType = BetType.SYSTEM,
    system: SystemBet | None = None,
    stake: int = 100,
    each_way: bool = False,
) -> BetSlip:
    return BetSlip("r1", kind, system, legs(*texts), stake, each_way, PriceChangePolicy.NONE)


def system_slip(system: SystemBet, n: int, *, each_way: bool = False) -> BetSlip:
    return slip(*(["2"] * n), system=system, each_way=each_way)


def prices(*texts: str) -> tuple[Price, ...]:
    return tuple(Price.parse(t) for t in texts)


# --- RULES.md §4: how many bets each system bet is --------------------------------------

SYSTEM_LINES = [
    (SystemBet.DOUBLES, 4, 6),  # C(4,2)
    (SystemBet.DOUBLES, 2, 1),
    (SystemBet.TREBLES, 4, 4),  # C(4,3)
    (SystemBet.TREBLES, 5, 10),
    (SystemBet.TRIXIE, 3, 4),
    (SystemBet.PATENT, 3, 7),
    (SystemBet.YANKEE, 4, 11),
    (SystemBet.LUCKY15, 4, 15),
    (SystemBet.CANADIAN, 5, 26),
    (SystemBet.LUCKY31, 5, 31),
    (SystemBet.HEINZ, 6, 57),
    (SystemBet.LUCKY63, 6, 63),
    (SystemBet.SUPER_HEINZ, 7, 120),
    (SystemBet.GOLIATH, 8, 247),
]


@pytest.mark.parametrize(("system", "n", "bets"), SYSTEM_LINES)
def test_rules_4_line_count_of_every_system_bet(system: SystemBet, n: int, bets: int) -> None:
    """RULES.md §4 table: Trixie 4, Patent 7, Yankee 11 … Goliath 247; doubles of 4 = 6."""
    assert line_count(system_slip(system, n)) == bets
    assert len(expand_lines(system_slip(system, n))) == bets


def test_rules_4_every_system_bet_has_a_row() -> None:
    assert {system for system, _, _ in SYSTEM_LINES} == set(SystemBet)


@pytest.mark.parametrize(
    "system",
    [s for s in SystemBet if s.selections is not None],
)
def test_rules_4_full_cover_counts_are_2n_minus_n_minus_1_or_2n_minus_1(system: SystemBet) -> None:
    """RULES.md §4: without singles 2ⁿ − n − 1, with singles 2ⁿ − 1."""
    n = system.selections
    assert n is not None
    with_singles = 1 in system.fold_sizes(n)
    expected = 2**n - 1 if with_singles else 2**n - n - 1
    assert line_count(system_slip(system, n)) == expected


@pytest.mark.parametrize(
    ("system", "by_fold"),
    [
        (SystemBet.TRIXIE, {2: 3, 3: 1}),
        (SystemBet.PATENT, {1: 3, 2: 3, 3: 1}),
        (SystemBet.YANKEE, {2: 6, 3: 4, 4: 1}),
        (SystemBet.CANADIAN, {2: 10, 3: 10, 4: 5, 5: 1}),
        (SystemBet.HEINZ, {2: 15, 3: 20, 4: 15, 5: 6, 6: 1}),
        (SystemBet.SUPER_HEINZ, {2: 21, 3: 35, 4: 35, 5: 21, 6: 7, 7: 1}),
        (SystemBet.GOLIATH, {2: 28, 3: 56, 4: 70, 5: 56, 6: 28, 7: 8, 8: 1}),
    ],
)
def test_rules_4_content_by_fold_size(system: SystemBet, by_fold: dict[int, int]) -> None:
    """RULES.md §4 'Content' column: e.g. Heinz = 15 + 20 + 15 + 6 + 1."""
    n = system.selections
    assert n is not None
    lines = expand_lines(system_slip(system, n))
    counted: dict[int, int] = {}
    for line in lines:
        counted[len(line.legs)] = counted.get(len(line.legs), 0) + 1
    assert counted == by_fold
    assert len(set(lines)) == len(lines)  # every combination once


def test_rules_4_doubles_of_4_are_the_six_pairs_in_order() -> None:
    lines = expand_lines(system_slip(SystemBet.DOUBLES, 4))
    assert lines == tuple(Line(pair) for pair in combinations(range(4), 2))


@pytest.mark.parametrize(
    ("system", "accepted", "refused"),
    [
        (SystemBet.DOUBLES, [2, 3, MAX_LEGS], [0, 1, MAX_LEGS + 1]),
        (SystemBet.TREBLES, [3, 4, MAX_LEGS], [2, MAX_LEGS + 1]),
        (SystemBet.TRIXIE, [3], [2, 4]),
        (SystemBet.LUCKY15, [4], [3, 5]),
        (SystemBet.GOLIATH, [8], [7, 9]),
    ],
)
def test_rules_4_selection_count_each_system_takes(
    system: SystemBet, accepted: list[int], refused: list[int]
) -> None:
    for n in accepted:
        assert system.accepts(n)
    for n in refused:
        assert not system.accepts(n)
        with pytest.raises(InvalidBet, match=f"{system.value} does not take {n} selections"):
            system.fold_sizes(n)


# --- shape -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bet", "problem"),
    [
        (slip("2", kind=BetType.SINGLE), None),
        (slip("2", "3", kind=BetType.SINGLE), "a SINGLE has exactly 1 leg, got 2"),
        (slip(kind=BetType.SINGLE), "a SINGLE has exactly 1 leg, got 0"),
        (slip("2", "3", kind=BetType.ACCUMULATOR), None),
        (slip("2", kind=BetType.ACCUMULATOR), "an ACCUMULATOR needs at least 2 legs, got 1"),
        (
            slip("2", "3", kind=BetType.ACCUMULATOR, system=SystemBet.DOUBLES),
            "ACCUMULATOR bets take no system",
        ),
        (slip("2", "3", "4"), "a SYSTEM bet needs a system"),
        (slip("2", "3", system=SystemBet.TRIXIE), "TRIXIE needs 3 selections, got 2"),
        (slip("2", system=SystemBet.DOUBLES), "DOUBLES needs 2+ selections, got 1"),
        (
            slip(*(["2"] * (MAX_LEGS + 1)), kind=BetType.ACCUMULATOR),
            f"at most {MAX_LEGS} legs, got {MAX_LEGS + 1}",
        ),
    ],
)
def test_shape_problem_per_bet_type(bet: BetSlip, problem: str | None) -> None:
    """PROTOCOL.md Bet request: SINGLE one leg, ACCUMULATOR n legs, SYSTEM with its system."""
    assert shape_problem(bet) == problem


def test_lines_of_a_bad_shape_raise_invalid_bet() -> None:
    with pytest.raises(InvalidBet, match="TRIXIE needs 3 selections, got 4"):
        expand_lines(slip("2", "3", "4", "5", system=SystemBet.TRIXIE))


def test_accumulator_is_one_n_fold_line() -> None:
    bet = slip("2", "3", "4", kind=BetType.ACCUMULATOR)
    assert fold_sizes(bet) == (3,)
    assert expand_lines(bet) == (Line((0, 1, 2)),)


def test_stake_must_be_int_minor_units() -> None:
    """PROTOCOL.md Numbers: money is an int of minor units, never a float."""
    with pytest.raises(TypeError, match="stake must be an int of minor units, got float"):
        BetSlip("r", BetType.SINGLE, None, legs("2"), 10.0, False)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got bool"):
        BetSlip("r", BetType.SINGLE, None, legs("2"), True, False)


# --- each-way: RULES.md §2, PROTOCOL.md "eachWay: true doubles the lines" --------------------


def test_rules_2_each_way_single_is_a_win_line_and_a_place_line() -> None:
    bet = slip("11", kind=BetType.SINGLE, stake=1000, each_way=True)
    assert expand_lines(bet) == (Line((0,)), Line((0,), place=True))
    assert total_stake(bet) == 2000  # "the stake is charged twice"


@pytest.mark.parametrize(
    ("system", "n", "lines", "stake"),
    [
        (SystemBet.DOUBLES, 3, 6, 600),
        (SystemBet.TRIXIE, 3, 8, 800),
        (SystemBet.YANKEE, 4, 22, 2200),
        (SystemBet.LUCKY15, 4, 30, 3000),
        (SystemBet.GOLIATH, 8, 494, 49400),
    ],
)
def test_rules_4_each_way_doubles_lines_and_total_stake(
    system: SystemBet, n: int, lines: int, stake: int
) -> None:
    """RULES.md §4: 'Total stake = unit stake × bets, doubled if each-way' (100 per line)."""
    bet = system_slip(system, n, each_way=True)
    assert line_count(bet) == lines
    assert total_stake(bet) == stake
    expanded = expand_lines(bet)
    assert [line.place for line in expanded[:2]] == [False, True]  # win then place per combo
    assert expanded[0].legs == expanded[1].legs
    assert sum(line.place for line in expanded) == lines // 2


@pytest.mark.parametrize(
    ("price", "terms", "odds"),
    [
        ("11", FIFTH, Fraction(3)),  # 10/1 at 1/5 → 2/1
        ("5/1", QUARTER, Fraction(9, 4)),  # 5/1 at 1/4 → 5/4
        ("17", QUARTER, Fraction(5)),  # 16/1 at 1/4 → 4/1 (RULES.md §5 example)
        ("2.1", FIFTH, Fraction(122, 100)),
        ("7/2", FIFTH, Fraction(17, 10)),
    ],
)
def test_rules_2_place_odds_are_1_plus_o_minus_1_times_fraction(
    price: str, terms: EachWayTerms, odds: Fraction
) -> None:
    assert place_odds(Price.parse(price), terms) == odds


def test_place_line_without_terms_is_invalid() -> None:
    with pytest.raises(InvalidBet, match="leg 0 has no each-way terms"):
        potential_return([Line((0,), place=True)], prices("3"), 100, [None])


# --- potential returns, to the penny ------------------------------------------------------


def test_single_return_is_stake_times_odds() -> None:
    """PROTOCOL.md Bet receipt example: 1000 at 2.5 → 2500."""
    bet = slip("2.5", kind=BetType.SINGLE, stake=1000)
    assert potential_return(expand_lines(bet), prices("2.5"), 1000) == 2500


def test_rules_4_yankee_return_at_given_prices() -> None:
    """Yankee at 2, 5/2, 1.5, 4 with 100 per line, every leg winning.

    doubles 7 + 3 + 8 + 5.25 + 14 + 6 = 43.25; trebles 10.5 + 28 + 12 + 21 = 71.5;
    four-fold 42 → 156.75 per unit → 15675 exactly.
    """
    bet = slip("2", "5/2", "1.5", "4", system=SystemBet.YANKEE)
    quoted = prices("2", "5/2", "1.5", "4")
    assert combined_odds(expand_lines(bet), quoted) == Fraction(627, 4)
    assert potential_return(expand_lines(bet), quoted, 100) == 15675


def test_rules_2_each_way_single_at_one_fifth_terms() -> None:
    """10 each-way at 10/1, 1/5 terms: win 10×11 = 110 + place 10×(1 + 10/5) = 30 → 140.00."""
    bet = slip("10/1", kind=BetType.SINGLE, stake=1000, each_way=True)
    assert potential_return(expand_lines(bet), prices("10/1"), 1000, [FIFTH]) == 14000


def test_rules_2_each_way_yankee_at_quarter_terms_exact() -> None:
    """Win part 627/4, place part 28431/1024 per unit: 100 × 160383/1024 = 18451.46… → 18451."""
    bet = slip("2", "5/2", "1.5", "4", system=SystemBet.YANKEE, each_way=True)
    quoted = prices("2", "5/2", "1.5", "4")
    lines = expand_lines(bet)
    assert combined_odds(lines, quoted, [QUARTER] * 4) == Fraction(627, 4) + Fraction(28431, 1024)
    assert potential_return(lines, quoted, 100, [QUARTER] * 4) == 18451


def test_fractional_prices_stay_exact_through_a_multiple() -> None:
    """FIELD_CASES B07: 1/3 is 4/3, not 1.33. 300 on a 1/3 × 1/3 double → 300 × 16/9 = 533.33 → 533.

    Rounding each leg to 1.33 first would give 300 × 1.7689 = 530.
    """
    bet = slip("1/3", "1/3", kind=BetType.ACCUMULATOR, stake=300)
    assert potential_return(expand_lines(bet), prices("1/3", "1/3"), 300) == 533


def test_rounding_is_down_once_at_the_end_not_per_line() -> None:
    """PROTOCOL.md Numbers. 1 each-way at 3.5 with 1/5 terms: win 3.5 + place 1.5 = 5.00 → 5.

    Rounding each line down first would give 3 + 1 = 4.
    """
    bet = slip("3.5", kind=BetType.SINGLE, stake=1, each_way=True)
    lines = expand_lines(bet)
    assert potential_return(lines, prices("3.5"), 1, [FIFTH]) == 5
    assert sum(potential_return([line], prices("3.5"), 1, [FIFTH]) for line in lines) == 4


def test_rounding_down_never_up() -> None:
    """7 at 1.99 = 13.93 → 13, never 14."""
    assert potential_return([Line((0,))], prices("1.99"), 7) == 13


# --- B14: the largest stake under a payout cap ------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "cap", "stake"),
    [
        (("100", "500"), 25_000_000, 500),  # B14: combined 50,000, cap 250,000.00 → 5.00
        (("3",), 10, 3),  # 3 × 3 = 9 ≤ 10 < 12
        (("2.5",), 10, 4),  # 4 × 2.5 = 10 exactly
        (("1.01",), 10, 10),  # 10 × 1.01 = 10.1 → 10 ≤ cap after rounding down
        (("2",), 0, 0),
        (("2",), 1, 0),
    ],
)
def test_b14_max_stake_for_payout(texts: tuple[str, ...], cap: int, stake: int) -> None:
    quoted = prices(*texts)
    lines = [Line(tuple(range(len(texts))))]
    assert max_stake_for_payout(lines, quoted, cap) == stake
    assert potential_return(lines, quoted, stake) <= cap
    assert potential_return(lines, quoted, stake + 1) > cap


def test_b14_max_stake_counts_every_line() -> None:
    """Trixie at 2, 2, 2: 3 doubles × 4 + treble 8 = 20 per unit; cap 1000 → 50 per line."""
    bet = slip("2", "2", "2", system=SystemBet.TRIXIE)
    assert max_stake_for_payout(expand_lines(bet), prices("2", "2", "2"), 1000) == 50


def test_max_stake_of_no_lines_is_invalid() -> None:
    with pytest.raises(InvalidBet, match="no lines"):
        max_stake_for_payout([], (), 1000)


# --- properties -----------------------------------------------------------------------------

ladder_prices = st.sampled_from(CLASSIC.rungs).map(price_from_hundredths)


@st.composite
def priced_system_bets(draw: st.DrawFn) -> tuple[BetSlip, tuple[Price, ...]]:
    system = draw(st.sampled_from(list(SystemBet)))
    n = system.selections or draw(st.integers(min_value=system.min_selections, max_value=6))
    quoted = tuple(draw(st.lists(ladder_prices, min_size=n, max_size=n)))
    texts = [p.to_wire() for p in quoted]
    return slip(*texts, system=system, each_way=draw(st.booleans())), quoted


def _exact(bet: BetSlip, quoted: tuple[Price, ...], stake: int) -> Fraction:
    """An independent exact return: stake × Σ ∏, place odds 1 + (O−1)/4."""
    total = Fraction(0)
    for k in fold_sizes(bet):
        for combo in combinations(quoted, k):
            total += prod((p.odds for p in combo), start=Fraction(1))
            if bet.each_way:
                total += prod((1 + (p.odds - 1) / 4 for p in combo), start=Fraction(1))
    return stake * total


@given(bet=priced_system_bets(), stake=st.integers(min_value=0, max_value=10**7))
def test_property_return_is_floor_of_exact_and_monotonic_in_stake(
    bet: tuple[BetSlip, tuple[Price, ...]], stake: int
) -> None:
    """PROTOCOL.md Numbers on random CLASSIC ladder prices (RULES.md §8)."""
    slip_, quoted = bet
    lines, terms = expand_lines(slip_), [QUARTER] * len(quoted)
    result = potential_return(lines, quoted, stake, terms)
    assert result == floor(_exact(slip_, quoted, stake))
    assert result <= potential_return(lines, quoted, stake + 1, terms)


@given(bet=priced_system_bets(), cap=st.integers(min_value=0, max_value=10**9))
def test_property_max_stake_is_the_largest_within_the_cap(
    bet: tuple[BetSlip, tuple[Price, ...]], cap: int
) -> None:
    slip_, quoted = bet
    lines, terms = expand_lines(slip_), [QUARTER] * len(quoted)
    best = max_stake_for_payout(lines, quoted, cap, terms)
    assert potential_return(lines, quoted, best, terms) <= cap
    assert potential_return(lines, quoted, best + 1, terms) > cap
