"""Where the shared test data lives: ``../shared/data`` beside the repo root.

Override with ``$SPORTSBOOK_SHARED_DATA``. Nothing is ever skipped: a missing
directory or file raises :class:`SharedDataMissing`, naming where it looked,
so a test that needs real data fails loudly instead of passing vacuously.
"""

from __future__ import annotations

from pathlib import Path

from clients import shared_data

ENV_VAR = "SPORTSBOOK_SHARED_DATA"


class SharedDataMissing(FileNotFoundError):
    """The shared data (or one file of it) is not where it should be."""


def shared_data_dir() -> Path:
    """The shared data directory; it must exist."""
    base = shared_data.shared_data_dir()
    if not base.is_dir():
        raise SharedDataMissing(
            f"shared test data not found at {base}: put it at ../shared/data beside the repo "
            f"or set {ENV_VAR}"
        )
    return base


def shared_file(*parts: str) -> Path:
    """A file under the shared data directory; it must exist."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        raise SharedDataMissing(f"shared test data file not found: {path}")
    return path


def betfair_market(name: str) -> Path:
    """A whole-market ESA recording under ``betfair-esa/markets``."""
    return shared_file("betfair-esa", "markets", name)


def betfair_sample(name: str) -> Path:
    """A single-message ESA sample under ``betfair-esa/samples``."""
    return shared_file("betfair-esa", "samples", name)


def betfair_recordings() -> list[Path]:
    """Every ESA recording (``*.jsonl``, ``*.jsonl.bz2``) under ``betfair-esa/markets``, sorted."""
    base = shared_file("betfair-esa", "markets")
    found = sorted([*base.glob("*.jsonl"), *base.glob("*.jsonl.bz2")])
    if not found:
        raise SharedDataMissing(f"no ESA recordings under {base}")
    return found
