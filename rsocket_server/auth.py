"""Bearer tokens from the SETUP map to exactly one account; none means anonymous.

Tokens are never stored: the ledger keeps their SHA-256 (``token_hash``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol

from ledger_store.store import LedgerStore


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is on a connection. ``account_id`` None is anonymous (odds and catalogue only)."""

    account_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.account_id is None


ANONYMOUS = Principal()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "sb_" + secrets.token_urlsafe(24)


class TokenDirectory(Protocol):
    async def account_for(self, token: str) -> str | None:
        """The one account a token identifies, or None when it identifies none."""


class StaticTokens:
    """An in-memory directory (tests)."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self._tokens = dict(tokens or {})

    async def account_for(self, token: str) -> str | None:
        return self._tokens.get(token)


class LedgerTokens:
    """Tokens of the ledger's accounts, then any static ones (tests, demo)."""

    def __init__(self, store: LedgerStore, static: dict[str, str] | None = None) -> None:
        self._store = store
        self._static = StaticTokens(static)

    async def account_for(self, token: str) -> str | None:
        account = await self._store.account_for_token(token_hash(token))
        if account is not None:
            return account.account_id
        return await self._static.account_for(token)
