"""Betfair ESA adapter on whole real recordings: final states and prices, exact."""

from __future__ import annotations

import functools
import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sportsbook_core.catalogue import MarketDefinition, MarketStatus, SelectionStatus
from sportsbook_core.changes import MarketChange
from sportsbook_core.ladder import LadderType
from sportsbook_core.prices import Price
from streams.betfair_esa import (
    BetfairStreamAdapter,
    catalogue_beside,
    load_catalogue,
    open_recording,
    parse_market_definition,
)
from streams.replay import iter_changes
from tests.testkit.data import betfair_market, betfair_recordings

HAMILTON = "flumine_BASIC-1.132153978.jsonl"
FOOTBALL = "betfair_parser_1.242971311.jsonl.bz2"
SHEFFIELD_WIN = "flumine_1.197931750.jsonl"


def plain_lines(name: str) -> list[dict[str, Any]]:
    """The recording read with the standard library only (an independent reading)."""
    with betfair_market(name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@functools.cache
def final_definitions(name: str) -> dict[str, MarketDefinition]:
    """The last definition published for each market over a whole replay of ``name``.

    Cached: several tests read the same replay (callers must not mutate the result).
    """
    last: dict[str, MarketDefinition] = {}
    for item in iter_changes(betfair_market(name)):
        if isinstance(item, MarketChange) and item.definition is not None:
            last[item.market_id] = item.definition
    return last


# ---------------------------------------------------------------- Hamilton 2017

HAMILTON_FINAL = {
    # selectionId: (status, adjustmentFactor, removalDate)
    "11198538": ("REMOVED", Decimal("7.14"), datetime(2017, 6, 14, 7, 0, 50, tzinfo=UTC)),
    "9606433": ("REMOVED", Decimal("5.55"), datetime(2017, 6, 14, 9, 23, 43, tzinfo=UTC)),
    "12115648": ("WINNER", Decimal("26.54"), None),
    "10299545": ("LOSER", Decimal("9.09"), None),
    "7330488": ("LOSER", Decimal("17.52"), None),
    "4090765": ("LOSER", Decimal("6.94"), None),
    "8504171": ("LOSER", Decimal("9.33"), None),
    "11313015": ("LOSER", Decimal("7.85"), None),
    "8873527": ("LOSER", Decimal("6.1"), None),
    "11267360": ("LOSER", Decimal("2.5"), None),
    "12321972": ("LOSER", Decimal("2.38"), None),
    "11695059": ("LOSER", Decimal("9.17"), None),
    "8560724": ("LOSER", Decimal("1.27"), None),
    "12314194": ("LOSER", Decimal("1.26"), None),
}


def test_hamilton_final_runner_statuses_reduction_factors_and_removals() -> None:
    raw = [
        mc["marketDefinition"]
        for m in plain_lines(HAMILTON)
        for mc in m["mc"]
        if "marketDefinition" in mc
    ]
    from_file = {
        str(r["id"]): (
            r["status"],
            Decimal(str(r["adjustmentFactor"])),
            None
            if "removalDate" not in r
            else datetime.strptime(r["removalDate"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC),
        )
        for r in raw[-1]["runners"]
    }
    [definition] = final_definitions(HAMILTON).values()
    from_adapter = {
        s.selection_id: (s.status.value, s.adjustment_factor, s.removal_date)
        for s in definition.selections
    }

    assert from_file == HAMILTON_FINAL  # the file says what the literals say …
    assert from_adapter == HAMILTON_FINAL  # … and so does the adapter
    assert definition.status is MarketStatus.CLOSED
    assert [s.name for s in definition.selections if s.status is SelectionStatus.REMOVED] == [
        "Hellavashock",
        "Hymn For The Dudes",
    ]
    assert (definition.name, definition.event_name, definition.sport) == (
        "1m Hcap",
        "Ham 14th Jun",
        "horse-racing",
    )
    assert definition.fractional is True  # GB racing


def test_basic_ltp_only_file_prices_from_last_traded() -> None:
    """BASIC files carry only ``ltp``: the book prices from it (GB racing: fractional).

    Runner 11695059, lines 2-4: ltp 15 → 15/1.05 = 14.29 → 12/1 (14/1 needs 15);
    ltp 20 → 19.05 → 18/1; ltp 25 → 23.81 → 22/1.
    """
    lines = plain_lines(HAMILTON)
    assert [m["mc"][0]["rc"] for m in lines[1:4]] == [
        [{"ltp": 15.0, "id": 11695059}],
        [{"ltp": 20.0, "id": 11695059}],
        [{"ltp": 25.0, "id": 11695059}],
    ]
    adapter = BetfairStreamAdapter()
    messages = open_recording(betfair_market(HAMILTON))
    [image] = adapter.feed(next(messages))
    assert isinstance(image, MarketChange)
    assert all(price is None for _, price in image.prices)  # nothing traded yet

    seen = [adapter.feed(next(messages)) for _ in range(3)]

    assert [
        [(c.market_id, c.prices) for c in batch if isinstance(c, MarketChange)] for batch in seen
    ] == [
        [("1.132153978", (("11695059", Price.from_fraction(12, 1)),))],
        [("1.132153978", (("11695059", Price.from_fraction(18, 1)),))],
        [("1.132153978", (("11695059", Price.from_fraction(22, 1)),))],
    ]


# ------------------------------------------------------------ football capture


def test_football_capture_markets_and_asian_handicap_keys() -> None:
    last = final_definitions(FOOTBALL)
    by_type = Counter(d.market_type for d in last.values())
    handicap = [d for d in last.values() if d.market_type == "ASIAN_HANDICAP"]
    match_odds = [d for d in last.values() if d.market_type == "MATCH_ODDS"]
    first = last["1.242972279"]
    keys = [s.selection_id for s in first.selections]

    assert len(last) == 200
    assert by_type == {"MATCH_ODDS": 140, "ASIAN_HANDICAP": 60}
    assert all(len(d.selections) == 66 for d in handicap)
    assert all(len({s.selection_id for s in d.selections}) == 66 for d in handicap)
    assert all(d.ladder is LadderType.LINE_RANGE for d in handicap)  # FINEST in the file
    assert all(d.ladder is LadderType.CLASSIC for d in match_odds)
    assert all(d.status is MarketStatus.OPEN and d.sport == "football" for d in last.values())
    assert keys[:4] == ["9163@-4", "10779@4", "9163@-3.75", "10779@3.75"]
    assert {"9163@0", "10779@0", "9163@-0.25", "10779@0.25"} <= set(keys)  # 0 line: hc omitted
    quarter = first.selection("9163@-3.75")
    assert quarter is not None and quarter.handicap == Decimal("-3.75")
    assert first.name == "Asian Handicap"


def test_football_capture_starts_with_one_image_per_market() -> None:
    """Line 1 is the SUB_IMAGE: 200 image changes. AH prices on the 0.01 line ladder:
    9163@-0.75 best back 3.02 → 3.02/1.05 = 2.876… → 2.87 (CLASSIC would say 2.86).
    """
    first_line = next(open_recording(betfair_market(FOOTBALL)))
    adapter = BetfairStreamAdapter()
    changes = adapter.feed(first_line)
    state = adapter.cache.market("1.242972279")
    assert state is not None
    runner = state.runner("9163@-0.75")
    [ah] = [c for c in changes if isinstance(c, MarketChange) and c.market_id == "1.242972279"]

    assert first_line["ct"] == "SUB_IMAGE"
    assert len(changes) == 200
    assert all(isinstance(c, MarketChange) and c.image for c in changes)
    assert runner is not None and runner.best_back == Decimal("3.02")
    assert dict(ah.prices)["9163@-0.75"] == Price.parse("2.87")


# ----------------------------------------------------------- a price at a point


def test_greyhound_book_price_after_line_20() -> None:
    """flumine_1.197931750 (Sheffield, GB greyhounds, fractional), runner 42930960.

    After line 20 its highest available-to-back price is exactly 9.6 (the level
    ladder ``bdatb`` shows 9.8 at level 0, virtual prices included; ``atb`` wins).
    Book price at 5 %: 9.6 / 1.05 = 9.142857… decimal, a profit of 8.142857…;
    the customary rung at or below is 8/1 (17/2 = 8.5 is above) → 8/1 = decimal 9.
    """
    atb: dict[Decimal, Decimal] = {}
    for message in plain_lines(SHEFFIELD_WIN)[:20]:
        for mc in message["mc"]:
            for rc in mc.get("rc") or ():
                if rc["id"] == 42930960:
                    for price, size in rc.get("atb") or ():
                        atb.pop(Decimal(str(price)), None) if size == 0 else atb.update(
                            {Decimal(str(price)): Decimal(str(size))}
                        )
    assert max(atb) == Decimal("9.6")

    adapter = BetfairStreamAdapter()
    messages = open_recording(betfair_market(SHEFFIELD_WIN))
    for _ in range(20):
        adapter.feed(next(messages))
    state = adapter.cache.market("1.197931750")
    assert state is not None
    runner = state.runner("42930960")
    assert runner is not None

    assert runner.best_back == Decimal("9.6")
    assert runner.bdatb[0] == (Decimal("9.8"), Decimal("3.37"))
    assert state.published["42930960"] == Price.from_fraction(8, 1)
    assert state.published["42930960"].to_wire() == "8/1"
    assert state.definition is not None and state.definition.fractional


# ------------------------------------------------------------ every recording

# file: (markets, final statuses, winners {selectionId: name}, removed count)
RECORDINGS: dict[str, tuple[int, set[MarketStatus], dict[str, str], int]] = {
    "betfair_database_1.145405534.jsonl.bz2": (1, {MarketStatus.CLOSED}, {"30246": "Yes"}, 0),
    "betfair_database_1.230478683.jsonl.bz2": (
        1,
        {MarketStatus.CLOSED},
        {
            "13469658": "Anirban Lahiri",
            "13469613": "Tyrrell Hatton",
            "13469612": "Patrick Reed",
            "13496376": "Sergio Garcia",
            "13496413": "Louis Oosthuizen",
        },
        1,
    ),
    "betfair_parser_1.127236622.jsonl.bz2": (
        1,
        {MarketStatus.CLOSED},
        {"11129238": "2. Hauraki"},
        0,
    ),
    "betfair_parser_1.205822330.jsonl.bz2": (
        1,
        {MarketStatus.CLOSED},
        {
            "49808334": "1. Realaide",
            "49808335": "13. Daulat Machtigamor",
            "49808342": "23. Birkin Black",
        },
        3,
    ),
    "betfair_parser_1.242971311.jsonl.bz2": (200, {MarketStatus.OPEN}, {}, 0),
    "flumine_1.197931750.jsonl": (1, {MarketStatus.CLOSED}, {"37947503": "2. Sandwood Jet"}, 0),
    "flumine_1.197931751.jsonl": (
        1,
        {MarketStatus.CLOSED},
        {"37947503": "2. Sandwood Jet", "39823721": "6. Coolavanny Galiv"},
        0,
    ),
    "flumine_1.200806927.cricket_ccm.jsonl": (0, set(), {}, 0),
    "flumine_1.200806927.jsonl": (1, {MarketStatus.CLOSED}, {"228749": "Runner 228749"}, 0),
    "flumine_BASIC-1.132153978.jsonl": (
        1,
        {MarketStatus.CLOSED},
        {"12115648": "Brother Mcgonagall"},
        2,
    ),
    "nautilus_1.166811431.jsonl.bz2": (
        1,
        {MarketStatus.CLOSED},
        {"60424": "Cleveland Cavaliers"},
        0,
    ),
    "nautilus_1.206064380.jsonl.bz2": (1, {MarketStatus.CLOSED}, {"38523163": "9. Isolating"}, 1),
}


def test_the_table_covers_every_recording() -> None:
    assert sorted(path.name for path in betfair_recordings()) == sorted(RECORDINGS)


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_every_recording_replays_to_its_known_end(name: str) -> None:
    markets, statuses, winners, removed = RECORDINGS[name]
    last = final_definitions(name)
    selections = [s for d in last.values() for s in d.selections]

    assert len(last) == markets
    assert {d.status for d in last.values()} == statuses
    assert {
        s.selection_id: s.name for s in selections if s.status is SelectionStatus.WINNER
    } == winners
    assert sum(s.status is SelectionStatus.REMOVED for s in selections) == removed


@pytest.mark.parametrize("name", [SHEFFIELD_WIN, "flumine_1.197931751.jsonl"])
def test_greyhound_winner_by_catalogue_name(name: str) -> None:
    """PROVENANCE names the winner "2. Sandwood Jet"; the catalogue maps it to its id."""
    path = betfair_market(name)
    catalogue = json.loads(path.with_name(name.replace(".jsonl", ".catalogue.json")).read_text())
    by_name = {r["runnerName"]: str(r["selectionId"]) for r in catalogue["runners"]}
    [definition] = final_definitions(name).values()
    winners = {s.selection_id for s in definition.selections if s.status is SelectionStatus.WINNER}

    assert by_name["2. Sandwood Jet"] in winners
    beside = catalogue_beside(path)
    assert beside is not None
    entry = load_catalogue(beside)[definition.market_id]
    assert entry.event_name == definition.event_name == "Sheffield 19th Apr"
    assert definition.sport == "greyhound-racing" and definition.fractional


def test_names_derive_when_neither_stream_nor_catalogue_has_them() -> None:
    """The cricket file has no names and no catalogue beside it."""
    path = betfair_market("flumine_1.200806927.jsonl")
    [definition] = final_definitions("flumine_1.200806927.jsonl").values()

    assert catalogue_beside(path) is None
    assert definition.event_name == "Event 31573045"
    assert definition.name == "Match Odds"
    assert [s.name for s in definition.selections] == ["Runner 228749", "Runner 2857977"]
    assert definition.sport == "cricket"
    assert (definition.in_play, definition.bet_delay_ms) == (True, 5000)
    assert definition.start_time == datetime(2022, 7, 11, 11, 0, tzinfo=UTC)


def test_names_come_from_the_catalogue_when_the_stream_has_none() -> None:
    path = betfair_market(SHEFFIELD_WIN)
    md = plain_lines(SHEFFIELD_WIN)[0]["mc"][0]["marketDefinition"]
    assert "eventName" not in md and "name" not in md
    assert all("name" not in runner for runner in md["runners"])
    beside = catalogue_beside(path)
    assert beside is not None
    catalogue = load_catalogue(beside)

    definition = parse_market_definition("1.197931750", md, catalogue["1.197931750"]).definition

    assert (definition.event_name, definition.name) == ("Sheffield 19th Apr", "OR 280m")
    assert [s.name for s in definition.selections] == [
        "1. Paradise Mission",
        "2. Sandwood Jet",
        "3. Kirabilly Kathy",
        "4. Gurtnacrehyblake",
        "5. Castlehill Jil",
        "6. Coolavanny Galiv",
    ]
    without = parse_market_definition("1.197931750", md).definition
    assert (without.event_name, without.name) == ("Event 31389771", "Win")
    assert without.selections[1].name == "Runner 37947503"
