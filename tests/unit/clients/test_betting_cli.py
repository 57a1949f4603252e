"""``sportsbook account …`` and ``bet`` output: errors are one line and exit 2."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clients.betting_cli import MAX_BALANCE_MINOR, describe_receipt, placing_line
from clients.cli import main
from ledger_store import open_store
from schemas.bets import MAX_STAKE_MINOR

pytestmark = pytest.mark.usefixtures("restore_logging")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _seed(ledger: Path, account_id: str, balance: int) -> None:
    async def seed() -> None:
        store = await open_store(None, default_path=ledger)
        try:
            await store.create_account(account_id, "GBP", None, {})
            await store.deposit(account_id, balance, "seed")
        finally:
            await store.close()

    asyncio.run(seed())


def test_creating_an_existing_account_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = ["--ledger", str(tmp_path / "ledger.sqlite3")]
    assert _run(["account", "create", "carol", *ledger], capsys)[0] == 0
    assert _run(["account", "create", "carol", *ledger], capsys) == (
        2,
        "",
        "error: account 'carol' already exists\n",
    )


def test_depositing_into_no_account_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["account", "deposit", "nobody", "100", "--ledger", str(tmp_path / "l.sqlite3")]
    assert _run(argv, capsys) == (2, "", "error: no account 'nobody'\n")


@pytest.mark.parametrize("amount", ["0", "-5", "1.5", str(MAX_STAKE_MINOR + 1), "lots"])
def test_a_deposit_amount_outside_1_to_the_stake_cap_is_a_usage_error(
    amount: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["account", "deposit", "carol", "--ledger", str(tmp_path / "l.sqlite3"), "--", amount]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sportsbook account deposit: error: argument amount: expected whole minor units "
        f"from 1 to {MAX_STAKE_MINOR} (1000 = £10.00), got {amount!r}"
    )


def test_a_deposit_beyond_the_maximum_balance_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    _seed(ledger, "carol", MAX_BALANCE_MINOR - 5)
    base = ["account", "deposit", "carol", "--ledger", str(ledger)]
    assert _run([*base, "6"], capsys) == (
        2,
        "",
        f"error: deposit refused: account 'carol' would hold {MAX_BALANCE_MINOR + 1}, "
        f"more than the maximum balance {MAX_BALANCE_MINOR}\n",
    )
    code, out, _ = _run([*base, "5", "--reference", "top-up"], capsys)
    assert (code, f'"balance": {MAX_BALANCE_MINOR}' in out) == (0, True)


def test_a_reused_deposit_reference_with_another_amount_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    _seed(ledger, "carol", 100)
    argv = ["account", "deposit", "carol", "7", "--reference", "seed", "--ledger", str(ledger)]
    assert _run(argv, capsys) == (2, "", "error: deposit 'seed' was 100, not 7\n")


def test_a_rejection_shows_its_details() -> None:
    price_changed = {
        "status": "REJECTED",
        "code": "PRICE_CHANGED",
        "message": "price changed on 1.1/7",
        "details": {
            "prices": [{"marketId": "1.1", "selectionId": "7", "price": "2.5", "requested": "2.6"}]
        },
    }
    assert describe_receipt(price_changed) == (
        "REJECTED PRICE_CHANGED: price changed on 1.1/7\n  now 1.1 / 7 @ 2.5 (you asked 2.6)"
    )
    max_payout = {
        "status": "REJECTED",
        "code": "MAX_PAYOUT",
        "message": "too much",
        "details": {"maxPayout": 100, "potentialReturn": 150, "suggestedMaxStake": 66},
    }
    assert describe_receipt(max_payout) == (
        "REJECTED MAX_PAYOUT: too much\n"
        "  details: maxPayout=100, potentialReturn=150, suggestedMaxStake=66"
    )
    bare = {"status": "REJECTED", "code": "X", "message": "no", "details": {}}
    assert describe_receipt(bare) == "REJECTED X: no"


def test_placing_says_when_the_bet_will_be_held() -> None:
    leg = {"marketId": "1.1", "selectionId": "7", "price": "2.5"}
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    earlier = "2022-04-19T18:26:00.000Z"
    held = "(in-play bets are held for the market's bet delay, ≥5 s, then re-checked)"
    assert placing_line(500, leg, {"inPlay": False, "startTime": later}) == (
        "placing £5.00 on 1.1 / 7 @ 2.5 …"
    )
    for market in ({"inPlay": False, "startTime": earlier}, {"inPlay": True, "startTime": later}):
        assert placing_line(500, leg, market) == f"placing £5.00 on 1.1 / 7 @ 2.5 … {held}"
    assert placing_line(500, leg, None) == f"placing £5.00 on 1.1 / 7 @ 2.5 … {held}"
