"""RSocket LEASE (issue #4): granted to clients that ask for it, enforced by the server.

Real rsocket-py clients over TCP. A client that asks (SETUP lease flag) gets a
LEASE frame at once and a fresh one every window; one that honours it
(``honor_lease=True``) holds its excess requests until the next LEASE; one
that ignores it has them refused with ERROR[REJECTED]. A client that does not
ask sees no LEASE and no limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from rsocket.error_codes import ErrorCode
from rsocket.exceptions import RSocketProtocolError
from rsocket.extensions.mimetypes import WellKnownMimeTypes
from rsocket.frame import Frame, LeaseFrame
from rsocket.helpers import single_transport_provider
from rsocket.payload import Payload
from rsocket.rsocket_client import RSocketClient
from rsocket.transports.tcp import TransportTCP

from clients.client import route_metadata, setup_metadata
from rsocket_server.auth import token_hash
from tests.testkit.live_server import LiveServer, live_server

GRANT = (50, 1000)  # the default: 50 requests per 1,000 ms (BettingConfig's 50 bets/s)
REFUSAL = (
    '{"code":"RATE_LIMITED","message":"lease exhausted: 50 requests per 1000 ms; '
    'wait for the next LEASE"}'
)


class LeaseClient(RSocketClient):
    """An rsocket-py client that records every LEASE it is granted.

    ``ask``: the SETUP lease flag (rsocket-py's ``honor_lease``). ``ignore``: it
    asked, yet sends requests beyond the lease (a misbehaving client).
    """

    def __init__(self, *args: Any, ask: bool, ignore: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, honor_lease=ask, **kwargs)
        self.leases: list[tuple[int, int]] = []
        self._ignore = ignore

    async def handle_lease(self, frame: LeaseFrame) -> None:
        await super().handle_lease(frame)
        self.leases.append((frame.number_of_requests, frame.time_to_live))

    async def lease_after(self, grants: int, timeout: float = 3.0) -> int:  # noqa: ASYNC109
        """Wait for grant number ``grants + 1``; returns the number of grants then."""
        async with asyncio.timeout(timeout):
            while len(self.leases) <= grants:
                await asyncio.sleep(0.002)
        return len(self.leases)

    def _is_frame_allowed_to_send(self, frame: Frame) -> bool:
        return True if self._ignore else bool(super()._is_frame_allowed_to_send(frame))

    async def ask_events(self) -> dict[str, Any]:
        payload = Payload(b"{}", route_metadata("catalog.events"))
        answer = await self.request_response(payload)
        return dict(orjson.loads(answer.data))


@contextlib.asynccontextmanager
async def connect(
    live: LiveServer, *, ask: bool, ignore: bool = False, token: str | None = None
) -> AsyncIterator[LeaseClient]:
    reader, writer = await asyncio.open_connection("127.0.0.1", live.server.tcp_port)
    client = LeaseClient(
        single_transport_provider(TransportTCP(reader, writer)),
        ask=ask,
        ignore=ignore,
        data_encoding=WellKnownMimeTypes.APPLICATION_JSON,
        metadata_encoding=WellKnownMimeTypes.MESSAGE_RSOCKET_COMPOSITE_METADATA,
        setup_payload=Payload(None, setup_metadata(token)),
        keep_alive_period=timedelta(seconds=5),
        max_lifetime_period=timedelta(seconds=25),
    )
    async with client:
        yield client


async def _window_start(client: LeaseClient) -> int:
    """Wait for a renewal, so a whole window lies ahead; returns how many grants so far."""
    return await client.lease_after(len(client.leases))


async def test_a_client_that_asks_gets_the_lease_and_an_honouring_one_paces_itself() -> None:
    async with live_server() as live, connect(live, ask=True) as client:
        await client.lease_after(0)
        assert client.leases == [GRANT]
        grants = await _window_start(client)
        answers = await asyncio.gather(*(client.ask_events() for _ in range(GRANT[0])))
        assert all(answer == {"events": []} for answer in answers)
        assert len(client.leases) == grants  # all 50 served within one window
        held = asyncio.create_task(client.ask_events())  # the 51st waits for the next LEASE
        await asyncio.sleep(0.1)
        assert not held.done()
        assert await held == {"events": []}
        assert len(client.leases) == grants + 1
        assert set(client.leases) == {GRANT}


async def test_a_request_beyond_the_lease_is_rejected_and_served_after_the_renewal() -> None:
    async with live_server() as live, connect(live, ask=True, ignore=True) as client:
        grants = await _window_start(client)
        answers = await asyncio.gather(*(client.ask_events() for _ in range(GRANT[0])))
        assert all(answer == {"events": []} for answer in answers)
        with pytest.raises(RSocketProtocolError) as refused:
            await client.ask_events()
        assert (refused.value.error_code, refused.value.data) == (ErrorCode.REJECTED, REFUSAL)
        assert len(client.leases) == grants  # refused within the same window
        await client.lease_after(grants)
        assert await client.ask_events() == {"events": []}


async def test_without_the_lease_flag_there_is_no_lease_and_no_limit() -> None:
    async with live_server() as live, connect(live, ask=False) as client:
        answers = await asyncio.gather(*(client.ask_events() for _ in range(3 * GRANT[0])))
        assert len(answers) == 3 * GRANT[0]
        await asyncio.sleep(1.2)  # longer than a lease window
        assert client.leases == []


async def test_the_lease_follows_the_accounts_bets_per_second(tmp_path: Path) -> None:
    """A signed-in account is granted its ``limits.betsPerSecond`` per second."""
    async with live_server(database=f"sqlite:///{tmp_path / 'ledger.db'}") as live:
        assert live.server.betting is not None
        store = live.server.betting.store
        await store.create_account("fast", "GBP", token_hash("t-fast"), {"betsPerSecond": 20})
        await store.create_account("plain", "GBP", token_hash("t-plain"), {})
        async with connect(live, ask=True, token="t-fast") as fast:
            await fast.lease_after(0)
            assert fast.leases == [(20, 1000)]
        async with connect(live, ask=True, token="t-plain") as plain:
            await plain.lease_after(0)
            assert plain.leases == [GRANT]
