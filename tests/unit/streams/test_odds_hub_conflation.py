"""OddsHub conflation without sockets: what a subscriber that fell behind is sent.

PROTOCOL.md, odds.stream: "a conflated subscriber gets one merged change
carrying the latest seq", and "one frame carries the changes of many markets".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from schemas.requests import OddsStreamRequest
from sportsbook_core.catalogue import MarketStatus
from streams.bus import BusRecord
from streams.odds_hub import OddsHub
from tests.testkit.builders import definition_change, market_definition, price_change

LOG_SIZE = 4  # the hub's per-market delta log, small so that lagging past it is cheap


@dataclass
class Sink:
    frames: list[dict[str, object]] = field(default_factory=list)
    open: bool = True

    def writable(self) -> bool:
        return self.open

    def send(self, frame: bytes) -> None:
        self.frames.append(orjson.loads(frame))


def _price_entry(market_id: str, seq: int, selection_id: str, price: str) -> dict[str, object]:
    """A delta frame's entry for a market whose only change is one selection's price."""
    return {
        "marketId": market_id,
        "seq": seq,
        "changes": {"selections": [{"selectionId": selection_id, "price": price}]},
    }


def _hub_with(markets: list[str], history_size: int = 100_000) -> tuple[OddsHub, list[BusRecord]]:
    hub = OddsHub("ep", clock=lambda: 0.0, market_log_size=LOG_SIZE, history_size=history_size)
    records = [
        BusRecord(i, definition_change(market_definition(m), s11="2", s12="3", s13="4"))
        for i, m in enumerate(markets)
    ]
    hub.apply_batch(records)
    return hub, records


def test_lagging_past_the_log_gets_one_delta_frame_with_every_market_newest_state() -> None:
    """Ten markets × 50 changes while parked (log holds 4): one delta frame, not ten snapshots."""
    markets = [f"1.{i}" for i in range(10)]
    hub, _ = _hub_with(markets)
    sink = Sink()
    sub = hub.subscribe(OddsStreamRequest(market_ids=markets), sink)
    sub.request(10)
    assert [f["kind"] for f in sink.frames] == ["snapshot"] * 10
    sink.open = False  # the connection is full: the subscriber is parked
    sub.request(5)
    position = 10
    for step in range(50):
        batch = []
        for m in markets:
            batch.append(BusRecord(position, price_change(m, s11=("2.02", "2.04")[step % 2])))
            position += 1
        hub.apply_batch(batch)
    sink.open = True
    sub.writable()
    assert len(sink.frames) == 11
    frame = sink.frames[10]
    assert frame["kind"] == "delta"
    assert frame["clk"] == "ep.510"
    entries = frame["markets"]
    assert isinstance(entries, list)
    assert [e["marketId"] for e in entries] == markets
    assert {e["seq"] for e in entries} == {51}
    assert entries[0]["changes"] == {
        "status": "OPEN",
        "inPlay": False,
        "betDelayMs": 0,
        "selections": [
            {"selectionId": "11", "price": "2.04", "status": "ACTIVE"},
            {"selectionId": "12", "price": "3", "status": "ACTIVE"},
            {"selectionId": "13", "price": "4", "status": "ACTIVE"},
        ],
    }


def test_lagging_within_the_log_gets_only_what_changed() -> None:
    """Three changes behind (log holds 4): the merged delta names only the changed selection."""
    hub, _ = _hub_with(["1.1"])
    sink = Sink()
    sub = hub.subscribe(OddsStreamRequest(market_ids=["1.1"]), sink)
    sub.request(1)
    sink.open = False
    sub.request(1)
    hub.apply_batch([BusRecord(1 + i, price_change("1.1", s12=p)) for i, p in enumerate("567")])
    sink.open = True
    sub.writable()
    assert sink.frames[1]["markets"] == [
        {"marketId": "1.1", "seq": 4, "changes": {"selections": [
            {"selectionId": "12", "price": "7"}
        ]}}
    ]  # fmt: skip


def test_a_structure_change_while_behind_still_gets_a_snapshot() -> None:
    """A runner removed by a redefinition (resync) while parked: a fresh snapshot, seq current."""
    hub, _ = _hub_with(["1.1"])
    sink = Sink()
    sub = hub.subscribe(OddsStreamRequest(market_ids=["1.1"]), sink)
    sub.request(1)
    sink.open = False
    sub.request(1)
    changes = [price_change("1.1", s11=p) for p in ("2.02", "2.04", "2.06", "2.08", "2.1")]
    changes.append(
        definition_change(market_definition("1.1", selections=("11", "12")), s11="2.1", s12="3")
    )
    changes += [price_change("1.1", s12=p) for p in ("3.05", "3.1")]
    hub.apply_batch([BusRecord(1 + i, c) for i, c in enumerate(changes)])
    sink.open = True
    sub.writable()
    frame = sink.frames[1]
    assert frame["kind"] == "snapshot"
    market = frame["market"]
    assert isinstance(market, dict)
    assert market["seq"] == 9
    assert [(s["selectionId"], s["price"]) for s in market["selections"]] == [
        ("11", "2.1"),
        ("12", "3.1"),
    ]
    assert market["status"] == MarketStatus.OPEN.value


def test_rearm_after_a_short_park_sends_only_the_markets_that_changed() -> None:
    """Parked by a full socket for a few changes: the next frame merges exactly those markets.

    The re-arm walks the resume history since the park (3 records) instead of all
    20 markets; a market that changed twice while parked arrives once, at its newest
    seq (PROTOCOL.md: "a conflated subscriber gets one merged change carrying the
    latest seq"), and unchanged markets are not mentioned.
    """
    markets = [f"1.{i}" for i in range(20)]
    hub, _ = _hub_with(markets)
    sink = Sink()
    sub = hub.subscribe(OddsStreamRequest(market_ids=markets), sink)
    sub.request(100)
    assert len(sink.frames) == 20
    sink.open = False
    hub.apply_batch([BusRecord(20, price_change("1.3", s11="2.02"))])
    hub.apply_batch([BusRecord(21, price_change("1.7", s12="3.05"))])
    hub.apply_batch([BusRecord(22, price_change("1.3", s11="2.06"))])
    assert len(sink.frames) == 20  # parked: nothing sent
    sink.open = True
    sub.writable()
    assert sink.frames[20:] == [
        {
            "kind": "delta",
            "markets": [
                _price_entry("1.3", 3, "11", "2.06"),
                _price_entry("1.7", 2, "12", "3.05"),
            ],
            "clk": "ep.23",
        }
    ]
    # armed again: the next change reaches it at once, and only once
    hub.apply_batch([BusRecord(23, price_change("1.7", s12="3.1"))])
    assert [(f["kind"], f["clk"]) for f in sink.frames[21:]] == [("delta", "ep.24")]


def test_what_was_pending_when_parked_is_still_sent_after_the_park() -> None:
    """Demand runs out mid-way: the markets already pending are not lost by the park."""
    markets = ["1.1", "1.2"]
    hub, _ = _hub_with(markets)
    sink = Sink()
    sub = hub.subscribe(OddsStreamRequest(market_ids=markets), sink)
    sub.request(1)  # one snapshot; the other stays pending while demand is 0
    assert [f["market"]["marketId"] for f in sink.frames] == ["1.1"]  # type: ignore[index]
    hub.apply_batch([BusRecord(2, price_change("1.1", s11="2.02"))])
    sub.request(5)
    assert [f["kind"] for f in sink.frames[1:]] == ["snapshot", "delta"]
    assert sink.frames[1]["market"]["marketId"] == "1.2"  # type: ignore[index]
    assert sink.frames[2]["markets"] == [  # type: ignore[comparison-overlap]
        _price_entry("1.1", 2, "11", "2.02")
    ]


def test_a_park_longer_than_the_history_falls_back_to_every_market() -> None:
    """History of 2 records, 3 changes while parked: the re-arm compares every market's seq.

    1.4 was already pending when the full socket parked it, so it comes first.
    """
    markets = [f"1.{i}" for i in range(5)]
    hub, _ = _hub_with(markets, history_size=2)
    sink = Sink()
    sub = hub.subscribe(OddsStreamRequest(market_ids=markets), sink)
    sub.request(10)
    sink.open = False
    hub.apply_batch([BusRecord(5, price_change("1.4", s11="2.5"))])  # parks it at position 6
    hub.apply_batch([BusRecord(6, price_change("1.0", s12="3.5"))])
    hub.apply_batch([BusRecord(7, price_change("1.4", s11="2.52"))])
    sink.open = True
    sub.writable()
    assert sink.frames[5:] == [
        {
            "kind": "delta",
            "markets": [
                _price_entry("1.4", 3, "11", "2.52"),
                _price_entry("1.0", 2, "12", "3.5"),
            ],
            "clk": "ep.8",
        }
    ]


def test_an_unsubscribed_parked_subscriber_is_dropped_from_every_market() -> None:
    markets = ["1.1", "1.2"]
    hub, _ = _hub_with(markets)
    sink = Sink()
    sub = hub.subscribe(OddsStreamRequest(market_ids=markets), sink)
    sub.request(10)
    sink.open = False
    sub.request(1)  # parks it (lazily still listed in each market's armed set)
    sub.cancel()
    hub.apply_batch([BusRecord(2, price_change("1.1", s11="2.02"))])
    assert (hub.subscription_count, len(sink.frames)) == (0, 2)
    assert all(not m.armed and not m.followers for m in hub._markets.values())
