"""Structured logs stay quiet about clients' mistakes (DEVELOPERS.md: quiet by default)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
from aiohttp.http_exceptions import BadHttpMethod

from rsocket_server import logs


def _log_bad_request() -> None:
    try:
        raise BadHttpMethod("\x00\x00K\x00\x00\x00\x00\x04")
    except BadHttpMethod:
        logging.getLogger("aiohttp.server").exception("Error handling request from 127.0.0.1")


pytestmark = pytest.mark.usefixtures("restore_logging")


def test_malformed_http_request_logs_nothing_at_the_default_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("warning")
    _log_bad_request()
    logging.getLogger("aiohttp.server").error("a real server fault")
    lines = [orjson.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert [(x["level"], x["msg"]) for x in lines] == [("error", "a real server fault")]


def test_malformed_http_request_is_one_info_line_without_traceback_at_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("info")
    _log_bad_request()
    [line] = [orjson.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert {k: line[k] for k in ("level", "logger", "msg", "status")} == {
        "level": "info",
        "logger": "aiohttp.server",
        "msg": "bad HTTP request",
        "status": 400,
    }
    assert "exc" not in line


@pytest.fixture
def restore_aiokafka_level() -> Iterator[None]:
    aiokafka = logging.getLogger("aiokafka")
    saved = aiokafka.level
    yield
    aiokafka.setLevel(saved)


@pytest.mark.usefixtures("restore_aiokafka_level")
def test_aiokafka_reconnect_errors_are_silent_unless_debugging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A broker outage: aiokafka logs each failed reconnect; the bus logs `bus health` once."""
    logs.configure("warning")
    logging.getLogger("aiokafka.conn").error("Unable connect to node with id 1")
    logging.getLogger("aiokafka").warning("Got error produce response")
    assert capsys.readouterr().err == ""
    logs.configure("debug")
    logging.getLogger("aiokafka.conn").error("Unable connect to node with id 1")
    [line] = [orjson.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert (line["level"], line["logger"]) == ("error", "aiokafka.conn")
