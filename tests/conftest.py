"""Test-wide settings: quiet structured logs, and a fresh event loop per test."""

from __future__ import annotations

import logging

logging.getLogger("pyrsocket").setLevel(logging.CRITICAL)
