"""Results from the feed: closed markets become settlement instructions on the results bus.

What the feed yields (docs/RESULTS.md):

* :class:`ResultsTracker` (pure, one writer) folds the feed's market changes.
  When a market's definition is CLOSED with a result for every runner it
  yields one :class:`~sportsbook_core.results.SettlementInstruction`
  (:func:`~sportsbook_core.results.instruction_from_definition`), version 1.
  A later CLOSED definition of the same market whose *result* differs (a
  runner's status, a withdrawal's time or reduction factor, the number of
  winners, the each-way terms) is a correction: the next version. The same
  result again (a repeated definition, a version bump that changes nothing)
  yields nothing, unless the market reopened in between (a replay loop relists
  it: ``relist``, or an OPEN/SUSPENDED definition): then it is yielded again
  with the same version, so that the bets struck since it reopened are settled
  (the ledger settles a replayed (market, version)'s bets still open).
  ``settledAt`` is the feed's publish time (``pt``) of the closing message.
* A result that :meth:`SettlementInstruction.review_reason` holds (more winners
  than paying places and no dead heat stated) is published all the same; the
  settlement service holds it for a trader. The tracker logs it.
* :class:`ResultsFeed` wraps a feed's price sink: every item goes to the
  prices first (so the market is seen CLOSED), then its result, if any, to a
  :class:`ResultsChannel`.

Where results travel:

* in one process, :class:`InProcessResultsChannel`: a bounded FIFO (the feed
  waits while it is full, as it does for the price bus; one reader);
* with Kafka, topic ``sportsbook.results``: key = marketId (so a market's
  versions stay in order on one partition), value = the JSON of
  :func:`schemas.results.instruction_to_wire`. :class:`KafkaResultsPublisher`
  writes (idempotent, ``acks=all``, a failed send is retried on a new producer);
  :class:`KafkaResultsSource` reads in the consumer group
  ``sportsbook-settlement`` and commits a record's offset only after the
  handler settled it (at least once: the settlement service is idempotent per
  market and version).

Both sources hand each instruction to ``handler`` (``settle(instruction)``) in
order. A handler that raises is retried with back-off (``attempts`` times);
then the instruction is logged as unsettled, kept in ``unsettled`` (bounded)
and the source moves on, so one bad market never stops every other one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from schemas.results import InvalidResult, instruction_from_wire, instruction_to_wire
from sportsbook_core.catalogue import EachWayTerms, MarketDefinition, MarketStatus
from sportsbook_core.changes import MarketChange
from sportsbook_core.results import (
    RunnerOutcome,
    SettlementInstruction,
    instruction_from_definition,
)
from streams.betfair_esa import Recording
from streams.kafka_publisher import stop_producer

__all__ = [
    "RESULTS_GROUP",
    "RESULTS_TOPIC",
    "InProcessResultsChannel",
    "KafkaResultsPublisher",
    "KafkaResultsSource",
    "ResultsChannel",
    "ResultsFeed",
    "ResultsSource",
    "ResultsTracker",
    "Settle",
    "decode_instruction",
    "encode_instruction",
    "results_of",
]

log = logging.getLogger("sportsbook.results")

RESULTS_TOPIC = "sportsbook.results"
RESULTS_GROUP = "sportsbook-settlement"

Settle = Callable[[SettlementInstruction], Awaitable[Any]]
PriceSink = Callable[[Any], Awaitable[None]]

# What decides a result: per runner (id, status, reduction factor, removal time),
# then the number of winners and the each-way terms. Prices, names, in-play, the
# definition's own version are not part of a result.
_RunnerSig = tuple[str, str, Decimal | None, datetime | None]
_Signature = tuple[tuple[_RunnerSig, ...], int | None, EachWayTerms | None]


def _signature(definition: MarketDefinition) -> _Signature:
    runners = tuple(
        (s.selection_id, s.status.value, s.adjustment_factor, s.removal_date)
        for s in definition.selections
    )
    return runners, definition.number_of_winners, definition.each_way


# --------------------------------------------------------------------- the tracker


@dataclass(slots=True)
class _Issued:
    signature: _Signature
    version: int
    reopened: bool = False  # seen OPEN/SUSPENDED (or relisted) since this was issued


def _reopens(change: MarketChange) -> bool:
    """A replay loop relisting the market, or a definition that is not CLOSED."""
    if change.relist:
        return True
    definition = change.definition
    return definition is not None and definition.status in (
        MarketStatus.OPEN,
        MarketStatus.SUSPENDED,
    )


class ResultsTracker:
    """Feed changes in, settlement instructions out: one per market, then one per correction.

    ``max_markets`` bounds the memory: the oldest issued market is forgotten
    beyond it (a correction to a market that old would be issued as version 1
    again; the settlement service sees it already has that market's result).
    """

    def __init__(self, max_markets: int = 100_000) -> None:
        if max_markets < 1:
            raise ValueError("max_markets must be positive")
        self._max = max_markets
        self._issued: dict[str, _Issued] = {}
        self.issued = 0
        self.corrections = 0
        self.reissued = 0

    def observe(self, item: object) -> SettlementInstruction | None:
        """The instruction ``item`` brings (a market just closed, closed again after it
        reopened, or its result changed)."""
        if not isinstance(item, MarketChange):
            return None
        previous = self._issued.get(item.market_id)
        if previous is not None and _reopens(item):
            previous.reopened = True
        if item.definition is None:
            return None
        definition = item.definition
        settled_at = datetime.fromtimestamp(item.published_at_ms / 1000, UTC)
        signature = _signature(definition)
        if previous is None:
            version = 1
        elif previous.signature == signature:
            if not previous.reopened:
                return None  # the same result again: a repeat, nothing new
            # Reopened (a replay loop relisted it) and closed again with the same result:
            # the same version again, so that bets struck since it reopened are settled.
            version = previous.version
        else:
            version = previous.version + 1
        instruction = instruction_from_definition(definition, version, settled_at)
        if instruction is None:
            return None
        again = previous is not None and version == previous.version
        self._remember(definition.market_id, _Issued(signature, version))
        self.issued += 1
        if again:
            self.reissued += 1
            log.info(
                "result issued again after the market reopened",
                extra={"marketId": definition.market_id, "version": version},
            )
        elif version > 1:
            self.corrections += 1
            log.warning(
                "result corrected",
                extra={"marketId": definition.market_id, "version": version},
            )
        reason = instruction.review_reason()
        if reason is not None:
            log.warning(
                "result needs a trader",
                extra={"marketId": definition.market_id, "version": version, "reason": reason},
            )
        return instruction

    def _remember(self, market_id: str, issued: _Issued) -> None:
        self._issued.pop(market_id, None)
        self._issued[market_id] = issued
        while len(self._issued) > self._max:
            del self._issued[next(iter(self._issued))]

    def version_of(self, market_id: str) -> int | None:
        """The last version issued for ``market_id``, or None."""
        issued = self._issued.get(market_id)
        return None if issued is None else issued.version


def results_of(items: Iterable[object]) -> list[SettlementInstruction]:
    """Every instruction a sequence of feed items yields, in order (tests, replay)."""
    tracker = ResultsTracker()
    found: list[SettlementInstruction] = []
    for item in items:
        instruction = tracker.observe(item)
        if instruction is not None:
            found.append(instruction)
    return found


# ------------------------------------------------------------- when a replay yields them

_RESULTED = frozenset({"WINNER", "LOSER", "PLACED", "REMOVED", "REMOVED_VACANT"})


@dataclass(frozen=True, slots=True)
class Closing:
    """When a replayed recording's market first closes with a result (its instruction).

    Seconds are wall-clock seconds from the start of the recording's replay: the
    demo replays every recording side by side from the start (``concurrent``), each
    gap ``gap ÷ speed`` capped at ``gap_cap_s``. ``open_s``: how long it is OPEN
    before that (time to place a bet); ``every_s``: a looped replay closes it again
    this often (the pass plus the pause between passes), None when not looped.
    """

    market_id: str
    label: str
    closes_at_s: float
    open_s: float
    every_s: float | None


def _label(definition: dict[str, Any]) -> str:
    place = definition.get("venue") or definition.get("eventName") or ""
    kind = definition.get("marketType") or ""
    return " ".join(part for part in (str(place), str(kind)) if part) or "market"


def closing_schedule(
    paths: Iterable[str | Path],
    *,
    speed: float,
    gap_cap_s: float,
    pass_pause_s: float | None,
) -> list[Closing]:
    """Each recording's markets that close with a result, soonest first.

    Reads the raw messages only (``pt`` and market definitions), so it costs well
    under a second for the demo set; the pacing is streams.replay's concurrent one.
    ``pass_pause_s`` None: not looped.
    """
    if speed <= 0:
        raise ValueError("speed must be positive")
    found: list[Closing] = []
    for path in paths:
        wall = 0.0
        last_pt: int | None = None
        opened: dict[str, float] = {}  # market → when it was last seen turning OPEN
        open_s: dict[str, float] = {}
        closes: dict[str, tuple[str, float, float]] = {}
        for message in Recording(path):
            pt = message.get("pt")
            if isinstance(pt, int):
                if last_pt is not None:
                    wall += min(max(pt - last_pt, 0) / 1000 / speed, gap_cap_s)
                last_pt = pt
            for change in message.get("mc") or ():
                definition = change.get("marketDefinition")
                market_id = change.get("id")
                if not definition or not isinstance(market_id, str) or market_id in closes:
                    continue
                status = definition.get("status")
                if status == "OPEN":
                    opened.setdefault(market_id, wall)
                    continue
                if market_id in opened:
                    open_s[market_id] = open_s.get(market_id, 0.0) + wall - opened.pop(market_id)
                runners = definition.get("runners") or ()
                statuses = {r.get("status") for r in runners if r.get("status") != "HIDDEN"}
                resulted = statuses and statuses <= _RESULTED and statuses - {"REMOVED"}
                if status == "CLOSED" and resulted:
                    closes[market_id] = (_label(definition), wall, open_s.get(market_id, 0.0))
        every = None if pass_pause_s is None else wall + pass_pause_s
        found += [Closing(m, lab, at, o, every) for m, (lab, at, o) in closes.items()]
    return sorted(found, key=lambda c: (c.closes_at_s, c.market_id))


# ------------------------------------------------------------------------ the codec


def encode_instruction(instruction: SettlementInstruction) -> tuple[bytes, bytes]:
    """(key, value) of the ``sportsbook.results`` record (the codec is schemas.results)."""
    return instruction.market_id.encode(), orjson.dumps(instruction_to_wire(instruction))


def decode_instruction(value: bytes) -> SettlementInstruction:
    """A record's value as an instruction; :class:`InvalidResult` if it is not one."""
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise InvalidResult(f"not JSON: {error}") from None
    return instruction_from_wire(body)


# ------------------------------------------------------------------ channel protocols


class ResultsChannel(Protocol):
    """Where a feed publishes results."""

    async def publish(self, instruction: SettlementInstruction) -> None: ...


class ResultsSource(Protocol):
    """Where the settler reads results: ``run`` hands each to ``handler``, in order, for ever."""

    async def run(self, handler: Settle) -> None: ...


class ResultsFeed:
    """A price sink that also publishes each closed market's result (after its price change)."""

    def __init__(
        self,
        prices: PriceSink,
        results: ResultsChannel,
        tracker: ResultsTracker | None = None,
    ) -> None:
        self._prices = prices
        self._results = results
        self.tracker = tracker or ResultsTracker()
        self.published = 0

    async def __call__(self, item: Any) -> None:
        await self._prices(item)
        instruction = self.tracker.observe(item)
        if instruction is not None:
            await self._results.publish(instruction)
            self.published += 1
            log.info(
                "result published",
                extra={
                    "marketId": instruction.market_id,
                    "version": instruction.version,
                    "winners": [
                        r.selection_id
                        for r in instruction.runners
                        if r.outcome is RunnerOutcome.WINNER
                    ],
                },
            )


# ---------------------------------------------------------------- handing to the settler

UNSETTLED_KEPT = 1000


class _Deliverer:
    """Calls the handler with retries; what still fails is logged and kept (bounded)."""

    def __init__(self, attempts: int, backoff_s: float) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.delivered = 0
        self.unsettled: deque[tuple[SettlementInstruction, str]] = deque(maxlen=UNSETTLED_KEPT)

    async def deliver(self, handler: Settle, instruction: SettlementInstruction) -> bool:
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                await handler(instruction)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if attempt == self.attempts:
                    self.unsettled.append((instruction, repr(error)))
                    log.exception(
                        "result not settled",
                        extra={
                            "marketId": instruction.market_id,
                            "version": instruction.version,
                        },
                    )
                    return False
                log.warning(
                    "settling a result failed; retrying",
                    extra={"marketId": instruction.market_id, "error": repr(error)},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                self.delivered += 1
                return True
        return False  # not reached


# ----------------------------------------------------------------------- in process


class ResultsChannelClosed(Exception):
    """The in-process channel was closed."""


class InProcessResultsChannel:
    """A bounded FIFO of instructions, one reader. ``publish`` waits while it is full."""

    def __init__(self, capacity: int = 1024, *, attempts: int = 5, backoff_s: float = 0.5) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._queue: asyncio.Queue[SettlementInstruction] = asyncio.Queue(capacity)
        self._deliverer = _Deliverer(attempts, backoff_s)
        self._reading = False
        self._closed = False

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def delivered(self) -> int:
        return self._deliverer.delivered

    @property
    def unsettled(self) -> deque[tuple[SettlementInstruction, str]]:
        return self._deliverer.unsettled

    async def publish(self, instruction: SettlementInstruction) -> None:
        if self._closed:
            raise ResultsChannelClosed
        await self._queue.put(instruction)

    async def run(self, handler: Settle) -> None:
        if self._reading:
            raise RuntimeError("the in-process results channel has one reader")
        self._reading = True
        try:
            while not self._closed:
                instruction = await self._queue.get()
                try:
                    await self._deliverer.deliver(handler, instruction)
                finally:
                    self._queue.task_done()
        finally:
            self._reading = False

    async def drained(self) -> None:
        """Until every instruction published so far has been handed to the handler."""
        await self._queue.join()

    async def close(self) -> None:
        self._closed = True


# ---------------------------------------------------------------------------- Kafka


class KafkaResultsPublisher:
    """Writes instructions to ``sportsbook.results`` (key = marketId), each acknowledged.

    A send that fails (broker away, a fenced idempotent producer: B25's kind) is
    retried on a new producer until it is written; results are rare, so each is
    awaited before the next (per-market order for free).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = RESULTS_TOPIC,
        *,
        client_id: str = "sportsbook-results",
        request_timeout_ms: int = 10_000,
        retry_s: float = 1.0,
    ) -> None:
        self._bootstrap, self._topic, self._client_id = bootstrap, topic, client_id
        self._request_timeout_ms = request_timeout_ms
        self._retry_s = retry_s
        self._producer: AIOKafkaProducer | None = None
        self.published = 0
        self.restarts = 0

    async def start(self) -> None:
        self._producer = await self._new_producer()

    async def _new_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=self._request_timeout_ms,
        )
        try:
            await asyncio.wait_for(producer.start(), 3 * self._request_timeout_ms / 1000)
        except BaseException:
            await stop_producer(producer, 5.0)
            raise
        return producer

    async def publish(self, instruction: SettlementInstruction) -> None:
        key, value = encode_instruction(instruction)
        while True:
            try:
                if self._producer is None:
                    self._producer = await self._new_producer()
                    self.restarts += 1
                await self._producer.send_and_wait(self._topic, value, key=key)
            except (KafkaError, OSError, TimeoutError) as error:
                log.warning(
                    "results publish failed; retrying on a new producer",
                    extra={"marketId": instruction.market_id, "error": repr(error)},
                )
                producer, self._producer = self._producer, None
                if producer is not None:
                    await stop_producer(producer, 5.0)
                await asyncio.sleep(self._retry_s)
            else:
                self.published += 1
                return

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await stop_producer(producer, 10.0)


class KafkaResultsSource:
    """Reads ``sportsbook.results`` in a consumer group; commits after the handler settled.

    An undecodable record is logged, counted and skipped (its offset committed),
    so a record this version cannot read never stops settlement.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = RESULTS_TOPIC,
        *,
        group_id: str = RESULTS_GROUP,
        client_id: str = "sportsbook-settlement",
        attempts: int = 5,
        backoff_s: float = 0.5,
        retry_s: float = 1.0,
    ) -> None:
        self._bootstrap, self._topic = bootstrap, topic
        self._group_id, self._client_id = group_id, client_id
        self._deliverer = _Deliverer(attempts, backoff_s)
        self._retry_s = retry_s
        self._closed = False
        self.undecodable = 0

    @property
    def delivered(self) -> int:
        return self._deliverer.delivered

    @property
    def unsettled(self) -> deque[tuple[SettlementInstruction, str]]:
        return self._deliverer.unsettled

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def run(self, handler: Settle) -> None:
        """For ever (until :meth:`close` or cancellation); a lost broker is waited for."""
        while not self._closed:
            consumer = self._consumer()
            try:
                await consumer.start()
                await self._consume(consumer, handler)
            except (KafkaError, OSError) as error:
                log.warning(
                    "results reader lost the broker; retrying", extra={"error": repr(error)}
                )
                await asyncio.sleep(self._retry_s)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 10.0)

    async def _consume(self, consumer: AIOKafkaConsumer, handler: Settle) -> None:
        while not self._closed:
            fetched = await consumer.getmany(timeout_ms=500, max_records=100)
            for tp, records in fetched.items():
                for record in records:
                    await self._one(handler, record.value, record.offset)
                    await consumer.commit(
                        {TopicPartition(tp.topic, tp.partition): record.offset + 1}
                    )

    async def _one(self, handler: Settle, value: bytes, offset: int) -> None:
        try:
            instruction = decode_instruction(value)
        except InvalidResult as error:
            self.undecodable += 1
            log.error("undecodable result skipped", extra={"offset": offset, "error": str(error)})
            return
        await self._deliverer.deliver(handler, instruction)

    async def close(self) -> None:
        self._closed = True
