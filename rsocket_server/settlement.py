"""SettlementService: a market's result → the ledger → the accounts and odds subscribers.

``settle(instruction)``: a result that needs a trader (``review_reason()``) is held
(logged, reported, nothing written); else :meth:`LedgerStore.settle_market`
settles it in durable chunks, and as each chunk commits every changed bet is told
to its account (``AccountEvents.bet``: a BET event with the settled receipt, then
a BALANCE with reason ``SETTLEMENT`` / ``CORRECTION`` / ``REJECTED`` when money
moved), and finally the market is marked SETTLED in the hub (odds.stream and
account.stream MARKET). docs/SETTLEMENT.md.

``trader.settle`` (request-response, accounts whose limits say ``"trader": true``)
builds the instruction from the market's definition in the hub.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ledger_store.store import (
    LedgerStore,
    ResultConflict,
    SettledBet,
    SettleOutcome,
    SettleReport,
)
from rsocket_server.account_stream import AccountEvents
from schemas.errors import ApiError, ErrorCode, invalid
from schemas.requests import MAX_IDS, decode_object
from sportsbook_core.catalogue import MarketDefinition, SelectionDefinition, SelectionStatus
from sportsbook_core.results import RunnerOutcome, RunnerResult, SettlementInstruction
from sportsbook_core.settlement import DeadHeat
from streams.odds_hub import OddsHub

log = logging.getLogger("sportsbook.settlement")

TRADER = "trader"  # SettlementInstruction.source of a result settled by hand


class SettlementService:
    def __init__(self, hub: OddsHub, store: LedgerStore, events: AccountEvents) -> None:
        self.hub, self.store, self.events = hub, store, events

    async def settle(self, instruction: SettlementInstruction) -> SettleReport:
        """Settle ``instruction`` (a trader's :class:`ResultConflict` is raised: its
        version was recorded with another result; the feed's is held)."""
        market_id, version = instruction.market_id, instruction.version
        reason = instruction.review_reason()
        if reason is None and instruction.source != TRADER:
            found = await self._against_a_trader(instruction)
            if isinstance(found, str):
                reason = found
            else:
                instruction, version = found, found.version
        if reason is None:
            try:
                report = await self.store.settle_market(instruction, on_chunk=self._tell)
            except ResultConflict as exc:
                if instruction.source == TRADER:
                    raise
                reason = f"the feed's result differs from the one recorded: {exc}"
        if reason is not None:
            log.warning("result held for a trader", extra={"marketId": market_id, "why": reason})
            return SettleReport(market_id, version, SettleOutcome.HELD, detail=reason)
        if report.outcome in (SettleOutcome.SETTLED, SettleOutcome.RESETTLED):
            self.hub.mark_settled(market_id, int(time.time() * 1000))
        log.info(
            "market settled",
            extra={
                "marketId": market_id,
                "version": version,
                "outcome": report.outcome.value,
                "bets": report.bets_settled,
                "open": report.bets_open,
            },
        )
        return report

    async def _against_a_trader(
        self, instruction: SettlementInstruction
    ) -> SettlementInstruction | str:
        """A feed result where a trader's is in force (the trader settled first, or
        corrected it): the same result → the trader's, run again (it settles the bets
        struck since: a replayed market that reopened); another result → why it is held
        (a trader decides; it is never silently dropped nor applied over them)."""
        in_force = await self.store.market_result(instruction.market_id)
        if in_force is None or in_force.source != TRADER or in_force.version == instruction.version:
            return instruction
        if in_force.same_result(instruction):
            return in_force
        return (
            f"the feed's result differs from the trader's v{in_force.version} in force: "
            "settle by hand to apply it"
        )

    def _tell(self, rows: Sequence[SettledBet]) -> None:
        for row in rows:
            balance = row.balance_after if row.moved else None
            self.events.bet(row.account_id, row.receipt, balance=balance, reason=row.reason)


# --- trader.settle -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraderSettleRequest:
    market_id: str
    winners: frozenset[str]
    placed: frozenset[str]
    removed: frozenset[str]
    dead_heat: Mapping[str, int]
    version: int | None
    post_official: bool


def _ids(body: Mapping[str, Any], name: str) -> frozenset[str]:
    value = body.get(name)
    if value is None:
        return frozenset()
    if not isinstance(value, list) or len(value) > MAX_IDS:
        raise invalid(f"{name} must be a list of selectionIds")
    if not all(isinstance(item, str) and item for item in value):
        raise invalid(f"{name} must contain only non-empty strings")
    return frozenset(value)


def _dead_heat(body: Mapping[str, Any]) -> dict[str, int]:
    value = body.get("deadHeat")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("deadHeat must be an object {selectionId: tied}")
    for selection, tied in value.items():
        if isinstance(tied, bool) or not isinstance(tied, int) or not 2 <= tied <= 100:
            raise invalid(f"deadHeat[{selection!r}] must be the number tied, 2 to 100")
    return dict(value)


def decode_trader_settle(data: bytes | None) -> TraderSettleRequest:
    body = decode_object(data)
    market_id = body.get("marketId")
    if not isinstance(market_id, str) or not market_id:
        raise invalid("marketId is required")
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise invalid("version must be an integer")
    if version is not None and version < 1:
        raise invalid("version starts at 1")
    post_official = body.get("postOfficial", False)
    if not isinstance(post_official, bool):
        raise invalid("postOfficial must be a boolean")
    request = TraderSettleRequest(
        market_id,
        _ids(body, "winners"),
        _ids(body, "placed"),
        _ids(body, "removed"),
        _dead_heat(body),
        version,
        post_official,
    )
    named = [request.winners, request.placed, request.removed]
    if sum(len(group) for group in named) != len(frozenset().union(*named)):
        raise invalid("a selection is named in more than one of winners, placed, removed")
    return request


def _outcome(request: TraderSettleRequest, sel: SelectionDefinition) -> RunnerOutcome:
    sid = sel.selection_id
    if sid in request.winners:
        return RunnerOutcome.WINNER
    if sid in request.placed:
        return RunnerOutcome.PLACED
    if sid in request.removed or sel.status is SelectionStatus.REMOVED:
        return RunnerOutcome.REMOVED
    return RunnerOutcome.LOSER


def _runner(
    request: TraderSettleRequest,
    definition: MarketDefinition,
    sel: SelectionDefinition,
    now: datetime,
) -> RunnerResult:
    outcome = _outcome(request, sel)
    heat: DeadHeat | None = None
    tied = request.dead_heat.get(sel.selection_id)
    if tied is not None:
        if outcome is RunnerOutcome.WINNER:
            heat = DeadHeat(1, tied)
        elif outcome is RunnerOutcome.PLACED and definition.each_way is not None:
            heat = DeadHeat(definition.each_way.places, tied)  # a tie for the last place paid
        else:
            raise invalid(f"deadHeat {sel.selection_id}: only a winner or placed runner can tie")
    removed = outcome is RunnerOutcome.REMOVED
    return RunnerResult(
        sel.selection_id,
        outcome,
        dead_heat=heat,
        removed_at=(sel.removal_date or now) if removed else None,
        adjustment_factor=sel.adjustment_factor if removed else None,
    )


def build_instruction(
    request: TraderSettleRequest, definition: MarketDefinition, version: int, now: datetime
) -> SettlementInstruction:
    """Every runner of the market: named ones as named, the rest LOSER (already
    REMOVED ones stay removed, with their removal time and adjustment factor)."""
    known = {sel.selection_id for sel in definition.selections}
    unknown = sorted((request.winners | request.placed | request.removed) - known)
    unknown += sorted(set(request.dead_heat) - known)
    if unknown:
        raise invalid(f"market {definition.market_id} has no selection {', '.join(unknown)}")
    return SettlementInstruction(
        market_id=definition.market_id,
        version=version,
        runners=tuple(_runner(request, definition, s, now) for s in definition.selections),
        settled_at=now,
        number_of_winners=definition.number_of_winners or 1,
        each_way=definition.each_way,
        post_official=request.post_official,
        source=TRADER,
    )


async def trader_settle(service: SettlementService, account_id: str, data: bytes | None) -> bytes:
    """The ``trader.settle`` route: FORBIDDEN unless the account's limits say trader."""
    terms = await service.store.account_terms(account_id)
    if terms is None or terms.limits.get("trader") is not True:
        raise ApiError(ErrorCode.FORBIDDEN, "trader.settle is for trader accounts only")
    request = decode_trader_settle(data)
    book = service.hub.book(request.market_id)
    if book is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no market {request.market_id!r}")
    version = request.version
    if version is None:
        latest = await service.store.market_result(request.market_id, effective=False)
        version = 1 if latest is None else latest.version + 1
    instruction = build_instruction(request, book.definition, version, datetime.now(UTC))
    try:
        report = await service.settle(instruction)
    except ResultConflict as exc:
        raise invalid(f"{exc}: leave out --version to send the next one") from exc
    return orjson.dumps(
        {
            "marketId": report.market_id,
            "version": report.version,
            "outcome": report.outcome.value,
            "betsSettled": report.bets_settled,
            "betsOpen": report.bets_open,
            "detail": report.detail,
        }
    )
