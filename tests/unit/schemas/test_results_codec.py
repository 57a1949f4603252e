"""schemas.results: the settlement instruction's JSON codec is exact both ways."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import orjson
import pytest

from schemas.results import InvalidResult, instruction_from_wire, instruction_to_wire
from sportsbook_core.catalogue import EachWayTerms
from sportsbook_core.prices import Price
from sportsbook_core.results import Reduction, RunnerOutcome, RunnerResult, SettlementInstruction
from sportsbook_core.settlement import DeadHeat

OFF = datetime(2026, 6, 1, 15, 0, 0, 123456, tzinfo=UTC)
REMOVED = datetime(2026, 6, 1, 14, 30, tzinfo=UTC)


def _full() -> SettlementInstruction:
    return SettlementInstruction(
        market_id="1.234",
        version=3,
        runners=(
            RunnerResult("11", RunnerOutcome.WINNER, dead_heat=DeadHeat(1, 2)),
            RunnerResult("12", RunnerOutcome.WINNER, dead_heat=DeadHeat(1, 2)),
            RunnerResult("13", RunnerOutcome.PLACED),
            RunnerResult(
                "14",
                RunnerOutcome.REMOVED,
                removed_at=REMOVED,
                adjustment_factor=Decimal("16.2"),
                price_at_removal=Price.from_fraction(5, 2),
            ),
            RunnerResult("15", RunnerOutcome.REMOVED, removed_at=REMOVED, adjustment_factor=None),
            RunnerResult("16", RunnerOutcome.HALF_WIN),
        ),
        settled_at=OFF,
        number_of_winners=None,
        each_way=EachWayTerms(3, Fraction(1, 4)),
        reduction=Reduction.EXCHANGE,
        post_official=True,
        source="trader",
    )


def test_round_trip_is_exact_through_json_bytes() -> None:
    instruction = _full()
    wire = orjson.loads(orjson.dumps(instruction_to_wire(instruction)))
    assert instruction_from_wire(wire) == instruction


def test_wire_shape() -> None:
    wire = instruction_to_wire(_full())
    assert wire["settledAt"] == "2026-06-01T15:00:00.123456Z"
    assert wire["eachWay"] == {"places": 3, "fraction": "1/4"}
    assert wire["runners"][0]["deadHeat"] == {"position": 1, "tied": 2}
    assert wire["runners"][3] == {
        "selectionId": "14",
        "outcome": "REMOVED",
        "deadHeat": None,
        "removedAt": "2026-06-01T14:30:00Z",
        "adjustmentFactor": "16.2",
        "priceAtRemoval": "5/2",
    }


def test_minimal_defaults() -> None:
    body = {
        "marketId": "1.1",
        "version": 1,
        "settledAt": "2026-06-01T15:00:00Z",
        "runners": [{"selectionId": "11", "outcome": "WINNER"}],
    }
    decoded = instruction_from_wire(body)
    assert decoded == SettlementInstruction(
        "1.1",
        1,
        (RunnerResult("11", RunnerOutcome.WINNER),),
        datetime(2026, 6, 1, 15, tzinfo=UTC),
        number_of_winners=None,
    )


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"version": "1"}, "version"),
        ({"version": True}, "version"),
        ({"settledAt": "2026-06-01T15:00:00"}, "settledAt"),
        ({"runners": [{"selectionId": "11", "outcome": "WON"}]}, "outcome"),
        ({"runners": [{"selectionId": "11", "outcome": "REMOVED"}]}, "removed_at"),
        ({"eachWay": {"places": 3, "fraction": 0.25}}, "fraction"),
        ({"reduction": "HALF"}, "reduction"),
        ({"runners": [{"selectionId": "1", "outcome": "LOSER", "adjustmentFactor": 1.5}]}, "adj"),
    ],
)
def test_bad_fields_are_named(patch: dict[str, object], message: str) -> None:
    body = {**instruction_to_wire(_full()), **patch}
    with pytest.raises(InvalidResult, match=message):
        instruction_from_wire(body)
