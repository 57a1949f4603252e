"""`sportsbook feed replay`: a wrong file, side-by-side recordings, progress while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from clients.cli import build_parser, main
from clients.shared_data import demo_recordings
from streams.feed_process import (
    FeedProgress,
    FeedReplayConfig,
    NotARecording,
    plural,
    run_feed_replay,
)
from streams.kafka_bus import KafkaPriceBus, KafkaSettings
from streams.replay import iter_changes
from tests.testkit.data import betfair_market
from tests.testkit.live_server import REPO

GREYHOUNDS = "flumine_1.197931750.jsonl"  # 2022, 80 visible changes
BASIC = "flumine_BASIC-1.132153978.jsonl"  # 2017, 361 visible changes


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("restore_logging")
def test_a_file_that_is_not_a_recording_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    # An unreachable broker: a check made after connecting would fail differently (exit 3).
    code = main(["feed", "replay", "README.md", "--kafka", "127.0.0.1:1"])
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (
        2,
        "",
        "feed: README.md is not a Betfair stream recording: its first line is not JSON "
        "(unexpected character, expected a JSON value: line 1 column 1 (char 0))\n",
    )


@pytest.mark.usefixtures("restore_logging")
def test_a_catalogue_is_not_a_recording(capsys: pytest.CaptureFixture[str]) -> None:
    catalogue = betfair_market("flumine_1.197931750.catalogue.json")
    code = main(["feed", "replay", str(catalogue), "--kafka", "127.0.0.1:1"])
    assert (code, capsys.readouterr().err) == (
        2,
        f"feed: {catalogue} is not a Betfair stream recording: "
        "its first message is op 'marketCatalogue', not a stream message\n",
    )


def test_feed_replay_takes_concurrent() -> None:
    file = str(betfair_market(GREYHOUNDS))
    args = build_parser().parse_args(["feed", "replay", file, "--kafka", "h:1", "--concurrent"])
    assert (args.concurrent, args.loop) == (True, False)


def test_counts_are_pluralised() -> None:
    assert [plural(n, "market") for n in (0, 1, 2, 1234)] == [
        "0 markets",
        "1 market",
        "2 markets",
        "1,234 markets",
    ]


def test_progress_on_a_terminal_is_redrawn_and_ends_with_a_newline() -> None:
    stream = _Terminal()
    progress = FeedProgress(True, stream)
    progress.show("feed: one", now=True)
    progress.show("feed: two", now=True)
    progress.say("feed: a line")
    progress.show("feed: three", now=True)
    progress.end()
    progress.end()
    assert stream.getvalue() == (
        "\r\x1b[Kfeed: one\r\x1b[Kfeed: two\nfeed: a line\n\r\x1b[Kfeed: three\n"
    )


def test_progress_in_a_pipe_is_whole_lines() -> None:
    stream = io.StringIO()
    progress = FeedProgress(True, stream)
    progress.show("feed: one", now=True)
    progress.say("feed: a line")
    progress.end()
    FeedProgress(False, stream).show("feed: hidden", now=True)
    assert stream.getvalue() == "feed: one\nfeed: a line\n"


async def _first_markets(bootstrap: str, topic: str, count: int) -> list[str]:
    bus = KafkaPriceBus(KafkaSettings(bootstrap, topic, client_id="test-reader"))
    await bus.start()
    try:
        async with contextlib.aclosing(bus.read(0, max_batch=count)) as batches:
            batch = await anext(batches)
        return [getattr(record.item, "market_id", "") for record in batch[:count]]
    finally:
        await bus.close()


async def test_concurrent_recordings_start_side_by_side(
    kafka_broker: Any, price_topic: str
) -> None:
    """On one calendar timeline all of 2017's BASIC would come before 2022's greyhounds."""
    feed = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "clients.cli", "feed", "replay"],
        *[str(betfair_market(GREYHOUNDS)), str(betfair_market(BASIC)), "--concurrent"],
        *["--kafka", kafka_broker.bootstrap, "--topic", price_topic],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(feed.communicate(), 120)
    assert feed.returncode == 0, stderr.decode()
    assert re.fullmatch(
        rf"feed: published 441 updates to {re.escape(price_topic)} in [0-9.]+s "
        r"\(0 changes rejected, 0 producer restarts\)\n",
        stdout.decode(),
    )
    first = await _first_markets(kafka_broker.bootstrap, price_topic, 2)
    assert first == ["1.197931750", "1.132153978"]


async def test_a_looping_feed_shows_progress_while_it_runs(
    kafka_broker: Any, price_topic: str
) -> None:
    stream = io.StringIO()
    progress = FeedProgress(True, stream)
    progress.every_s = 0.05
    files = [betfair_market(GREYHOUNDS), betfair_market(BASIC)]
    config = FeedReplayConfig(
        files, kafka_broker.bootstrap, price_topic, speed=100.0, loop=True, concurrent=True
    )
    feed = asyncio.create_task(run_feed_replay(config, progress))
    try:
        async with asyncio.timeout(60):
            while stream.getvalue().count("\n") < 2:
                await asyncio.sleep(0.05)
    finally:
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed
    lines = stream.getvalue().splitlines()
    assert all(
        re.fullmatch(r"feed: published [0-9,]+ updates? \([0-2] markets?, [0-9,]+/s\)", line)
        for line in lines
    ), lines


# ---- --demo, and recordings that go bad part-way ----------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "one of the arguments FILE --demo is required"),
        (["--demo", "README.md"], "argument FILE: not allowed with argument --demo"),
    ],
)
def test_demo_or_files_but_not_both_nor_neither(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["feed", "replay", *argv, "--kafka", "h:1"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"sportsbook feed replay: error: {message}"


@pytest.mark.usefixtures("restore_logging")
def test_demo_replays_what_serve_replays_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    configs: list[FeedReplayConfig] = []

    async def fake_run(config: FeedReplayConfig) -> Any:
        configs.append(config)
        raise NotARecording(config.files[0], "stop here")

    monkeypatch.setattr("clients.cli.run_feed_replay", fake_run)
    assert main(["feed", "replay", "--demo", "--kafka", "h:1", "--concurrent"]) == 2
    assert list(configs[0].files) == demo_recordings()


def _broken_copy(tmp_path: Path, broken: str) -> tuple[Path, int]:
    """The greyhound recording, its line 6 replaced; and the updates its lines 1–5 make."""
    lines = betfair_market(GREYHOUNDS).read_text().splitlines(keepends=True)
    good = tmp_path / "good.jsonl"
    good.write_text("".join(lines[:5]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join([*lines[:5], broken, *lines[6:]]))
    return bad, sum(1 for _ in iter_changes(good))


def _without_start_time(tmp_path: Path) -> Path:
    first = orjson.loads(betfair_market(GREYHOUNDS).read_bytes().splitlines()[0])
    for change in first["mc"]:
        change["marketDefinition"].pop("marketTime", None)
        change["marketDefinition"].pop("openDate", None)
    path = tmp_path / "no-start.jsonl"
    path.write_bytes(orjson.dumps(first) + b"\n")
    return path


async def _feed_exit(files: list[Path], bootstrap: str, topic: str) -> tuple[int, str, str]:
    feed = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "clients.cli", "feed", "replay", *map(str, files), "--quiet"],
        *["--kafka", bootstrap, "--topic", topic],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(feed.communicate(), 120)
    assert feed.returncode is not None
    return feed.returncode, stdout.decode(), stderr.decode()


async def test_a_garbage_line_part_way_is_one_line_naming_it_and_exit_2(
    kafka_broker: Any, price_topic: str, tmp_path: Path
) -> None:
    bad, published = _broken_copy(tmp_path, "garbage\n")
    assert published > 0
    result = await _feed_exit([bad], kafka_broker.bootstrap, price_topic)
    assert result == (
        2,
        "",
        f"feed: {bad}:6: not a JSON message (after publishing {published} updates)\n",
    )


async def test_a_first_market_without_a_start_time_is_one_line_and_exit_2(
    kafka_broker: Any, price_topic: str, tmp_path: Path
) -> None:
    path = _without_start_time(tmp_path)
    result = await _feed_exit([path], kafka_broker.bootstrap, price_topic)
    assert result == (
        2,
        "",
        f"feed: {path}:1: expected a date-time string, got None (after publishing 0 updates)\n",
    )


async def test_a_bad_line_in_a_concurrent_looped_replay_is_the_same_one_line(
    kafka_broker: Any, price_topic: str, tmp_path: Path
) -> None:
    """--concurrent --loop runs one task per file: the error comes out of their group."""
    bad, _ = _broken_copy(tmp_path, "[1, 2]\n")
    feed = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "clients.cli", "feed", "replay", str(bad)],
        *[str(betfair_market(BASIC)), "--quiet", "--concurrent", "--loop"],
        *["--kafka", kafka_broker.bootstrap, "--topic", price_topic],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(feed.communicate(), 120)
    assert feed.returncode == 2
    assert re.fullmatch(
        rf"feed: {re.escape(str(bad))}:6: a message must be an object "
        r"\(after publishing [0-9,]+ updates\)\n",
        stderr.decode(),
    )
