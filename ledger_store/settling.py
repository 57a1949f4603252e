"""Settling one stored bet: pure planning shared by both backends (no I/O).

A backend reads a chunk of candidate bets (:class:`OpenBet`) and the results in
force for their markets, asks :func:`plan_bet` what to write for each, and
writes the plans (:class:`BetWrite`) in one transaction. The rules:

* ``PENDING`` (held by an in-play delay) when its market is settled: REJECTED
  ``MARKET_CLOSED`` with a REFUND of its stake (the delay's re-check would refuse
  it anyway; this makes it final even if the process holding it died).
* ``ACCEPTED``: settled once every leg's market has a result
  (:func:`sportsbook_core.results.settle_slip`); else left open (B05). SETTLED
  with a RETURN of the amount (none for a loser), or VOID (every leg void) with a
  REFUND. The bet's exposure is released.
* ``SETTLED`` / ``VOID`` settled on older result versions (a correction): the
  previous return is reversed (CORRECTION −previous) and the new one restated
  (RETURN). If the new settlement is the same as the old, only the versions are
  recorded (no entries, no event).

Every entry's reference names the result that caused it (``settle:M:vN``,
``reverse:M:vN``), and ``(bet, kind, reference)`` is unique in the ledger: a
bet's settlement by one result version cannot be written twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger_store.store import (
    BetStatus,
    Receipt,
    SettledBet,
    SettleOutcome,
    SettleReport,
    bet_event,
)
from sportsbook_core.bets import BetLeg, BetSlip, BetType, SystemBet, line_count
from sportsbook_core.ledger import EntryKind
from sportsbook_core.prices import Price
from sportsbook_core.results import BetSettlement, SettlementInstruction, settle_slip
from sportsbook_core.settlement import InvalidSettlement

log = logging.getLogger("sportsbook.settlement")

DEFAULT_CHUNK = 5_000
SETTLEABLE = ("PENDING", "ACCEPTED", "SETTLED", "VOID")


@dataclass(frozen=True, slots=True)
class OpenBet:
    """A candidate bet as read from the ledger."""

    bet_id: str
    account_id: str
    status: str
    total_stake: int
    receipt: Receipt
    placed_at: datetime
    versions: Mapping[str, int]
    """Result version per market this bet was last settled on ({} if never)."""


@dataclass(frozen=True, slots=True)
class BetWrite:
    """What to write for one bet. ``quiet``: only ``versions`` (nothing visible changed)."""

    bet: OpenBet
    status: str
    receipt: Receipt
    entries: tuple[tuple[EntryKind, int, str], ...]
    versions: tuple[tuple[str, int], ...]
    release: bool
    event: str
    reason: str
    quiet: bool = False

    @property
    def moved(self) -> int:
        return sum(amount for _, amount, _ in self.entries)


def now_text(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bet_markets(receipt: Receipt) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(leg["marketId"]) for leg in receipt.get("legs") or ()))


def slip_of(receipt: Receipt, total_stake: int) -> BetSlip:
    """The bet as struck, from its stored receipt (legs, prices, type, each-way, stake)."""
    legs = tuple(
        BetLeg(str(leg["marketId"]), str(leg["selectionId"]), Price.parse(str(leg["price"])))
        for leg in receipt["legs"]
    )
    default_type = BetType.SINGLE if len(legs) == 1 else BetType.ACCUMULATOR
    system = receipt.get("system")
    slip = BetSlip(
        request_id=str(receipt.get("requestId") or ""),
        bet_type=BetType(receipt.get("type") or default_type.value),
        system=None if system is None else SystemBet(system),
        legs=legs,
        stake_per_line=0,
        each_way=bool(receipt.get("eachWay")),
    )
    stake = receipt.get("stakePerLine")
    if not isinstance(stake, int):
        stake = total_stake // line_count(slip)
    return BetSlip(slip.request_id, slip.bet_type, slip.system, legs, stake, slip.each_way)


def plan_bet(
    bet: OpenBet,
    results: Mapping[str, SettlementInstruction],
    trigger: SettlementInstruction,
    now: datetime,
) -> BetWrite | None:
    """What settling ``bet`` on the results in force means (None: nothing to write)."""
    if bet.status == BetStatus.PENDING:
        return _reject_pending(bet, now)
    markets = bet_markets(bet.receipt)
    if any(m not in results for m in markets):
        return None  # waiting on another leg's market (B05)
    versions = tuple((m, results[m].version) for m in markets)
    if bet.status in (BetStatus.SETTLED, BetStatus.VOID) and dict(versions) == dict(bet.versions):
        return None  # settled on exactly these results already
    settlement = _settle(bet, results)
    if settlement is None:
        return None
    if bet.status == BetStatus.ACCEPTED:
        return _first(bet, settlement, versions, trigger, now)
    return _again(bet, settlement, versions, trigger, now)


def _settle(bet: OpenBet, results: Mapping[str, SettlementInstruction]) -> BetSettlement | None:
    cap = bet.receipt.get("maxPayout")
    try:
        slip = slip_of(bet.receipt, bet.total_stake)
        return settle_slip(
            slip, bet.placed_at, results, payout_cap=cap if isinstance(cap, int) else None
        )
    except (InvalidSettlement, ValueError, KeyError) as exc:
        log.error("bet cannot be settled", extra={"betId": bet.bet_id, "reason": str(exc)})
        return None


def _ref(kind: str, trigger: SettlementInstruction) -> str:
    return f"{kind}:{trigger.market_id}:v{trigger.version}"


def settled_receipt(
    receipt: Receipt, settlement: BetSettlement, now: datetime, extra: Mapping[str, Any]
) -> Receipt:
    """The receipt with each leg's ``result`` and the ``settlement`` (PROTOCOL.md)."""
    legs = [
        {**leg, "result": shown.result.value}
        for leg, shown in zip(receipt["legs"], settlement.legs, strict=True)
    ]
    body: dict[str, Any] = {
        "return": settlement.amount,
        "settledAt": now_text(now),
        "legs": [shown.to_wire() for shown in settlement.legs],
        **extra,
    }
    status = BetStatus.VOID if settlement.void else BetStatus.SETTLED
    return {**receipt, "status": status.value, "legs": legs, "settlement": body}


def _first(
    bet: OpenBet,
    settlement: BetSettlement,
    versions: tuple[tuple[str, int], ...],
    trigger: SettlementInstruction,
    now: datetime,
) -> BetWrite:
    receipt = settled_receipt(bet.receipt, settlement, now, {})
    entries: tuple[tuple[EntryKind, int, str], ...] = ()
    if settlement.amount > 0:
        kind = EntryKind.REFUND if settlement.void else EntryKind.RETURN
        entries = ((kind, settlement.amount, _ref("settle", trigger)),)
    status = receipt["status"]
    return BetWrite(bet, status, receipt, entries, versions, True, status, "SETTLEMENT")


def _again(
    bet: OpenBet,
    settlement: BetSettlement,
    versions: tuple[tuple[str, int], ...],
    trigger: SettlementInstruction,
    now: datetime,
) -> BetWrite:
    before = bet.receipt.get("settlement") or {}
    previous = int(before.get("return") or 0)
    same = previous == settlement.amount and before.get("legs") == [
        leg.to_wire() for leg in settlement.legs
    ]
    if same:
        return BetWrite(bet, bet.status, bet.receipt, (), versions, False, "", "", quiet=True)
    extra = {"resettled": True, "previousReturn": previous}
    receipt = settled_receipt(bet.receipt, settlement, now, extra)
    entries: list[tuple[EntryKind, int, str]] = []
    if previous:
        entries.append((EntryKind.CORRECTION, -previous, _ref("reverse", trigger)))
    if settlement.amount:
        entries.append((EntryKind.RETURN, settlement.amount, _ref("settle", trigger)))
    status = receipt["status"]
    return BetWrite(
        bet, status, receipt, tuple(entries), versions, False, "RESETTLED", "CORRECTION"
    )


def _reject_pending(bet: OpenBet, now: datetime) -> BetWrite:
    receipt = {
        **bet.receipt,
        "status": BetStatus.REJECTED.value,
        "code": "MARKET_CLOSED",
        "message": "the market was settled before the bet's in-play delay ended",
        "rejectedAt": now_text(now),
    }
    refund = ((EntryKind.REFUND, bet.total_stake, f"rejected:{bet.bet_id}"),)
    return BetWrite(bet, "REJECTED", receipt, refund, (), True, "REJECTED", "REJECTED")


def apply_balances(
    writes: Sequence[BetWrite], balances: dict[str, int]
) -> list[tuple[BetWrite, int]]:
    """Each write with its account's balance after it, in order (``balances`` updated)."""
    out: list[tuple[BetWrite, int]] = []
    for write in writes:
        account = write.bet.account_id
        balances[account] = balances[account] + write.moved
        out.append((write, balances[account]))
    return out


def merged_release(
    writes: Sequence[BetWrite], exposures: Mapping[str, Sequence[tuple[str, str, int]]]
) -> list[tuple[str, str, int]]:
    """The liability to take off each (market, selection), summed, sorted (lock order)."""
    total: dict[tuple[str, str], int] = {}
    for write in writes:
        if not write.release:
            continue
        for market_id, selection_id, liability in exposures.get(write.bet.bet_id, ()):
            key = (market_id, selection_id)
            total[key] = total.get(key, 0) + liability
    return [(m, s, v) for (m, s), v in sorted(total.items()) if v]


# --- the chunked run, shared by both backends --------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    """One committed chunk: the last bet id it looked at (None: nothing left), the
    bets it wrote and how many it left open (waiting on another market)."""

    last_bet_id: str | None
    changed: tuple[SettledBet, ...]
    waiting: int


def settled_rows(applied: Sequence[tuple[BetWrite, int]]) -> tuple[SettledBet, ...]:
    return tuple(
        SettledBet(w.bet.account_id, w.bet.bet_id, w.receipt, balance, w.reason, bool(w.entries))
        for w, balance in applied
    )


def outbox_payload(write: BetWrite, trigger: SettlementInstruction | None) -> Receipt:
    """``sportsbook.bets``: SETTLED, VOID, RESETTLED or REJECTED, with the result that
    caused it (consumers deduplicate by (betId, kind, status, settlementKey))."""
    bet = write.bet
    payload = bet_event(write.event, bet.bet_id, bet.account_id, write.status, write.receipt)
    if trigger is not None:
        payload["settlementKey"] = f"{trigger.market_id}:v{trigger.version}"
    else:
        payload["settlementKey"] = write.entries[0][2] if write.entries else None
    return payload


def held_report(instruction: SettlementInstruction) -> SettleReport | None:
    reason = instruction.review_reason()
    if reason is None:
        return None
    return SettleReport(
        instruction.market_id, instruction.version, SettleOutcome.HELD, detail=reason
    )


async def run_chunks(
    instruction: SettlementInstruction,
    outcome: SettleOutcome,
    chunk: Callable[[str, int], Awaitable[Chunk]],
    finish: Callable[[], Awaitable[None]],
    *,
    chunk_size: int | None,
    on_chunk: Callable[[Sequence[SettledBet]], None] | None,
) -> SettleReport:
    """Chunks in bet id order until none is left, then marks the result completed."""
    size = chunk_size or DEFAULT_CHUNK
    if size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {size}")
    after, settled, waiting = "", 0, 0
    kept: list[SettledBet] = []
    while True:
        done = await chunk(after, size)
        settled += len(done.changed)
        waiting += done.waiting
        if on_chunk is not None:
            on_chunk(done.changed)
        else:
            kept.extend(done.changed)
        if done.last_bet_id is None:
            break
        after = done.last_bet_id
    await finish()
    return SettleReport(
        instruction.market_id, instruction.version, outcome, settled, waiting, tuple(kept)
    )


def begin_outcome(
    version: int, post_official: bool, latest_applied: int | None
) -> tuple[SettleOutcome, bool]:
    """For a (market, version) not seen before: the outcome, and whether it applies."""
    if latest_applied is None:
        return SettleOutcome.SETTLED, True
    if version < latest_applied:
        return SettleOutcome.REPLAYED, False  # older than the result in force: a late copy
    if post_official:
        return SettleOutcome.POST_OFFICIAL_IGNORED, False
    return SettleOutcome.RESETTLED, True


# --- stake corrections (FIELD_CASES B04(c)) ----------------------------------------------


def check_stake_correction(stake_per_line: int, reference: str) -> None:
    if isinstance(stake_per_line, bool) or not isinstance(stake_per_line, int):
        raise ValueError(f"stake_per_line must be an int of minor units, got {stake_per_line!r}")
    if stake_per_line < 1 or not reference:
        raise ValueError("a stake correction needs a stake ≥ 1 and a reference")


def plan_stake_correction(
    bet: OpenBet,
    stake_per_line: int,
    reference: str,
    results: Mapping[str, SettlementInstruction],
    now: datetime,
) -> BetWrite | None:
    """A settled bet restated at a smaller stake: CORRECTION +stake difference, and its
    return reversed (CORRECTION −previous) and restated (RETURN) at the new stake. None
    when this reference was applied already (idempotent)."""
    if reference in (bet.receipt.get("stakeCorrections") or ()):
        return None
    if bet.status not in (BetStatus.SETTLED, BetStatus.VOID):
        raise ValueError(f"bet {bet.bet_id} is {bet.status}: correct a stake once it is settled")
    old = slip_of(bet.receipt, bet.total_stake)
    new_total = stake_per_line * line_count(old)
    if new_total >= bet.total_stake:
        raise ValueError(f"new total stake {new_total} is not below {bet.total_stake}")
    restated = {**bet.receipt, "stakePerLine": stake_per_line, "totalStake": new_total}
    settlement = _settle(OpenBet(**{**_fields(bet), "receipt": restated}), results)
    if settlement is None:
        raise ValueError(f"bet {bet.bet_id}: its markets' results are not all recorded")
    previous = int((bet.receipt.get("settlement") or {}).get("return") or 0)
    extra = {"resettled": True, "previousReturn": previous}
    receipt = settled_receipt(restated, settlement, now, extra)
    receipt["stakeCorrections"] = [*(bet.receipt.get("stakeCorrections") or ()), reference]
    receipt["bookedStake"] = bet.receipt.get("bookedStake", bet.total_stake)
    entries = [(EntryKind.CORRECTION, bet.total_stake - new_total, f"stake:{reference}")]
    if previous:
        entries.append((EntryKind.CORRECTION, -previous, f"reverse:stake:{reference}"))
    if settlement.amount:
        entries.append((EntryKind.RETURN, settlement.amount, f"settle:stake:{reference}"))
    versions = tuple(bet.versions.items())
    return BetWrite(
        bet, receipt["status"], receipt, tuple(entries), versions, False, "RESETTLED", "CORRECTION"
    )


def _fields(bet: OpenBet) -> dict[str, Any]:
    return {name: getattr(bet, name) for name in OpenBet.__slots__}
