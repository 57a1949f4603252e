"""Settlement instructions on the wire (``sportsbook.results``, the ledger's ``market_results``).

One JSON object per :class:`~sportsbook_core.results.SettlementInstruction`,
exact both ways (``instruction_from_wire(instruction_to_wire(x)) == x``):

```json
{"marketId": "1.234", "version": 1, "settledAt": "2026-06-01T15:00:00Z",
 "numberOfWinners": 1, "eachWay": {"places": 3, "fraction": "1/4"},
 "reduction": "RULE4", "postOfficial": false, "source": "feed",
 "runners": [{"selectionId": "11", "outcome": "WINNER",
              "deadHeat": {"position": 1, "tied": 2},
              "removedAt": null, "adjustmentFactor": null, "priceAtRemoval": null}]}
```

* Times are RFC 3339 UTC (``Z``), microseconds kept when present.
* ``adjustmentFactor`` is a decimal **string** (``"16.2"``), never a float.
* ``priceAtRemoval`` is a wire price (``"5/2"``, ``"3.5"``). Decimal odds that do
  not terminate (21/11) travel as their fraction, so they come back as the same
  odds marked fractional: the same value for every settlement.
* ``eachWay.fraction`` is ``"n/d"``; ``numberOfWinners``, ``eachWay`` may be null.

Decoding is strict (STYLE.md 2): a missing or wrong-typed field is a
:class:`InvalidResult` naming it; unknown fields are ignored. The shape is a
contract with the results publisher: extend it only with optional fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.prices import InvalidPrice, Price
from sportsbook_core.results import (
    Reduction,
    RunnerOutcome,
    RunnerResult,
    SettlementInstruction,
)
from sportsbook_core.settlement import DeadHeat, InvalidSettlement

MAX_RUNNERS = 1000


class InvalidResult(ValueError):
    """A settlement instruction that does not decode (the message names the field)."""


# --- encoding --------------------------------------------------------------------------


def time_to_wire(value: datetime) -> str:
    """RFC 3339 UTC with ``Z``; microseconds kept when not zero."""
    if value.tzinfo is None:
        raise InvalidResult(f"time {value!r} must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _runner_to_wire(runner: RunnerResult) -> dict[str, Any]:
    heat = runner.dead_heat
    return {
        "selectionId": runner.selection_id,
        "outcome": runner.outcome.value,
        "deadHeat": None if heat is None else {"position": heat.position, "tied": heat.tied},
        "removedAt": None if runner.removed_at is None else time_to_wire(runner.removed_at),
        "adjustmentFactor": (
            None if runner.adjustment_factor is None else str(runner.adjustment_factor)
        ),
        "priceAtRemoval": (
            None if runner.price_at_removal is None else runner.price_at_removal.to_wire()
        ),
    }


def instruction_to_wire(instruction: SettlementInstruction) -> dict[str, Any]:
    """The instruction as a JSON-ready dict (strings for every exact number)."""
    return {
        "marketId": instruction.market_id,
        "version": instruction.version,
        "settledAt": time_to_wire(instruction.settled_at),
        "numberOfWinners": instruction.number_of_winners,
        "eachWay": None if instruction.each_way is None else instruction.each_way.to_wire(),
        "reduction": instruction.reduction.value,
        "postOfficial": instruction.post_official,
        "source": instruction.source,
        "runners": [_runner_to_wire(r) for r in instruction.runners],
    }


# --- decoding --------------------------------------------------------------------------


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in body:
        raise InvalidResult(f"{name} is required")
    value = body[name]
    if isinstance(value, bool) and kind is int:
        raise InvalidResult(f"{name} must be an integer")
    if not isinstance(value, kind):
        raise InvalidResult(f"{name} has the wrong type ({type(value).__name__})")
    return value


def _optional(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if body.get(name) is None:
        return None
    return _field(body, name, kind)


def time_from_wire(text: str, name: str = "time") -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidResult(f"{name} is not an RFC 3339 time: {text!r}") from None
    if value.tzinfo is None:
        raise InvalidResult(f"{name} must carry its offset (UTC: Z)")
    return value.astimezone(UTC)


def _fraction(text: str, name: str) -> Fraction:
    numerator, slash, denominator = text.partition("/")
    if not slash or not numerator.isdigit() or not denominator.isdigit() or denominator == "0":
        raise InvalidResult(f"{name} must be a fraction n/d, got {text!r}")
    return Fraction(int(numerator), int(denominator))


def _each_way(body: Mapping[str, Any]) -> EachWayTerms | None:
    terms = _optional(body, "eachWay", dict)
    if terms is None:
        return None
    places = _field(terms, "places", int)
    if places < 1:
        raise InvalidResult("eachWay.places must be at least 1")
    return EachWayTerms(places, _fraction(_field(terms, "fraction", str), "eachWay.fraction"))


def _dead_heat(body: Mapping[str, Any]) -> DeadHeat | None:
    heat = _optional(body, "deadHeat", dict)
    if heat is None:
        return None
    try:
        return DeadHeat(_field(heat, "position", int), _field(heat, "tied", int))
    except ValueError as exc:
        raise InvalidResult(f"deadHeat: {exc}") from None


def _decimal(text: str | None, name: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidResult(f"{name} must be a decimal string, got {text!r}") from None
    if not value.is_finite():
        raise InvalidResult(f"{name} must be finite")
    return value


def _price(text: str | None) -> Price | None:
    if text is None:
        return None
    try:
        return Price.parse(text)
    except InvalidPrice as exc:
        raise InvalidResult(f"priceAtRemoval: {exc}") from None


def _runner_from_wire(body: Any) -> RunnerResult:
    if not isinstance(body, dict):
        raise InvalidResult("runners must be objects")
    try:
        outcome = RunnerOutcome(_field(body, "outcome", str))
    except ValueError:
        raise InvalidResult(f"unknown outcome {body.get('outcome')!r}") from None
    removed = _optional(body, "removedAt", str)
    return RunnerResult(
        selection_id=_field(body, "selectionId", str),
        outcome=outcome,
        dead_heat=_dead_heat(body),
        removed_at=None if removed is None else time_from_wire(removed, "removedAt"),
        adjustment_factor=_decimal(_optional(body, "adjustmentFactor", str), "adjustmentFactor"),
        price_at_removal=_price(_optional(body, "priceAtRemoval", str)),
    )


def instruction_from_wire(body: Mapping[str, Any]) -> SettlementInstruction:
    """The instruction from :func:`instruction_to_wire`'s shape; :class:`InvalidResult`."""
    if not isinstance(body, Mapping):
        raise InvalidResult("a settlement instruction is a JSON object")
    runners = _field(body, "runners", list)
    if len(runners) > MAX_RUNNERS:
        raise InvalidResult(f"at most {MAX_RUNNERS} runners")
    winners = _optional(body, "numberOfWinners", int)
    if isinstance(winners, bool):
        raise InvalidResult("numberOfWinners must be an integer")
    try:
        reduction = Reduction(body.get("reduction") or Reduction.RULE4.value)
    except ValueError:
        raise InvalidResult(f"unknown reduction {body.get('reduction')!r}") from None
    post_official = body.get("postOfficial", False)
    if not isinstance(post_official, bool):
        raise InvalidResult("postOfficial must be a boolean")
    try:
        return SettlementInstruction(
            market_id=_field(body, "marketId", str),
            version=_field(body, "version", int),
            runners=tuple(_runner_from_wire(r) for r in runners),
            settled_at=time_from_wire(_field(body, "settledAt", str), "settledAt"),
            number_of_winners=winners,
            each_way=_each_way(body),
            reduction=reduction,
            post_official=post_official,
            source=_optional(body, "source", str) or "feed",
        )
    except InvalidSettlement as exc:
        raise InvalidResult(str(exc)) from None
