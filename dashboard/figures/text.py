"""Log text inside plotly hover labels: plotly renders a subset of HTML there, so escape everything."""

from __future__ import annotations

import html


def hover_text(text: object, limit: int = 400) -> str:
    """Escape ``text`` for a plotly hover label, cut to ``limit`` characters, newlines as line breaks."""
    if text is None:
        return ""
    raw = str(text)
    if len(raw) > limit:
        raw = raw[: limit - 1] + "…"
    return html.escape(raw, quote=False).replace("\n", "<br>")
