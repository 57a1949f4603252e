"""``bets.place`` requests: PROTOCOL.md, Bet request; malformed → INVALID_REQUEST, nothing else."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from schemas.bets import decode_bets_list, decode_place_bet
from schemas.errors import ApiError, ErrorCode
from sportsbook_core.bets import BetType, PriceChangePolicy, SystemBet


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requestId": "c0a8",
        "type": "SINGLE",
        "system": None,
        "legs": [{"marketId": "1.234", "selectionId": "47972", "price": "2.5", "seq": 17}],
        "stake": 1000,
        "eachWay": False,
        "acceptPriceChange": "NONE",
    }
    body.update(overrides)
    return body


def test_the_protocol_example_decodes_to_exact_values() -> None:
    request = decode_place_bet(_body())
    slip = request.slip
    assert (slip.request_id, slip.bet_type, slip.system, slip.stake_per_line) == (
        "c0a8",
        BetType.SINGLE,
        None,
        1000,
    )
    leg = slip.legs[0]
    assert (leg.market_id, leg.selection_id, leg.price.odds, leg.seq) == (
        "1.234",
        "47972",
        Fraction(5, 2),
        17,
    )
    assert (slip.each_way, slip.accept_price_change) == (False, PriceChangePolicy.NONE)


def test_a_system_bet_with_fractional_prices_and_defaults() -> None:
    legs = [{"marketId": f"1.{i}", "selectionId": "1", "price": "5/2"} for i in range(4)]
    body = {"requestId": "r", "type": "SYSTEM", "system": "YANKEE", "legs": legs, "stake": 50}
    slip = decode_place_bet(body).slip
    assert slip.system is SystemBet.YANKEE
    assert [leg.price.odds for leg in slip.legs] == [Fraction(7, 2)] * 4
    assert [leg.seq for leg in slip.legs] == [None] * 4
    assert slip.accept_price_change is PriceChangePolicy.NONE


def test_the_body_hash_ignores_spelling_but_not_content() -> None:
    """B12: the same requestId with a different body is a conflict; the same body is a retry."""
    respelled = [{"seq": 17, "price": "2.50", "selectionId": "47972", "marketId": "1.234"}]
    same = decode_place_bet(_body(legs=respelled, extra="ignored"))
    assert same.body_hash == decode_place_bet(_body()).body_hash
    assert decode_place_bet(_body(stake=1001)).body_hash != same.body_hash


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"requestId": None}, "requestId is required"),
        ({"type": "PARLAY"}, "type must be one of SINGLE, ACCUMULATOR, SYSTEM"),
        ({"system": 3}, "system must be one of DOUBLES, TREBLES, TRIXIE"),
        ({"legs": []}, "legs must be a list of 1 to 20 legs"),
        ({"legs": ["x"]}, "legs[0] must be an object"),
        ({"legs": [{"marketId": "1.2", "selectionId": "3", "price": 2.5}]},
         'legs[0].price must be a string such as "2.5" or "5/2"'),
        ({"legs": [{"marketId": "1.2", "selectionId": "3", "price": "abc"}]},
         "legs[0].price: not a decimal or fractional price: 'abc'"),
        ({"stake": 10.5}, "stake must be an integer of minor units from 1 to 1000000000000"),
        ({"stake": True}, "stake must be an integer of minor units"),
        ({"stake": 0}, "stake must be an integer of minor units"),
        ({"eachWay": "yes"}, "eachWay must be a boolean"),
        ({"acceptPriceChange": "LOWER"}, "acceptPriceChange must be one of NONE, HIGHER, ANY"),
    ],
)  # fmt: skip
def test_malformed_requests_are_invalid_request_errors(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as error:
        decode_place_bet(_body(**overrides))
    assert error.value.code is ErrorCode.INVALID_REQUEST
    assert error.value.message.startswith(message)


def test_bets_list_defaults_and_bounds() -> None:
    assert decode_bets_list({}) == decode_bets_list({"status": "ALL", "limit": 20})
    request = decode_bets_list({"status": "OPEN", "limit": 5, "cursor": "abc"})
    assert (request.status, request.limit, request.cursor) == ("OPEN", 5, "abc")
    with pytest.raises(ApiError, match="limit must be an integer from 1 to 100"):
        decode_bets_list({"limit": 101})
    with pytest.raises(ApiError, match="status must be OPEN, SETTLED or ALL"):
        decode_bets_list({"status": "VOID"})
