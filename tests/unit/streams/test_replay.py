"""Replay: merged timeline, flat out and paced, looping with relists, progress."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import time
from pathlib import Path

import orjson
import pytest

from sportsbook_core.changes import FeedStatus, MarketChange
from streams.betfair_esa import FeedItem
from streams.replay import iter_changes, replay
from tests.testkit.data import betfair_market, betfair_sample

WIN = "flumine_1.197931750.jsonl"  # 166 lines over 5 minutes
PLACE = "flumine_1.197931751.jsonl"  # the same race, identical pt values
HAMILTON = "flumine_BASIC-1.132153978.jsonl"  # 480 lines over 32 hours
FOOTBALL = "betfair_parser_1.242971311.jsonl.bz2"


def paths(*names: str) -> list[Path]:
    return [betfair_market(name) for name in names]


class Collector:
    """A sink that records what it is given and can stop the replay after ``stop_after``."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.items: list[FeedItem] = []
        self.stop_after = stop_after
        self.started = asyncio.Event()

    async def __call__(self, item: FeedItem) -> None:
        self.items.append(item)
        self.started.set()
        if self.stop_after is not None and len(self.items) >= self.stop_after:
            raise asyncio.CancelledError


def market_ids_in_order(items: list[FeedItem]) -> list[str]:
    return [item.market_id for item in items if isinstance(item, MarketChange)]


def test_iter_changes_merges_recordings_by_publish_time() -> None:
    items = list(iter_changes(paths(FOOTBALL, HAMILTON)))
    times = [item.published_at_ms for item in items]
    ids = market_ids_in_order(items)

    hamilton = [i for i, market_id in enumerate(ids) if market_id == "1.132153978"]

    assert times == sorted(times)
    assert hamilton == list(range(362))  # 2017 before 2025, whatever the argument order
    assert len(items) == 362 + 1766


def test_iter_changes_breaks_ties_in_argument_order() -> None:
    """WIN and PLACE were recorded together: equal ``pt``s, WIN's changes come first."""
    items = list(iter_changes(paths(WIN, PLACE)))
    first_two = market_ids_in_order(items)[:2]

    assert first_two == ["1.197931750", "1.197931751"]
    assert len(items) == 80 + 63


def test_iter_changes_accepts_one_path() -> None:
    assert list(iter_changes(betfair_market(WIN))) == list(iter_changes(paths(WIN)))


async def test_flat_out_replay_delivers_exactly_what_iter_changes_yields() -> None:
    expected = list(iter_changes(paths(WIN, PLACE, HAMILTON)))
    sink = Collector()

    delivered = await replay(paths(WIN, PLACE, HAMILTON), sink, speed=None)

    assert sink.items == expected
    assert delivered == len(expected)


async def test_flat_out_replay_yields_to_the_event_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await replay(paths(HAMILTON), Collector(), speed=None)  # 480 messages, sink never awaits
    task.cancel()

    assert ticks >= 2


async def test_the_sink_is_awaited_one_item_at_a_time() -> None:
    in_flight = peak = 0
    seen: list[FeedItem] = []

    async def slow_sink(item: FeedItem) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        seen.append(item)
        in_flight -= 1

    await replay(paths(WIN), slow_sink, speed=None)

    assert peak == 1
    assert seen == list(iter_changes(paths(WIN)))


async def test_paced_replay_keeps_order_and_caps_quiet_gaps() -> None:
    """Hamilton spans 32 h: ×1000 that is ~115 s uncapped; gaps capped at 1 ms it is quick."""
    expected = list(iter_changes(paths(HAMILTON, WIN)))
    sink = Collector()
    started = time.monotonic()

    await replay(paths(HAMILTON, WIN), sink, speed=1000, start_gap_cap_s=0.001)

    assert sink.items == expected
    assert time.monotonic() - started < 20  # loose: the point is "not 115 s"


async def test_paced_replay_waits_in_real_time_times_speed() -> None:
    """WIN spans 323 s of ``pt``: at ×1000 about 0.32 s (the 1 s cap never binds)."""
    started = time.monotonic()
    await replay(paths(WIN), Collector(), speed=1000, start_gap_cap_s=1.0)
    elapsed = time.monotonic() - started

    assert elapsed >= 0.25  # the waits happened (lower bound only, minus jitter)


async def test_looping_relists_each_market_once_per_new_pass() -> None:
    one_pass = list(iter_changes(paths(WIN, PLACE)))
    sink = Collector(stop_after=2 * len(one_pass) + 3)

    with pytest.raises(asyncio.CancelledError):
        await replay(paths(WIN, PLACE), sink, speed=None, loop=True)

    first, second, third = (
        sink.items[: len(one_pass)],
        sink.items[len(one_pass) : 2 * len(one_pass)],
        sink.items[2 * len(one_pass) :],
    )
    assert first == one_pass
    assert not any(isinstance(i, MarketChange) and i.relist for i in first)
    for later in (second, third):
        relisted = [i for i in later if isinstance(i, MarketChange) and i.relist]
        assert [c.market_id for c in relisted] == ["1.197931750", "1.197931751"]
        assert all(c.image and c.definition is not None for c in relisted)
        assert later[:2] == relisted  # each market's first change of the pass
    assert [c for c in second if not (isinstance(c, MarketChange) and c.relist)] == one_pass[2:]


async def test_a_looping_replay_stops_when_its_task_is_cancelled() -> None:
    sink = Collector()
    task = asyncio.create_task(replay(paths(WIN), sink, speed=1.0, loop=True))
    await asyncio.wait_for(sink.started.wait(), timeout=10)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert len(sink.items) < 80  # real time: far from the end of the 5-minute race


async def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed"):
        await replay(paths(WIN), Collector(), speed=0)


async def test_progress_logs_every_ten_percent_when_not_a_tty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streams.replay")

    await replay(paths(WIN, PLACE), Collector(), speed=None, progress=True)

    records = [r for r in caplog.records if r.name == "streams.replay"]
    assert [getattr(r, "percent", None) for r in records] == list(range(10, 101, 10))
    assert all(getattr(r, "total", None) == 332 for r in records)
    assert getattr(records[-1], "done", None) == 332


async def test_progress_draws_one_line_on_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    await replay(paths(WIN), Collector(), speed=None, progress=True)

    text = terminal.getvalue()
    assert text.startswith("\rreplay [")
    assert text.endswith("\n") and text.count("\n") == 1  # one line, redrawn in place
    assert "166/166 100.0%" in text.rsplit("\r", 1)[-1]


def test_feed_status_items_take_their_place_in_the_timeline(tmp_path: Path) -> None:
    latency = orjson.loads(betfair_sample("nautilus_mcm_latency.json").read_bytes())
    heartbeat = {"op": "mcm", "clk": "hb", "pt": latency["pt"] + 5000, "ct": "HEARTBEAT"}
    recording = tmp_path / "lagging.jsonl"
    recording.write_bytes(b"\n".join(orjson.dumps(m) for m in (latency, heartbeat)))

    assert list(iter_changes([recording])) == [
        FeedStatus(1498137379766, healthy=False, reason="LATENCY"),
        FeedStatus(1498137384766, healthy=True),
    ]


class Enough(Exception):
    pass


async def test_concurrent_demo_loops_each_recording_as_soon_as_it_ends() -> None:
    """The demo (concurrent + loop): a short race restarts without waiting for the longest file.

    1,500 items flat out: fewer than the football capture's one pass (1,766 changes),
    yet the greyhound race has been relisted (new passes) several times.
    """
    items: list[FeedItem] = []

    async def sink(item: FeedItem) -> None:
        items.append(item)
        if len(items) >= 1500:
            raise Enough

    with pytest.raises(ExceptionGroup) as raised:
        await replay(paths(WIN, FOOTBALL), sink, speed=None, loop=True, concurrent=True)
    assert {type(e) for e in raised.value.exceptions} == {Enough}
    relists = [i.market_id for i in items if isinstance(i, MarketChange) and i.relist]
    win_passes = 1 + relists.count("1.197931750")
    assert win_passes >= 3
    assert set(relists) == {"1.197931750"}  # the football capture is still on its first pass
    one_pass = [i for i in iter_changes(paths(WIN)) if isinstance(i, MarketChange)]
    win_items = [i for i in items if isinstance(i, MarketChange) and i.market_id == "1.197931750"]
    assert win_items[: len(one_pass)] == one_pass


async def test_a_looping_pass_pauses_before_it_relists_so_the_close_is_seen() -> None:
    """pass_pause_s: the finished pass's last change (the race CLOSED with its result)
    stands for the pause before the next pass relists the market."""
    stamps: list[tuple[float, FeedItem]] = []
    one_pass = len(list(iter_changes(paths(WIN))))

    async def sink(item: FeedItem) -> None:
        stamps.append((time.monotonic(), item))
        if len(stamps) > one_pass:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await replay(paths(WIN), sink, speed=None, loop=True, pass_pause_s=0.3)
    (closed_at, last), (relisted_at, first) = stamps[one_pass - 1], stamps[one_pass]
    assert isinstance(last, MarketChange) and last.definition is not None
    assert last.definition.status.value == "CLOSED"
    assert isinstance(first, MarketChange) and first.relist
    assert relisted_at - closed_at >= 0.3
