"""Every frame the OddsHub really produces for the demo recordings validates against odds-frame."""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from fractions import Fraction
from typing import Any

import orjson
import pytest

from schemas.json_schemas import validator
from schemas.requests import OddsStreamRequest
from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.odds_formats import OddsFormat
from streams.bus import BusRecord
from streams.odds_hub import OddsHub
from tests.testkit.builders import definition_change, market_definition, price_change
from tests.unit.schemas.demo_stream import EPOCH, FOCUS, UNHEALTHY_REASON, DemoRun, RecordingSink

Frame = dict[str, Any]

FORMAT_PATTERNS = {
    "decimal": r"[0-9]+\.[0-9]{2,}",
    "hongkong": r"[0-9]+\.[0-9]{2,}",
    "malay": r"-?[0-9]+\.[0-9]{2,}",
    "indonesian": r"-?[0-9]+\.[0-9]{2,}",
    "american": r"[+-][1-9][0-9]*",
    "fractional": r"[1-9][0-9]*/[1-9][0-9]*",
}


@pytest.fixture(scope="module")
def frames(demo: DemoRun) -> dict[str, list[Frame]]:
    return {name: [orjson.loads(f) for f in raw] for name, raw in demo.frames.items()}


def kinds(frames: list[Frame]) -> Counter[str]:
    return Counter(frame["kind"] for frame in frames)


def priced_selections(frames: list[Frame]) -> Iterator[dict[str, Any]]:
    """Every selection (snapshot) and selection change (delta) that carries a price field."""
    for frame in frames:
        if frame["kind"] == "snapshot":
            yield from frame["market"]["selections"]
        elif frame["kind"] == "delta":
            for market in frame["markets"]:
                yield from (s for s in market["changes"].get("selections", []) if "price" in s)


def test_every_frame_of_every_subscriber_validates(demo: DemoRun) -> None:
    check = validator("odds-frame")
    errors: list[str] = []
    distinct = {frame: name for name, frame in demo.all_frames()}
    for raw, name in distinct.items():
        for error in check.iter_errors(orjson.loads(raw)):
            errors.append(f"{name} {error.json_path}: {error.message[:200]}")

    assert errors == []
    assert len(distinct) > 500


def test_the_run_produces_every_kind_of_frame_for_every_recording(
    frames: dict[str, list[Frame]],
) -> None:
    for name in ("plain", "format:decimal", "format:malay", "trickle"):
        assert {"snapshot", "delta", "heartbeat", "status"} <= set(kinds(frames[name])), name
        snapshots = {f["market"]["marketId"] for f in frames[name] if f["kind"] == "snapshot"}
        assert snapshots >= FOCUS, name
    plain_markets = {f["market"]["marketId"] for f in frames["plain"] if f["kind"] == "snapshot"}
    assert len(plain_markets) > 200  # the football capture's many markets


def test_status_frames_and_heartbeats_carry_feed_health(frames: dict[str, list[Frame]]) -> None:
    plain = frames["plain"]
    statuses = [(f["feedHealthy"], f["reason"]) for f in plain if f["kind"] == "status"]
    beats = {f["feedHealthy"] for f in plain if f["kind"] == "heartbeat"}

    assert statuses == [(False, UNHEALTHY_REASON), (True, None)]
    assert beats == {True, False}
    assert all(f["clk"].startswith(f"{EPOCH}.") for f in plain)


def test_deltas_include_multi_market_and_conflated_entries(frames: dict[str, list[Frame]]) -> None:
    for name in ("plain", "parked", "trickle", "resume"):
        held: dict[str, int] = {}
        merged = multi = 0
        for frame in frames[name]:
            if frame["kind"] == "snapshot":
                held[frame["market"]["marketId"]] = frame["market"]["seq"]
            elif frame["kind"] == "delta":
                multi += len(frame["markets"]) > 1
                for market in frame["markets"]:
                    before = held.get(market["marketId"])
                    if before is not None:
                        assert market["seq"] > before, (name, market["marketId"])
                        merged += market["seq"] > before + 1  # several changes in one entry
                    held[market["marketId"]] = market["seq"]
        assert merged > 0, name
        if name in ("plain", "trickle"):
            assert multi > 0, name


def test_delta_changes_cover_prices_statuses_and_in_play(frames: dict[str, list[Frame]]) -> None:
    fields: Counter[str] = Counter()
    for frame in frames["plain"]:
        if frame["kind"] != "delta":
            continue
        for market in frame["markets"]:
            fields.update(list(market["changes"]))
            for change in market["changes"].get("selections", []):
                fields.update(f"selection.{key}" for key in change)
                fields["selection.price=null"] += change.get("price", "") is None

    for field in ("status", "inPlay", "betDelayMs", "selections"):
        assert fields[field] > 0, field
    for field in ("selection.price", "selection.status", "selection.price=null"):
        assert fields[field] > 0, field


def test_snapshots_cover_the_extensions(frames: dict[str, list[Frame]]) -> None:
    markets = [f["market"] for f in frames["plain"] if f["kind"] == "snapshot"]
    selections = [s for m in markets for s in m["selections"]]

    assert {m["priceFormat"] for m in markets} == {"decimal", "fractional"}
    assert any(m["numberOfWinners"] is not None for m in markets)
    assert any(m["country"] is not None for m in markets)
    assert any(s["handicap"] is not None and "@" in s["selectionId"] for s in selections)
    assert any("adjustmentFactor" in s for s in selections)
    assert any("removalDate" in s and s["status"] == "REMOVED" for s in selections)
    assert not any("displayPrice" in s for s in selections)


def test_prices_are_fractions_exactly_in_fractionally_priced_markets(
    frames: dict[str, list[Frame]],
) -> None:
    by_format: dict[str, set[bool]] = {"decimal": set(), "fractional": set()}
    for frame in frames["plain"]:
        if frame["kind"] == "snapshot":
            market = frame["market"]
            for selection in market["selections"]:
                if selection["price"] is not None:
                    by_format[market["priceFormat"]].add("/" in selection["price"])

    assert by_format == {"decimal": {False}, "fractional": {True}}


@pytest.mark.parametrize("fmt", [f.value for f in OddsFormat])
def test_display_prices_come_with_every_price_in_the_asked_format(
    frames: dict[str, list[Frame]], fmt: str
) -> None:
    selections = list(priced_selections(frames[f"format:{fmt}"]))
    shown = [s["displayPrice"] for s in selections if s["price"] is not None]

    assert all("displayPrice" in s for s in selections)
    assert all(s["displayPrice"] is None for s in selections if s["price"] is None)
    assert len(shown) > 100
    assert all(re.fullmatch(FORMAT_PATTERNS[fmt], text) for text in shown), fmt


def test_in_play_only_subscriber_gets_only_in_play_markets(frames: dict[str, list[Frame]]) -> None:
    snapshots = [f["market"] for f in frames["in-play"] if f["kind"] == "snapshot"]

    assert snapshots
    assert all(m["inPlay"] for m in snapshots)


# ---------------------------------------------------------------- a small market


def hub_frames(fmt: OddsFormat | None) -> list[Frame]:
    """An each-way market with a removed runner: snapshot, then a price and a removal."""
    definition = replace(
        market_definition("1.900", selections=("11", "12", "13")),
        each_way=EachWayTerms(3, Fraction(1, 4)),
        number_of_winners=1,
        fractional=True,
    )
    removed = market_definition("1.900", selections=("11", "12", "13"), removed=frozenset({"13"}))
    removed = replace(removed, each_way=definition.each_way, number_of_winners=1, fractional=True)
    hub = OddsHub("ep", clock=lambda: 0.0)
    sink = RecordingSink()
    hub.subscribe(OddsStreamRequest(odds_format=fmt), sink).request(10)
    changes = [
        definition_change(definition, 1_000, s11="5/2", s13="10/1"),
        price_change("1.900", 2_000, s11="11/4", s12="1/1"),
        definition_change(removed, 3_000),
    ]
    for position, change in enumerate(changes):
        hub.apply_batch([BusRecord(position, change)])
    return [orjson.loads(frame) for frame in sink.frames]


@pytest.mark.parametrize("fmt", [None, OddsFormat.FRACTIONAL, OddsFormat.AMERICAN])
def test_each_way_market_frames_validate(fmt: OddsFormat | None) -> None:
    snapshot, price, removal = hub_frames(fmt)
    check = validator("odds-frame")

    for frame in (snapshot, price, removal):
        check.validate(frame)
    assert snapshot["market"]["eachWay"] == {"places": 3, "fraction": "1/4"}
    assert snapshot["market"]["selections"][0]["price"] == "5/2"
    expected = {"selectionId": "13", "price": None, "status": "REMOVED"}
    if fmt is not None:
        expected["displayPrice"] = None
    assert removal["markets"][0]["changes"]["selections"] == [expected]


# ---------------------------------------------------------------- the schema can say no


def one(frames: dict[str, list[Frame]], name: str, test: Callable[[Frame], bool]) -> Frame:
    return copy.deepcopy(next(f for f in frames[name] if test(f)))


def has_priced_change(frame: Frame) -> bool:
    return frame["kind"] == "delta" and any(
        s.get("price") for m in frame["markets"] for s in m["changes"].get("selections", [])
    )


def first_priced_change(frame: Frame) -> dict[str, Any]:
    return next(
        s
        for m in frame["markets"]
        for s in m["changes"].get("selections", [])
        if s.get("price") is not None
    )


def only_the_id(change: dict[str, Any]) -> None:
    for key in ("price", "status"):
        change.pop(key, None)


def first_priced(frame: Frame) -> dict[str, Any]:
    return next(s for s in frame["market"]["selections"] if s["price"] is not None)


def is_priced_snapshot(frame: Frame) -> bool:
    return frame["kind"] == "snapshot" and any(s["price"] for s in frame["market"]["selections"])


MUTATIONS: dict[str, tuple[str, Callable[[Frame], bool], Callable[[Frame], None]]] = {
    "price as a JSON number": (
        "plain",
        is_priced_snapshot,
        lambda f: first_priced(f).update(price=2.5),
    ),
    "price with a trailing zero": (
        "plain",
        is_priced_snapshot,
        lambda f: first_priced(f).update(price="2.50"),
    ),
    "price of evens as decimal 1": (
        "plain",
        is_priced_snapshot,
        lambda f: first_priced(f).update(price="1"),
    ),
    "price on a removed runner": (
        "plain",
        is_priced_snapshot,
        lambda f: first_priced(f).update(status="REMOVED"),
    ),
    "displayPrice with one decimal place": (
        "format:decimal",
        is_priced_snapshot,
        lambda f: first_priced(f).update(displayPrice="2.5"),
    ),
    "displayPrice null beside a price": (
        "format:american",
        is_priced_snapshot,
        lambda f: first_priced(f).update(displayPrice=None),
    ),
    "unknown snapshot field": (
        "plain",
        is_priced_snapshot,
        lambda f: f["market"].update(favourite="11"),
    ),
    "seq as a string": ("plain", is_priced_snapshot, lambda f: f["market"].update(seq="17")),
    "seq zero": ("plain", is_priced_snapshot, lambda f: f["market"].update(seq=0)),
    "updatedAt without milliseconds": (
        "plain",
        is_priced_snapshot,
        lambda f: f["market"].update(updatedAt="2026-12-03T18:00:00Z"),
    ),
    "missing eachWay": ("plain", is_priced_snapshot, lambda f: f["market"].pop("eachWay")),
    "handicap as a number": (
        "plain",
        is_priced_snapshot,
        lambda f: f["market"]["selections"][0].update(handicap=-1.5),
    ),
    "clk as a number": ("plain", lambda f: f["kind"] == "delta", lambda f: f.update(clk=17)),
    "clk without a position": (
        "plain",
        lambda f: f["kind"] == "delta",
        lambda f: f.update(clk=EPOCH),
    ),
    "delta without markets": (
        "plain",
        lambda f: f["kind"] == "delta",
        lambda f: f.update(markets=[]),
    ),
    "delta seq 1": (
        "plain",
        lambda f: f["kind"] == "delta",
        lambda f: f["markets"][0].update(seq=1),
    ),
    "empty changes": (
        "plain",
        lambda f: f["kind"] == "delta",
        lambda f: f["markets"][0].update(changes={}),
    ),
    "unknown change field": (
        "plain",
        lambda f: f["kind"] == "delta",
        lambda f: f["markets"][0]["changes"].update(name="Match Odds"),
    ),
    "selection change with only an id": (
        "plain",
        has_priced_change,
        lambda f: only_the_id(first_priced_change(f)),
    ),
    "displayPrice without a price": (
        "format:hongkong",
        has_priced_change,
        lambda f: first_priced_change(f).pop("price"),
    ),
    "unknown kind": ("plain", lambda f: f["kind"] == "heartbeat", lambda f: f.update(kind="ping")),
    "heartbeat without feedHealthy": (
        "plain",
        lambda f: f["kind"] == "heartbeat",
        lambda f: f.pop("feedHealthy"),
    ),
    "status without reason": ("plain", lambda f: f["kind"] == "status", lambda f: f.pop("reason")),
    "snapshot frame with markets": (
        "plain",
        is_priced_snapshot,
        lambda f: f.update(markets=[]),
    ),
}


@pytest.mark.parametrize("case", MUTATIONS)
def test_a_real_frame_broken_one_way_is_rejected(frames: dict[str, list[Frame]], case: str) -> None:
    name, pick, mutate = MUTATIONS[case]
    frame = one(frames, name, pick)
    check = validator("odds-frame")
    assert check.is_valid(frame)

    mutate(frame)

    assert not check.is_valid(frame), case


# ---------------------------------------------------------------- resume clk forms


def test_a_non_canonical_resume_clk_is_not_echoed() -> None:
    """common.json#/$defs/clk: a resume written "ep.0001" is answered with canonical clks."""
    hub = OddsHub("ep", clock=lambda: 0.0)
    changes = [
        definition_change(market_definition("1.1"), 0, s11="2.5"),
        definition_change(market_definition("1.2", event_id="E2"), 0, s11="3"),
        price_change("1.1", 0, s11="2.6"),
    ]
    hub.apply_batch([BusRecord(i, c) for i, c in enumerate(changes)])
    sink = RecordingSink()

    hub.subscribe(OddsStreamRequest(resume="ep.0001"), sink).request(10)

    clks = [orjson.loads(frame)["clk"] for frame in sink.frames]
    assert len(clks) == 2  # a snapshot of 1.2 (new since), then 1.1's delta
    assert clks == ["ep.1", "ep.3"]


@pytest.mark.parametrize("resume", ["ep.\u00b2", "ep.\u0661", "ep.", "other.1", "ep.-1", "1"])
def test_a_malformed_or_foreign_resume_clk_falls_back_to_snapshots(resume: str) -> None:
    """PROTOCOL.md resume: "or with fresh snapshots where it cannot" — never an exception."""
    hub = OddsHub("ep", clock=lambda: 0.0)
    changes = [
        definition_change(market_definition("1.1"), 0, s11="2.5"),
        price_change("1.1", 0, s11="2.6"),
    ]
    hub.apply_batch([BusRecord(i, c) for i, c in enumerate(changes)])
    sink = RecordingSink()

    hub.subscribe(OddsStreamRequest(resume=resume), sink).request(10)

    frames = [orjson.loads(frame) for frame in sink.frames]
    assert [(f["kind"], f["clk"], f["market"]["seq"]) for f in frames] == [("snapshot", "ep.2", 2)]
