"""Test-wide settings: quiet structured logs, and a fresh event loop per test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

logging.getLogger("pyrsocket").setLevel(logging.CRITICAL)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that call ``logs.configure`` (the CLI's main does): the next test gets
    the root handlers and levels it had, and no aiohttp.server filter."""
    root = logging.getLogger()
    rsocket_log = logging.getLogger("pyrsocket")
    saved = root.handlers[:], root.level, rsocket_log.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    rsocket_log.setLevel(saved[2])
    logging.getLogger("aiohttp.server").filters.clear()
