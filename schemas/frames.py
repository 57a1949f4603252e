"""Encoding of ``odds.stream`` frames and market snapshots (PROTOCOL.md).

Prices go out as exact strings; with ``oddsFormat`` the converted display
string is added beside the price as ``displayPrice`` (a documented extension).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from sportsbook_core.catalogue import MarketDefinition, SelectionDefinition
from sportsbook_core.market_book import MarketBook, MarketDelta, SelectionChange
from sportsbook_core.odds_formats import OddsFormat, display
from sportsbook_core.prices import Price


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def rfc3339_ms(epoch_ms: int) -> str:
    return rfc3339(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _price_fields(out: dict[str, Any], price: Price | None, fmt: OddsFormat | None) -> None:
    out["price"] = None if price is None else price.to_wire()
    if fmt is not None:
        out["displayPrice"] = None if price is None else display(price, fmt)


def selection_dict(
    runner: SelectionDefinition, price: Price | None, fmt: OddsFormat | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"selectionId": runner.selection_id, "name": runner.name}
    _price_fields(out, price, fmt)
    out["status"] = runner.status.value
    out["handicap"] = _decimal_text(runner.handicap)
    if runner.adjustment_factor is not None:
        out["adjustmentFactor"] = _decimal_text(runner.adjustment_factor)
    if runner.removal_date is not None:
        out["removalDate"] = rfc3339(runner.removal_date)
    return out


def _definition_fields(d: MarketDefinition) -> dict[str, Any]:
    return {
        "marketId": d.market_id,
        "eventId": d.event_id,
        "eventName": d.event_name,
        "sport": d.sport,
        "competition": d.competition,
        "country": d.country,
        "startTime": rfc3339(d.start_time),
        "name": d.name,
        "type": d.market_type,
        "status": d.status.value,
        "inPlay": d.in_play,
        "betDelayMs": d.bet_delay_ms,
        "eachWay": None if d.each_way is None else d.each_way.to_wire(),
        "numberOfWinners": d.number_of_winners,
        "priceFormat": "fractional" if d.fractional else "decimal",
    }


def snapshot_dict(book: MarketBook, fmt: OddsFormat | None = None) -> dict[str, Any]:
    """The market snapshot object of PROTOCOL.md (plus documented extensions)."""
    out = _definition_fields(book.definition)
    out["selections"] = [
        selection_dict(runner, book.prices.get(runner.selection_id), fmt)
        for runner in book.definition.selections
    ]
    out["seq"] = book.seq
    out["updatedAt"] = rfc3339_ms(book.updated_at_ms)
    return out


def _selection_change_dict(change: SelectionChange, fmt: OddsFormat | None) -> dict[str, Any]:
    out: dict[str, Any] = {"selectionId": change.selection_id}
    if change.price_set:
        _price_fields(out, change.price, fmt)
    if change.status is not None:
        out["status"] = change.status.value
    return out


def delta_changes(delta: MarketDelta, fmt: OddsFormat | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if delta.status is not None:
        changes["status"] = delta.status.value
    if delta.in_play is not None:
        changes["inPlay"] = delta.in_play
    if delta.bet_delay_ms is not None:
        changes["betDelayMs"] = delta.bet_delay_ms
    if delta.selections:
        changes["selections"] = [_selection_change_dict(s, fmt) for s in delta.selections]
    return changes


def delta_fragment(delta: MarketDelta, fmt: OddsFormat | None) -> bytes:
    """One market's entry of a delta frame's ``markets`` array, pre-encoded."""
    return orjson.dumps(
        {"marketId": delta.market_id, "seq": delta.seq, "changes": delta_changes(delta, fmt)}
    )


def snapshot_frame(snapshot_json: bytes, clk: str) -> bytes:
    return b'{"kind":"snapshot","market":' + snapshot_json + b',"clk":' + orjson.dumps(clk) + b"}"


def delta_frame(fragments: list[bytes], clk: str) -> bytes:
    return (
        b'{"kind":"delta","markets":['
        + b",".join(fragments)
        + b'],"clk":'
        + orjson.dumps(clk)
        + b"}"
    )


def heartbeat_frame(clk: str, feed_healthy: bool) -> bytes:
    return orjson.dumps({"kind": "heartbeat", "clk": clk, "feedHealthy": feed_healthy})


def feed_status_frame(clk: str, healthy: bool, reason: str | None) -> bytes:
    return orjson.dumps({"kind": "status", "feedHealthy": healthy, "reason": reason, "clk": clk})
