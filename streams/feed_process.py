"""``sportsbook feed replay``: a feed as its own process, publishing to the Kafka price bus.

It first checks that every file is a Betfair stream recording (so a wrong file
publishes nothing), reads the topic back (adopting every market's newest book,
so seqs continue where the bus left them), then replays the recordings into
the bus and waits until the broker has acknowledged every record.

Results: each market that closes with a result is also published, once (and
once per correction), to ``sportsbook.results`` (:mod:`streams.results`),
after its closing price change; ``results_topic=None`` turns that off.
"""

from __future__ import annotations

import asyncio
import bz2
import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from sportsbook_core.changes import FeedStatus, MarketChange
from streams.bus import BusItem
from streams.kafka_bus import KafkaPriceBus, KafkaSettings
from streams.replay import RecordingError, replay
from streams.results import RESULTS_TOPIC, KafkaResultsPublisher, ResultsFeed

log = logging.getLogger("sportsbook.feed")

HEARTBEAT_S = 1.0  # a quiet feed repeats its status this often (servers judge silence)

# A TTY line is redrawn this often; a pipe or log file gets a whole line this often.
TTY_PROGRESS_S = 1.0
LINE_PROGRESS_S = 10.0
# What a recording of the Exchange Stream API starts with (a catalogue file's op
# is "marketCatalogue"; ccm: the cricket stream beside some recordings).
STREAM_OPS = frozenset(
    {"connection", "authentication", "marketSubscription", "status", "heartbeat", "mcm", "ocm"}
    | {"orderSubscription", "ccm"}
)


@dataclass(frozen=True, slots=True)
class FeedReplayConfig:
    files: Sequence[Path]
    kafka: str
    topic: str
    speed: float | None = None
    loop: bool = False
    progress: bool = True
    concurrent: bool = False
    results_topic: str | None = RESULTS_TOPIC


@dataclass(frozen=True, slots=True)
class FeedReplayResult:
    adopted_markets: int
    published: int
    rejected: int
    producer_restarts: int
    seconds: float
    results: int = 0


class NotARecording(ValueError):
    """A file given to the feed is not a Betfair stream recording."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is not a Betfair stream recording: {reason}")
        self.path = path
        self.reason = reason


class BrokenRecording(ValueError):
    """A recording went bad part-way through the replay (after ``published`` updates)."""

    def __init__(self, error: RecordingError, published: int) -> None:
        super().__init__(f"{error} (after publishing {plural(published, 'update')})")
        self.published = published


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


# ---- checking the files up front -------------------------------------------------
def check_recordings(paths: Sequence[Path]) -> None:
    """Raise :class:`NotARecording` for the first file whose first message is not Betfair's."""
    for path in paths:
        reason = _first_message_problem(path)
        if reason is not None:
            raise NotARecording(path, reason)


def _first_message_problem(path: Path) -> str | None:
    """Why the first message of ``path`` is not a stream message (an object with an ``op``)."""
    try:
        with _open(path) as handle:
            line = next(_non_blank(handle), None)
            if line is None:
                return "the file is empty"
            first = _decode_first(line, handle)
    except (OSError, EOFError, ValueError) as error:  # bad .bz2 data, unreadable file
        return str(error)
    if isinstance(first, str):
        return first
    message = first[0] if isinstance(first, list) and first else first
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        return 'its first message is not a JSON object with an "op"'
    if message["op"] not in STREAM_OPS:
        return f"its first message is op {message['op']!r}, not a stream message"
    return None


def _open(path: Path) -> IO[bytes]:
    return bz2.open(path, "rb") if path.suffix == ".bz2" else path.open("rb")


def _non_blank(handle: IO[bytes]) -> Iterator[bytes]:
    return (line for line in handle if line.strip())


def _decode_first(line: bytes, handle: IO[bytes]) -> object:
    """The first line decoded; a pretty-printed sample is one JSON document. A str: why not."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as error:
        if not line.lstrip().startswith((b"{", b"[")):
            return f"its first line is not JSON ({error})"
    try:
        return orjson.loads(line + handle.read())
    except orjson.JSONDecodeError as error:
        return f"neither JSON lines nor one JSON document ({error})"


# ---- progress ----------------------------------------------------------------------
class FeedProgress:
    """One status line on stderr: redrawn in place on a TTY, else a whole line now and then.

    ``end`` finishes a redrawn line with a newline, so what follows starts clean.
    """

    def __init__(self, enabled: bool, stream: IO[str] | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.every_s = TTY_PROGRESS_S if self.tty else LINE_PROGRESS_S
        self._open_line = False
        self._last = -float("inf")

    def show(self, text: str, *, now: bool = False) -> None:
        """``text`` as the status, unless one was shown less than ``every_s`` ago."""
        if not self.enabled:
            return
        clock = time.monotonic()
        if not now and clock - self._last < self.every_s:
            return
        self._last = clock
        if self.tty:
            self.stream.write(f"\r\x1b[K{text}")
            self._open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """A line of its own (after ending any status line)."""
        if self.enabled:
            self.end()
            self.stream.write(text + "\n")
            self.stream.flush()

    def end(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False


class _Counter:
    """Counts what the feed publishes (the progress line's numbers)."""

    def __init__(self, bus: KafkaPriceBus) -> None:
        self.bus = bus
        self.first = bus.position
        self.markets: set[str] = set()
        self.heartbeats = 0
        self.last_status = FeedStatus(0, healthy=True)
        self.last_sent = time.monotonic()
        self._mark = (time.monotonic(), bus.position)

    @property
    def published(self) -> int:
        """Updates published (heartbeats are not updates)."""
        return self.bus.position - self.first - self.heartbeats

    async def publish(self, item: BusItem) -> None:
        await self.bus.publish(item)
        self.last_sent = time.monotonic()
        if isinstance(item, MarketChange):
            self.markets.add(item.market_id)
        elif isinstance(item, FeedStatus):
            self.last_status = item

    async def heartbeat(self) -> None:
        """Repeat the feed's last status when it has been quiet for a second, so
        servers can tell a quiet feed from a dead one (``serve --feed-silence``)."""
        while True:
            await asyncio.sleep(HEARTBEAT_S - (time.monotonic() - self.last_sent))
            if time.monotonic() - self.last_sent >= HEARTBEAT_S:
                last = self.last_status
                await self.bus.publish(
                    FeedStatus(int(time.time() * 1000), last.healthy, last.reason)
                )
                self.last_sent = time.monotonic()
                self.heartbeats += 1

    def status(self) -> str:
        now, position = time.monotonic(), self.bus.position
        rate = (position - self._mark[1]) / max(now - self._mark[0], 1e-9)
        self._mark = (now, position)
        return (
            f"feed: published {plural(self.published, 'update')} "
            f"({plural(len(self.markets), 'market')}, {rate:,.0f}/s)"
        )


async def _report(progress: FeedProgress, counter: _Counter) -> None:
    while True:
        await asyncio.sleep(progress.every_s)
        progress.show(counter.status(), now=True)


# ---- the run -----------------------------------------------------------------------
async def run_feed_replay(
    config: FeedReplayConfig, progress: FeedProgress | None = None
) -> FeedReplayResult:
    started = time.monotonic()
    check_recordings(config.files)
    progress = progress or FeedProgress(config.progress)
    bus = KafkaPriceBus(KafkaSettings(config.kafka, config.topic, client_id="sportsbook-feed"))
    results = None
    if config.results_topic is not None:
        results = KafkaResultsPublisher(config.kafka, config.results_topic)
    try:
        await bus.start()
        adopted = await _rebuild(bus, progress)
        await bus.start_publisher()
        if results is not None:
            await results.start()
        counter = _Counter(bus)
        try:
            await _replay(config, counter, progress, results)
        except (RecordingError, ExceptionGroup) as error:
            broken = _recording_error(error)
            if broken is None:
                raise
            # No flush: a sibling replay cancelled mid-publish can leave it waiting forever.
            raise BrokenRecording(broken, counter.published) from error
        await bus.flush()
        return FeedReplayResult(
            adopted,
            counter.published,
            bus.rejected_changes,
            bus.producer_restarts,
            round(time.monotonic() - started, 3),
            0 if results is None else results.published,
        )
    finally:
        progress.end()
        await bus.close()
        if results is not None:
            await results.close()


def _recording_error(error: Exception) -> RecordingError | None:
    """The RecordingError, also from inside the TaskGroup of a concurrent looped replay."""
    if isinstance(error, RecordingError):
        return error
    if isinstance(error, ExceptionGroup):
        for inner in error.exceptions:
            found = _recording_error(inner) if isinstance(inner, Exception) else None
            if found is not None:
                return found
    return None


async def _rebuild(bus: KafkaPriceBus, progress: FeedProgress) -> int:
    def show(done: int, total: int) -> None:
        progress.show(f"feed: reading the bus back {done:,}/{total:,}")

    adopted = await bus.rebuild_sequencer(show if progress.enabled else None)
    if adopted:
        progress.say(f"feed: continuing {plural(adopted, 'market')} already on the bus")
    progress.end()
    return adopted


async def _replay(
    config: FeedReplayConfig,
    counter: _Counter,
    progress: FeedProgress,
    results: KafkaResultsPublisher | None = None,
) -> None:
    reporter = asyncio.create_task(_report(progress, counter)) if progress.enabled else None
    heartbeat = asyncio.create_task(counter.heartbeat())
    sink = counter.publish if results is None else ResultsFeed(counter.publish, results)
    try:
        await replay(
            list(config.files),
            sink,
            speed=config.speed,
            loop=config.loop,
            concurrent=config.concurrent,
        )
    finally:
        for task in (heartbeat, reporter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
