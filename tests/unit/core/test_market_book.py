"""sportsbook_core.market_book: lifecycle (STYLE.md 6), apply_change, seq and deltas."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction

import pytest

from sportsbook_core.catalogue import (
    EachWayTerms,
    MarketDefinition,
    MarketStatus,
    SelectionDefinition,
    SelectionStatus,
)
from sportsbook_core.changes import MarketChange
from sportsbook_core.market_book import (
    ApplyResult,
    IllegalTransition,
    MarketBook,
    MarketDelta,
    SelectionChange,
    apply_change,
    merge_deltas,
    transition,
)
from sportsbook_core.prices import Price

OPEN, SUSPENDED, CLOSED, SETTLED = (
    MarketStatus.OPEN,
    MarketStatus.SUSPENDED,
    MarketStatus.CLOSED,
    MarketStatus.SETTLED,
)
MARKET = "1.100"
START = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


# Local builders: named runners ("home", "away") and image/relist changes, which
# tests/testkit/builders.py does not offer yet.
def definition(
    *runners: str,
    status: MarketStatus = OPEN,
    removed: frozenset[str] = frozenset(),
    in_play: bool = False,
    bet_delay_ms: int = 0,
) -> MarketDefinition:
    return MarketDefinition(
        market_id=MARKET,
        event_id="E1",
        event_name="Home v Away",
        name="Match Odds",
        market_type="MATCH_ODDS",
        sport="football",
        start_time=START,
        status=status,
        in_play=in_play,
        bet_delay_ms=bet_delay_ms,
        selections=tuple(
            SelectionDefinition(
                sid,
                f"Runner {sid}",
                status=SelectionStatus.REMOVED if sid in removed else SelectionStatus.ACTIVE,
                sort_priority=i,
            )
            for i, sid in enumerate(runners or ("home", "away"))
        ),
    )


def p(text: str) -> Price:
    return Price.parse(text)


def change(
    at_ms: int,
    defn: MarketDefinition | None = None,
    *,
    image: bool = False,
    relist: bool = False,
    **price_texts: str | None,
) -> MarketChange:
    prices = tuple((sid, None if t is None else p(t)) for sid, t in price_texts.items())
    return MarketChange(MARKET, at_ms, defn, prices, image=image, relist=relist)


def book_with(
    *, status: MarketStatus = OPEN, seq: int = 5, home: str = "2", away: str = "4"
) -> MarketBook:
    return MarketBook(definition(status=status), {"home": p(home), "away": p(away)}, seq, 100)


def applied(result: ApplyResult) -> MarketBook:
    assert result.book is not None
    return result.book


# --- lifecycle ----------------------------------------------------------------------

# STYLE.md 6 and the module docstring: OPEN → SUSPENDED ↔ OPEN → CLOSED → SETTLED.
LIFECYCLE = {
    (OPEN, OPEN): True,
    (OPEN, SUSPENDED): True,
    (OPEN, CLOSED): True,
    (OPEN, SETTLED): False,
    (SUSPENDED, OPEN): True,
    (SUSPENDED, SUSPENDED): True,
    (SUSPENDED, CLOSED): True,
    (SUSPENDED, SETTLED): False,
    (CLOSED, OPEN): False,
    (CLOSED, SUSPENDED): False,
    (CLOSED, CLOSED): True,
    (CLOSED, SETTLED): True,
    (SETTLED, OPEN): False,
    (SETTLED, SUSPENDED): False,
    (SETTLED, CLOSED): False,
    (SETTLED, SETTLED): True,
}


def test_lifecycle_table_covers_every_pair() -> None:
    assert set(LIFECYCLE) == {(a, b) for a in MarketStatus for b in MarketStatus}


@pytest.mark.parametrize(("current", "target"), [k for k, ok in LIFECYCLE.items() if ok])
def test_legal_transition(current: MarketStatus, target: MarketStatus) -> None:
    assert transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [k for k, ok in LIFECYCLE.items() if not ok])
def test_illegal_transition(current: MarketStatus, target: MarketStatus) -> None:
    with pytest.raises(IllegalTransition, match=f"^{current.value} → {target.value}$"):
        transition(current, target)


# --- apply_change: a new market -------------------------------------------------------


def test_new_market_is_seq_1_and_a_resync() -> None:
    result = apply_change(None, change(7, definition(), home="2", away="4"))
    book = applied(result)
    assert result.delta == MarketDelta(MARKET, 1, resync=True)
    assert result.rejected is None
    assert book.seq == 1
    assert book.updated_at_ms == 7
    assert dict(book.prices) == {"home": p("2"), "away": p("4")}


def test_new_market_prices_only_active_runners() -> None:
    defn = definition("home", "draw", "away", removed=frozenset({"draw"}))
    book = applied(apply_change(None, change(1, defn, home="2", draw="3.4", away="4")))
    assert dict(book.prices) == {"home": p("2"), "draw": None, "away": p("4")}


def test_change_before_definition_is_rejected() -> None:
    result = apply_change(None, change(1, home="2"))
    assert result == ApplyResult(None, rejected=f"{MARKET}: change before definition")


# --- apply_change: deltas -----------------------------------------------------------


def test_price_change_is_seq_plus_one_with_exactly_that_change() -> None:
    book = book_with(seq=5)
    result = apply_change(book, change(200, home="2.02"))
    assert result.delta == MarketDelta(
        MARKET, 6, selections=(SelectionChange("home", p("2.02"), price_set=True),)
    )
    new = applied(result)
    assert new.seq == 6
    assert new.updated_at_ms == 200
    assert dict(new.prices) == {"home": p("2.02"), "away": p("4")}
    assert dict(book.prices) == {"home": p("2"), "away": p("4")}  # the old book is untouched


def test_price_withdrawn_is_a_none_price_change() -> None:
    result = apply_change(book_with(seq=5), change(200, away=None))
    assert result.delta == MarketDelta(
        MARKET, 6, selections=(SelectionChange("away", None, price_set=True),)
    )


def test_no_op_change_keeps_seq_and_sends_no_delta() -> None:
    book = book_with(seq=5)
    result = apply_change(book, change(200, home="2", away="4.0"))
    assert result == ApplyResult(book)
    assert applied(result).seq == 5


def test_same_definition_again_is_a_no_op() -> None:
    book = book_with(seq=5)
    assert apply_change(book, change(200, definition())) == ApplyResult(book)


def test_suspend_is_a_status_delta() -> None:
    result = apply_change(book_with(seq=5), change(200, definition(status=SUSPENDED)))
    assert result.delta == MarketDelta(MARKET, 6, status=SUSPENDED)
    new = applied(result)
    assert new.status is SUSPENDED
    assert dict(new.prices) == {"home": p("2"), "away": p("4")}


def test_in_play_and_delay_are_deltas() -> None:
    result = apply_change(
        book_with(seq=5), change(200, definition(in_play=True, bet_delay_ms=5000))
    )
    assert result.delta == MarketDelta(MARKET, 6, in_play=True, bet_delay_ms=5000)


def test_status_and_price_in_one_change_are_one_delta() -> None:
    result = apply_change(book_with(seq=5), change(200, definition(status=SUSPENDED), home="1.5"))
    assert result.delta == MarketDelta(
        MARKET,
        6,
        status=SUSPENDED,
        selections=(SelectionChange("home", p("1.5"), price_set=True),),
    )


@pytest.mark.parametrize(
    ("current", "target"), [k for k, ok in LIFECYCLE.items() if not ok and k[0] is not SETTLED]
)
def test_illegal_move_is_rejected_and_the_book_kept(
    current: MarketStatus, target: MarketStatus
) -> None:
    book = book_with(status=current, seq=5)
    result = apply_change(book, change(200, definition(status=target), home="9"))
    assert result == ApplyResult(
        book, rejected=f"{MARKET}: illegal move {current.value} → {target.value}"
    )


@pytest.mark.parametrize("target", [OPEN, SUSPENDED, CLOSED, SETTLED, None])
def test_a_settled_market_ignores_the_feed_until_relisted(target: MarketStatus | None) -> None:
    """Settlement (a trader's, possibly before the feed closed the market) ends it: later
    prices and statuses from the feed are dropped without a warning; the book, its
    prices and its seq stay as they were (issue #5)."""
    book = book_with(status=SETTLED, seq=5)
    defn = None if target is None else definition(status=target)
    assert apply_change(book, change(200, defn, home="9", away="1.5")) == ApplyResult(book)


def test_a_settled_market_reopens_on_a_relist() -> None:
    book = book_with(status=SETTLED, seq=5)
    result = apply_change(book, change(200, definition(status=OPEN), relist=True, home="3"))
    assert result.delta == MarketDelta(MARKET, 6, resync=True)
    assert applied(result).status is OPEN


def test_closed_to_open_allowed_on_relist_as_a_resync() -> None:
    """A replay loop starting a market again is the one way CLOSED reopens."""
    book = book_with(status=CLOSED, seq=5)
    result = apply_change(book, change(200, definition(status=OPEN), relist=True, home="3"))
    assert result.delta == MarketDelta(MARKET, 6, resync=True)
    new = applied(result)
    assert new.status is OPEN
    assert dict(new.prices) == {"home": p("3"), "away": None}  # relist starts afresh


def test_image_replaces_all_prices() -> None:
    """FIELD_CASES.md B16's kind: a full image replaces the cache entirely."""
    book = book_with(seq=5, home="2.02", away="4.1")
    result = apply_change(book, change(200, image=True, home="2.5"))
    assert result.delta == MarketDelta(MARKET, 6, resync=True)
    assert dict(applied(result).prices) == {"home": p("2.5"), "away": None}


def test_image_leaves_no_leftover_runners() -> None:
    """B16: "the cache is replaced entirely, with no leftover runners"."""
    book = book_with(seq=5)
    result = apply_change(book, change(200, definition("home", "draw"), image=True, draw="3.3"))
    new = applied(result)
    assert result.delta == MarketDelta(MARKET, 6, resync=True)
    assert dict(new.prices) == {"home": None, "draw": p("3.3")}
    assert [s.selection_id for s in new.definition.selections] == ["home", "draw"]


def test_b16_resumed_deltas_land_on_the_kept_book() -> None:
    """B16: image home 2.00 / away 4.00; delta home 2.02; resume; delta away 4.10."""
    first = applied(apply_change(None, change(1, definition(), image=True, home="2", away="4")))
    second = applied(apply_change(first, change(2, home="2.02")))
    third = applied(apply_change(second, change(3, away="4.10")))
    assert dict(third.prices) == {"home": p("2.02"), "away": p("4.1")}
    assert third.seq == 3


def test_runner_removed_is_a_status_change_with_no_price() -> None:
    book = book_with(seq=5)
    result = apply_change(book, change(200, definition(removed=frozenset({"away"}))))
    assert result.delta == MarketDelta(
        MARKET,
        6,
        selections=(SelectionChange("away", None, price_set=True, status=SelectionStatus.REMOVED),),
    )
    assert applied(result).price_of("away") is None


def test_price_for_a_removed_runner_is_ignored() -> None:
    book = applied(
        apply_change(book_with(seq=5), change(200, definition(removed=frozenset({"away"}))))
    )
    assert apply_change(book, change(300, away="5")) == ApplyResult(book)


@pytest.mark.parametrize(
    "new_definition",
    [
        definition("home", "draw", "away"),  # runner added
        definition("home"),  # runner dropped
        replace(
            definition(),
            selections=(SelectionDefinition("home", "Renamed"), SelectionDefinition("away", "x")),
        ),
        replace(definition(), each_way=EachWayTerms(3, Fraction(1, 5))),
        replace(definition(), name="Match Odds (renamed)"),
    ],
)
def test_structural_change_is_a_resync(new_definition: MarketDefinition) -> None:
    result = apply_change(book_with(seq=5), change(200, new_definition))
    assert result.delta == MarketDelta(MARKET, 6, resync=True)
    assert applied(result).definition == new_definition


def test_invisible_definition_change_keeps_seq() -> None:
    """A definition change no subscriber can see (the version) updates the book, no delta."""
    book = book_with(seq=5)
    result = apply_change(book, change(200, replace(definition(), version=9)))
    assert result.delta is None
    assert applied(result).definition.version == 9
    assert applied(result).seq == 5


# --- delta merging (conflation) ----------------------------------------------------------


def test_selection_change_merge_newest_wins() -> None:
    older = SelectionChange("home", p("2"), price_set=True)
    status_only = SelectionChange("home", status=SelectionStatus.REMOVED)
    assert older.merged_with(status_only) == SelectionChange(
        "home", p("2"), True, SelectionStatus.REMOVED
    )
    assert older.merged_with(SelectionChange("home", None, price_set=True)) == SelectionChange(
        "home", None, True
    )


def test_merge_deltas_keeps_last_seq_and_newest_values() -> None:
    merged = merge_deltas(
        [
            MarketDelta(MARKET, 6, selections=(SelectionChange("home", p("2.02"), True),)),
            MarketDelta(MARKET, 7, status=SUSPENDED),
            MarketDelta(
                MARKET,
                8,
                status=OPEN,
                selections=(
                    SelectionChange("home", p("2.04"), True),
                    SelectionChange("away", p("4.1"), True),
                ),
            ),
        ]
    )
    assert merged == MarketDelta(
        MARKET,
        8,
        status=OPEN,
        selections=(
            SelectionChange("home", p("2.04"), True),
            SelectionChange("away", p("4.1"), True),
        ),
    )


def test_merge_deltas_any_resync_is_a_resync() -> None:
    merged = merge_deltas([MarketDelta(MARKET, 6, resync=True), MarketDelta(MARKET, 7)])
    assert merged.resync
    assert merged.seq == 7
    with pytest.raises(ValueError, match="nothing to merge"):
        merge_deltas([])


def test_empty_delta() -> None:
    assert MarketDelta(MARKET, 1).is_empty
    assert not MarketDelta(MARKET, 1, resync=True).is_empty
    assert not MarketDelta(MARKET, 1, in_play=False).is_empty
