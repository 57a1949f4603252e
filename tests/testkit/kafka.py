"""A real Kafka broker for tests, run by ``infra/kafka/kafka.sh`` (never mocked).

``$SPORTSBOOK_TEST_KAFKA`` (``make test`` sets it) names a running broker to use;
without it the session runs ``kafka.sh up`` and stops the broker at the end if it
started it. ``kill``/``start``/``stop`` act on kafka.sh's local broker (the one of
``$KAFKA_STATE_DIR``), so a test can crash Kafka and bring it back.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, for_code

KAFKA_SH = Path(__file__).resolve().parents[2] / "infra" / "kafka" / "kafka.sh"
ENV_VAR = "SPORTSBOOK_TEST_KAFKA"

# The topics `kafka.sh topics` makes (test_kafka_infra checks the script agrees).
TOPIC_PARTITIONS: Mapping[str, int] = {
    "sportsbook.prices": 1,
    "sportsbook.results": 6,
    "sportsbook.bets": 6,
}
PRICES_TOPIC_CONFIGS: Mapping[str, str] = {
    "cleanup.policy": "compact,delete",
    "retention.ms": "604800000",
    "min.compaction.lag.ms": "60000",
    "segment.ms": "3600000",
}
EVENT_TOPIC_CONFIGS: Mapping[str, str] = {
    "cleanup.policy": "delete",
    "retention.ms": "2592000000",
}

START_TIMEOUT_S = 300.0  # kafka.sh has its own KAFKA_START_TIMEOUT (120 s) inside
READY_TIMEOUT_S = 30.0


class KafkaUnavailable(RuntimeError):
    """The broker could not be started or does not answer (message has the output)."""


def run_kafka_sh(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Runs ``kafka.sh args…``; returns its exit status and its stdout+stderr."""
    proc = subprocess.run(
        [str(KAFKA_SH), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=START_TIMEOUT_S,
        env=dict(env) if env is not None else None,
        check=False,
    )
    return proc.returncode, proc.stdout


def _checked(*args: str) -> str:
    code, output = run_kafka_sh(*args)
    if code != 0:
        raise KafkaUnavailable(f"`kafka.sh {' '.join(args)}` exited {code}:\n{output}")
    return output


def local_bootstrap() -> str:
    """The local broker's address (``kafka.sh bootstrap`` without ``KAFKA_BOOTSTRAP``)."""
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP"}
    code, output = run_kafka_sh("bootstrap", env=env)
    if code != 0:
        raise KafkaUnavailable(f"`kafka.sh bootstrap` exited {code}:\n{output}")
    return output.strip()


async def _wait_for_metadata(bootstrap: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while True:
        left = deadline - time.monotonic()
        # The client's own request timeout, not a cancellation: cancelling bootstrap()
        # mid-request leaks its bootstrap connection (a ResourceWarning much later).
        timeout_ms = int(min(max(left, 0.5), 5.0) * 1000)
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
        try:
            await client.bootstrap()
            return
        except (KafkaError, OSError, TimeoutError) as exc:
            last = exc
        finally:
            await client.close()
        if time.monotonic() >= deadline:
            raise KafkaUnavailable(f"no metadata from {bootstrap} within {timeout_s}s: {last!r}")
        await asyncio.sleep(0.25)


def wait_for_broker(bootstrap: str, timeout_s: float) -> None:
    """Returns once a metadata request to ``bootstrap`` succeeds, else raises
    :class:`KafkaUnavailable`. Blocking (own loop in a thread), so it works from
    sync code and inside a running loop; async tests: ``asyncio.to_thread``."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wait_for_broker") as pool:
        pool.submit(asyncio.run, _wait_for_metadata(bootstrap, timeout_s)).result()


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (its parent may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@dataclass
class KafkaBroker:
    """The broker under test. Methods block (subprocesses, seconds): from an async
    test use ``await asyncio.to_thread(broker.kill)`` so the event loop keeps running."""

    bootstrap: str
    started_here: bool = False

    def pid(self) -> int | None:
        """The broker JVM's pid from ``kafka.sh status`` (None when stopped)."""
        code, output = run_kafka_sh("status")
        match = re.search(r"\bpid=(\d+)", output)
        return int(match.group(1)) if code == 0 and match else None

    def kill(self) -> int:
        """SIGKILLs the broker JVM (a crash: no clean shutdown), waits until it is
        gone and returns its pid."""
        pid = self.pid()
        if pid is None:
            raise KafkaUnavailable(f"kill: no local broker running:\n{run_kafka_sh('status')[1]}")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"kill: pid {pid} still alive 10 s after SIGKILL")
            time.sleep(0.05)
        return pid

    def start(self) -> None:
        """``kafka.sh start`` (no-op when running), then waits for metadata."""
        _checked("start")
        wait_for_broker(self.bootstrap, READY_TIMEOUT_S)

    def stop(self) -> None:
        """``kafka.sh stop``: SIGTERM, clean shutdown (SIGKILL after 30 s)."""
        _checked("stop")


def open_kafka_broker() -> KafkaBroker:
    """The session's broker: ``$SPORTSBOOK_TEST_KAFKA`` if set, else ``kafka.sh up``
    (``started_here`` tells whether it was running before)."""
    address = os.environ.get(ENV_VAR, "").strip()
    if address:
        try:
            wait_for_broker(address, READY_TIMEOUT_S)
        except KafkaUnavailable as exc:
            raise KafkaUnavailable(f"${ENV_VAR}={address}: {exc}") from exc
        return KafkaBroker(address)
    was_running = run_kafka_sh("status")[0] == 0
    _checked("up")
    broker = KafkaBroker(local_bootstrap(), started_here=not was_running)
    wait_for_broker(broker.bootstrap, READY_TIMEOUT_S)
    return broker


@asynccontextmanager
async def kafka_admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


async def topic_configs(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    """All of a topic's effective configs (``describe_configs``)."""
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    (resource,) = response.to_object()["resources"]
    if resource["error_code"]:
        raise for_code(resource["error_code"])(f"{topic}: {resource['error_message']}")
    return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}


async def describe_topic(admin: AIOKafkaAdminClient, topic: str) -> dict[str, Any]:
    """The topic's metadata (``partitions`` with ``leader``); raises on a topic error."""
    (meta,) = await admin.describe_topics([topic])
    if meta["error_code"]:
        raise for_code(meta["error_code"])(topic)
    return dict(meta)


async def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    configs: Mapping[str, str],
    timeout_s: float = 30,
) -> None:
    """Creates a topic (replication 1) and returns once every partition has a leader."""
    async with asyncio.timeout(timeout_s), kafka_admin(bootstrap) as admin:
        response = await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=dict(configs))]
        )
        for error in response.to_object()["topic_errors"]:
            if error["error_code"]:
                raise for_code(error["error_code"])(f"{name}: {error.get('error_message')}")
        while True:
            with suppress(KafkaError):
                meta = await describe_topic(admin, name)
                leaders = [p["leader"] for p in meta["partitions"]]
                if len(leaders) == partitions and all(leader >= 0 for leader in leaders):
                    return
            await asyncio.sleep(0.05)


async def delete_topic_quietly(bootstrap: str, name: str, timeout_s: float = 10) -> None:
    """Deletes a topic; best effort (errors, e.g. a stopped broker, are ignored)."""
    with suppress(KafkaError, OSError, TimeoutError):
        async with asyncio.timeout(timeout_s), kafka_admin(bootstrap) as admin:
            await admin.delete_topics([name])


def unique_topic(prefix: str = "test.prices") -> str:
    """``test.prices.<12 hex>``: a topic name no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:12]}"
