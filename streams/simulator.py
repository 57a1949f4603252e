"""A deterministic price simulator: a feed adapter for load tests and field cases.

Each selection's price walks the CLASSIC ladder one tick at a time, driven
by a seeded PRNG, at a fixed total rate of changes per second. The last value
produced is therefore reproducible, and a test can compare it with what a
subscriber was sent last.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sportsbook_core.catalogue import MarketDefinition, MarketStatus, SelectionDefinition
from sportsbook_core.changes import FeedStatus, MarketChange
from sportsbook_core.ladder import CLASSIC, price_from_hundredths

Sink = Callable[[MarketChange | FeedStatus], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    markets: int = 1
    selections: int = 3
    rate: float = 1000.0  # changes per second across all markets
    duration_s: float | None = None
    seed: int = 7

    @classmethod
    def parse(cls, text: str) -> SimulatorConfig:
        """``MARKETS:RATE[:SECONDS]``, e.g. ``1:10000:60``."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError("use MARKETS:RATE[:SECONDS]")
        duration = float(parts[2]) if len(parts) == 3 else None
        return cls(markets=int(parts[0]), rate=float(parts[1]), duration_s=duration)


def _tomorrow() -> datetime:
    today = datetime.now(UTC).replace(hour=20, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)


def simulated_definition(index: int, selections: int) -> MarketDefinition:
    return MarketDefinition(
        market_id=f"9.{index:06d}",
        event_id=f"SIM{index:06d}",
        event_name=f"Simulated event {index}",
        name="Match Odds",
        market_type="MATCH_ODDS",
        sport="simulated",
        start_time=_tomorrow(),  # pre-match: bets need no in-play delay
        status=MarketStatus.OPEN,
        in_play=False,
        bet_delay_ms=0,
        selections=tuple(
            SelectionDefinition(str(s + 1), f"Selection {s + 1}", sort_priority=s)
            for s in range(selections)
        ),
    )


class _Walk:
    def __init__(self, config: SimulatorConfig) -> None:
        self._rng = random.Random(config.seed)
        self._config = config
        self._ticks = [
            [100 + 20 * s for s in range(config.selections)] for _ in range(config.markets)
        ]
        self.produced = 0

    def first(self, index: int) -> MarketChange:
        definition = simulated_definition(index, self._config.selections)
        prices = tuple(
            (str(s + 1), price_from_hundredths(CLASSIC.rungs[t]))
            for s, t in enumerate(self._ticks[index])
        )
        return MarketChange(definition.market_id, _now_ms(), definition, prices)

    def step(self) -> MarketChange:
        index = self.produced % self._config.markets
        selection = self._rng.randrange(self._config.selections)
        ticks = self._ticks[index]
        move = self._rng.choice((-1, 1))
        ticks[selection] = min(max(ticks[selection] + move, 0), len(CLASSIC.rungs) - 1)
        self.produced += 1
        price = price_from_hundredths(CLASSIC.rungs[ticks[selection]])
        return MarketChange(f"9.{index:06d}", _now_ms(), None, ((str(selection + 1), price),))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def simulate(config: SimulatorConfig, sink: Sink) -> int:
    """Publish definitions, then ``rate`` changes/s until ``duration_s``; returns the count."""
    walk = _Walk(config)
    for index in range(config.markets):
        await sink(walk.first(index))
    loop = asyncio.get_running_loop()
    started = loop.time()
    while config.duration_s is None or loop.time() - started < config.duration_s:
        due = int((loop.time() - started) * config.rate)
        while walk.produced < due:
            await sink(walk.step())
        await asyncio.sleep(0.005)
    return walk.produced
