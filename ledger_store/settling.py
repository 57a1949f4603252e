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
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from functools import lru_cache
from typing import Any

from ledger_store.store import (
    BetStatus,
    Receipt,
    SettledBet,
    SettleOutcome,
    SettleReport,
    bet_event,
)
from sportsbook_core.bets import (
    BetLeg,
    BetSlip,
    BetType,
    InvalidBet,
    Line,
    SystemBet,
    expand_lines,
    line_count,
)
from sportsbook_core.ledger import EntryKind
from sportsbook_core.prices import Price
from sportsbook_core.results import (
    BetSettlement,
    SettledLeg,
    SettlementInstruction,
    settle_leg,
    settle_slip,
)
from sportsbook_core.returns import potential_return
from sportsbook_core.settlement import InvalidSettlement, leg_factor, sum_of_lines

log = logging.getLogger("sportsbook.settlement")

# Bets per chunk (one transaction). A chunk holds SQLite's one writer, or its accounts'
# rows on PostgreSQL, for as long as it takes: at 1,000 about 60 ms / 190 ms in
# bench/settle_market.py (5,000: 400 / 770 ms), so bets placed during a settlement wait
# little; SQLite settled faster at 1,000 too, PostgreSQL ~18 % slower.
DEFAULT_CHUNK = 1_000
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


@lru_cache(maxsize=1)  # a chunk's bets share one ``now``
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


@dataclass(frozen=True, slots=True)
class Settled:
    """A bet's settlement with the receipt's pieces made from it (shared by every bet of
    the same shape: see :class:`SettleCache`)."""

    settlement: BetSettlement
    legs_wire: tuple[dict[str, Any], ...]
    """``settlement.legs`` as the receipt shows them (copied into each receipt)."""
    results: tuple[str, ...]
    """Each leg's ``result`` value."""
    status: str
    """SETTLED, or VOID when every leg is void."""

    @classmethod
    def of(cls, settlement: BetSettlement) -> Settled:
        return cls(
            settlement,
            tuple(leg.to_wire() for leg in settlement.legs),
            tuple(leg.result.value for leg in settlement.legs),
            (BetStatus.VOID if settlement.void else BetStatus.SETTLED).value,
        )


class SettleCache:
    """Identical bets settled once: a bet's settlement is a pure function of its legs
    (market, selection, price as struck), type, system, each-way, stake per line, payout
    cap, the results in force for its markets (by version: a (market, version) is
    recorded once, ``ResultConflict`` otherwise) and, of its struck time, only which of
    those markets' withdrawals came after it (Rule 4 and the exchange reduction read
    nothing else of it: :func:`sportsbook_core.results.settle_slip`). That is the key;
    the value is the settlement of the first bet of the shape. A market of a million
    bets has a few thousand shapes of single.

    A shape seen for the first time (most multiples are) is settled by
    :meth:`settle_new`: :func:`settle_slip`'s own steps — each leg by the core's
    ``settle_leg``, each leg's factor on a win and a place line by
    :func:`~sportsbook_core.settlement.leg_factor`, the lines by
    :func:`~sportsbook_core.bets.expand_lines` — with the legs and lines remembered, and
    summed by the core's :func:`~sportsbook_core.settlement.sum_of_lines`, floored once
    (tests/unit/ledger_store/test_settle_cache.py: it pays exactly what settle_slip pays).
    Bounded (cleared when full); a receipt that gives no key is settled on its own."""

    __slots__ = ("_by_key", "_legs", "_limit", "_lines", "_removals", "hits", "misses")

    def __init__(self, limit: int = 100_000) -> None:
        self._by_key: dict[tuple[Any, ...], Settled] = {}
        self._removals: dict[tuple[str, int], list[datetime]] = {}
        self._legs: dict[tuple[Any, ...], tuple[SettledLeg, Fraction, Fraction | None]] = {}
        self._lines: dict[tuple[Any, ...], tuple[Line, ...]] = {}
        self._limit = limit
        self.hits = 0
        self.misses = 0

    def _removal_times(self, instruction: SettlementInstruction) -> list[datetime]:
        key = (instruction.market_id, instruction.version)
        times = self._removals.get(key)
        if times is None:
            times = sorted(r.removed_at for r in instruction.removals() if r.removed_at)
            self._removals[key] = times
        return times

    def key(
        self, bet: OpenBet, markets: Sequence[str], results: Mapping[str, SettlementInstruction]
    ) -> tuple[Any, ...] | None:
        receipt = bet.receipt
        try:
            legs = tuple(
                (leg["marketId"], leg["selectionId"], leg["price"]) for leg in receipt["legs"]
            )
            key = (
                legs,
                receipt.get("type"),
                receipt.get("system"),
                bool(receipt.get("eachWay")),
                receipt.get("stakePerLine"),
                bet.total_stake,
                receipt.get("maxPayout"),
                tuple(
                    (
                        results[m].version,
                        bisect_right(self._removal_times(results[m]), bet.placed_at),
                    )
                    for m in markets
                ),
            )
            hash(key)
        except (KeyError, TypeError):
            return None
        return key

    def settle(
        self,
        bet: OpenBet,
        markets: Sequence[str],
        results: Mapping[str, SettlementInstruction],
    ) -> Settled | None:
        key = self.key(bet, markets, results)
        if key is not None:
            found = self._by_key.get(key)
            if found is not None:
                self.hits += 1
                return found
        self.misses += 1
        try:
            settlement = self.settle_new(bet, results)
        except (InvalidSettlement, ValueError, KeyError) as exc:
            log.error("bet cannot be settled", extra={"betId": bet.bet_id, "reason": str(exc)})
            return None
        settled = Settled.of(settlement)
        if key is not None:
            if len(self._by_key) >= self._limit:
                self._by_key.clear()
            self._by_key[key] = settled
        return settled

    def settle_new(
        self, bet: OpenBet, results: Mapping[str, SettlementInstruction]
    ) -> BetSettlement:
        """:func:`settle_slip` for this bet (every leg's market has a result)."""
        if len(self._legs) >= self._limit:
            self._legs.clear()
        slip = slip_of(bet.receipt, bet.total_stake)
        legs: list[tuple[SettledLeg, Fraction, Fraction | None]] = []
        for leg in slip.legs:
            instruction = results[leg.market_id]
            position = bisect_right(self._removal_times(instruction), bet.placed_at)
            odds = leg.price.odds
            leg_key = (
                leg.market_id,
                instruction.version,
                leg.selection_id,
                odds.numerator,
                odds.denominator,
                position,
            )
            found = self._legs.get(leg_key)
            if found is None:
                found = self._leg(leg.selection_id, leg.price, bet.placed_at, instruction)
                self._legs[leg_key] = found
            legs.append(found)
        shape = (slip.bet_type, slip.system, len(slip.legs), slip.each_way)
        lines = self._lines.get(shape)
        if lines is None:
            try:
                lines = self._lines[shape] = expand_lines(slip)
            except InvalidBet as exc:
                raise InvalidSettlement(str(exc)) from exc

        def factor(i: int, place: bool) -> Fraction:
            found = legs[i][2] if place else legs[i][1]
            if found is None:  # a place line's leg that has no place part
                raise InvalidSettlement("a place line needs each-way terms")
            return found

        amount = potential_return(slip.stake_per_line, sum_of_lines(lines, factor))
        cap = bet.receipt.get("maxPayout")
        if isinstance(cap, int):
            amount = min(amount, cap)
        return BetSettlement(amount=amount, legs=tuple(leg[0] for leg in legs))

    @staticmethod
    def _leg(
        selection_id: str, price: Price, struck_at: datetime, instruction: SettlementInstruction
    ) -> tuple[SettledLeg, Fraction, Fraction | None]:
        """The leg as shown, and its factor on a win line and on a place line (None: a
        place line cannot hold it; raised only if the bet has one)."""
        settled = settle_leg(selection_id, price, struck_at, instruction)
        terms = instruction.each_way
        win = leg_factor(settled.price, settled.outcome, place=False, terms=terms)
        try:
            place: Fraction | None = leg_factor(
                settled.price, settled.outcome, place=True, terms=terms
            )
        except InvalidSettlement:
            place = None
        return settled.shown, win, place


def plan_bet(
    bet: OpenBet,
    results: Mapping[str, SettlementInstruction],
    trigger: SettlementInstruction,
    now: datetime,
    cache: SettleCache | None = None,
) -> BetWrite | None:
    """What settling ``bet`` on the results in force means (None: nothing to write).
    ``cache``: settle bets of the same shape once (:class:`SettleCache`)."""
    if bet.status == BetStatus.PENDING:
        return _reject_pending(bet, now)
    markets = bet_markets(bet.receipt)
    if any(m not in results for m in markets):
        return None  # waiting on another leg's market (B05)
    versions = tuple((m, results[m].version) for m in markets)
    if bet.status in (BetStatus.SETTLED, BetStatus.VOID) and dict(versions) == dict(bet.versions):
        return None  # settled on exactly these results already
    if cache is not None:
        settled = cache.settle(bet, markets, results)
    else:
        settlement = _settle(bet, results)
        settled = None if settlement is None else Settled.of(settlement)
    if settled is None:
        return None
    if bet.status == BetStatus.ACCEPTED:
        return _first(bet, settled, versions, trigger, now)
    return _again(bet, settled, versions, trigger, now)


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
    receipt: Receipt, settled: Settled, now: datetime, extra: Mapping[str, Any]
) -> Receipt:
    """The receipt with each leg's ``result`` and the ``settlement`` (PROTOCOL.md)."""
    legs = [
        {**leg, "result": result}
        for leg, result in zip(receipt["legs"], settled.results, strict=True)
    ]
    body: dict[str, Any] = {
        "return": settled.settlement.amount,
        "settledAt": now_text(now),
        "legs": [dict(shown) for shown in settled.legs_wire],
        **extra,
    }
    return {**receipt, "status": settled.status, "legs": legs, "settlement": body}


def _first(
    bet: OpenBet,
    settled: Settled,
    versions: tuple[tuple[str, int], ...],
    trigger: SettlementInstruction,
    now: datetime,
) -> BetWrite:
    settlement = settled.settlement
    receipt = settled_receipt(bet.receipt, settled, now, {})
    entries: tuple[tuple[EntryKind, int, str], ...] = ()
    if settlement.amount > 0:
        kind = EntryKind.REFUND if settled.status == BetStatus.VOID else EntryKind.RETURN
        entries = ((kind, settlement.amount, _ref("settle", trigger)),)
    status = receipt["status"]
    return BetWrite(bet, status, receipt, entries, versions, True, status, "SETTLEMENT")


def _again(
    bet: OpenBet,
    settled: Settled,
    versions: tuple[tuple[str, int], ...],
    trigger: SettlementInstruction,
    now: datetime,
) -> BetWrite:
    settlement = settled.settlement
    before = bet.receipt.get("settlement") or {}
    previous = int(before.get("return") or 0)
    same = previous == settlement.amount and before.get("legs") == list(settled.legs_wire)
    if same:
        return BetWrite(bet, bet.status, bet.receipt, (), versions, False, "", "", quiet=True)
    extra = {"resettled": True, "previousReturn": previous}
    receipt = settled_receipt(bet.receipt, settled, now, extra)
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
    after: str = "",
) -> SettleReport:
    """Chunks in bet id order (from after ``after``) until none is left, then marks the
    result completed."""
    size = chunk_size or DEFAULT_CHUNK
    if size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {size}")
    settled, waiting = 0, 0
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
    if outcome is SettleOutcome.REPLAYED and settled:
        outcome = SettleOutcome.SETTLED  # a re-run that found new bets (a sweep)
    return SettleReport(
        instruction.market_id, instruction.version, outcome, settled, waiting, tuple(kept)
    )


@dataclass(frozen=True, slots=True)
class Begun:
    """What recording an instruction decided: the outcome, after which bet id to look
    at bets (``None``: nothing to do) and the highest bet ``seq`` when it began (the
    run's mark: a re-run looks for open bets on the market placed after it)."""

    outcome: SettleOutcome
    after: str | None
    mark: int = 0


def rerun_begun(applied: bool, in_force: int | None, version: int, newer: bool, mark: int) -> Begun:
    """A completed (market, version) run again: if it is the result in force and bets
    were placed on the market since its last run began (``newer``: still open), they are
    settled (the whole market is looked at; those settled are skipped by the chunks'
    query); else nothing (``replayed``)."""
    if not applied or (in_force is not None and in_force > version) or not newer:
        return Begun(SettleOutcome.REPLAYED, None, mark)
    return Begun(SettleOutcome.REPLAYED, "", mark)


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
    receipt = settled_receipt(restated, Settled.of(settlement), now, extra)
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
