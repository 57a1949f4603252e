"""Replay Betfair recordings as one live feed: merged by publish time, paced, looped.

Each recording is read lazily and fed through its own
:class:`~streams.betfair_esa.BetfairStreamAdapter` (with the
``<name>.catalogue.json`` beside it when there is one); a heap over the
per-file iterators merges them into one timeline ordered by ``pt``.

* :func:`iter_changes` — the whole replay, synchronously, flat out (tests, bench).
* :func:`replay` — the same sequence awaited into a sink (the sink is the
  backpressure), flat out or at real time × ``speed``; optionally looped, a
  new pass re-announcing every market with ``relist=True, image=True``.

Pacing: at ``speed=N`` the wait before a message is its ``pt`` gap ÷ N, capped
at ``start_gap_cap_s`` wall seconds (recordings span days of quiet), measured
from a running deadline so processing time does not add drift. A replay more
than ``start_gap_cap_s`` behind (a slow sink) starts a new deadline rather than
bursting to catch up.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import IO

from sportsbook_core.changes import MarketChange
from sportsbook_core.pricing import DEFAULT_MARGIN
from streams.betfair_esa import (
    BetfairStreamAdapter,
    FeedItem,
    Message,
    Recording,
    catalogue_beside,
    count_lines,
    load_catalogue,
)

__all__ = ["RecordingError", "Sink", "iter_changes", "replay"]

Sink = Callable[[FeedItem], Awaitable[None]]

logger = logging.getLogger(__name__)

_YIELD_EVERY = 200  # messages between yields to the event loop when not sleeping
_TTY_REFRESH_S = 0.1


# ------------------------------------------------------------------- timeline


class RecordingError(ValueError):
    """A recording that stops making sense part-way (bad line, unparsable message):
    ``<file>:<line>: <reason>``, so a feed can say where instead of a traceback."""


# What reading or parsing a recording raises on bad data (BetfairProtocolError is a
# ValueError; KeyError: a message without a required field; OSError/EOFError: bad .bz2).
_BAD_DATA = (ValueError, TypeError, KeyError, OSError, EOFError)


def _bad_data(recording: Recording, line: int, error: BaseException) -> RecordingError:
    if isinstance(error, RecordingError):
        return error
    reason = f"missing field {error}" if isinstance(error, KeyError) else str(error)
    if reason.startswith(f"{recording.path}:"):  # the reader already said where
        return RecordingError(reason)
    return RecordingError(f"{recording.path}:{line}: {reason}")


@dataclass(slots=True)
class _Source:
    """One recording being replayed, with its own adapter."""

    index: int
    recording: Recording
    adapter: BetfairStreamAdapter
    messages: Iterator[Message]
    last_pt: int = 0
    # Concurrent demo mode: every recording starts at time 0 and its quiet gaps
    # are shortened to ``gap_cap_ms``, so all markets move at once.
    concurrent: bool = False
    gap_cap_ms: int = 0
    _raw_pt: int | None = None

    def next_entry(self) -> tuple[int, int, Message] | None:
        try:
            message = next(self.messages, None)
        except _BAD_DATA as error:
            raise _bad_data(self.recording, self.recording.lines_read + 1, error) from error
        if message is None:
            return None
        pt = message.get("pt")
        if isinstance(pt, int):
            self.last_pt = self._timeline_pt(pt)
        return self.last_pt, self.index, message  # status messages keep the file's time

    def changes(self, message: Message) -> list[FeedItem]:
        """The adapter's changes for ``message`` (the last line read); bad data names it."""
        try:
            return self.adapter.feed(message)
        except _BAD_DATA as error:
            raise _bad_data(self.recording, self.recording.lines_read, error) from error

    def _timeline_pt(self, pt: int) -> int:
        if not self.concurrent:
            return pt
        if self._raw_pt is None:
            self._raw_pt = pt
            return 0
        gap = max(pt - self._raw_pt, 0)
        self._raw_pt = pt
        return self.last_pt + min(gap, self.gap_cap_ms)


class _Timeline:
    """Every recording merged by ``pt`` (file order breaks ties), streamed."""

    def __init__(
        self, paths: Sequence[Path], margin: Decimal, gap_cap_ms: int | None = None
    ) -> None:
        self.sources = [_open_source(index, path, margin) for index, path in enumerate(paths)]
        if gap_cap_ms is not None:
            for source in self.sources:
                source.concurrent, source.gap_cap_ms = True, gap_cap_ms

    @property
    def lines_read(self) -> int:
        return sum(source.recording.lines_read for source in self.sources)

    def __iter__(self) -> Iterator[tuple[int, _Source, Message]]:
        # One entry per source at a time, so (pt, index) is unique: messages never compare.
        heap = [entry for entry in (s.next_entry() for s in self.sources) if entry is not None]
        heapq.heapify(heap)
        while heap:
            pt, index, message = heap[0]
            source = self.sources[index]
            yield pt, source, message
            entry = source.next_entry()
            if entry is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, entry)

    def close(self) -> None:
        for source in self.sources:
            close = getattr(source.messages, "close", None)
            if close is not None:
                close()


def _open_source(index: int, path: Path, margin: Decimal) -> _Source:
    beside = catalogue_beside(path)
    catalogue = None if beside is None else load_catalogue(beside)
    recording = Recording(path)
    adapter = BetfairStreamAdapter(margin=margin, catalogue=catalogue)
    return _Source(index, recording, adapter, iter(recording))


def _total_lines(paths: Sequence[Path]) -> int:
    return sum(count_lines(path) for path in paths)


def _paths(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(path) for path in paths]


def iter_changes(
    paths: Iterable[str | Path] | str | Path, *, margin: Decimal = DEFAULT_MARGIN
) -> Iterator[FeedItem]:
    """Every change of one replay pass over ``paths``, in timeline order, no asyncio."""
    timeline = _Timeline(_paths(paths), margin)
    try:
        for _, source, message in timeline:
            yield from source.changes(message)
    finally:
        timeline.close()


# ---------------------------------------------------------------------- pacing


class _Pacer:
    """Waits so that messages leave at real time × speed (gaps capped)."""

    def __init__(self, speed: float | None, gap_cap_s: float) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive or None, got {speed}")
        self._speed = speed
        self._cap = gap_cap_s
        self._last_pt: int | None = None
        self._deadline = 0.0
        self._unyielded = 0

    async def wait(self, pt: int) -> None:
        delay = self._next_delay(pt)
        if delay > 0:
            self._unyielded = 0
            await asyncio.sleep(delay)
            return
        self._unyielded += 1
        if self._unyielded >= _YIELD_EVERY:
            self._unyielded = 0
            await asyncio.sleep(0)

    def _next_delay(self, pt: int) -> float:
        if self._speed is None:
            return 0.0
        now = time.monotonic()
        if self._last_pt is None:
            self._deadline = now
        else:
            gap_s = max(0, pt - self._last_pt) / 1000 / self._speed
            self._deadline += min(gap_s, self._cap)
            if now - self._deadline > self._cap:
                self._deadline = now  # far behind (slow sink): don't burst to catch up
        self._last_pt = pt
        return self._deadline - now


# -------------------------------------------------------------------- progress


class _Progress:
    """A one-line bar on a TTY, else a structured log line every 10 %."""

    def __init__(self, total: int, enabled: bool, stream: IO[str] | None = None) -> None:
        self._stream = sys.stderr if stream is None else stream
        self._total = max(total, 1)
        self._enabled = enabled
        self._tty = enabled and self._stream.isatty()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._next_decile = 1

    def restart(self) -> None:
        self._started = time.monotonic()
        self._next_decile = 1

    def update(self, done: int) -> None:
        if not self._enabled:
            return
        if self._tty:
            now = time.monotonic()
            if now - self._last_draw >= _TTY_REFRESH_S or done >= self._total:
                self._last_draw = now
                self._stream.write("\r" + self._bar(done))
                self._stream.flush()
            return
        while self._next_decile <= 10 and done * 10 >= self._next_decile * self._total:
            self._log(done, self._next_decile * 10)
            self._next_decile += 1

    def finish(self, done: int) -> None:
        if self._tty:
            self._stream.write("\r" + self._bar(done) + "\n")
            self._stream.flush()
        else:
            self.update(done)

    def _rate(self, done: int) -> float:
        return done / max(time.monotonic() - self._started, 1e-9)

    def _bar(self, done: int, width: int = 30) -> str:
        share = min(done / self._total, 1.0)
        filled = int(share * width)
        bar = "#" * filled + "." * (width - filled)
        return f"replay [{bar}] {done}/{self._total} {share:6.1%} {self._rate(done):,.0f} msg/s"

    def _log(self, done: int, percent: int) -> None:
        logger.info(
            "replay progress percent=%d done=%d total=%d msgs_per_s=%.0f",
            percent,
            done,
            self._total,
            self._rate(done),
            extra={"percent": percent, "done": done, "total": self._total},
        )


# ---------------------------------------------------------------------- replay


class _Relister:
    """On passes after the first, each market's first change is a relist image."""

    def __init__(self, active: bool) -> None:
        self._active = active
        self._seen: set[str] = set()

    def mark(self, item: FeedItem) -> FeedItem:
        if not self._active or not isinstance(item, MarketChange):
            return item
        if item.market_id in self._seen:
            return item
        self._seen.add(item.market_id)
        return replace(item, relist=True, image=True)


@dataclass(slots=True)
class _Replayer:
    """One replay's fixed parts; each pass opens the recordings afresh."""

    files: Sequence[Path]
    sink: Sink
    pacer: _Pacer
    progress: _Progress
    margin: Decimal
    gap_cap_ms: int | None = None

    async def run_pass(self, relister: _Relister) -> int:
        timeline = _Timeline(self.files, self.margin, self.gap_cap_ms)
        delivered = 0
        self.progress.restart()
        try:
            for pt, source, message in timeline:
                await self.pacer.wait(pt)
                for item in source.changes(message):
                    await self.sink(relister.mark(item))
                    delivered += 1
                self.progress.update(timeline.lines_read)
            self.progress.finish(timeline.lines_read)
        finally:
            timeline.close()
        return delivered


async def replay(
    paths: Iterable[str | Path] | str | Path,
    sink: Sink,
    *,
    speed: float | None,
    loop: bool = False,
    progress: bool = False,
    start_gap_cap_s: float = 5.0,
    margin: Decimal = DEFAULT_MARGIN,
    concurrent: bool = False,
    pass_pause_s: float = 0.0,
) -> int:
    """Replay ``paths`` into ``sink``; the number of items delivered (loop: never returns).

    ``speed=None`` is flat out (yielding to the loop every ~200 messages);
    ``speed=N`` is real time × N with quiet gaps capped at ``start_gap_cap_s``.
    Cancel the task (or raise from the sink) to stop a looping replay.
    ``concurrent=True`` (the demo) starts every recording at once and shortens
    each recording's own quiet gaps, instead of one calendar timeline; looped,
    each recording restarts as soon as it ends (one task each, no progress bar),
    so a 10-second greyhound race does not wait an hour for the longest file.
    ``pass_pause_s`` holds each finished pass before the next one relists its
    markets, so that their CLOSED state and results are seen, not conflated away.
    """
    files = _paths(paths)
    if concurrent and loop and len(files) > 1:
        await _loop_each(
            files,
            sink,
            speed=speed,
            gap_cap_s=start_gap_cap_s,
            margin=margin,
            pass_pause_s=pass_pause_s,
        )
        return 0  # not reached: the loops end only by cancellation or an error
    total = await asyncio.to_thread(_total_lines, files) if progress else 0
    gap_cap_ms = None
    if concurrent:
        gap_cap_ms = int(start_gap_cap_s * 1000 * (speed or 1.0))
    replayer = _Replayer(
        files, sink, _Pacer(speed, start_gap_cap_s), _Progress(total, progress), margin, gap_cap_ms
    )
    delivered = await replayer.run_pass(_Relister(active=False))
    while loop:
        await asyncio.sleep(pass_pause_s)
        delivered += await replayer.run_pass(_Relister(active=True))
    return delivered


async def _loop_each(
    files: Sequence[Path],
    sink: Sink,
    *,
    speed: float | None,
    gap_cap_s: float,
    margin: Decimal,
    pass_pause_s: float,
) -> None:
    """One looping replay per recording into the shared sink; the first failure stops all."""
    async with asyncio.TaskGroup() as group:
        for path in files:
            group.create_task(
                replay(
                    [path],
                    sink,
                    speed=speed,
                    loop=True,
                    start_gap_cap_s=gap_cap_s,
                    margin=margin,
                    concurrent=True,
                    pass_pause_s=pass_pause_s,
                ),
                name=f"replay {path.name}",
            )
