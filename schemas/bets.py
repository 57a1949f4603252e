"""``bets.*`` requests decoded into core values (PROTOCOL.md, Bet request).

A malformed request is an ``INVALID_REQUEST`` error frame and changes nothing;
a well-formed bet the book refuses is a REJECTED receipt (the core decides).
``body_hash`` is what idempotency compares: the same ``requestId`` with a
different body is ``IDEMPOTENCY_CONFLICT`` (FIELD_CASES B12).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from schemas.errors import invalid
from schemas.requests import _optional_int, _optional_text, _required_text
from sportsbook_core.bets import BetLeg, BetSlip, BetType, PriceChangePolicy, SystemBet
from sportsbook_core.prices import InvalidPrice, Price

MAX_LEGS_ON_WIRE = 20
MAX_STAKE_MINOR = 10**12  # far above any limit; a bound so the arithmetic stays small
MAX_LIST = 100
_E = TypeVar("_E", BetType, SystemBet, PriceChangePolicy)
_PRICES: dict[str, Price] = {}
"""Wire price text → parsed Price (immutable): bets quote a ladder's few hundred prices."""
_PRICES_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class PlaceBetRequest:
    slip: BetSlip
    body_hash: str


@dataclass(frozen=True, slots=True)
class BetsListRequest:
    status: str
    limit: int
    cursor: str | None


def decode_place_bet(body: Mapping[str, Any]) -> PlaceBetRequest:
    legs = _legs(body.get("legs"))
    slip = BetSlip(
        request_id=_required_text(body, "requestId"),
        bet_type=_enum(BetType, body.get("type"), "type"),
        system=None if body.get("system") is None else _enum(SystemBet, body["system"], "system"),
        legs=legs,
        stake_per_line=_stake(body.get("stake")),
        each_way=_flag(body, "eachWay"),
        accept_price_change=(
            PriceChangePolicy.NONE
            if body.get("acceptPriceChange") is None
            else _enum(PriceChangePolicy, body["acceptPriceChange"], "acceptPriceChange")
        ),
    )
    return PlaceBetRequest(slip, _body_hash(slip))


def decode_bets_list(body: Mapping[str, Any]) -> BetsListRequest:
    status = body.get("status") or "ALL"
    if status not in ("OPEN", "SETTLED", "ALL"):
        raise invalid("status must be OPEN, SETTLED or ALL")
    limit = _optional_int(body, "limit", 1, MAX_LIST)
    return BetsListRequest(status, 20 if limit is None else limit, _optional_text(body, "cursor"))


def decode_bet_id(body: Mapping[str, Any]) -> str:
    return _required_text(body, "betId")


def _legs(value: Any) -> tuple[BetLeg, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LEGS_ON_WIRE:
        raise invalid(f"legs must be a list of 1 to {MAX_LEGS_ON_WIRE} legs")
    return tuple(_leg(item, i) for i, item in enumerate(value))


def _leg(value: Any, index: int) -> BetLeg:
    if not isinstance(value, dict):
        raise invalid(f"legs[{index}] must be an object")
    text = value.get("price")
    if not isinstance(text, str):
        raise invalid(f'legs[{index}].price must be a string such as "2.5" or "5/2"')
    price = _PRICES.get(text)
    if price is None:
        try:
            price = Price.parse(text)
        except InvalidPrice as error:
            raise invalid(f"legs[{index}].price: {error}") from None
        if len(_PRICES) >= _PRICES_KEPT:
            _PRICES.clear()
        _PRICES[text] = price
    return BetLeg(
        market_id=_required_text(value, "marketId"),
        selection_id=_required_text(value, "selectionId"),
        price=price,
        seq=_optional_int(value, "seq", 0, 2**53),
    )


def _stake(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STAKE_MINOR:
        raise invalid(f"stake must be an integer of minor units from 1 to {MAX_STAKE_MINOR}")
    return value


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise invalid(f"{name} must be a boolean")
    return value


def _enum(kind: type[_E], value: Any, name: str) -> _E:
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    names = ", ".join(member.value for member in kind)
    raise invalid(f"{name} must be one of {names}")


def _body_hash(slip: BetSlip) -> str:
    """The bet as decoded (not its bytes): field order and spelling of prices do not matter."""
    canonical = {
        "type": slip.bet_type.value,
        "system": None if slip.system is None else slip.system.value,
        "legs": [
            [leg.market_id, leg.selection_id, str(leg.price.odds), leg.seq] for leg in slip.legs
        ],
        "stake": slip.stake_per_line,
        "eachWay": slip.each_way,
        "policy": slip.accept_price_change.value,
    }
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()
