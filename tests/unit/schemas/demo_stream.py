"""Drive a real OddsHub over the demo recordings, synchronously, and keep every frame.

No sockets and no event loop: the bus records are handed to ``apply_batch``
and each subscriber is a :class:`RecordingSink`. The subscribers cover every
way the hub builds frames: a subscriber that keeps up (no oddsFormat), one per
oddsFormat, one whose connection is mostly unwritable (merged, conflated
deltas over many markets), one fed demand one frame at a time, one following
in-play markets only, and one resuming from an earlier clk. A feed-health
drop and recovery are injected into the stream (status frames) and the fake
clock is moved on so that idle subscribers get heartbeats.

Every demo recording is replayed, but only its first ``CHANGES_PER_RECORDING``
changes, so the whole run (and validating it) takes a couple of seconds.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from clients.shared_data import DEMO_RECORDINGS, demo_recordings
from schemas.requests import OddsStreamRequest
from sportsbook_core.changes import FeedStatus
from sportsbook_core.odds_formats import OddsFormat
from streams.betfair_esa import FeedItem
from streams.bus import BusRecord
from streams.odds_hub import OddsHub, Subscription
from streams.replay import iter_changes

CHANGES_PER_RECORDING = 250
BATCH_SIZE = 32
EPOCH = "e5c0d31a"
UNHEALTHY_REASON = "503: stream latency"

# The market each recording is named after (the football capture's is a 66-runner
# Asian handicap market: selectionIds "<id>@<handicap>"). The subscribers with an
# oddsFormat follow only these; "plain" follows every market.
FOCUS = frozenset(
    m.group(0) for name in DEMO_RECORDINGS if (m := re.search(r"1\.\d+", name)) is not None
)


@dataclass
class RecordingSink:
    """A FrameSink that keeps what it is sent; ``open`` False is a full connection."""

    frames: list[bytes] = field(default_factory=list)
    open: bool = True

    def writable(self) -> bool:
        return self.open

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


@dataclass
class DemoRun:
    hub: OddsHub
    frames: dict[str, list[bytes]]
    items: int

    def all_frames(self) -> Iterator[tuple[str, bytes]]:
        for name, frames in self.frames.items():
            for frame in frames:
                yield name, frame


def demo_items(limit: int = CHANGES_PER_RECORDING) -> list[FeedItem]:
    """The first ``limit`` items of every demo recording, merged by publish time."""
    per_recording = [
        list(itertools.islice(iter_changes(path), limit)) for path in demo_recordings()
    ]
    return list(heapq.merge(*per_recording, key=lambda item: item.published_at_ms))


def run_demo() -> DemoRun:
    items = demo_items()
    now = [0.0]
    hub = OddsHub(EPOCH, clock=lambda: now[0])
    sinks: dict[str, RecordingSink] = {}

    def subscribe(name: str, request: OddsStreamRequest, demand: int = 1_000_000) -> Subscription:
        sink = sinks[name] = RecordingSink()
        subscription = hub.subscribe(request, sink)
        subscription.request(demand)
        return subscription

    subscribe("plain", OddsStreamRequest())
    for fmt in OddsFormat:
        subscribe(f"format:{fmt.value}", OddsStreamRequest(market_ids=FOCUS, odds_format=fmt))
    parked = subscribe(
        "parked", OddsStreamRequest(market_ids=FOCUS, odds_format=OddsFormat.FRACTIONAL)
    )
    subscribe("in-play", OddsStreamRequest(in_play_only=True, odds_format=OddsFormat.AMERICAN))
    trickle = subscribe("trickle", OddsStreamRequest(market_ids=FOCUS), demand=1)

    records = [BusRecord(i, item) for i, item in enumerate(_with_feed_status(items))]
    batches = [records[i : i + BATCH_SIZE] for i in range(0, len(records), BATCH_SIZE)]
    resume_from: str | None = None
    for number, batch in enumerate(batches, start=1):
        sinks["parked"].open = number % 6 == 0  # writable one batch in six
        hub.apply_batch(batch)
        if sinks["parked"].open:
            parked.writable()
        trickle.request(1)
        if number == len(batches) // 3:
            resume_from = hub.clk
        if number == len(batches) // 2:
            assert resume_from is not None
            subscribe(
                "resume",
                OddsStreamRequest(
                    market_ids=FOCUS, odds_format=OddsFormat.DECIMAL, resume=resume_from
                ),
            )
        if number % 10 == 0 or any(isinstance(r.item, FeedStatus) for r in batch):
            now[0] += 6.0  # past the heartbeat interval: idle subscribers get one
            hub.send_heartbeats()
    return DemoRun(hub, {name: sink.frames for name, sink in sinks.items()}, len(records))


def _with_feed_status(items: list[FeedItem]) -> list[FeedItem]:
    """The items with the feed going unhealthy halfway and recovering at three quarters."""
    half, three_quarters = len(items) // 2, 3 * len(items) // 4
    down = FeedStatus(items[half].published_at_ms, healthy=False, reason=UNHEALTHY_REASON)
    up = FeedStatus(items[three_quarters].published_at_ms, healthy=True)
    return [*items[:half], down, *items[half:three_quarters], up, *items[three_quarters:]]
