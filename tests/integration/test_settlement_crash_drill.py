"""Settlement crash drill (issue #5): ``kill -9`` a settler mid-market, run it again.

10,000 open bets on one market (half on the winner at 2.0, half on a loser), 50
accounts. A subprocess settles the market in chunks of 500 and is killed with
SIGKILL after its third committed chunk; the same instruction is then settled
again here. Every bet is settled exactly once: one RETURN of 2× stake per winning
bet, none for a loser, the ledger audit is clean and each balance is the sum of
its entries. Both backends.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime

import orjson

from ledger_store import LedgerStore, Outcome, Placement, open_store
from schemas.results import instruction_to_wire
from sportsbook_core.ledger import EntryKind, balance_of
from sportsbook_core.results import RunnerOutcome, RunnerResult, SettlementInstruction
from tests.testkit.live_server import REPO

BETS = 10_000
ACCOUNTS = 50
STAKE = 100
MARKET = "1.500"
INSTRUCTION = SettlementInstruction(
    MARKET,
    1,
    (RunnerResult("1", RunnerOutcome.WINNER), RunnerResult("2", RunnerOutcome.LOSER)),
    datetime(2026, 6, 1, 15, tzinfo=UTC),
)

_SETTLER = """
import asyncio, sys, orjson
from ledger_store import open_store
from schemas.results import instruction_from_wire

async def main() -> None:
    store = await open_store(sys.argv[1])
    instruction = instruction_from_wire(orjson.loads(sys.argv[2]))
    await store.settle_market(
        instruction, chunk_size=500, on_chunk=lambda c: print(len(c), flush=True)
    )
    print("done", flush=True)

asyncio.run(main())
"""


def _placement(i: int) -> Placement:
    account = f"acc-{i % ACCOUNTS}"
    selection = "1" if i % 2 == 0 else "2"
    legs = [{"marketId": MARKET, "selectionId": selection, "price": "2", "result": None}]

    def receipt_for(bet_id: str, balance: int) -> dict[str, object]:
        return {
            "betId": bet_id,
            "type": "SINGLE",
            "legs": legs,
            "stakePerLine": STAKE,
            "totalStake": STAKE,
            "currency": "GBP",
            "balanceAfter": balance,
            "settlement": None,
        }

    return Placement(
        account_id=account,
        request_id=f"r{i}",
        body_hash=f"h{i}",
        total_stake=STAKE,
        status="ACCEPTED",
        exposures=[(MARKET, selection, STAKE)],
        liability_limit=None,
        receipt_for=receipt_for,
    )


async def _seed(store: LedgerStore) -> None:
    for a in range(ACCOUNTS):
        await store.create_account(f"acc-{a}", "GBP", None, {})
        await store.deposit(f"acc-{a}", BETS * STAKE, "seed")
    for start in range(0, BETS, 500):
        outcomes = await asyncio.gather(
            *(store.place_bet(_placement(i)) for i in range(start, start + 500))
        )
        assert all(o.outcome is Outcome.PLACED for o in outcomes)


async def _settle_and_die(url: str) -> int:
    """The settler in a subprocess, SIGKILLed after its third committed chunk."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _SETTLER,
        url,
        orjson.dumps(instruction_to_wire(INSTRUCTION)).decode(),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    settled = 0
    for _ in range(3):
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        settled += int(line)
    proc.kill()
    assert await proc.wait() == -9
    return settled


async def test_kill_9_mid_settlement_then_rerun_settles_every_bet_once(ledger_url: str) -> None:
    store = await open_store(ledger_url)
    try:
        await _seed(store)
    finally:
        await store.close()
    before_kill = await _settle_and_die(ledger_url)
    assert before_kill >= 1500
    store = await open_store(ledger_url)
    try:
        report = await store.settle_market(INSTRUCTION, chunk_size=2000)
        assert report.outcome == "settled"  # not completed before the kill: finished now
        assert 0 < report.bets_settled <= BETS - 1500
        assert (await store.settle_market(INSTRUCTION)).outcome == "replayed"
        returns: Counter[str] = Counter()
        for a in range(ACCOUNTS):
            entries = await store.entries(f"acc-{a}")
            account = await store.account(f"acc-{a}")
            assert account is not None and account.balance == balance_of(entries)
            for entry in entries:
                if entry.kind is EntryKind.RETURN:
                    assert entry.amount == 2 * STAKE
                    returns[entry.bet_id or ""] += 1
            # 200 bets each; even accounts' bets all won (+1.00 each), odd ones' all lost.
            per_account = BETS // ACCOUNTS * STAKE
            assert account.balance == BETS * STAKE + (per_account if a % 2 == 0 else -per_account)
        assert len(returns) == BETS // 2 and set(returns.values()) == {1}
        bets, _ = await store.list_bets("acc-0", "OPEN", 10, None)
        assert bets == []
        assert await store.audit() == []
        assert await store.book_totals(MARKET) == {MARKET: (BETS * STAKE, BETS * STAKE)}
    finally:
        await store.close()
