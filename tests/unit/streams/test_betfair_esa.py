"""Betfair ESA adapter on the single-message samples: protocol handling, exact values."""

from __future__ import annotations

import bz2
import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest

from sportsbook_core.catalogue import (
    EachWayTerms,
    MarketStatus,
    SelectionStatus,
)
from sportsbook_core.changes import FeedStatus, MarketChange
from sportsbook_core.ladder import LadderType
from sportsbook_core.prices import Price
from streams.betfair_esa import (
    BetfairProtocolError,
    BetfairStreamAdapter,
    FeedItem,
    Message,
    count_lines,
    open_recording,
    parse_market_definition,
    runner_key,
    sport_name,
    to_decimal,
)
from tests.testkit.data import betfair_market, betfair_sample


def sample(name: str) -> list[Message]:
    return list(open_recording(betfair_sample(name)))


def only(name: str) -> Message:
    messages = sample(name)
    assert len(messages) == 1
    return messages[0]


def feed_all(adapter: BetfairStreamAdapter, messages: list[Message]) -> list[FeedItem]:
    return [item for message in messages for item in adapter.feed(message)]


def market_changes(items: list[FeedItem]) -> list[MarketChange]:
    assert all(isinstance(item, MarketChange) for item in items)
    return [item for item in items if isinstance(item, MarketChange)]


def prices_of(change: MarketChange) -> dict[str, str | None]:
    return {sid: None if price is None else price.to_wire() for sid, price in change.prices}


# ---------------------------------------------------------------------- reading


def test_reads_plain_and_bz2_recordings_line_by_line() -> None:
    plain = next(open_recording(betfair_market("flumine_BASIC-1.132153978.jsonl")))
    packed = next(open_recording(betfair_market("betfair_database_1.145405534.jsonl.bz2")))

    assert (plain["op"], plain["pt"], plain["clk"]) == ("mcm", 1497351220318, "3515399387")
    assert (packed["op"], packed["pt"]) == ("mcm", 1532085161468)
    assert count_lines(betfair_market("flumine_BASIC-1.132153978.jsonl")) == 480
    assert count_lines(betfair_market("betfair_database_1.145405534.jsonl.bz2")) == 681


def test_skips_ops_other_than_mcm_and_status() -> None:
    assert list(open_recording(betfair_market("flumine_1.200806927.cricket_ccm.jsonl"))) == []
    assert sample("nautilus_connection.json") == []
    assert sample("nautilus_ocm_FULL_IMAGE.json") == []
    assert [m["op"] for m in sample("nautilus_status.json")] == ["status"]


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "bz2"])
def test_tolerates_blank_lines_and_spaced_json(tmp_path: Path, packed: bool) -> None:
    first = only("nautilus_mcm_UPDATE.json")
    second = only("nautilus_mcm_HEARTBEAT.json")
    text = "\n".join(
        [
            "",
            json.dumps(first),  # spaced: ", " and ": "
            "   ",
            '{"op": "ccm", "id": 1, "clk": "x", "pt": 1, "cc": []}',
            json.dumps(second, separators=(",", ":")) + "   ",
            "",
        ]
    )
    path = tmp_path / ("rec.jsonl.bz2" if packed else "rec.jsonl")
    path.write_bytes(bz2.compress(text.encode()) if packed else text.encode())

    assert list(open_recording(path)) == [first, second]
    assert count_lines(path) == 3


def test_reads_pretty_printed_samples_and_message_lists() -> None:
    updates = sample("nautilus_market_updates.json")

    assert [m["pt"] for m in updates] == [
        1617253902641,
        1617253903160,
        1617253903672,
        1617253931106,
    ]
    assert only("nautilus_mcm_UPDATE.json")["clk"] == "AHMAcArtjjje"


def test_a_corrupt_line_fails_loudly_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(only("nautilus_mcm_HEARTBEAT.json")) + '\n{"op": "mcm", "pt": \n')

    with pytest.raises(BetfairProtocolError, match=r"broken\.jsonl:2"):
        list(open_recording(path))


# ---------------------------------------------------------------------- numbers


def test_floats_become_exact_decimals_at_the_boundary() -> None:
    decoded = orjson.loads(b'{"spn": 2.650644127, "bsp": 3.9161586776799058, "p": 1000}')

    assert to_decimal(decoded["spn"]) == Decimal("2.650644127")
    assert str(to_decimal(decoded["spn"])) == "2.650644127"
    assert str(to_decimal(decoded["bsp"])) == "3.9161586776799058"
    assert to_decimal(decoded["p"]) == Decimal(1000)
    assert to_decimal(1.1) == Decimal("1.1")  # not 1.100000000000000088817841970012523


@pytest.mark.parametrize("bad", [True, None, "NaN", "Infinity", "abc", [1]])
def test_non_numbers_are_refused(bad: object) -> None:
    with pytest.raises(BetfairProtocolError):
        to_decimal(bad)


def test_runner_key_is_id_and_exact_handicap() -> None:
    assert runner_key({"id": "42153"}) == (42153, None)
    assert runner_key({"id": 9163, "hc": -3.75}) == (9163, Decimal("-3.75"))
    assert runner_key({"id": 9163, "hc": None}) == (9163, None)
    assert runner_key({"id": 9163, "hc": -0.0}) == (9163, Decimal(0))
    assert str(runner_key({"id": 9163, "hc": -0.0})[1]) == "0"


@pytest.mark.parametrize(
    ("event_type", "sport"),
    [
        ("1", "football"),
        ("2", "tennis"),
        ("3", "golf"),
        ("4", "cricket"),
        ("7", "horse-racing"),
        ("4339", "greyhound-racing"),
        ("7522", "basketball"),
        ("6423", "sport-6423"),
    ],
)
def test_sport_names(event_type: str, sport: str) -> None:
    assert sport_name(event_type) == sport


# ------------------------------------------------------------------ definitions


def test_definition_fields_from_a_racing_sub_image() -> None:
    adapter = BetfairStreamAdapter()
    [change] = market_changes(adapter.feed(only("nautilus_mcm_SUB_IMAGE.json")))
    definition = change.definition
    assert definition is not None
    state = adapter.cache.market("1.180737206")
    assert state is not None and state.parsed is not None

    assert definition.market_id == "1.180737206"
    assert definition.event_id == "30361178"
    assert definition.event_name == "Event 30361178"  # no eventName, no catalogue
    assert definition.name == "Win"  # derived from marketType
    assert definition.sport == "horse-racing"
    assert definition.start_time == datetime(2021, 3, 19, 2, 7, tzinfo=UTC)  # 12:07+10:00
    assert definition.status is MarketStatus.OPEN
    assert (definition.in_play, definition.bet_delay_ms) == (False, 0)
    assert definition.country == "GB"
    assert state.parsed.venue == "Kempton"
    assert definition.ladder is LadderType.CLASSIC  # no priceLadderDefinition
    assert definition.fractional is True  # GB horse racing
    assert definition.number_of_winners == 1
    assert definition.each_way is None
    assert definition.version == 1400311331
    first = definition.selections[0]
    assert (first.selection_id, first.name, first.sort_priority) == (
        "19248890",
        "Runner 19248890",
        1,
    )
    assert first.adjustment_factor == Decimal("44.323")
    assert [s.selection_id for s in definition.selections] == [
        "19248890",
        "38848248",
        "10921178",
        "3601619",
        "13388439",
        "35510787",
        "10147870",
    ]


def test_image_prices_every_runner_on_the_fractional_ladder() -> None:
    """GB racing snaps down the customary ladder: 2.54 / 1.05 = 2.419… → 11/8 (2.375).

    46/1.05 = 43.8 → 40/1; 4.6/1.05 = 4.38 → 10/3; 5.8/1.05 = 5.52 → 9/2;
    1.8/1.05 = 1.714 → 4/6 (1.667); 42/1.05 = 40 → 33/1 (40/1 needs 41).
    """
    [change] = market_changes(BetfairStreamAdapter().feed(only("nautilus_mcm_SUB_IMAGE.json")))

    assert change.image is True
    assert change.feed_clk == "AAAAAAAA"
    assert change.published_at_ms == 1471370159007
    assert prices_of(change) == {
        "19248890": "40/1",
        "38848248": "11/8",
        "10921178": "10/3",
        "3601619": "9/2",
        "13388439": "4/6",
        "35510787": "10/3",
        "10147870": "33/1",
    }
    assert dict(change.prices)["38848248"] == Price.from_fraction(11, 8)


def test_in_play_delay_and_market_name_derivation() -> None:
    adapter = BetfairStreamAdapter()
    [change] = market_changes(adapter.feed(only("nautilus_mcm_UPDATE_md.json")))
    definition = change.definition
    assert definition is not None

    assert definition.name == "Game By Game 01 07"
    assert definition.sport == "tennis"
    assert definition.status is MarketStatus.SUSPENDED
    assert (definition.in_play, definition.bet_delay_ms) == (True, 5000)
    assert definition.fractional is False


def test_each_way_terms_from_each_way_divisor() -> None:
    [change] = market_changes(
        BetfairStreamAdapter().feed(only("betfair_parser_mcm_market_definition_each_way.json"))
    )
    definition = change.definition
    assert definition is not None

    assert definition.each_way == EachWayTerms(places=2, fraction=Fraction(1, 4))
    assert definition.each_way.to_wire() == {"places": 2, "fraction": "1/4"}
    assert definition.number_of_winners == 2
    assert (definition.name, definition.event_name) == ("Each Way", "Catterick 20th May")
    assert definition.market_type == "EACH_WAY"
    assert definition.selections[0].name == "Militia"
    assert definition.selections[0].adjustment_factor == Decimal("20.67")
    assert definition.fractional is True


def _racing_definition() -> dict[str, Any]:
    md = only("nautilus_mcm_SUB_IMAGE.json")["mc"][0]["marketDefinition"]
    assert isinstance(md, dict)
    return md


def test_runner_and_market_status_mapping() -> None:
    md = copy.deepcopy(_racing_definition())
    md["status"] = "INACTIVE"
    statuses = ["REMOVED_VACANT", "HIDDEN", "WINNER", "LOSER", "PLACED", "REMOVED", "ACTIVE"]
    for runner, status in zip(md["runners"], statuses, strict=True):
        runner["status"] = status

    definition = parse_market_definition("1.180737206", md).definition

    assert definition.status is MarketStatus.SUSPENDED  # INACTIVE
    assert [(s.selection_id, s.status) for s in definition.selections] == [
        ("19248890", SelectionStatus.REMOVED),  # REMOVED_VACANT
        # 38848248 HIDDEN: skipped
        ("10921178", SelectionStatus.WINNER),
        ("3601619", SelectionStatus.LOSER),
        ("13388439", SelectionStatus.PLACED),
        ("35510787", SelectionStatus.REMOVED),
        ("10147870", SelectionStatus.ACTIVE),
    ]


def test_unknown_statuses_fail_loudly() -> None:
    md = copy.deepcopy(_racing_definition())
    md["status"] = "PAUSED"
    with pytest.raises(BetfairProtocolError, match="PAUSED"):
        parse_market_definition("1.1", md)


def test_ladder_type_from_price_ladder_definition_and_asian_handicap() -> None:
    md = copy.deepcopy(_racing_definition())
    md["priceLadderDefinition"] = {"type": "FINEST"}
    assert parse_market_definition("1.1", md).definition.ladder is LadderType.FINEST
    md["bettingType"] = "ASIAN_HANDICAP_SINGLE_LINE"
    assert parse_market_definition("1.1", md).definition.ladder is LadderType.LINE_RANGE


def test_asian_handicap_zero_line_is_keyed_at_zero() -> None:
    """Betfair omits ``hc`` when it is 0; in an AH market that runner is the 0 line."""
    md = copy.deepcopy(_racing_definition())
    md["bettingType"] = "ASIAN_HANDICAP_DOUBLE_LINE"
    md["runners"] = [
        {"id": 9163, "hc": -0.25, "status": "ACTIVE", "sortPriority": 1},
        {"id": 9163, "status": "ACTIVE", "sortPriority": 2},
        {"id": 10779, "hc": 0.25, "status": "ACTIVE", "sortPriority": 3},
    ]
    parsed = parse_market_definition("1.1", md)

    assert [s.selection_id for s in parsed.definition.selections] == [
        "9163@-0.25",
        "9163@0",
        "10779@0.25",
    ]
    assert parsed.definition.selections[1].handicap == Decimal(0)
    assert parsed.definition.selections[1].name == "Runner 9163"
    assert parsed.definition.selections[2].name == "Runner 10779 +0.25"
    assert parsed.keys[9163, None] == "9163@0"


# ------------------------------------------------------------ stream mechanics


def test_only_changed_selections_are_emitted() -> None:
    """After the image, deltas that leave every book price as it was emit nothing.

    Held image (no definition yet): 13834991 best back 1.18, 3120169 best back 6.4.
    The definition (UPDATE_md, same market and runners) releases one image:
    1.18/1.05 = 1.1238 → 1.12; 6.4/1.05 = 6.095 → 6 (0.2 ticks). The three deltas
    add 1.11 to the back side, touch the lay side, and resize 6.4: no price moves.
    Deleting 1.18 and 1.17 (size 0) moves the best back to 1.16.
    """
    adapter = BetfairStreamAdapter()
    image, *deltas = sample("nautilus_market_updates.json")

    assert adapter.feed(image) == []  # held: no definition yet
    [released] = market_changes(adapter.feed(only("nautilus_mcm_UPDATE_md.json")))
    assert released.image is True and released.definition is not None
    assert prices_of(released) == {"13834991": "1.12", "3120169": "6"}
    assert [adapter.feed(delta) for delta in deltas] == [[], [], []]

    moved = copy.deepcopy(deltas[0])
    moved["mc"][0]["rc"] = [{"atb": [[1.18, 0], [1.17, 0]], "id": 13834991}]
    [change] = market_changes(adapter.feed(moved))
    assert (change.image, change.definition) == (False, None)
    assert prices_of(change) == {"13834991": "1.1"}  # best back now 1.16: 1.1047… → 1.10


def _split(message: Message, parts: int) -> list[Message]:
    """One message as SEG_START / SEG … / SEG_END, its ``mc`` list cut in ``parts``."""
    changes = message["mc"]
    size = -(-len(changes) // parts)
    segments = []
    for index in range(parts):
        segment = {k: v for k, v in message.items() if k != "mc"}
        segment["mc"] = changes[index * size : (index + 1) * size]
        segment["segmentType"] = (
            "SEG" if 0 < index < parts - 1 else ("SEG_START", "SEG_END")[index > 0]
        )
        segments.append(segment)
    return segments


def test_segments_are_buffered_and_applied_atomically_at_seg_end() -> None:
    """No sample has segmentType: a 105-market SUB_IMAGE sample is cut into three."""
    whole = only("betfair_parser_mcm_market_definition_bet_delay_models.json")
    start, middle, end = _split(whole, 3)
    adapter = BetfairStreamAdapter()

    assert adapter.feed(start) == []
    assert adapter.feed(middle) == []
    assert len(adapter.cache) == 0  # nothing applied before SEG_END
    released = market_changes(adapter.feed(end))

    assert released == market_changes(BetfairStreamAdapter().feed(whole))
    assert len(released) == len({mc["id"] for mc in whole["mc"]}) == 105
    assert all(change.image and change.definition is not None for change in released)


def test_one_market_split_across_segments_is_one_change() -> None:
    whole = only("nautilus_mcm_SUB_IMAGE.json")
    market = whole["mc"][0]
    head = {**market, "rc": market["rc"][:4]}
    tail = {"id": market["id"], "rc": market["rc"][4:]}
    segmented = [
        {**whole, "mc": [head], "segmentType": "SEG_START"},
        {"op": "mcm", "pt": whole["pt"], "clk": "seg-end", "mc": [tail], "segmentType": "SEG_END"},
    ]
    adapter = BetfairStreamAdapter()

    assert adapter.feed(segmented[0]) == []
    [change] = market_changes(adapter.feed(segmented[1]))
    [expected] = market_changes(BetfairStreamAdapter().feed(whole))

    assert change.prices == expected.prices
    assert change.feed_clk == "seg-end"  # the SEG_END message's clk


def test_img_replaces_the_market_cache() -> None:
    adapter = BetfairStreamAdapter()
    adapter.feed(only("nautilus_mcm_SUB_IMAGE.json"))
    replacement = {
        "op": "mcm",
        "clk": "img-2",
        "pt": 1471370160000,
        "mc": [{"id": "1.180737206", "img": True, "rc": [{"atb": [[3.5, 10]], "id": "38848248"}]}],
    }

    [change] = market_changes(adapter.feed(replacement))
    state = adapter.cache.market("1.180737206")
    assert state is not None

    assert change.image is True and change.definition is not None  # definition kept
    assert prices_of(change) == {  # 3.5/1.05 = 3.333…, a profit of 2.333… → 9/4 (5/2 above)
        "19248890": None,
        "38848248": "9/4",
        "10921178": None,
        "3601619": None,
        "13388439": None,
        "35510787": None,
        "10147870": None,
    }
    assert list(state.runners) == [(38848248, None)]  # no leftover runners
    runner = state.runner("38848248")
    assert runner is not None
    assert runner.atb == {Decimal("3.5"): Decimal(10)}
    assert runner.atl == {}  # the old lay ladder is gone too
    assert runner.ltp is None


def test_every_sub_image_replaces_everything_even_mid_stream() -> None:
    adapter = BetfairStreamAdapter()
    adapter.feed(only("nautilus_mcm_SUB_IMAGE.json"))
    adapter.feed(only("nautilus_market_definition_runner_removed.json"))

    assert list(adapter.cache.markets) == ["1.185781457"]  # 1.180737206 forgotten


def test_resub_delta_keeps_other_markets_and_applies_its_own() -> None:
    """RESUB_DELTA is a delta: nothing is forgotten.

    Its level triples in ``atb`` go to the level ladder: 8586946 best back 21 → 21/1.05 =
    20 exactly; 1205121 back level 0 deleted → no price; 1205126 34/1.05 = 32.38 → 32
    (2-ticks between 30 and 50). Football (eventTypeId 1) prices on decimal CLASSIC.
    """
    adapter = BetfairStreamAdapter()
    adapter.feed(only("nautilus_mcm_SUB_IMAGE.json"))
    items = adapter.feed(only("nautilus_mcm_RESUB_DELTA.json"))
    [change] = market_changes(items)
    state = adapter.cache.market("1.175776462")
    assert state is not None and state.parsed is not None

    assert set(adapter.cache.markets) == {
        "1.180737206",
        "1.176621195",
        "1.167249195",
        "1.175776462",
    }
    assert change.market_id == "1.175776462" and change.image is True
    assert change.definition is not None
    assert change.definition.status is MarketStatus.SUSPENDED
    assert prices_of(change) == {"8586946": "20", "1205121": None, "1205126": "32"}
    assert state.parsed.bsp == {
        "8586946": Decimal("3.9161586776799058"),
        "1205121": Decimal(6),
        "1205126": Decimal("7.788580259833943"),
    }


def test_heartbeat_changes_nothing() -> None:
    adapter = BetfairStreamAdapter()
    adapter.feed(only("nautilus_mcm_SUB_IMAGE.json"))
    before = adapter.cache.market("1.180737206")

    assert adapter.feed(only("nautilus_mcm_HEARTBEAT.json")) == []
    assert adapter.cache.market("1.180737206") is before
    assert list(adapter.cache.markets) == ["1.180737206"]
    assert adapter.healthy


def test_status_503_is_an_unhealthy_feed_until_a_message_without_status() -> None:
    adapter = BetfairStreamAdapter()

    assert adapter.feed(only("nautilus_mcm_latency.json")) == [
        FeedStatus(1498137379766, healthy=False, reason="LATENCY")
    ]
    assert adapter.feed(only("nautilus_mcm_latency.json")) == []  # still lagging: no repeat
    assert not adapter.healthy
    heartbeat = only("nautilus_mcm_HEARTBEAT.json")
    assert adapter.feed(heartbeat) == [FeedStatus(1471370165625, healthy=True, reason=None)]
    assert adapter.feed({**heartbeat, "status": None}) == []
    assert adapter.healthy


def test_status_messages_with_an_error_are_unhealthy() -> None:
    adapter = BetfairStreamAdapter()
    adapter.feed(only("nautilus_mcm_HEARTBEAT.json"))

    assert adapter.feed(only("nautilus_status.json")) == []  # SUCCESS
    assert adapter.feed(only("betfair_parser_status_error.json")) == [
        FeedStatus(1471370165625, healthy=False, reason="TIMEOUT")  # at the last pt seen
    ]
    assert adapter.feed(only("betfair_parser_status_error_alt.json")) == [
        FeedStatus(1471370165625, healthy=False, reason="INVALID_REQUEST")
    ]


def test_changes_before_a_definition_are_held_then_released_as_an_image() -> None:
    """SUB_IMAGE_no_market_def: two markets come without a definition.

    Held: ladders cached, nothing emitted. When a definition arrives (built here
    from the sample's own tennis definition) the held ladders price the image:
    41364 back level 0 is 100 → 100/1.05 = 95.24 → 95 (5-ticks 50..100); 41365 has
    every back level deleted and no ltp → no price.
    """
    adapter = BetfairStreamAdapter()
    message = only("nautilus_mcm_SUB_IMAGE_no_market_def.json")
    released = market_changes(adapter.feed(message))

    assert [change.market_id for change in released] == ["1.180737193"]  # 3 imgs → 1 change
    assert released[0].definition is not None
    assert released[0].definition.version == 3179911199  # the last of the three
    assert released[0].definition.country == "IT"
    held = adapter.cache.market("1.169011225")
    assert held is not None and held.definition is None
    runner = held.runner("41364")
    assert runner is None  # no definition, so no selectionId yet
    assert held.runners[41364, None].best_back == Decimal(100)

    md = copy.deepcopy(message["mc"][0]["marketDefinition"])
    md["runners"] = [
        {"status": "ACTIVE", "sortPriority": 1, "id": 41364},
        {"status": "ACTIVE", "sortPriority": 2, "id": 41365},
    ]
    definition = {"op": "mcm", "clk": "def", "pt": 1582128069000}
    definition["mc"] = [{"id": "1.169011225", "marketDefinition": md}]
    [change] = market_changes(adapter.feed(definition))

    assert change.image is True and change.definition is not None
    assert prices_of(change) == {"41364": "95", "41365": None}


def test_bsp_floats_parse_exactly() -> None:
    adapter = BetfairStreamAdapter()
    feed_all(adapter, sample("nautilus_mcm_BSP.json"))
    state = adapter.cache.market("1.185781465")
    assert state is not None
    runner = state.runner("9249757")
    assert runner is not None

    assert runner.ladders["spb"] == {Decimal(1000): Decimal("33.38"), Decimal(5): Decimal("105.95")}
    assert runner.ladders["spl"] == {
        Decimal(7): Decimal(10),
        Decimal("1.01"): Decimal("22.39"),
        Decimal(10): Decimal("63.57"),
    }
    assert runner.scalars["tv"] == Decimal("123.78")


def test_settled_bsp_near_far_and_removed_runner() -> None:
    adapter = BetfairStreamAdapter()
    settled = only("nautilus_mcm_BSP_settled.json")
    text = orjson.dumps(settled).replace(b'"spn":5.68', b'"spn":2.650644127')
    [change] = market_changes(adapter.feed(orjson.loads(text)))
    state = adapter.cache.market("1.185781465")
    assert state is not None and state.parsed is not None
    definition = change.definition
    assert definition is not None
    winner = state.runner("9249757")
    assert winner is not None

    assert winner.scalars["spn"] == Decimal("2.650644127")
    assert winner.scalars["spf"] == Decimal("5.73")
    assert state.parsed.bsp["9249757"] == Decimal("5.73")
    assert definition.status is MarketStatus.CLOSED
    removed = definition.selection("37433527")
    assert removed is not None
    assert removed.status is SelectionStatus.REMOVED
    assert removed.adjustment_factor == Decimal(0)
    assert removed.removal_date == datetime(2021, 7, 30, 5, 10, tzinfo=UTC)
    placed = definition.selection("40273293")
    assert placed is not None and placed.status is SelectionStatus.PLACED
    assert all(price is None for _, price in change.prices)  # nothing ACTIVE


def test_bsp_near_far_not_a_number_is_absent() -> None:
    adapter = BetfairStreamAdapter()
    adapter.feed(only("nautilus_mcm_BSP_settled.json"))
    update = {"op": "mcm", "clk": "x", "pt": 1627625400001}
    update["mc"] = [{"id": "1.185781465", "rc": [{"spn": "NaN", "spf": "Infinity", "id": 9249757}]}]

    assert adapter.feed(update) == []
    state = adapter.cache.market("1.185781465")
    assert state is not None
    runner = state.runner("9249757")
    assert runner is not None
    assert "spn" not in runner.scalars and "spf" not in runner.scalars


def test_runner_removed_sample_and_a_removal_with_reduction_factor() -> None:
    """The sample's definition lists 3 ACTIVE runners while its image has ladders for 2
    more (28310582, 20689392): those are cached but never published. A later definition
    (built from the sample) removes 28460059: its price goes to None in a change that
    carries the definition with adjustmentFactor 7.702 and the removal date.
    """
    adapter = BetfairStreamAdapter()
    message = only("nautilus_market_definition_runner_removed.json")
    [image] = market_changes(adapter.feed(message))
    state = adapter.cache.market("1.185781457")
    assert state is not None
    assert image.definition is not None

    assert [s.adjustment_factor for s in image.definition.selections] == [
        Decimal("13.158"),
        Decimal("12.658"),
        Decimal("7.702"),
    ]
    assert prices_of(image) == {"17427522": None, "26706332": None, "28460059": "9"}
    assert (28310582, None) in state.runners and (20689392, None) in state.runners

    md = copy.deepcopy(message["mc"][0]["marketDefinition"])
    md["runners"][2].update(status="REMOVED", removalDate="2021-07-30T03:12:45.000Z")
    md["version"] += 1
    removal = {"op": "mcm", "clk": "rm", "pt": 1627617300000}
    removal["mc"] = [{"id": "1.185781457", "marketDefinition": md}]
    [change] = market_changes(adapter.feed(removal))
    assert change.definition is not None
    removed = change.definition.selection("28460059")
    assert removed is not None

    assert change.image is False
    assert prices_of(change) == {"28460059": None}
    assert removed.status is SelectionStatus.REMOVED
    assert removed.adjustment_factor == Decimal("7.702")
    assert removed.removal_date == datetime(2021, 7, 30, 3, 12, 45, tzinfo=UTC)


def test_null_clk_and_missing_clk_are_accepted() -> None:
    """No recording has ``"clk": null``; a real sample is given one."""
    adapter = BetfairStreamAdapter()
    adapter.feed(only("nautilus_mcm_SUB_IMAGE.json"))
    update = copy.deepcopy(only("nautilus_mcm_SUB_IMAGE.json"))
    del update["ct"]
    update["mc"][0] = {"id": "1.180737206", "rc": [{"atb": [[2.54, 0]], "id": "38848248"}]}
    update["clk"] = None

    [change] = market_changes(adapter.feed(update))
    assert change.feed_clk is None
    assert prices_of(change) == {"38848248": None}

    del update["clk"]
    update["mc"][0]["rc"] = [{"atb": [[2.6, 5]], "id": "38848248"}]
    [change] = market_changes(adapter.feed(update))
    assert change.feed_clk is None
    assert prices_of(change) == {"38848248": "11/8"}  # 2.6/1.05 = 2.476 → 11/8


def test_conflated_changes_are_accepted() -> None:
    adapter = BetfairStreamAdapter()
    adapter.feed(only("nautilus_mcm_SUB_IMAGE.json"))
    conflated = only("betfair_parser_mcm_con_true.json")
    conflated["mc"][0]["id"] = "1.180737206"
    conflated["mc"][0]["rc"][0]["id"] = 19248890  # atb 450 @ 3.99 beats 46

    [change] = market_changes(adapter.feed(conflated))
    assert prices_of(change) == {"19248890": "400/1"}  # 450/1.05 = 428.6 → 400/1


def test_margin_is_a_parameter() -> None:
    adapter = BetfairStreamAdapter(margin=Decimal("0.10"))
    [change] = market_changes(adapter.feed(only("nautilus_mcm_RESUB_DELTA.json")))

    # 21 / 1.10 = 19.09 → 19; 34 / 1.10 = 30.9 → 30
    assert prices_of(change) == {"8586946": "19", "1205121": None, "1205126": "30"}
