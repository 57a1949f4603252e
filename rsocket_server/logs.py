"""Structured logs: one JSON object a line on stderr, quiet (WARNING) by default."""

from __future__ import annotations

import logging
import sys
import time

import orjson
from aiohttp.http_exceptions import HttpProcessingError

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class ClientHttpErrors(logging.Filter):
    """aiohttp logs a malformed request (say, RSocket TCP bytes sent to the HTTP
    port) at ERROR with a traceback. It is the client's mistake, answered 400:
    one INFO line without the traceback, and nothing at the default level."""

    def __init__(self, keep: bool) -> None:
        super().__init__()
        self.keep = keep

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        if not self.keep:
            return False
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args, record.exc_info = "bad HTTP request", None, None
        record.status, record.reason = error.code, error.message.strip().splitlines()[0]
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=str).decode()


def configure(level: str = "warning") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # rsocket-py logs client mistakes (bad frames, refused setups) at ERROR with
    # tracebacks; the server reports those itself, so keep the library at CRITICAL
    # unless debugging.
    quiet = logging.DEBUG if level == "debug" else logging.CRITICAL
    logging.getLogger("pyrsocket").setLevel(quiet)
    # aiokafka logs every failed reconnect (several a second while a broker is
    # away); the bus logs one ``bus health`` line per change instead.
    logging.getLogger("aiokafka").setLevel(quiet)
    aiohttp_server = logging.getLogger("aiohttp.server")
    aiohttp_server.filters[:] = [ClientHttpErrors(keep=root.level <= logging.INFO)]
