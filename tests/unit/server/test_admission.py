"""Admission control of ``bets.place``: at most ``max_in_flight`` placements, a short
first-come-first-served wait for a place, then RATE_LIMITED with a retry hint."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from ledger_store.store import LedgerStore
from rsocket_server.betting import BettingConfig, PlacementService
from schemas.errors import ApiError, ErrorCode
from streams.odds_hub import OddsHub


def _service(max_in_flight: int, wait_ms: int = 50) -> PlacementService:
    config = BettingConfig(max_in_flight=max_in_flight, admission_wait_ms=wait_ms)
    return PlacementService(cast(OddsHub, object()), cast(LedgerStore, object()), config)


async def test_beyond_the_bound_waits_then_is_rate_limited_with_a_retry_hint() -> None:
    service = _service(2, wait_ms=30)
    held = [await service.admit(), await service.admit()]
    assert service.in_flight == 2
    started = asyncio.get_running_loop().time()
    with pytest.raises(ApiError) as refused:
        await service.admit()
    assert asyncio.get_running_loop().time() - started >= 0.025  # waited before refusing
    assert refused.value.code is ErrorCode.RATE_LIMITED
    assert "retryAfterMs=" in str(refused.value)
    held[0].release()
    held[0].release()  # idempotent
    assert service.in_flight == 1
    again = await service.admit()
    assert service.in_flight == 2
    again.release()
    held[1].release()
    assert service.in_flight == 0


async def test_a_place_freed_during_the_wait_goes_to_the_first_waiter() -> None:
    service = _service(1, wait_ms=1000)
    first = await service.admit()
    order: list[int] = []

    async def wait(i: int) -> Any:
        permit = await service.admit()
        order.append(i)
        return permit

    waiting = [asyncio.create_task(wait(i)) for i in range(2)]
    await asyncio.sleep(0.01)
    assert order == []
    first.release()
    second = await waiting[0]
    assert order == [0] and not waiting[1].done() and service.in_flight == 1
    second.release()
    (await waiting[1]).release()
    assert order == [0, 1] and service.in_flight == 0


async def test_a_cancelled_waiter_takes_no_place() -> None:
    service = _service(1, wait_ms=1000)
    first = await service.admit()
    waiter = asyncio.create_task(service.admit())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    first.release()
    assert service.in_flight == 0
    (await service.admit()).release()
    assert service.in_flight == 0


async def test_place_without_a_permit_is_refused_at_once_when_full() -> None:
    service = _service(1)
    held = await service.admit()
    with pytest.raises(ApiError) as refused:
        await service.place("A", cast(Any, None))
    assert refused.value.code is ErrorCode.RATE_LIMITED
    held.release()
