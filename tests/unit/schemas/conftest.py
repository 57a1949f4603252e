"""One synchronous hub run over the demo recordings, shared by the schema tests."""

from __future__ import annotations

import pytest

from tests.unit.schemas.demo_stream import DemoRun, run_demo


@pytest.fixture(scope="session")
def demo() -> DemoRun:
    return run_demo()
