"""Protocol error codes (PROTOCOL.md, Errors) and the exception that carries one."""

from __future__ import annotations

from enum import Enum

import orjson


class ErrorCode(Enum):
    INVALID_REQUEST = "INVALID_REQUEST"
    UNKNOWN_ROUTE = "UNKNOWN_ROUTE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class ApiError(Exception):
    """An application error; ``str()`` is the JSON body of the ERROR frame."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> bytes:
        return orjson.dumps({"code": self.code.value, "message": self.message})

    def __str__(self) -> str:
        return self.to_json().decode()


def invalid(message: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, message)
