"""The price bus on the real Kafka broker (issue 3; docs/KAFKA.md). Nothing mocked.

Each test gets its own one-partition topic (``price_topic``) on the broker
that ``make test`` started (``kafka_broker``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from clients.book_view import BookView
from clients.client import SportsbookClient
from rsocket_server.app import ServerConfig, SportsbookServer
from sportsbook_core.changes import MarketChange
from sportsbook_core.market_book import BookUpdate
from sportsbook_core.sequencer import MarketSequencer
from streams.bus_codec import encode_update, record_key
from streams.feed_process import FeedReplayConfig, run_feed_replay
from streams.kafka_bus import KafkaBusError, KafkaPriceBus, KafkaSettings
from streams.odds_hub import OddsHub
from streams.replay import iter_changes, replay
from tests.testkit.data import betfair_market
from tests.testkit.live_server import REPO, server_process

GREYHOUNDS = "flumine_1.197931750.jsonl"  # 80 visible changes, one market
BASIC = "flumine_BASIC-1.132153978.jsonl"  # 361 visible changes, fractional prices
FINAL_SEQ = {"1.197931750": 80, "1.132153978": 361}


def _files(*names: str) -> list[Path]:
    return [betfair_market(name) for name in names]


def _changes(name: str) -> list[MarketChange]:
    return [c for c in iter_changes([betfair_market(name)]) if isinstance(c, MarketChange)]


async def _publisher(bootstrap: str, topic: str) -> KafkaPriceBus:
    bus = KafkaPriceBus(KafkaSettings(bootstrap, topic, client_id="test-feed"))
    await bus.start()
    await bus.rebuild_sequencer()
    await bus.start_publisher()
    return bus


async def _publish_all(bootstrap: str, topic: str, name: str) -> None:
    """Every change of recording ``name`` on ``topic``, acknowledged."""
    publisher = await _publisher(bootstrap, topic)
    for change in _changes(name):
        await publisher.publish(change)
    await publisher.flush()
    await publisher.close()


async def _kafka_server(
    bootstrap: str, topic: str, feed_silence_s: float = 0.0
) -> SportsbookServer:
    """A server on ``topic``; silence detection off by default (these tests publish
    without a feed process's heartbeats)."""
    config = ServerConfig(
        tcp_port=0, http_port=0, kafka=bootstrap, kafka_topic=topic, feed_silence_s=feed_silence_s
    )
    server = SportsbookServer(config)
    await server.start(feed=None)
    return server


def _history(hub: OddsHub) -> dict[str, list[tuple[int, bool]]]:
    """Every (seq, resync) the hub applied, per market, in order."""
    per_market: dict[str, list[tuple[int, bool]]] = {}
    for _, market_id, seq, resync in reversed(list(hub._history.newest_first())):
        per_market.setdefault(market_id, []).append((seq, resync))
    return per_market


async def _snapshots(url: str, market_ids: list[str]) -> dict[str, dict[str, Any]]:
    async with SportsbookClient.connect(url) as client:
        return {m: await client.market(m) for m in market_ids}


async def _health(http_port: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{http_port}/health") as response,
    ):
        body: dict[str, Any] = await response.json()
        return body


async def _until_position(http_port: int, position: int, timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while int((await _health(http_port))["clk"].rpartition(".")[2]) < position:
            await asyncio.sleep(0.05)


async def test_a_recording_through_kafka_gives_the_seqs_and_snapshots_of_the_in_process_bus(
    kafka_broker: Any, price_topic: str
) -> None:
    """Issue 3: same per-market seq sequence, same final snapshots, byte for byte."""
    files = _files(GREYHOUNDS, BASIC)
    embedded = SportsbookServer(ServerConfig(tcp_port=0, http_port=0))
    await embedded.start(feed=None)
    await replay(files, embedded.bus.publish, speed=None)
    await embedded.hub.wait_position(embedded.bus.position)
    result = await run_feed_replay(
        FeedReplayConfig(files, kafka_broker.bootstrap, price_topic, progress=False)
    )
    assert (result.published, result.rejected, result.adopted_markets) == (441, 0, 0)
    kafka = await _kafka_server(kafka_broker.bootstrap, price_topic)
    try:
        expected = _history(embedded.hub)
        assert {m: len(seqs) for m, seqs in expected.items()} == FINAL_SEQ
        assert _history(kafka.hub) == expected
        markets = sorted(FINAL_SEQ)
        from_kafka = await _snapshots(f"tcp://127.0.0.1:{kafka.tcp_port}", markets)
        in_process = await _snapshots(f"tcp://127.0.0.1:{embedded.tcp_port}", markets)
        assert from_kafka == in_process
        assert {m: s["seq"] for m, s in from_kafka.items()} == FINAL_SEQ
        assert kafka.hub.clk == f"{kafka.bus.epoch}.441"
    finally:
        await kafka.stop()
        await embedded.stop()


async def test_a_server_started_after_the_replay_serves_what_a_watching_server_serves(
    kafka_broker: Any, price_topic: str
) -> None:
    """Issue 3: a late (or restarted) server rebuilds every market from the topic first."""
    watching = await _kafka_server(kafka_broker.bootstrap, price_topic)
    try:
        publisher = await _publisher(kafka_broker.bootstrap, price_topic)
        await replay(_files(GREYHOUNDS, BASIC), publisher.publish, speed=None)
        await publisher.flush()
        await publisher.close()
        await watching.hub.wait_position(441)
        late = await _kafka_server(kafka_broker.bootstrap, price_topic)
        try:
            assert late.hub.position == 441  # caught up before it listened
            markets = sorted(FINAL_SEQ)
            seen = await _snapshots(f"tcp://127.0.0.1:{watching.tcp_port}", markets)
            rebuilt = await _snapshots(f"tcp://127.0.0.1:{late.tcp_port}", markets)
            assert rebuilt == seen
            assert {m: s["seq"] for m, s in rebuilt.items()} == FINAL_SEQ
            assert late.hub.epoch == watching.hub.epoch
        finally:
            await late.stop()
    finally:
        await watching.stop()


async def test_two_server_processes_agree_and_a_clk_from_one_resumes_on_the_other(
    kafka_broker: Any, price_topic: str
) -> None:
    """Issue 3: identical snapshots; resume on process 2 with process 1's clk: no gap, no dup."""
    changes = _changes(GREYHOUNDS)  # no resync after seq 1: a resume needs no snapshot
    publisher = await _publisher(kafka_broker.bootstrap, price_topic)
    for change in changes[:40]:
        await publisher.publish(change)
    await publisher.flush()
    first_half = publisher.position
    args = ("--kafka", kafka_broker.bootstrap, "--topic", price_topic)
    with server_process(*args) as one, server_process(*args) as two:
        assert await _snapshots(one.url("tcp"), ["1.197931750"]) == await _snapshots(
            two.url("tcp"), ["1.197931750"]
        )
        view = BookView()
        async with SportsbookClient.connect(one.url("tcp")) as client:
            stream = client.odds_stream(market_ids=["1.197931750"], window=4)
            view.apply(await stream.next_frame(10))
        held = view.markets["1.197931750"].seq
        assert (held, view.clk) == (first_half, f"{view.clk.partition('.')[0]}.{first_half}")
        for change in changes[40:]:
            await publisher.publish(change)
        await publisher.flush()
        await publisher.close()
        await _until_position(two.http_port, 80)
        final = (await _snapshots(two.url("tcp"), ["1.197931750"]))["1.197931750"]
        frames: list[dict[str, Any]] = []
        async with SportsbookClient.connect(two.url("tcp")) as client:
            stream = client.odds_stream(market_ids=["1.197931750"], resume=view.clk, window=64)
            while view.markets["1.197931750"].seq < 80:
                frames.append(await stream.next_frame(10))
                view.apply(frames[-1])
        assert {f["kind"] for f in frames} == {"delta"}  # resumed: no snapshot needed
        assert view.ignored_stale == 0  # no duplicate
        assert frames[0]["markets"][0]["seq"] > held
        selections = list(view.markets["1.197931750"].selections.values())
        assert [(s["selectionId"], s.get("price"), s["status"]) for s in selections] == [
            (s["selectionId"], s["price"], s["status"]) for s in final["selections"]
        ]
        assert view.markets["1.197931750"].market["status"] == final["status"] == "CLOSED"


async def test_a_replayed_old_record_never_rewinds_a_market(
    kafka_broker: Any, price_topic: str
) -> None:
    """FIELD_CASES B25's kind: an old update re-sent to the topic is dropped by its seq."""
    sequencer = MarketSequencer()
    updates = [
        u for c in _changes(GREYHOUNDS) if isinstance(u := sequencer.sequence(c), BookUpdate)
    ]
    server = await _kafka_server(kafka_broker.bootstrap, price_topic)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        await producer.start()
        try:
            for update in [*updates, updates[40], updates[0]]:
                await producer.send_and_wait(
                    price_topic, encode_update(update), key=record_key(update), partition=0
                )
        finally:
            await producer.stop()
        await server.hub.wait_position(82)
        assert server.hub.stale_updates == 2
        book = server.hub.book("1.197931750")
        assert book is not None and book == updates[-1].book and book.seq == 80
        restarted = await _kafka_server(kafka_broker.bootstrap, price_topic)
        try:
            assert restarted.hub.book("1.197931750") == updates[-1].book
            assert restarted.hub.stale_updates == 2
        finally:
            await restarted.stop()
    finally:
        await server.stop()


async def test_the_feed_process_publishes_and_a_second_run_relists_on_the_same_seqs(
    kafka_broker: Any, price_topic: str
) -> None:
    """`sportsbook feed replay` as its own process; run again it continues each market's seq."""
    command = [
        sys.executable,
        "-m",
        "clients.cli",
        "feed",
        "replay",
        str(betfair_market(GREYHOUNDS)),
        "--kafka",
        kafka_broker.bootstrap,
        "--topic",
        price_topic,
        "--quiet",
    ]
    for _ in range(2):
        feed = await asyncio.create_subprocess_exec(
            *command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        stdout, stderr = await asyncio.wait_for(feed.communicate(), 120)
        assert feed.returncode == 0, stderr.decode()
        assert stdout.decode().startswith("feed: published 80 updates to " + price_topic)
    with server_process("--kafka", kafka_broker.bootstrap, "--topic", price_topic) as server:
        snapshot = (await _snapshots(server.url("tcp"), ["1.197931750"]))["1.197931750"]
        assert (snapshot["seq"], snapshot["status"]) == (160, "CLOSED")
        health = await _health(server.http_port)
        assert (health["markets"], health["clk"].rpartition(".")[2]) == (1, "160")


async def test_a_server_refuses_a_topic_with_more_than_one_partition(kafka_broker: Any) -> None:
    bus = KafkaPriceBus(KafkaSettings(kafka_broker.bootstrap, "sportsbook.results"))
    with pytest.raises(KafkaBusError, match=r"has 6 partitions; the price bus needs exactly 1"):
        await bus.start()


async def test_an_unreachable_broker_is_a_clear_error_after_the_connect_timeout() -> None:
    bus = KafkaPriceBus(KafkaSettings("127.0.0.1:1", connect_timeout_s=1.0))
    with pytest.raises(KafkaBusError, match=r"cannot reach Kafka at 127\.0\.0\.1:1"):
        await bus.start()
