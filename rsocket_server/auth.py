"""Bearer tokens from the SETUP map to exactly one account; none means anonymous."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is on a connection. ``account_id`` None is anonymous (odds and catalogue only)."""

    account_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.account_id is None


ANONYMOUS = Principal()


class TokenDirectory(Protocol):
    def account_for(self, token: str) -> str | None:
        """The one account a token identifies, or None when it identifies none."""


class StaticTokens:
    """An in-memory directory (demo accounts and tests)."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self._tokens = dict(tokens or {})

    def account_for(self, token: str) -> str | None:
        return self._tokens.get(token)
