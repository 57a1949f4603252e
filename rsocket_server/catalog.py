"""``catalog.events``: events grouped from the hub's live market books."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.frames import rfc3339
from schemas.requests import CatalogEventsRequest
from sportsbook_core.market_book import MarketBook


def events_response(books: Iterable[MarketBook], query: CatalogEventsRequest) -> dict[str, Any]:
    events: dict[str, dict[str, Any]] = {}
    for book in books:
        d = book.definition
        if query.sport is not None and d.sport != query.sport:
            continue
        if query.status is not None and d.status.value != query.status:
            continue
        event = events.get(d.event_id)
        if event is None:
            event = events[d.event_id] = {
                "eventId": d.event_id,
                "name": d.event_name,
                "sport": d.sport,
                "competition": d.competition,
                "country": d.country,
                "startTime": rfc3339(d.start_time),
                "inPlay": False,
                "markets": [],
            }
        event["inPlay"] = event["inPlay"] or d.in_play
        event["markets"].append(
            {
                "marketId": d.market_id,
                "name": d.name,
                "type": d.market_type,
                "status": d.status.value,
            }
        )
    selected = [e for e in events.values() if query.in_play is None or e["inPlay"] == query.in_play]
    selected.sort(key=lambda e: (e["startTime"], e["eventId"]))
    return {"events": selected}
