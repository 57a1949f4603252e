"""Where the real recordings live: ``../shared/data`` beside the repo or $SPORTSBOOK_SHARED_DATA."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    override = os.environ.get("SPORTSBOOK_SHARED_DATA")
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared" / "data"


def recordings_dir() -> Path:
    return shared_data_dir() / "betfair-esa" / "markets"


# The demo set for `make run`: a football multi-market capture, races with
# removed runners, greyhounds, basketball and cricket — all real recordings.
DEMO_RECORDINGS = (
    "betfair_parser_1.242971311.jsonl.bz2",
    "flumine_1.197931750.jsonl",
    "flumine_1.197931751.jsonl",
    "flumine_BASIC-1.132153978.jsonl",
    "nautilus_1.206064380.jsonl.bz2",
    "nautilus_1.166811431.jsonl.bz2",
    "betfair_parser_1.127236622.jsonl.bz2",
    "betfair_parser_1.205822330.jsonl.bz2",
    "betfair_database_1.145405534.jsonl.bz2",
    "betfair_database_1.230478683.jsonl.bz2",
    "flumine_1.200806927.jsonl",
)


def demo_recordings() -> list[Path]:
    base = recordings_dir()
    missing = [name for name in DEMO_RECORDINGS if not (base / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"real recordings not found under {base} (missing {', '.join(missing)}); "
            "put ../shared beside the repo or set SPORTSBOOK_SHARED_DATA"
        )
    return [base / name for name in DEMO_RECORDINGS]
