"""streams.results: one instruction per closed market, corrections as versions, bounded channel."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from schemas.results import InvalidResult
from sportsbook_core.catalogue import MarketDefinition, MarketStatus, SelectionStatus
from sportsbook_core.changes import FeedStatus, MarketChange
from sportsbook_core.results import RunnerOutcome, SettlementInstruction
from streams.replay import iter_changes, replay
from streams.results import (
    InProcessResultsChannel,
    ResultsFeed,
    ResultsTracker,
    closing_schedule,
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
    assert tracker.observe(change(closed(("12",)))) is None  # the correction repeated
    third = tracker.observe(change(closed(("12",), removed={"13": Decimal("20.5")})))
    assert third is not None and third.version == 3
    assert (tracker.corrections, tracker.version_of("1.100")) == (2, 3)


def test_a_market_that_reopened_and_closed_again_yields_its_result_again() -> None:
    """A replay loop: closed (v1), relisted OPEN, closed again with the same result: v1
    again (bets struck since it reopened get settled); a plain repeat still yields nothing;
    reopened and closed with another result: the next version."""
    tracker = ResultsTracker()
    first = tracker.observe(change(closed(), 1_700_000_000_000))
    assert first is not None and first.version == 1
    assert tracker.observe(change(closed(), 1_700_000_001_000)) is None  # a repeat
    relisted = replace(change(market_definition(), 1_700_000_002_000), relist=True, image=True)
    assert tracker.observe(relisted) is None  # open: nothing
    again = tracker.observe(change(closed(), 1_700_000_003_000))
    assert again is not None
    assert (again.version, outcomes(again)) == (1, outcomes(first))
    assert again.settled_at == datetime.fromtimestamp(1_700_000_003, UTC)
    assert tracker.observe(change(closed(), 1_700_000_004_000)) is None  # a repeat again
    # reopened by a SUSPENDED definition (no relist flag), closed with the same result
    suspended = market_definition(status=MarketStatus.SUSPENDED)
    assert tracker.observe(change(suspended)) is None
    third = tracker.observe(change(closed()))
    assert third is not None and third.version == 1
    # a relist that carries prices only (no definition) also reopens it
    assert tracker.observe(MarketChange("1.100", 0, None, relist=True, image=True)) is None
    fourth = tracker.observe(change(closed()))
    assert fourth is not None and fourth.version == 1
    # reopened and closed with another result: a correction, the next version
    assert tracker.observe(change(market_definition())) is None
    corrected = tracker.observe(change(closed(("12",))))
    assert corrected is not None and corrected.version == 2
    assert outcomes(corrected)["12"] is RunnerOutcome.WINNER
    assert (tracker.issued, tracker.reissued, tracker.corrections) == (5, 3, 1)


def test_another_market_reopening_does_not_reissue_this_one() -> None:
    tracker = ResultsTracker()
    assert tracker.observe(change(closed(market_id="1.1"))) is not None
    assert tracker.observe(change(market_definition("1.2"))) is None
    assert tracker.observe(change(closed(market_id="1.1"))) is None


async def test_a_looped_replay_of_a_real_race_yields_its_result_each_pass() -> None:
    """streams.replay in loop mode (each pass relists the market) through ResultsFeed:
    the greyhound race (winner 37947503 in the recording) yields v1 on every pass."""
    found: list[SettlementInstruction] = []

    class Enough(Exception):
        pass

    class Recorder:
        async def publish(self, instruction: SettlementInstruction) -> None:
            found.append(instruction)
            if len(found) == 3:
                raise Enough

    feed = ResultsFeed(_ignore, Recorder())
    with pytest.raises(Enough):
        await replay([betfair_market("flumine_1.197931750.jsonl")], feed, speed=None, loop=True)
    assert [(i.market_id, i.version) for i in found] == [("1.197931750", 1)] * 3
    assert found[0] == found[1] == found[2]  # the same result, the same pt
    winners = {r.selection_id for r in found[0].runners if r.outcome is RunnerOutcome.WINNER}
    assert winners == {"37947503"}
    assert (feed.tracker.issued, feed.tracker.reissued) == (3, 2)


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


# --- when a replay yields results ----------------------------------------------------------


async def test_the_closing_schedule_matches_the_replay_pacing_of_a_real_race(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The greyhound race through streams.replay itself at 30x, concurrent (the demo's
    pacing), on a virtual clock: the wall second its result leaves the feed, and the
    length of the pass, are what closing_schedule says (its 157 s quiet gap counts 1 s)."""
    path = betfair_market("flumine_1.197931750.jsonl")
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += max(seconds, 0.0)

    fake_asyncio = SimpleNamespace(sleep=sleep, to_thread=asyncio.to_thread)
    monkeypatch.setattr("streams.replay.asyncio", fake_asyncio)
    monkeypatch.setattr("streams.replay.time", SimpleNamespace(monotonic=lambda: clock[0]))
    closed_at: list[float] = []

    class Recorder:
        async def publish(self, instruction: SettlementInstruction) -> None:
            closed_at.append(clock[0])

    feed = ResultsFeed(_ignore, Recorder())
    await replay([path], feed, speed=30.0, concurrent=True, start_gap_cap_s=1.0)
    [closing] = closing_schedule([path], speed=30.0, gap_cap_s=1.0, pass_pause_s=5.0)
    assert (closing.market_id, closing.label) == ("1.197931750", "Sheffield WIN")
    assert closed_at == [pytest.approx(closing.closes_at_s)]
    assert closing.every_s == pytest.approx(clock[0] + 5.0)  # the pass, then the pause
    assert 5.0 < closing.open_s < closing.closes_at_s
    once = closing_schedule([path], speed=30.0, gap_cap_s=5.0, pass_pause_s=None)
    assert once[0].every_s is None
    assert once[0].closes_at_s == pytest.approx(closing.closes_at_s + 4.0)  # 157 s gap: 5 s


def test_the_closing_schedule_caps_quiet_gaps_and_skips_markets_without_a_result() -> None:
    """The open multi-market capture never closes; the golf market's days-long quiet
    gaps count 1 s each (the cap), so it closes within minutes, not days."""
    markets = [betfair_market(n) for n in ("betfair_parser_1.242971311.jsonl.bz2",)]
    assert closing_schedule(markets, speed=30.0, gap_cap_s=1.0, pass_pause_s=5.0) == []
    golf = betfair_market("betfair_database_1.230478683.jsonl.bz2")
    [closing] = closing_schedule([golf], speed=30.0, gap_cap_s=1.0, pass_pause_s=5.0)
    assert closing.market_id == "1.230478683"
    assert 60 < closing.closes_at_s < 600
