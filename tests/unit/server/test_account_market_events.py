"""OpenMarkets (which accounts hear a market's status) and the hub's status hook."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rsocket.error_codes import ErrorCode

from rsocket_server.account_stream import OpenMarkets
from rsocket_server.transport_guard import LeaseTerms, ResponderLease
from sportsbook_core.catalogue import MarketStatus
from streams.bus import BusRecord
from streams.odds_hub import OddsHub
from tests.testkit.builders import definition_change, market_definition, price_change


def _receipt(bet_id: str | None, status: str, *markets: str) -> dict[str, Any]:
    return {"betId": bet_id, "status": status, "legs": [{"marketId": m} for m in markets]}


def _loaded(account_id: str = "A", *receipts: dict[str, Any]) -> OpenMarkets:
    open_markets = OpenMarkets()
    open_markets.loaded(account_id, open_markets.watch(account_id), receipts)
    return open_markets


def test_only_open_bets_count_and_a_market_is_heard_while_any_bet_on_it_is_open() -> None:
    markets = _loaded("A", _receipt("B1", "ACCEPTED", "1.1", "1.2"))
    markets.bet("A", _receipt("B2", "PENDING", "1.1"))
    markets.bet("A", _receipt(None, "REJECTED", "1.3"))  # refused at placement: never written
    assert (markets.accounts_on("1.1"), markets.accounts_on("1.3")) == (["A"], [])
    markets.bet("A", _receipt("B1", "SETTLED", "1.1", "1.2"))
    assert (markets.accounts_on("1.1"), markets.accounts_on("1.2")) == (["A"], [])
    markets.bet("A", _receipt("B2", "REJECTED", "1.1"))  # rejected after its in-play delay
    assert markets.accounts_on("1.1") == []


def test_bets_seen_while_the_ledger_is_read_are_applied_after_it() -> None:
    markets = OpenMarkets()
    buffer = markets.watch("A")
    markets.bet("A", _receipt("B1", "VOID", "1.1"))  # newer than the read below
    markets.bet("A", _receipt("B2", "ACCEPTED", "1.2"))
    assert not markets.ready("A")
    markets.loaded("A", buffer, [_receipt("B1", "ACCEPTED", "1.1")])
    assert markets.ready("A")
    assert (markets.accounts_on("1.1"), markets.accounts_on("1.2")) == ([], ["A"])


def test_an_unwatched_account_is_forgotten_and_a_stale_read_ignored() -> None:
    markets = OpenMarkets()
    stale = markets.watch("A")
    markets.unwatch("A")
    markets.loaded("A", stale, [_receipt("B1", "ACCEPTED", "1.1")])
    markets.bet("B", _receipt("B9", "ACCEPTED", "1.1"))  # B is not watched
    assert markets.accounts_on("1.1") == []
    markets = _loaded("A", _receipt("B1", "ACCEPTED", "1.1"))
    markets.unwatch("A")
    assert (markets.accounts_on("1.1"), markets.ready("A")) == ([], False)


def test_the_hub_tells_listeners_of_status_changes_only() -> None:
    hub = OddsHub("ep")
    heard: list[tuple[str, MarketStatus]] = []
    hub.status_listeners.append(lambda market_id, status: heard.append((market_id, status)))
    definition = market_definition("1.1")
    changes = [
        definition_change(definition, s11="2"),  # first sight: not a change
        price_change("1.1", s11="2.5"),
        definition_change(replace(definition, status=MarketStatus.SUSPENDED), s11="2.5"),
        definition_change(replace(definition, status=MarketStatus.OPEN), s11="2.5"),
        definition_change(replace(definition, status=MarketStatus.CLOSED), s11="2.5"),
    ]
    hub.apply_batch(BusRecord(i, change) for i, change in enumerate(changes))
    assert heard == [
        ("1.1", MarketStatus.SUSPENDED),
        ("1.1", MarketStatus.OPEN),
        ("1.1", MarketStatus.CLOSED),
    ]


def test_a_responder_lease_allows_nothing_before_a_grant_and_the_grant_after() -> None:
    lease = ResponderLease(LeaseTerms(2, 500))
    assert lease.take() is False
    frame = lease.grant()
    assert (frame.number_of_requests, frame.time_to_live) == (2, 500)
    assert [lease.take(), lease.take(), lease.take()] == [True, True, False]
    lease.grant()  # unused requests never carry over; a grant restores the full count
    assert [lease.take(), lease.take(), lease.take()] == [True, True, False]
    assert lease.refusal().error_code == ErrorCode.REJECTED


def test_lease_terms_for_a_rate() -> None:
    assert LeaseTerms.for_rate(50) == LeaseTerms(50, 1000)
    assert LeaseTerms.for_rate(0.2) == LeaseTerms(1, 1000)  # at least one per window
    assert LeaseTerms.for_rate(1e12) == LeaseTerms(2**31 - 1, 1000)
