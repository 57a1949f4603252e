"""The hub applying already-sequenced updates from a distributed bus (docs/KAFKA.md).

FIELD_CASES B25: "Consumers see per-market sequence numbers strictly
increasing, with no duplicate applied, and any gap triggers a snapshot".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from schemas.requests import OddsStreamRequest
from sportsbook_core.changes import FeedStatus
from sportsbook_core.market_book import BookUpdate
from sportsbook_core.sequencer import MarketSequencer
from streams.bus import BusRecord
from streams.odds_hub import OddsHub
from tests.testkit.builders import definition_change, market_definition, price_change


@dataclass
class Sink:
    frames: list[dict[str, object]] = field(default_factory=list)

    def writable(self) -> bool:
        return True

    def send(self, frame: bytes) -> None:
        self.frames.append(orjson.loads(frame))


def _updates(*price_texts: str) -> list[BookUpdate]:
    """Market 1.1 defined at 2, then selection 11 at each of ``price_texts``: seqs 1, 2, …"""
    sequencer = MarketSequencer()
    changes = [definition_change(market_definition("1.1"), s11="2")]
    changes += [price_change("1.1", s11=p) for p in price_texts]
    updates = [sequencer.sequence(c) for c in changes]
    assert all(isinstance(u, BookUpdate) for u in updates)
    return [u for u in updates if isinstance(u, BookUpdate)]


def _subscribed(hub: OddsHub) -> Sink:
    sink = Sink()
    hub.subscribe(OddsStreamRequest(market_ids=["1.1"]), sink).request(100)
    return sink


def _summary(frame: dict[str, object]) -> tuple[object, ...]:
    if frame["kind"] == "snapshot":
        market = frame["market"]
        assert isinstance(market, dict)
        return ("snapshot", market["seq"], market["selections"][0]["price"])
    entries = frame["markets"]
    assert isinstance(entries, list)
    return ("delta", entries[0]["seq"], entries[0]["changes"]["selections"][0]["price"])


def test_a_replayed_or_duplicated_update_never_rewinds_the_market() -> None:
    """B25 kind: offsets 3 and 4 repeat seqs 2 and 1 (a producer re-send, a re-read)."""
    u = _updates("2.5", "3")
    hub = OddsHub("ep", clock=lambda: 0.0)
    hub.apply_batch([BusRecord(0, u[0]), BusRecord(1, u[1]), BusRecord(2, u[2])])
    sink = _subscribed(hub)
    hub.apply_batch([BusRecord(3, u[1]), BusRecord(4, u[0])])
    book = hub.book("1.1")
    assert book is not None and book.seq == 3 and str(book.prices["11"]) == "3"
    assert hub.stale_updates == 2
    assert [_summary(f) for f in sink.frames] == [("snapshot", 3, "3")]
    assert hub.position == 5


def test_updates_in_order_reach_a_subscriber_as_deltas_with_consecutive_seqs() -> None:
    u = _updates("2.5", "3")
    hub = OddsHub("ep", clock=lambda: 0.0)
    hub.apply_batch([BusRecord(0, u[0])])
    sink = _subscribed(hub)
    hub.apply_batch([BusRecord(1, u[1])])
    hub.apply_batch([BusRecord(2, u[2])])
    assert [_summary(f) for f in sink.frames] == [
        ("snapshot", 1, "2"),
        ("delta", 2, "2.5"),
        ("delta", 3, "3"),
    ]


def test_a_gap_in_seq_sends_a_snapshot_not_a_delta_that_skips_changes() -> None:
    """Seq 2 never arrives (compacted away): seq 3 is a resync."""
    u = _updates("2.5", "3")
    hub = OddsHub("ep", clock=lambda: 0.0)
    hub.apply_batch([BusRecord(0, u[0])])
    sink = _subscribed(hub)
    hub.apply_batch([BusRecord(2, u[2])])
    assert [_summary(f) for f in sink.frames] == [("snapshot", 1, "2"), ("snapshot", 3, "3")]


def test_a_server_starting_on_a_compacted_topic_serves_the_newest_state_at_its_seq() -> None:
    u = _updates("2.5", "3", "3.5")
    hub = OddsHub("ep", clock=lambda: 0.0)
    hub.apply_batch([BusRecord(7, u[3])])
    sink = _subscribed(hub)
    assert [_summary(f) for f in sink.frames] == [("snapshot", 4, "3.5")]
    assert hub.clk == "ep.8"


def test_bus_and_feed_health_combine_and_each_change_is_one_status_frame() -> None:
    hub = OddsHub("ep", clock=lambda: 0.0)
    hub.apply_batch([BusRecord(0, _updates()[0])])
    sink = _subscribed(hub)
    hub.set_bus_health(False, "bus unreachable")
    hub.apply_batch([BusRecord(1, FeedStatus(0, healthy=False, reason="feed lagging"))])
    hub.set_bus_health(True)
    hub.apply_batch([BusRecord(2, FeedStatus(0, healthy=True))])
    statuses = [(f["feedHealthy"], f.get("reason")) for f in sink.frames if f["kind"] == "status"]
    assert statuses == [
        (False, "bus unreachable"),
        (False, "feed lagging"),
        (True, None),
    ]
    assert hub.feed_healthy is True
