"""catalog.events and catalog.market responses, through the real routes, for the demo catalogue."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from rsocket.payload import Payload

from clients.client import route_metadata
from rsocket_server.auth import StaticTokens
from rsocket_server.handler import SportsbookHandler
from schemas.json_schemas import validator
from sportsbook_core.odds_formats import OddsFormat
from tests.unit.schemas.demo_stream import FOCUS, DemoRun

HAMILTON_WIN = "1.132153978"  # fractionally priced, open at the end of the run
FORMATS: list[str | None] = [None, *(f.value for f in OddsFormat)]


async def respond(demo: DemoRun, route: str, body: dict[str, Any] | None) -> Any:
    handler = SportsbookHandler(demo.hub, StaticTokens())
    data = b"" if body is None else orjson.dumps(body)
    future = await handler.request_response(Payload(data, route_metadata(route)))
    response = await future
    assert isinstance(response, Payload)
    return orjson.loads(response.data)


@pytest.mark.parametrize(
    "query",
    [
        None,
        {},
        {"sport": "football"},
        {"sport": "horse-racing", "inPlay": False},
        {"inPlay": True},
        {"status": "OPEN"},
        {"status": "SUSPENDED"},
        {"status": "CLOSED"},
        {"sport": "curling"},
    ],
)
async def test_catalog_events_responses_validate(
    demo: DemoRun, query: dict[str, Any] | None
) -> None:
    response = await respond(demo, "catalog.events", query)

    validator("catalog-events-response").validate(response)
    if query and query.get("sport") == "curling":
        assert response == {"events": []}


async def test_catalog_events_lists_every_market_of_the_demo_once(demo: DemoRun) -> None:
    response = await respond(demo, "catalog.events", {})
    listed = [m["marketId"] for e in response["events"] for m in e["markets"]]
    books = list(demo.hub.books())

    assert sorted(listed) == sorted(b.market_id for b in books)
    assert len(response["events"]) == len({b.definition.event_id for b in books})
    assert {e["sport"] for e in response["events"]} >= {"football", "horse-racing", "golf"}
    assert set(listed) >= FOCUS


@pytest.mark.parametrize("market_id", sorted(FOCUS))
async def test_catalog_market_snapshot_validates(demo: DemoRun, market_id: str) -> None:
    check = validator("market-snapshot")
    rotated = FORMATS[1 + sorted(FOCUS).index(market_id) % (len(FORMATS) - 1)]
    formats = FORMATS if market_id == HAMILTON_WIN else [None, rotated]

    for fmt in formats:
        body: dict[str, Any] = {"marketId": market_id}
        if fmt is not None:
            body["oddsFormat"] = fmt
        snapshot = await respond(demo, "catalog.market", body)

        check.validate(snapshot)
        assert snapshot["marketId"] == market_id
        assert all(("displayPrice" in s) == (fmt is not None) for s in snapshot["selections"])


async def test_catalog_market_of_a_fractional_market_has_fraction_prices(demo: DemoRun) -> None:
    snapshot = await respond(demo, "catalog.market", {"marketId": HAMILTON_WIN})
    prices = [s["price"] for s in snapshot["selections"] if s["price"] is not None]

    assert snapshot["priceFormat"] == "fractional"
    assert prices
    assert all("/" in price for price in prices)


@pytest.mark.parametrize(
    ("case", "path", "value"),
    [
        ("lower-case status", ("events", 0, "markets", 0, "status"), "open"),
        ("inPlay as a string", ("events", 0, "inPlay"), "false"),
        ("startTime as epoch ms", ("events", 0, "startTime"), 1764784800000),
        ("no markets", ("events", 0, "markets"), []),
        ("event extra field", ("events", 0, "venue"), "Randwick"),
    ],
)
async def test_broken_catalog_events_responses_are_rejected(
    demo: DemoRun, case: str, path: tuple[str | int, ...], value: object
) -> None:
    response = copy.deepcopy(await respond(demo, "catalog.events", {}))
    check = validator("catalog-events-response")
    assert check.is_valid(response)
    target: Any = response
    for key in path[:-1]:
        target = target[key]

    target[path[-1]] = value

    assert not check.is_valid(response), case
