"""MarketSequencer: the single writer's seq, continued across publisher restarts (docs/KAFKA.md)."""

from __future__ import annotations

from sportsbook_core.catalogue import MarketStatus
from sportsbook_core.market_book import BookUpdate, apply_change
from sportsbook_core.prices import Price
from sportsbook_core.sequencer import MarketSequencer, Rejected
from tests.testkit.builders import definition_change, market_definition, price_change


def _update(result: BookUpdate | Rejected | None) -> BookUpdate:
    assert isinstance(result, BookUpdate)
    return result


def test_seqs_are_exactly_those_apply_change_gives_the_embedded_hub() -> None:
    sequencer = MarketSequencer()
    first = _update(sequencer.sequence(definition_change(market_definition("1.1"), s11="2")))
    second = _update(sequencer.sequence(price_change("1.1", s11="2.02")))
    assert (first.seq, first.delta.resync) == (1, True)
    assert (second.seq, second.delta.seq) == (2, 2)
    assert second.book.prices["11"] == Price.parse("2.02")
    embedded = apply_change(first.book, price_change("1.1", s11="2.02"))
    assert embedded.book == second.book and embedded.delta == second.delta


def test_no_visible_change_is_not_sequenced_and_a_rejection_names_its_reason() -> None:
    sequencer = MarketSequencer()
    sequencer.sequence(definition_change(market_definition("1.1"), s11="2"))
    assert sequencer.sequence(price_change("1.1", s11="2")) is None
    assert sequencer.sequence(price_change("1.9", s11="2")) == Rejected(
        "1.9: change before definition"
    )
    closed = market_definition("1.1", status=MarketStatus.CLOSED)
    sequencer.sequence(definition_change(closed))
    reopened = sequencer.sequence(definition_change(market_definition("1.1"), s11="3"))
    assert reopened == Rejected("1.1: illegal move CLOSED → OPEN")
    book = sequencer.book("1.1")
    assert book is not None and book.seq == 2


def test_a_restarted_publisher_continues_each_market_seq_from_the_bus() -> None:
    """Adopted books keep their seq; the first definition of one is a relist (CLOSED → OPEN)."""
    before = MarketSequencer()
    before.sequence(definition_change(market_definition("1.1"), s11="2"))
    before.sequence(definition_change(market_definition("1.1", status=MarketStatus.CLOSED)))
    last = before.book("1.1")
    assert last is not None and last.seq == 2
    after = MarketSequencer()
    after.adopt(last)
    relisted = _update(after.sequence(definition_change(market_definition("1.1"), s11="2.5")))
    assert (relisted.seq, relisted.delta.resync, relisted.book.status) == (
        3,
        True,
        MarketStatus.OPEN,
    )
    moved = _update(after.sequence(price_change("1.1", s11="2.52")))
    assert (moved.seq, moved.delta.resync) == (4, False)


def test_adopt_keeps_the_newest_book_whatever_order_they_come_in() -> None:
    sequencer = MarketSequencer()
    first = _update(sequencer.sequence(definition_change(market_definition("1.1"), s11="2")))
    second = _update(sequencer.sequence(price_change("1.1", s11="3")))
    fresh = MarketSequencer()
    fresh.adopt(second.book)
    fresh.adopt(first.book)
    assert fresh.book("1.1") == second.book
    assert len(fresh) == 1
