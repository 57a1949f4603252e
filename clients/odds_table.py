"""Render one market as a text table (the CLI's live view)."""

from __future__ import annotations

from typing import Any

from clients.book_view import MarketView

_UP, _DOWN, _RESET = "\x1b[31m▲", "\x1b[32m▼", "\x1b[0m"


def render_market(view: MarketView, feed_healthy: bool, *, color: bool) -> str:
    m = view.market
    state = m["status"] + (" IN-PLAY" if m.get("inPlay") else "")
    if not feed_healthy:
        state += " (FEED BEHIND)"
    lines = [
        f"{m.get('eventName', '')} — {m['name']}  [{m['marketId']}]",
        f"{state}   seq {m['seq']}   updated {m.get('updatedAt', '')}",
        "",
        f"  {'selection':<34} {'price':>9} {'display':>9}  status",
    ]
    for sid, sel in view.selections.items():
        price = sel.get("price") or "-"
        display = sel.get("displayPrice") or ""
        move = view.moves.get(sid, 0)
        mark = ""
        if move:
            mark = (_UP if move > 0 else _DOWN) + (_RESET if color else "")
            if not color:
                mark = "up" if move > 0 else "down"
        name = str(sel.get("name", sid))[:34]
        lines.append(f"  {name:<34} {price:>9} {display:>9}  {sel.get('status', '')} {mark}")
    return "\n".join(lines) + "\n"


def render_status(frame: dict[str, Any]) -> str:
    """A feed health ``status`` frame as one line (piped output has no header to show it)."""
    healthy = "true" if frame.get("feedHealthy") else "false"
    reason = frame.get("reason")
    return f"status feedHealthy={healthy}" + ("" if reason is None else f" reason={reason}")
