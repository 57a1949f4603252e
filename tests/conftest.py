"""Test-wide settings: quiet structured logs, and a fresh event loop per test."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.testkit.kafka import (
    PRICES_TOPIC_CONFIGS,
    KafkaBroker,
    KafkaUnavailable,
    create_topic,
    delete_topic_quietly,
    open_kafka_broker,
    unique_topic,
)

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


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """The real Kafka broker: ``$SPORTSBOOK_TEST_KAFKA``, else ``kafka.sh up`` (and
    ``kafka.sh stop`` at session end if it was started here). Fails, never skips."""
    try:
        broker = open_kafka_broker()
    except KafkaUnavailable as exc:
        raise pytest.fail.Exception(
            f"Kafka for tests is not available: {exc}", pytrace=False
        ) from None
    try:
        yield broker
    finally:
        if broker.started_here:
            broker.stop()


@pytest.fixture(autouse=True)
def _collect_kafka_garbage(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the broker, collect garbage now: an aiokafka socket it
    leaked then fails *that* test (filterwarnings=error), not whichever test the
    garbage collector happens to run in later."""
    yield
    if "kafka_broker" in request.fixturenames:
        gc.collect()


@pytest.fixture
async def price_topic(kafka_broker: KafkaBroker) -> AsyncIterator[str]:
    """A fresh ``test.prices.<hex>`` topic configured like ``sportsbook.prices``
    (1 partition, leader known); deleted afterwards (best effort)."""
    name = unique_topic()
    await create_topic(kafka_broker.bootstrap, name, 1, PRICES_TOPIC_CONFIGS)
    try:
        yield name
    finally:
        await delete_topic_quietly(kafka_broker.bootstrap, name)


# ---- PostgreSQL (the ledger's production backend) ------------------------------------
PG_SH = Path(__file__).resolve().parents[1] / "infra" / "postgres" / "pg.sh"
DATABASE_ENV = "SPORTSBOOK_TEST_DATABASE"


def _pg_sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PG_SH), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``$SPORTSBOOK_TEST_DATABASE``, else the project's own PostgreSQL (``pg.sh``),
    started here if need be and then stopped at session end. Fails, never skips."""
    url = os.environ.get(DATABASE_ENV, "").strip()
    if url:
        yield url
        return
    was_running = _pg_sh("status").returncode == 0
    started = _pg_sh("start")
    if started.returncode != 0:
        pytest.fail(f"`pg.sh start` exited {started.returncode}:\n{started.stdout}", pytrace=False)
    try:
        yield _pg_sh("url").stdout.strip()
    finally:
        if not was_running:
            _pg_sh("stop")


@pytest.fixture(params=["sqlite", "postgresql"])
async def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty ledger's URL: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    try:
        yield f"{base}{'&' if '?' in base else '?'}search_path={schema}"
    finally:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()
