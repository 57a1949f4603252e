"""``sportsbook`` arguments: bad input is argparse's usage error (exit 2), never a traceback."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from clients.betting_cli import (
    BetCliError,
    _live_leg,
    describe_account_event,
    describe_settlement,
    results_banner,
)
from clients.book_view import BookView
from clients.cli import _ReadyWatch, _show, build_parser, main
from clients.shared_data import demo_recordings
from rsocket_server.app import DEMO_PASS_PAUSE_S, REPLAY_GAP_CAP_S
from streams.results import Closing, closing_schedule

URL_HINT = "use tcp://HOST:PORT or ws://HOST:PORT/rsocket"


pytestmark = pytest.mark.usefixtures("restore_logging")


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The last stderr line of a usage error, after checking that it exits 2."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--log-level", "bogus", "events"],
            "sportsbook: error: argument --log-level: invalid choice 'bogus' "
            "(choose from debug, info, warning, error)",
        ),
        (
            ["serve", "--log-level", "bogus"],
            "sportsbook serve: error: argument --log-level: invalid choice 'bogus' "
            "(choose from debug, info, warning, error)",
        ),
        (
            ["events", "--url", "foo://bar"],
            f"sportsbook events: error: argument --url: unsupported URL 'foo://bar': {URL_HINT}",
        ),
        (
            ["events", "--url", "notaurl"],
            f"sportsbook events: error: argument --url: unsupported URL 'notaurl': {URL_HINT}",
        ),
        (
            ["market", "1.1", "--url", "ws:///rsocket"],
            f"sportsbook market: error: argument --url: no host in URL 'ws:///rsocket': {URL_HINT}",
        ),
        (
            ["odds", "--market", "1.1", "--url", "tcp://127.0.0.1:99999"],
            "sportsbook odds: error: argument --url: invalid port in URL "
            f"'tcp://127.0.0.1:99999': {URL_HINT}",
        ),
        (
            ["odds", "--market", "X", "--window", "0"],
            "sportsbook odds: error: argument --window: must be at least 1, not '0'",
        ),
        (
            ["odds", "--market", "X", "--window", "-5"],
            "sportsbook odds: error: argument --window: must be at least 1, not '-5'",
        ),
        (
            ["odds", "--market", "X", "--frames", "-1"],
            "sportsbook odds: error: argument --frames: must be at least 1, not '-1'",
        ),
        (
            ["odds", "--market", "X", "--frames", "many"],
            "sportsbook odds: error: argument --frames: not a whole number: 'many'",
        ),
        (
            ["market", "1.1", "--format", "roman"],
            "sportsbook market: error: argument --format: invalid choice: 'roman' (choose from "
            "'decimal', 'fractional', 'american', 'hongkong', 'malay', 'indonesian')",
        ),
        (
            ["serve", "--tcp-port", "99999"],
            "sportsbook serve: error: argument --tcp-port: port 99999 is out of range 0..65535",
        ),
        (
            ["serve", "--http-port", "-1"],
            "sportsbook serve: error: argument --http-port: port -1 is out of range 0..65535",
        ),
        (
            ["serve", "--tcp-port", "http"],
            "sportsbook serve: error: argument --tcp-port: invalid port 'http': use 0..65535",
        ),
        (
            ["serve", "--speed", "0"],
            "sportsbook serve: error: argument --speed: must be a number greater than 0, not '0'",
        ),
        (
            ["serve", "--speed", "-3"],
            "sportsbook serve: error: argument --speed: must be a number greater than 0, not '-3'",
        ),
        (
            ["serve", "--speed", "nan"],
            "sportsbook serve: error: argument --speed: must be a number greater than 0, not 'nan'",
        ),
        (
            ["serve", "--max-lifetime", "0"],
            "sportsbook serve: error: argument --max-lifetime: "
            "must be a number greater than 0, not '0'",
        ),
        (
            ["serve", "--simulate", "garbage"],
            "sportsbook serve: error: argument --simulate: expected MARKETS:RATE[:SECONDS] "
            "such as 3:1000 or 1:10000:60, not 'garbage'",
        ),
        (
            ["serve", "--simulate", "0:10"],
            "sportsbook serve: error: argument --simulate: expected MARKETS:RATE[:SECONDS] "
            "such as 3:1000 or 1:10000:60, not '0:10' (MARKETS ≥ 1, RATE > 0)",
        ),
        (
            ["serve", "--simulate", "1:10:0"],
            "sportsbook serve: error: argument --simulate: expected MARKETS:RATE[:SECONDS] "
            "such as 3:1000 or 1:10000:60, not '1:10:0' (SECONDS > 0)",
        ),
        (
            ["serve", "--replay", "/nonexistent.jsonl"],
            "sportsbook serve: error: argument --replay: no such file: '/nonexistent.jsonl'",
        ),
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _usage_error(argv, capsys) == message


def test_replay_of_a_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _usage_error(["serve", "--replay", str(tmp_path)], capsys) == (
        f"sportsbook serve: error: argument --replay: not a file: '{tmp_path}'"
    )


def test_bad_url_in_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPORTSBOOK_URL", "localhost:7878")
    assert _usage_error(["events"], capsys) == (
        f"sportsbook events: error: argument --url: unsupported URL 'localhost:7878': {URL_HINT}"
    )


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["serve"], "warning"),
        (["--log-level", "debug", "serve"], "debug"),
        (["serve", "--log-level", "info"], "info"),
        (["events", "--log-level", "ERROR"], "error"),
        (["--log-level", "debug", "odds", "--market", "1.1", "--log-level", "info"], "info"),
    ],
)
def test_log_level_is_accepted_before_and_after_the_command(argv: list[str], level: str) -> None:
    assert build_parser().parse_args(argv).log_level == level


def test_log_level_default_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPORTSBOOK_LOG", "info")
    assert build_parser().parse_args(["serve"]).log_level == "info"


def test_boundary_values_are_accepted(tmp_path: Path) -> None:
    recording = tmp_path / "market.jsonl"
    recording.write_text("")
    argv = ["serve", "--tcp-port", "0", "--http-port", "65535", "--speed", "0.5"]
    argv += ["--replay", str(recording), "--simulate", "2:100:1.5", "--max-lifetime", "0.1"]
    serve = build_parser().parse_args(argv)
    ports = (serve.tcp_port, serve.http_port)
    assert (*ports, serve.speed, serve.max_lifetime) == (0, 65535, 0.5, 0.1)
    assert serve.replay == [recording]
    assert (serve.simulate.markets, serve.simulate.rate, serve.simulate.duration_s) == (2, 100, 1.5)
    odds = build_parser().parse_args(["odds", "--market", "1.1", "--window", "1", "--frames", "1"])
    assert (odds.window, odds.frames, odds.url) == (1, 1, "tcp://127.0.0.1:7878")


@pytest.mark.parametrize("command", [["market", "1.1"], ["odds", "--market", "1.1"]])
def test_format_help_lists_the_valid_formats(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert (
        "--format FORMAT display prices as one of: decimal, fractional, american, hongkong, "
        "malay, indonesian (default: decimal only)"
    ) in " ".join(capsys.readouterr().out.split())


def test_late_frames_after_cancel_are_not_logged_unless_debugging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """rsocket-py's warning for frames already in flight to a cancelled stream is noise."""
    rsocket_log = logging.getLogger("pyrsocket")
    rsocket_log.setLevel(logging.WARNING)
    with caplog.at_level(logging.DEBUG):
        rsocket_log.warning("%s: Dropping frame from unknown stream %d", "client", 25)
        rsocket_log.warning("%s: a real problem", "client")
        assert [r.getMessage() for r in caplog.records] == ["client: a real problem"]
        caplog.clear()
        rsocket_log.setLevel(logging.DEBUG)
        rsocket_log.warning("%s: Dropping frame from unknown stream %d", "client", 27)
        assert [r.getMessage() for r in caplog.records] == [
            "client: Dropping frame from unknown stream 27"
        ]


def test_serve_replay_of_a_non_recording_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Checked up front as `feed replay` does: not a server left running on a dead feed."""
    readme = Path(__file__).resolve().parents[3] / "README.md"
    argv = ["serve", "--replay", str(readme), "--no-uvloop", "--tcp-port", "0", "--http-port", "0"]
    assert main(argv) == 2
    assert capsys.readouterr() == (
        "",
        f"error: {readme} is not a Betfair stream recording: its first line is not JSON "
        "(unexpected character, expected a JSON value: line 1 column 1 (char 0))\n",
    )


@pytest.mark.parametrize(
    ("frame", "line"),
    [
        (
            {"kind": "status", "feedHealthy": False, "reason": "bus unreachable", "clk": "7"},
            "status feedHealthy=false reason=bus unreachable\n",
        ),
        (
            {"kind": "status", "feedHealthy": True, "reason": None, "clk": "8"},
            "status feedHealthy=true\n",
        ),
    ],
)
def test_piped_odds_show_feed_health_status_frames(
    frame: dict[str, Any], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    view = BookView()
    _show(view, frame, "1.1", tty=False)
    assert capsys.readouterr().out == line
    _show(view, frame, "1.1", tty=True)  # a terminal shows it in the table's header
    assert capsys.readouterr().out == ""


def test_workers_banner_follows_once_every_worker_is_ready() -> None:
    out = io.StringIO()
    banners: list[str] = []
    watch = _ReadyWatch(out, 2, lambda: banners.append(out.getvalue()))
    for line in (
        "sportsbook: worker 1 ready (pid 11)\n",
        "something else\n",
        "sportsbook: worker 0 ready (pid 10)\n",
        "sportsbook: worker 0 ready (pid 12)\n",  # a restart: no second banner
    ):
        watch.write(line)
    assert banners == [
        "sportsbook: worker 1 ready (pid 11)\nsomething else\nsportsbook: worker 0 ready (pid 10)\n"
    ]


def test_workers_banner_is_a_single_servers_banner(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def fake_supervise(count: int, *_: object) -> int:
        for index in range(count):
            sys.stdout.write(f"sportsbook: worker {index} ready (pid {100 + index})\n")
        return 0

    monkeypatch.setattr("clients.cli.supervise", fake_supervise)
    argv = ["serve", "--workers", "2", "--kafka", "127.0.0.1:19092", "--no-uvloop"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "sportsbook: worker 0 ready (pid 100)",
        "sportsbook: worker 1 ready (pid 101)",
        "sportsbook: 2 workers, prices from Kafka 127.0.0.1:19092 topic sportsbook.prices",
        "  browser:   http://127.0.0.1:8080/",
        "  WebSocket: ws://127.0.0.1:8080/rsocket",
        "  TCP:       tcp://127.0.0.1:7878",
        "  try:       .venv/bin/sportsbook events   then   "
        ".venv/bin/sportsbook odds --market <marketId>",
        "  accounts:  demo-alice: demo-alice-token  demo-bob: demo-bob-token",
        "  bet:       .venv/bin/sportsbook bet --token demo-alice-token --market <marketId> "
        "--selection <selectionId> --stake 500",
        "  watch:     .venv/bin/sportsbook account watch --token demo-alice-token",
        "  trader:    demo-trader: demo-trader-token   .venv/bin/sportsbook settle <marketId> "
        "--winner <selectionId> --token demo-trader-token",
    ]


SHEFFIELD = Closing("1.197931750", "Sheffield WIN", 6.5, 5.5, 11.5)
FOOTBALL = Closing("1.145405534", "Slavia v Beroe BOTH_TEAMS_TO_SCORE", 158.5, 157.5, 163.5)


def test_the_results_lines_name_the_first_result_and_a_market_to_bet_on() -> None:
    """The first market to settle from the feed, and the first one open long enough
    (≥ 30 s) to bet on (a bet in play is held ≥ 5 s); times from now, looped passes."""
    assert results_banner([FOOTBALL, SHEFFIELD], 0.0) == [
        "  results:   markets settle from the feed as they close; first 1.197931750 "
        "(Sheffield WIN) in ~7 s, again every ~12 s",
        "  see one:   bet on 1.145405534 (Slavia v Beroe BOTH_TEAMS_TO_SCORE), then "
        "`account watch`: it closes in ~2m39s, again every ~2m44s",
    ]
    # 170 s in: Sheffield's next close is 6.5 + 15 × 11.5 = 179 s (in 9 s); the football
    # market's second pass closes at 158.5 + 163.5 = 322 s (in 152 s).
    assert results_banner([FOOTBALL, SHEFFIELD], 170.0) == [
        "  results:   markets settle from the feed as they close; first 1.197931750 "
        "(Sheffield WIN) in ~9 s, again every ~12 s",
        "  see one:   bet on 1.145405534 (Slavia v Beroe BOTH_TEAMS_TO_SCORE), then "
        "`account watch`: it closes in ~2m32s, again every ~2m44s",
    ]


def test_the_results_lines_without_a_loop_or_a_market_to_bet_on() -> None:
    once = [Closing("1.1", "Sheffield WIN", 6.5, 5.5, None)]
    assert results_banner(once, 1.0) == [
        "  results:   markets settle from the feed as they close; first 1.1 (Sheffield WIN) "
        "in ~6 s",
    ]
    assert results_banner(once, 7.0) == []  # replayed once and closed already
    assert results_banner([], 0.0) == []


def test_the_results_lines_for_the_demo_recordings_at_30x() -> None:
    """What `make run` prints (at start): the greyhound race closes first, the football
    market (open 157.5 s of each pass) is the first one can bet on."""
    closings = closing_schedule(
        demo_recordings(), speed=30.0, gap_cap_s=REPLAY_GAP_CAP_S, pass_pause_s=DEMO_PASS_PAUSE_S
    )
    assert results_banner(closings, 0.0) == [
        "  results:   markets settle from the feed as they close; first 1.197931750 "
        "(Sheffield WIN) in ~7 s, again every ~12 s",
        "  see one:   bet on 1.145405534 (Slavia Sofia v Beroe Stara Za BOTH_TEAMS_TO_SCORE), "
        "then `account watch`: it closes in ~2m39s, again every ~2m44s",
    ]


def _receipt(status: str, **extra: Any) -> dict[str, Any]:
    leg = {"marketId": "1.197931750", "selectionId": "37947503", "price": "21"}
    return {
        "betId": "B-000004",
        "status": status,
        "legs": [leg],
        "totalStake": 500,
        "potentialReturn": 10_500,
        "settlement": None,
        **extra,
    }


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (
            {"kind": "BET", "bet": _receipt("ACCEPTED")},
            "BET B-000004 ACCEPTED £5.00 on 1.197931750 / 37947503 @ 21, potential return £105.00",
        ),
        (
            {"kind": "BET", "bet": _receipt("SETTLED", settlement={"return": 1250})},
            "BET B-000004 SETTLED return £12.50",
        ),
        (
            {"kind": "BET", "bet": _receipt("SETTLED", settlement={"return": 0})},
            "BET B-000004 SETTLED return £0.00",
        ),
        (
            {
                "kind": "BET",
                "bet": _receipt(
                    "SETTLED",
                    settlement={"return": 0, "resettled": True, "previousReturn": 10_500},
                ),
            },
            "BET B-000004 SETTLED return £0.00 (resettled, was £105.00)",
        ),
        (
            {"kind": "BET", "bet": _receipt("VOID", settlement={"return": 500})},
            "BET B-000004 VOID return £5.00",
        ),
        (
            {
                "kind": "BET",
                "bet": _receipt("REJECTED", code="MARKET_CLOSED", message="market 1.1 is SETTLED"),
            },
            "BET B-000004 REJECTED MARKET_CLOSED: market 1.1 is SETTLED",
        ),
        (
            {
                "kind": "BALANCE",
                "balance": 101_250,
                "currency": "GBP",
                "reason": "SETTLEMENT",
                "betId": "B-000004",
            },
            "BALANCE £1,012.50 (SETTLEMENT B-000004)",
        ),
        (
            {"kind": "BALANCE", "balance": -250, "currency": "GBP", "reason": "CORRECTION"},
            "BALANCE -£2.50 (CORRECTION)",
        ),
        (
            {"kind": "MARKET", "marketId": "1.197931750", "status": "SETTLED"},
            "MARKET 1.197931750 SETTLED",
        ),
        ({"kind": "heartbeat"}, None),
    ],
)
def test_account_watch_prints_one_line_per_event(event: dict[str, Any], line: str | None) -> None:
    assert describe_account_event(event) == line


def test_account_watch_needs_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SPORTSBOOK_TOKEN", raising=False)
    assert main(["account", "watch"]) == 2
    assert capsys.readouterr().err == "error: account watch needs --token (or $SPORTSBOOK_TOKEN)\n"


@pytest.mark.parametrize(
    ("status", "price", "expected"),
    [
        ("OPEN", "2.5", {"price": "2.5", "seq": 7}),
        ("OPEN", None, "selection 11 has no price now"),
        ("SUSPENDED", None, "market 1.1 is SUSPENDED"),
        ("CLOSED", None, "market 1.1 is CLOSED"),
        ("SETTLED", "2.5", {"price": "2.5", "seq": 7}),  # the server refuses it, with why
    ],
)
def test_bet_takes_the_live_price_or_says_why_there_is_none(
    status: str, price: str | None, expected: dict[str, Any] | str
) -> None:
    market = {
        "marketId": "1.1",
        "status": status,
        "seq": 7,
        "selections": [{"selectionId": "11", "price": price}],
    }
    if isinstance(expected, dict):
        assert _live_leg(market, "11") == expected
    else:
        with pytest.raises(BetCliError) as refused:
            _live_leg(market, "11")
        assert str(refused.value) == expected


@pytest.mark.parametrize(
    ("report", "line"),
    [
        (
            {"outcome": "settled", "betsSettled": 1, "betsOpen": 0},
            "SETTLED 1.1 v1: 1 bet settled",
        ),
        (
            {"outcome": "resettled", "betsSettled": 4, "betsOpen": 2},
            "RESETTLED 1.1 v1: 4 bets settled, 2 waiting on another leg's market",
        ),
        (
            {"outcome": "replayed", "betsSettled": 0, "betsOpen": 0},
            "REPLAYED 1.1 v1: 0 bets settled",
        ),
        (
            {"outcome": "held", "betsSettled": 0, "betsOpen": 0, "detail": "2 winners"},
            "HELD 1.1 v1: nothing settled (2 winners)",
        ),
    ],
)
def test_settle_prints_one_line_per_report(report: dict[str, Any], line: str) -> None:
    assert describe_settlement({"marketId": "1.1", "version": 1, **report}) == line
