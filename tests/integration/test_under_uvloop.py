"""STYLE.md 12: the optional speed-up is tested both ways.

The transport tests run on asyncio's own loop everywhere else; here the ones
that exercise backpressure, conflation, cancel and resume run again on uvloop,
the loop ``sportsbook serve`` uses when it is installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from tests.integration import test_odds_stream as odds

SCENARIOS: list[Callable[[str], Coroutine[Any, Any, None]]] = [
    odds.test_snapshot_then_deltas_with_contiguous_seq,
    odds.test_stalled_subscriber_gets_one_conflated_frame_after_10000_changes,
    odds.test_cancel_stops_frames_promptly,
    odds.test_resume_from_clk_continues_without_gaps,
]


@pytest.mark.parametrize("transport", ["tcp", "ws"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__.removeprefix("test_"))
def test_on_uvloop(scenario: Callable[[str], Coroutine[Any, Any, None]], transport: str) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)
        runner.run(scenario(transport))
