"""Betfair Exchange Stream (ESA) adapter: recordings in, normalised changes out.

``open_recording`` reads a recording (one JSON message per line, plain or
``.bz2``); :class:`BetfairStreamAdapter` folds each message into a per-market
cache and returns the :class:`~sportsbook_core.changes.MarketChange` and
:class:`~sportsbook_core.changes.FeedStatus` values the price bus carries. The
adapter is a plain synchronous state machine: no I/O, no event loop.

Numbers. ``orjson`` decodes JSON numbers to ``float``; every exchange number
(prices, sizes, handicaps, BSPs, adjustment factors) is converted at this
boundary with ``Decimal(repr(x))``. ``repr`` of a float is the shortest text
that round-trips, i.e. the digits Betfair wrote, so ``2.650644127`` stays
exactly ``Decimal("2.650644127")``. Nothing past :func:`to_decimal` sees a float.

Choices (documented here, pinned by tests):

* Every ``SUB_IMAGE`` (even mid-stream) replaces the whole cache: markets not
  in it are forgotten, and every market in it is an image (``img`` or not).
* A market's changes before its first definition are **held**: its ladders are
  cached, nothing is emitted; the change that brings the definition is an
  ``image=True`` change priced from the held ladders.
* The first change published for a market, and every ``img``, is
  ``image=True`` with the full definition and every selection's price.
* Segmented changes (``SEG_START``/``SEG``/``SEG_END``) are buffered and applied
  at ``SEG_END`` as one message: one change per market, emitted together.
* Runner status ``REMOVED_VACANT`` is ``REMOVED``; ``HIDDEN`` runners are
  **skipped** (not offered and not shown; a REMOVED would imply a non-runner
  with a reduction factor, which Betfair did not say).
* Runner key (id, hc): the selectionId is ``selection_key(id, hc)``. Betfair
  omits ``hc`` when it is 0, also on the 0 line of ASIAN_HANDICAP markets; there
  a missing ``hc`` means line 0 (``"9163@0"``, handicap 0), elsewhere none.
* Best back = highest ``atb`` price, else level 0 of ``batb``, else of
  ``bdatb`` (best lay likewise, lowest ``atl``); both representations are kept.
  A 3-element ``atb``/``atl`` entry ``[level, price, size]`` (seen in nautilus
  fixtures) is applied to ``batb``/``batl``.
* Feed health: an ``mcm`` with ``status`` 503 gives ``FeedStatus(healthy=False,
  reason="LATENCY")`` (another code: ``"STATUS_<code>"``), once per transition;
  the next ``mcm`` with no/null status gives ``FeedStatus(healthy=True)``. A
  ``status`` message carrying an error gives ``FeedStatus(False, errorCode)``
  at the last seen ``pt``. Health items come before the message's market changes.
"""

from __future__ import annotations

import bz2
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, TypeAlias

import orjson

from sportsbook_core.catalogue import (
    EachWayTerms,
    MarketDefinition,
    MarketStatus,
    SelectionDefinition,
    SelectionStatus,
    selection_key,
)
from sportsbook_core.changes import FeedStatus, MarketChange
from sportsbook_core.ladder import LadderType
from sportsbook_core.prices import Price
from sportsbook_core.pricing import (
    DEFAULT_MARGIN,
    ExchangeQuote,
    PricingPolicy,
    book_price,
    reference_odds,
)

__all__ = [
    "BetfairMarketCache",
    "BetfairProtocolError",
    "BetfairStreamAdapter",
    "CatalogueEntry",
    "FeedItem",
    "MarketState",
    "Message",
    "ParsedDefinition",
    "Recording",
    "RunnerBook",
    "RunnerKey",
    "catalogue_beside",
    "count_lines",
    "load_catalogue",
    "open_recording",
    "parse_market_definition",
    "parse_time",
    "runner_key",
    "sport_name",
    "to_decimal",
]

Message: TypeAlias = dict[str, Any]
FeedItem: TypeAlias = MarketChange | FeedStatus
RunnerKey: TypeAlias = tuple[int, Decimal | None]

logger = logging.getLogger(__name__)


class BetfairProtocolError(ValueError):
    """A message or recording that is not valid ESA data."""


# --------------------------------------------------------------------- numbers


def to_decimal(value: object) -> Decimal:
    """An exchange number as an exact Decimal (floats via their shortest repr)."""
    if type(value) is float:  # orjson's numbers; type() also keeps bool out of int
        result = Decimal(repr(value))
    elif type(value) is int:
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise BetfairProtocolError(f"expected a number, got {value!r}") from None
    else:
        raise BetfairProtocolError(f"expected a number, got {value!r}")
    if not result.is_finite():
        raise BetfairProtocolError(f"expected a finite number, got {value!r}")
    return result


def _handicap(value: object) -> Decimal | None:
    if value is None:
        return None
    handicap = to_decimal(value)
    return Decimal(0) if handicap == 0 else handicap  # never "-0"


def runner_key(raw: Mapping[str, Any]) -> RunnerKey:
    """The (id, hc) key of a runner change or runner definition."""
    try:
        return int(raw["id"]), _handicap(raw.get("hc"))
    except (KeyError, TypeError, ValueError) as exc:
        raise BetfairProtocolError(f"bad runner id in {dict(raw)!r}") from exc


def parse_time(text: object) -> datetime:
    """An ESA date-time (``2022-04-19T18:26:00.000Z``, ``...+10:00``) as a UTC datetime."""
    if not isinstance(text, str):
        raise BetfairProtocolError(f"expected a date-time string, got {text!r}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BetfairProtocolError(f"bad date-time {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --------------------------------------------------------------------- reading

_WANTED_OPS = frozenset({"mcm", "status"})


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return path.open("rb")


class Recording:
    """One recording, read lazily message by message.

    ``lines_read`` counts the non-blank lines consumed so far (for progress).
    Only ``mcm`` and ``status`` messages are yielded (``ccm``, ``connection``,
    order-stream ``ocm`` … are skipped). A file whose first line is not a whole
    JSON value is read as one JSON document (a message or a list of messages),
    which is how the pretty-printed single-message samples are stored.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lines_read = 0

    def __iter__(self) -> Iterator[Message]:
        with _open_binary(self.path) as handle:
            yield from self._messages(handle)

    def _messages(self, handle: IO[bytes]) -> Iterator[Message]:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            self.lines_read += 1
            try:
                decoded = orjson.loads(line)
            except orjson.JSONDecodeError:
                if self.lines_read == 1:
                    yield from self._document(line + handle.read())
                    return
                raise BetfairProtocolError(f"{self.path}:{lineno}: not a JSON message") from None
            yield from self._wanted(decoded, f"{self.path}:{lineno}")

    def _document(self, text: bytes) -> Iterator[Message]:
        try:
            decoded = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise BetfairProtocolError(f"{self.path}: not JSON lines nor JSON: {exc}") from None
        self.lines_read = sum(1 for line in text.splitlines() if line.strip())
        yield from self._wanted(decoded, str(self.path))

    @staticmethod
    def _wanted(decoded: object, where: str) -> Iterator[Message]:
        items = decoded if isinstance(decoded, list) else [decoded]
        for item in items:
            if not isinstance(item, dict):
                raise BetfairProtocolError(f"{where}: a message must be an object")
            if item.get("op") in _WANTED_OPS:
                yield item


def open_recording(path: str | Path) -> Iterator[Message]:
    """The ``mcm``/``status`` messages of a recording, in file order, streamed."""
    return iter(Recording(path))


def count_lines(path: str | Path) -> int:
    """Non-blank lines of a recording (plain or .bz2): the progress total."""
    with _open_binary(Path(path)) as handle:
        return sum(1 for line in handle if line.strip())


# ------------------------------------------------------------------- catalogue


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """What a listMarketCatalogue record adds: names the stream may lack."""

    market_id: str
    market_name: str | None = None
    event_name: str | None = None
    competition: str | None = None
    runner_names: Mapping[RunnerKey, str] = field(default_factory=dict)


def _catalogue_entry(raw: Mapping[str, Any]) -> CatalogueEntry:
    names: dict[RunnerKey, str] = {}
    for runner in raw.get("runners") or ():
        # The catalogue writes handicap 0.0 where the stream omits hc.
        handicap = _handicap(runner.get("handicap"))
        key = int(runner["selectionId"]), None if handicap == 0 else handicap
        names[key] = str(runner["runnerName"])
    event = raw.get("event") or {}
    competition = raw.get("competition") or {}
    return CatalogueEntry(
        market_id=str(raw["marketId"]),
        market_name=raw.get("marketName"),
        event_name=event.get("name"),
        competition=competition.get("name"),
        runner_names=names,
    )


def load_catalogue(path: str | Path) -> dict[str, CatalogueEntry]:
    """A listMarketCatalogue JSON file (one record or a list) by market id."""
    decoded = orjson.loads(Path(path).read_bytes())
    records = decoded if isinstance(decoded, list) else [decoded]
    entries = (_catalogue_entry(record) for record in records)
    return {entry.market_id: entry for entry in entries}


def catalogue_beside(recording: str | Path) -> Path | None:
    """``<name>.catalogue.json`` next to ``<name>.jsonl[.bz2]``, when it exists."""
    path = Path(recording)
    name = path.name
    for suffix in (".bz2", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    candidate = path.with_name(f"{name}.catalogue.json")
    return candidate if candidate.exists() else None


# ---------------------------------------------------------------- runner books

_PRICE_LADDERS = ("atb", "atl", "trd", "spb", "spl")
_LEVEL_LADDERS = ("batb", "batl", "bdatb", "bdatl")
_SCALARS = frozenset({"ltp", "tv", "spn", "spf"})
_LEVEL_FOR = {"atb": "batb", "atl": "batl"}
_MEMO_SIZE = 8192  # distinct (reference odds, policy) pairs kept; a ladder has ~350 rungs
_NOT_A_NUMBER = frozenset({"NaN", "Infinity", "-Infinity"})  # spn/spf as Betfair writes them

PriceLadder: TypeAlias = dict[Decimal, Decimal]
LevelLadder: TypeAlias = dict[int, tuple[Decimal, Decimal]]


def _level_price(levels: LevelLadder) -> Decimal | None:
    top = levels.get(0)
    return None if top is None else top[0]


class RunnerBook:
    """One runner's exchange state: price→size ladders, level ladders, scalars."""

    __slots__ = ("ladders", "levels", "scalars")

    def __init__(self) -> None:
        self.ladders: dict[str, PriceLadder] = {name: {} for name in _PRICE_LADDERS}
        self.levels: dict[str, LevelLadder] = {name: {} for name in _LEVEL_LADDERS}
        self.scalars: dict[str, Decimal] = {}

    @property
    def atb(self) -> PriceLadder:
        """Available to back: price → size."""
        return self.ladders["atb"]

    @property
    def atl(self) -> PriceLadder:
        """Available to lay: price → size."""
        return self.ladders["atl"]

    @property
    def batb(self) -> LevelLadder:
        """Best available to back: level → (price, size)."""
        return self.levels["batb"]

    @property
    def bdatb(self) -> LevelLadder:
        """Best display available to back (with virtual prices): level → (price, size)."""
        return self.levels["bdatb"]

    @property
    def ltp(self) -> Decimal | None:
        return self.scalars.get("ltp")

    @property
    def best_back(self) -> Decimal | None:
        """Highest available-to-back price, else level 0 of batb, else of bdatb."""
        atb = self.ladders["atb"]
        if atb:
            return max(atb)
        best = _level_price(self.levels["batb"])
        return best if best is not None else _level_price(self.levels["bdatb"])

    @property
    def best_lay(self) -> Decimal | None:
        """Lowest available-to-lay price, else level 0 of batl, else of bdatl."""
        atl = self.ladders["atl"]
        if atl:
            return min(atl)
        best = _level_price(self.levels["batl"])
        return best if best is not None else _level_price(self.levels["bdatl"])

    def quote(self) -> ExchangeQuote:
        return ExchangeQuote(self.best_back, self.best_lay, self.ltp)

    def apply(self, change: Mapping[str, Any]) -> None:
        """Fold one RunnerChange in (a null field means unchanged; unknown fields ignored)."""
        for name, value in change.items():
            if value is None:
                continue
            if name in self.ladders:
                self._apply_prices(name, value)
            elif name in self.levels:
                _apply_levels(self.levels[name], value)
            elif name in _SCALARS:
                self._apply_scalar(name, value)

    def _apply_scalar(self, name: str, value: object) -> None:
        if value in _NOT_A_NUMBER:
            self.scalars.pop(name, None)  # BSP near/far not computable yet
        else:
            self.scalars[name] = to_decimal(value)

    def _apply_prices(self, name: str, entries: Iterable[Any]) -> None:
        ladder = self.ladders[name]
        for entry in entries:
            if len(entry) == 3 and name in _LEVEL_FOR:
                _apply_levels(self.levels[_LEVEL_FOR[name]], (entry,))
                continue
            price, size = entry
            if size == 0:
                ladder.pop(to_decimal(price), None)
            else:
                ladder[to_decimal(price)] = to_decimal(size)


def _apply_levels(levels: LevelLadder, entries: Iterable[Any]) -> None:
    for level, price, size in entries:
        if size == 0:
            levels.pop(int(level), None)
        else:
            levels[int(level)] = (to_decimal(price), to_decimal(size))


# ------------------------------------------------------------------ definition

_MARKET_STATUS = {
    "INACTIVE": MarketStatus.SUSPENDED,
    "OPEN": MarketStatus.OPEN,
    "SUSPENDED": MarketStatus.SUSPENDED,
    "CLOSED": MarketStatus.CLOSED,
}
_RUNNER_STATUS = {
    "ACTIVE": SelectionStatus.ACTIVE,
    "REMOVED": SelectionStatus.REMOVED,
    "REMOVED_VACANT": SelectionStatus.REMOVED,
    "WINNER": SelectionStatus.WINNER,
    "LOSER": SelectionStatus.LOSER,
    "PLACED": SelectionStatus.PLACED,
}
_SKIPPED_RUNNER_STATUS = frozenset({"HIDDEN"})
_SPORTS = {
    "1": "football",
    "2": "tennis",
    "3": "golf",
    "4": "cricket",
    "7": "horse-racing",
    "4339": "greyhound-racing",
    "7522": "basketball",
}
_FRACTIONAL_SPORTS = frozenset({"horse-racing", "greyhound-racing"})
_FRACTIONAL_COUNTRIES = frozenset({"GB", "IE"})
_MARKET_TYPE_NAMES = {"PLACE": "To Be Placed", "EACH_WAY": "Each Way"}
_LADDERS = {kind.value: kind for kind in LadderType}


def sport_name(event_type_id: object) -> str:
    """Betfair eventTypeId → the product's sport slug (``"sport-<id>"`` if unknown)."""
    key = str(event_type_id)
    return _SPORTS.get(key, f"sport-{key}")


@dataclass(frozen=True, slots=True)
class ParsedDefinition:
    """A market definition plus what the core type has no field for."""

    definition: MarketDefinition
    keys: Mapping[RunnerKey, str]  # stream (id, hc) → selectionId
    key_of: Mapping[str, RunnerKey]  # selectionId → stream (id, hc)
    venue: str | None = None
    bsp: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _ParsedRunner:
    key: RunnerKey
    selection: SelectionDefinition
    bsp: Decimal | None


def _is_handicap_market(md: Mapping[str, Any]) -> bool:
    return str(md.get("bettingType") or "").startswith("ASIAN_HANDICAP")


def _ladder_type(md: Mapping[str, Any]) -> LadderType:
    if _is_handicap_market(md):
        return LadderType.LINE_RANGE
    kind = (md.get("priceLadderDefinition") or {}).get("type")
    return _LADDERS.get(str(kind), LadderType.CLASSIC)


def _runner_name(key: RunnerKey, raw: Mapping[str, Any], catalogue: CatalogueEntry | None) -> str:
    name = raw.get("name")
    if name:
        return str(name)
    if catalogue is not None and key in catalogue.runner_names:
        return catalogue.runner_names[key]
    runner_id, handicap = key
    if handicap is None:
        return f"Runner {runner_id}"
    return f"Runner {runner_id} {format(handicap.normalize(), '+f')}"


def _optional_decimal(value: object) -> Decimal | None:
    return None if value is None else to_decimal(value)


def _parse_runner(
    raw: Mapping[str, Any], catalogue: CatalogueEntry | None, handicap_market: bool, index: int
) -> _ParsedRunner | None:
    status_text = raw.get("status", "ACTIVE")
    if status_text in _SKIPPED_RUNNER_STATUS:
        return None
    if status_text not in _RUNNER_STATUS:
        raise BetfairProtocolError(f"unknown runner status {status_text!r}")
    key = runner_key(raw)
    handicap = key[1] if key[1] is not None or not handicap_market else Decimal(0)
    removal = raw.get("removalDate")
    selection = SelectionDefinition(
        selection_id=selection_key(key[0], handicap),
        name=_runner_name(key, raw, catalogue),
        handicap=handicap,
        status=_RUNNER_STATUS[status_text],
        sort_priority=int(raw.get("sortPriority") or index + 1),
        adjustment_factor=_optional_decimal(raw.get("adjustmentFactor")),
        removal_date=None if removal is None else parse_time(removal),
    )
    return _ParsedRunner(key, selection, _optional_decimal(raw.get("bsp")))


def _market_name(md: Mapping[str, Any], catalogue: CatalogueEntry | None) -> str:
    if md.get("name"):
        return str(md["name"])
    if catalogue is not None and catalogue.market_name:
        return catalogue.market_name
    market_type = str(md.get("marketType") or "")
    return _MARKET_TYPE_NAMES.get(market_type, market_type.replace("_", " ").title())


def _event_name(md: Mapping[str, Any], catalogue: CatalogueEntry | None) -> str:
    if md.get("eventName"):
        return str(md["eventName"])
    if catalogue is not None and catalogue.event_name:
        return catalogue.event_name
    return f"Event {md.get('eventId')}"


def _each_way(md: Mapping[str, Any]) -> EachWayTerms | None:
    divisor, places = md.get("eachWayDivisor"), md.get("numberOfWinners")
    if md.get("marketType") != "EACH_WAY" or not divisor or not places:
        return None
    return EachWayTerms(places=int(places), fraction=1 / Fraction(to_decimal(divisor)))


def _market_status(md: Mapping[str, Any]) -> MarketStatus:
    text = md.get("status")
    if text not in _MARKET_STATUS:
        raise BetfairProtocolError(f"unknown market status {text!r}")
    return _MARKET_STATUS[text]


def parse_market_definition(
    market_id: str, md: Mapping[str, Any], catalogue: CatalogueEntry | None = None
) -> ParsedDefinition:
    """An ESA MarketDefinition (always a full definition) as the core's type."""
    handicap_market = _is_handicap_market(md)
    parsed = [
        _parse_runner(raw, catalogue, handicap_market, index)
        for index, raw in enumerate(md.get("runners") or ())
    ]
    runners = [runner for runner in parsed if runner is not None]
    sport, country = sport_name(md.get("eventTypeId")), md.get("countryCode")
    winners = md.get("numberOfWinners")
    definition = MarketDefinition(
        market_id=market_id,
        event_id=str(md.get("eventId") or ""),
        event_name=_event_name(md, catalogue),
        name=_market_name(md, catalogue),
        market_type=str(md.get("marketType") or ""),
        sport=sport,
        start_time=parse_time(md.get("marketTime") or md.get("openDate")),
        status=_market_status(md),
        in_play=bool(md.get("inPlay")),
        bet_delay_ms=int(md.get("betDelay") or 0) * 1000,
        selections=tuple(runner.selection for runner in runners),
        competition=None if catalogue is None else catalogue.competition,
        country=country,
        each_way=_each_way(md),
        number_of_winners=None if winners is None else int(winners),
        ladder=_ladder_type(md),
        fractional=sport in _FRACTIONAL_SPORTS and country in _FRACTIONAL_COUNTRIES,
        version=int(md.get("version") or 0),
    )
    return ParsedDefinition(
        definition=definition,
        keys={runner.key: runner.selection.selection_id for runner in runners},
        key_of={runner.selection.selection_id: runner.key for runner in runners},
        venue=md.get("venue"),
        bsp={r.selection.selection_id: r.bsp for r in runners if r.bsp is not None},
    )


# ----------------------------------------------------------------------- cache


@dataclass(slots=True)
class MarketState:
    """One market as the adapter holds it (inspectable; not published)."""

    market_id: str
    parsed: ParsedDefinition | None = None
    runners: dict[RunnerKey, RunnerBook] = field(default_factory=dict)
    published: dict[str, Price | None] = field(default_factory=dict)
    announced: bool = False
    tv: Decimal | None = None

    @property
    def definition(self) -> MarketDefinition | None:
        return None if self.parsed is None else self.parsed.definition

    def runner(self, selection_id: str) -> RunnerBook | None:
        """The exchange state of a selection by its selectionId (``"9163@-4"``)."""
        if self.parsed is None or selection_id not in self.parsed.key_of:
            return None
        return self.runners.get(self.parsed.key_of[selection_id])


@dataclass(slots=True)
class _Pending:
    """What one message did to one market, before it is published."""

    image: bool = False
    redefined: bool = False
    touched: set[RunnerKey] = field(default_factory=set)


class BetfairMarketCache:
    """Every market's exchange state; turns market changes (``mc``) into MarketChanges."""

    def __init__(
        self,
        margin: Decimal = DEFAULT_MARGIN,
        catalogue: Mapping[str, CatalogueEntry] | None = None,
    ) -> None:
        self.margin = margin
        self.catalogue: Mapping[str, CatalogueEntry] = catalogue or {}
        self.markets: dict[str, MarketState] = {}
        self._memo: dict[tuple[Decimal | None, PricingPolicy], Price | None] = {}

    def market(self, market_id: str) -> MarketState | None:
        return self.markets.get(market_id)

    def __len__(self) -> int:
        return len(self.markets)

    def apply(
        self,
        changes: Iterable[Mapping[str, Any]],
        *,
        sub_image: bool,
        published_at_ms: int,
        clk: str | None,
    ) -> list[MarketChange]:
        """Fold one message's ``mc`` list in; one MarketChange per market at most."""
        if sub_image:
            self.markets.clear()
        pending: dict[str, _Pending] = {}
        for change in changes:
            market_id = str(change["id"])
            state = self.markets.setdefault(market_id, MarketState(market_id))
            # In a SUB_IMAGE a market is an image once per message (segments add to it).
            image = bool(change.get("img")) or (sub_image and market_id not in pending)
            self._fold(state, change, pending.setdefault(market_id, _Pending()), image)
        published = (
            self._publish(self.markets[market_id], todo, published_at_ms, clk)
            for market_id, todo in pending.items()
        )
        return [change for change in published if change is not None]

    def _fold(
        self, state: MarketState, change: Mapping[str, Any], todo: _Pending, image: bool
    ) -> None:
        if image:
            state.runners = {}
            todo.image = True
        raw_definition = change.get("marketDefinition")
        if raw_definition is not None:
            parsed = parse_market_definition(
                state.market_id, raw_definition, self.catalogue.get(state.market_id)
            )
            todo.redefined |= state.parsed is None or parsed.definition != state.definition
            state.parsed = parsed
        for runner_change in change.get("rc") or ():
            key = runner_key(runner_change)
            book = state.runners.get(key)
            if book is None:
                book = state.runners[key] = RunnerBook()
            book.apply(runner_change)
            todo.touched.add(key)
        if change.get("tv") is not None:
            state.tv = to_decimal(change["tv"])

    def _publish(
        self, state: MarketState, todo: _Pending, published_at_ms: int, clk: str | None
    ) -> MarketChange | None:
        if state.parsed is None:
            return None  # held until the market's definition arrives
        if todo.image or not state.announced:
            return self._image(state, state.parsed, published_at_ms, clk)
        return self._delta(state, state.parsed, todo, published_at_ms, clk)

    def _image(
        self, state: MarketState, parsed: ParsedDefinition, published_at_ms: int, clk: str | None
    ) -> MarketChange:
        prices = self._prices(state, parsed.definition.selections)
        state.published, state.announced = dict(prices), True
        return MarketChange(
            state.market_id,
            published_at_ms,
            definition=parsed.definition,
            prices=tuple(prices),
            image=True,
            feed_clk=clk,
        )

    def _delta(
        self,
        state: MarketState,
        parsed: ParsedDefinition,
        todo: _Pending,
        published_at_ms: int,
        clk: str | None,
    ) -> MarketChange | None:
        selections = parsed.definition.selections
        if todo.redefined:  # statuses may have changed: reprice every selection
            live = {s.selection_id for s in selections}
            state.published = {k: v for k, v in state.published.items() if k in live}
        else:
            ids = {parsed.keys[key] for key in todo.touched if key in parsed.keys}
            selections = tuple(s for s in selections if s.selection_id in ids)
        changed = self._changed(state, selections)
        if not changed and not todo.redefined:
            return None
        return MarketChange(
            state.market_id,
            published_at_ms,
            definition=parsed.definition if todo.redefined else None,
            prices=tuple(changed),
            feed_clk=clk,
        )

    def _changed(
        self, state: MarketState, selections: Iterable[SelectionDefinition]
    ) -> list[tuple[str, Price | None]]:
        changed: list[tuple[str, Price | None]] = []
        for sid, price in self._prices(state, selections):
            if sid not in state.published or state.published[sid] != price:
                state.published[sid] = price
                changed.append((sid, price))
        return changed

    def _prices(
        self, state: MarketState, selections: Iterable[SelectionDefinition]
    ) -> list[tuple[str, Price | None]]:
        if state.parsed is None:
            return []
        definition, key_of = state.parsed.definition, state.parsed.key_of
        policy = PricingPolicy(self.margin, definition.ladder, definition.fractional)
        result: list[tuple[str, Price | None]] = []
        for selection in selections:
            book = state.runners.get(key_of[selection.selection_id])
            price = None
            if selection.status is SelectionStatus.ACTIVE and book is not None:
                price = self._book_price(book.quote(), policy)
            result.append((selection.selection_id, price))
        return result

    def _book_price(self, quote: ExchangeQuote, policy: PricingPolicy) -> Price | None:
        """``book_price``, memoised on the reference odds it depends on (bounded)."""
        key = reference_odds(quote), policy
        if key not in self._memo:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = book_price(quote, policy)
        return self._memo[key]


# --------------------------------------------------------------------- adapter


class BetfairStreamAdapter:
    """ESA messages in, normalised MarketChange / FeedStatus out (synchronous)."""

    def __init__(
        self,
        *,
        margin: Decimal = DEFAULT_MARGIN,
        catalogue: Mapping[str, CatalogueEntry] | None = None,
    ) -> None:
        self.cache = BetfairMarketCache(margin, catalogue)
        self._healthy = True
        self._segments: list[Message] | None = None
        self._last_pt = 0

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def last_pt(self) -> int:
        return self._last_pt

    def feed(self, message: Mapping[str, Any]) -> list[FeedItem]:
        """Apply one message; the changes it makes visible, in order."""
        op = message.get("op")
        if op == "mcm":
            batch = self._collect(message)
            return [] if batch is None else self._process(batch)
        if op == "status":
            return self._on_status(message)
        return []

    def _collect(self, message: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
        """Buffer SEG_START/SEG; a batch to apply at SEG_END or for a plain message."""
        segment = message.get("segmentType")
        if segment in ("SEG_START", "SEG"):
            if segment == "SEG_START" and self._segments:
                logger.warning("SEG_START before SEG_END: the segments are applied together")
            self._segments = [*(self._segments or ()), dict(message)]
            return None
        buffered, self._segments = self._segments or [], None
        if buffered and segment != "SEG_END":
            logger.warning("segmented change ended without SEG_END: applied as received")
        return [*buffered, message]

    def _process(self, batch: list[Mapping[str, Any]]) -> list[FeedItem]:
        out: list[FeedItem] = []
        for message in batch:
            out.extend(self._health(message))
        last = batch[-1]
        clk = last.get("clk")
        changes = [mc for message in batch for mc in message.get("mc") or ()]
        sub_image = any(message.get("ct") == "SUB_IMAGE" for message in batch)
        if changes or sub_image:
            out.extend(
                self.cache.apply(
                    changes,
                    sub_image=sub_image,
                    published_at_ms=self._last_pt,
                    clk=None if clk is None else str(clk),
                )
            )
        return out

    def _health(self, message: Mapping[str, Any]) -> list[FeedItem]:
        pt = message.get("pt")
        if isinstance(pt, int):
            self._last_pt = pt
        status = message.get("status")
        lagging = status is not None and status != 200
        if lagging == (not self._healthy):
            return []
        self._healthy = not lagging
        if not lagging:
            return [FeedStatus(self._last_pt, True)]
        reason = "LATENCY" if status == 503 else f"STATUS_{status}"
        return [FeedStatus(self._last_pt, False, reason)]

    def _on_status(self, message: Mapping[str, Any]) -> list[FeedItem]:
        error = message.get("errorCode")
        if error is None and message.get("statusCode") != "FAILURE":
            return []
        self._healthy = False
        return [FeedStatus(self._last_pt, False, str(error or "FAILURE"))]
