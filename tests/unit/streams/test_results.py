"""streams.results: one instruction per closed market, corrections as versions, bounded channel."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from schemas.results import InvalidResult
from sportsbook_core.catalogue import MarketDefinition, MarketStatus, SelectionStatus
from sportsbook_core.changes import FeedStatus, MarketChange
from sportsbook_core.results import RunnerOutcome, SettlementInstruction
from streams.replay import iter_changes
from streams.results import (
    InProcessResultsChannel,
    ResultsFeed,
    ResultsTracker,
    decode_instruction,
    encode_instruction,
    results_of,
)
from tests.testkit.builders import market_definition
from tests.testkit.data import betfair_market

REMOVED_AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def closed(
    winners: tuple[str, ...] = ("11",),
    *,
    market_id: str = "1.100",
    removed: dict[str, Decimal | None] | None = None,
    number_of_winners: int | None = 1,
) -> MarketDefinition:
    base = market_definition(market_id, status=MarketStatus.CLOSED)
    removed = removed or {}
    selections = []
    for sel in base.selections:
        if sel.selection_id in removed:
            selections.append(
                replace(
                    sel,
                    status=SelectionStatus.REMOVED,
                    adjustment_factor=removed[sel.selection_id],
                    removal_date=REMOVED_AT,
                )
            )
        else:
            won = sel.selection_id in winners
            status = SelectionStatus.WINNER if won else SelectionStatus.LOSER
            selections.append(replace(sel, status=status))
    return replace(base, selections=tuple(selections), number_of_winners=number_of_winners)


def change(definition: MarketDefinition, at_ms: int = 1_700_000_000_000) -> MarketChange:
    return MarketChange(definition.market_id, at_ms, definition)


def outcomes(instruction: SettlementInstruction) -> dict[str, RunnerOutcome]:
    return {r.selection_id: r.outcome for r in instruction.runners}


def test_a_market_that_closes_with_results_yields_version_1_once() -> None:
    tracker = ResultsTracker()
    assert tracker.observe(change(market_definition())) is None  # open: nothing
    first = tracker.observe(change(closed(), 1_700_000_000_000))
    assert first is not None
    assert (first.market_id, first.version) == ("1.100", 1)
    assert first.settled_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert outcomes(first) == {
        "11": RunnerOutcome.WINNER,
        "12": RunnerOutcome.LOSER,
        "13": RunnerOutcome.LOSER,
    }
    # The same result again (later, or with a definition version bump): nothing.
    assert tracker.observe(change(closed(), 1_700_000_005_000)) is None
    assert tracker.observe(change(replace(closed(), version=99))) is None
    assert tracker.observe(MarketChange("1.100", 0, None)) is None  # a price-only change
    assert tracker.observe(FeedStatus(0, healthy=True)) is None
    assert tracker.issued == 1


def test_a_changed_closed_result_is_a_correction_with_the_next_version() -> None:
    tracker = ResultsTracker()
    assert tracker.observe(change(closed(("11",)))) is not None
    corrected = tracker.observe(change(closed(("12",))))
    assert corrected is not None
    assert corrected.version == 2
    assert outcomes(corrected)["12"] is RunnerOutcome.WINNER
    # reopened (a relist) and closed again with the corrected result: nothing new
    assert tracker.observe(change(market_definition())) is None
    assert tracker.observe(change(closed(("12",)))) is None
    third = tracker.observe(change(closed(("12",), removed={"13": Decimal("20.5")})))
    assert third is not None and third.version == 3
    assert (tracker.corrections, tracker.version_of("1.100")) == (2, 3)


def test_a_closed_market_without_results_yields_nothing() -> None:
    tracker = ResultsTracker()
    unresulted = market_definition(status=MarketStatus.CLOSED)  # runners still ACTIVE
    assert tracker.observe(change(unresulted)) is None
    assert tracker.version_of("1.100") is None


def test_a_result_held_for_review_is_still_published_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    two_winners_one_place = closed(("11", "12"), number_of_winners=1)
    instruction = ResultsTracker().observe(change(two_winners_one_place))
    assert instruction is not None
    assert instruction.review_reason() is not None
    assert "result needs a trader" in caplog.text


def test_markets_are_tracked_apart_and_memory_is_bounded() -> None:
    tracker = ResultsTracker(max_markets=2)
    for market_id in ("1.1", "1.2", "1.3"):
        assert tracker.observe(change(closed(market_id=market_id))) is not None
    assert tracker.version_of("1.1") is None  # forgotten: the oldest beyond the bound
    assert tracker.version_of("1.3") == 1


def test_removals_carry_time_and_factor() -> None:
    instruction = ResultsTracker().observe(change(closed(removed={"13": Decimal("30.01")})))
    assert instruction is not None
    removed = instruction.runner("13")
    assert (removed.outcome, removed.removed_at, removed.adjustment_factor) == (
        RunnerOutcome.REMOVED,
        REMOVED_AT,
        Decimal("30.01"),
    )


def test_a_real_race_with_a_non_runner_yields_its_result() -> None:
    found = results_of(iter_changes(betfair_market("nautilus_1.206064380.jsonl.bz2")))
    assert [(i.market_id, i.version) for i in found] == [("1.206064380", 1)]
    winners = [r.selection_id for r in found[0].runners if r.outcome is RunnerOutcome.WINNER]
    assert winners == ["38523163"]
    assert found[0].runner("39540410").adjustment_factor == Decimal("30.01")


def test_an_open_multi_market_capture_yields_no_results() -> None:
    assert results_of(iter_changes(betfair_market("betfair_parser_1.242971311.jsonl.bz2"))) == []


def test_the_record_is_keyed_by_market_and_decodes_exactly() -> None:
    instruction = ResultsTracker().observe(change(closed(removed={"13": Decimal("16.2")})))
    assert instruction is not None
    key, value = encode_instruction(instruction)
    assert key == b"1.100"
    assert decode_instruction(value) == instruction
    with pytest.raises(InvalidResult):
        decode_instruction(b"not json")
    with pytest.raises(InvalidResult):
        decode_instruction(b'{"marketId": "1.1"}')


# --- the in-process channel and the feed wrapper -----------------------------------------


async def test_the_feed_sends_the_price_change_before_the_result() -> None:
    seen: list[str] = []

    class Recorder:
        async def publish(self, instruction: SettlementInstruction) -> None:
            seen.append(f"result v{instruction.version}")

    async def prices(item: object) -> None:
        seen.append("price")

    feed = ResultsFeed(prices, Recorder())
    await feed(change(market_definition()))
    await feed(change(closed()))
    await feed(change(closed()))  # a repeat: no result
    await feed(change(closed(("12",))))  # a correction
    assert seen == ["price", "price", "result v1", "price", "price", "result v2"]
    assert feed.published == 2


async def test_the_in_process_channel_hands_results_to_the_settler() -> None:
    channel = InProcessResultsChannel(capacity=4)
    got: list[tuple[str, int]] = []

    async def settle(instruction: SettlementInstruction) -> None:
        got.append((instruction.market_id, instruction.version))

    feed = ResultsFeed(_ignore, channel)
    await feed(change(closed()))
    reader = asyncio.create_task(channel.run(settle))
    await asyncio.wait_for(channel.drained(), 5)
    reader.cancel()
    assert (got, channel.delivered) == ([("1.100", 1)], 1)


async def _ignore(item: object) -> None:
    return None


async def test_a_full_channel_makes_the_feed_wait_and_nothing_is_lost() -> None:
    channel = InProcessResultsChannel(capacity=2)
    tracker = ResultsTracker()
    instructions = [tracker.observe(change(closed(market_id=f"1.{n}"))) for n in range(5)]
    publisher = asyncio.create_task(
        _publish_all(channel, [i for i in instructions if i is not None])
    )
    await asyncio.sleep(0.05)
    assert not publisher.done() and channel.pending == 2  # bounded: the publisher waits
    got: list[str] = []

    async def settle(instruction: SettlementInstruction) -> None:
        got.append(instruction.market_id)

    reader = asyncio.create_task(channel.run(settle))
    await asyncio.wait_for(publisher, 5)
    await asyncio.wait_for(channel.drained(), 5)
    reader.cancel()
    assert got == [f"1.{n}" for n in range(5)]  # in order, none dropped


async def _publish_all(
    channel: InProcessResultsChannel, instructions: list[SettlementInstruction]
) -> None:
    for instruction in instructions:
        await channel.publish(instruction)


async def test_a_failing_settler_is_retried_then_the_result_is_kept_as_unsettled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = InProcessResultsChannel(capacity=4, attempts=3, backoff_s=0.001)
    calls: list[str] = []

    async def settle(instruction: SettlementInstruction) -> None:
        calls.append(instruction.market_id)
        if instruction.market_id == "1.bad":
            raise RuntimeError("ledger unavailable")

    tracker = ResultsTracker()
    for market_id in ("1.bad", "1.good"):
        instruction = tracker.observe(change(closed(market_id=market_id)))
        assert instruction is not None
        await channel.publish(instruction)
    reader = asyncio.create_task(channel.run(settle))
    await asyncio.wait_for(channel.drained(), 5)
    reader.cancel()
    assert calls == ["1.bad", "1.bad", "1.bad", "1.good"]
    assert [(i.market_id, why) for i, why in channel.unsettled] == [
        ("1.bad", "RuntimeError('ledger unavailable')")
    ]
    assert channel.delivered == 1
    assert "result not settled" in caplog.text
