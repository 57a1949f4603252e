"""Receipts' remembered pieces (wire prices, the millisecond's timestamp text) and
the decoder's remembered prices give what computing them afresh gives."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from rsocket_server.betting import _now_text, _wire
from schemas.bets import decode_place_bet
from sportsbook_core.prices import Price

PRICES = ["1.01", "2", "2.50", "1000", "1/3", "5/2", "21/11", "3.333333"]


@pytest.mark.parametrize("text", PRICES)
def test_wire_price_is_to_wire(text: str) -> None:
    for price in (Price.parse(text), Price(Price.parse(text).odds)):
        assert _wire(price) == price.to_wire()
        assert _wire(price) == price.to_wire()  # the remembered one


def test_now_text_is_the_millisecond_in_utc() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    texts = [_now_text() for _ in range(1000)]
    after = datetime.now(UTC)
    for text in (texts[0], texts[-1]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert before <= stamp <= after
    assert texts == sorted(texts)


@pytest.mark.parametrize("text", PRICES)
def test_decoded_prices_are_parsed_prices(text: str) -> None:
    body = {
        "requestId": "r1",
        "type": "SINGLE",
        "legs": [{"marketId": "1.1", "selectionId": "11", "price": text}],
        "stake": 100,
    }
    first, again = decode_place_bet(body), decode_place_bet(body)
    assert first.slip.legs[0].price == again.slip.legs[0].price == Price.parse(text)
    assert first.body_hash == again.body_hash
