"""``sportsbook account watch``: one line per account.stream event, against a real server.

The demo accounts as `make run` seeds them (demo-alice £1,000.00, demo-trader), a market
published on the bus, a bet placed over RSocket, the market suspended, then settled
with ``sportsbook settle … --token demo-trader-token``; the watcher prints exactly the
BET / BALANCE / MARKET lines and ends with exit 0 on SIGINT (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clients.client import SportsbookClient
from rsocket_server.app import DEMO_DEPOSIT
from sportsbook_core.catalogue import MarketStatus
from tests.testkit.builders import definition_change, market_definition
from tests.testkit.live_server import REPO, live_server

FUTURE = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)  # not in play: no hold


async def _cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clients.cli",
        *args,
        cwd=REPO,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_account_watch_prints_each_event_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    assert DEMO_DEPOSIT == 100_000  # £1,000.00
    definition = replace(market_definition("1.1"), start_time=FUTURE)
    async with live_server(ledger_path=tmp_path / "ledger.sqlite3", demo_accounts=True) as live:
        assert live.server.betting is not None
        events = live.server.betting.events
        await live.publish(definition_change(definition, s11="3", s12="2", s13="5"))
        await live.settled()
        url = live.url("tcp")
        watch = await _cli("account", "watch", "--token", "demo-alice-token", "--url", url)
        assert watch.stdout is not None and watch.stderr is not None
        async with asyncio.timeout(10):
            while not events.open_markets.ready("demo-alice"):
                await asyncio.sleep(0.01)

        leg = {"marketId": "1.1", "selectionId": "11", "price": "3"}
        body = {"requestId": "w1", "type": "SINGLE", "legs": [leg], "stake": 1000}
        async with SportsbookClient.connect(url, "demo-alice-token") as client:
            placed = await client.request("bets.place", body)
        assert placed["status"] == "ACCEPTED"
        bet_id = placed["betId"]
        await live.publish(
            definition_change(replace(definition, status=MarketStatus.SUSPENDED), s11="3")
        )
        await live.settled()
        settle = await _cli(
            "settle", "1.1", "--winner", "11", "--token", "demo-trader-token", "--url", url
        )
        out, err = await settle.communicate()
        assert (settle.returncode, out.decode(), err.decode()) == (
            0,
            "SETTLED 1.1 v1: 1 bet settled\n",
            "",
        )

        expected = [
            # accepted: £10.00 staked at 3.0, balance 1,000.00 − 10.00
            f"BET {bet_id} ACCEPTED £10.00 on 1.1 / 11 @ 3, potential return £30.00",
            f"BALANCE £990.00 (BET {bet_id})",
            "MARKET 1.1 SUSPENDED",
            # won: 10.00 × 3.0 = 30.00 back, balance 990.00 + 30.00
            f"BET {bet_id} SETTLED return £30.00",
            f"BALANCE £1,020.00 (SETTLEMENT {bet_id})",
        ]
        lines = []
        async with asyncio.timeout(10):
            while len(lines) < len(expected):
                lines.append((await watch.stdout.readline()).decode().rstrip("\n"))
        assert lines == expected

        watch.send_signal(signal.SIGINT)  # Ctrl-C
        async with asyncio.timeout(10):
            rest, errors = await watch.communicate()
        assert (watch.returncode, rest.decode(), errors.decode()) == (0, "", "")
