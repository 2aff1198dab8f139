"""Log text inside plotly hover labels: plotly renders a subset of HTML there, so escape everything."""

from __future__ import annotations

import html

import pandas as pd


def hover_text(text: object, max_chars: int = 400, max_lines: int | None = None) -> str:
    """Return ``text`` as safe plotly hover markup: cut to size, HTML-escaped, newlines as ``<br>``.

    Args:
        text: Any value; None becomes the empty string.
        max_chars: Characters kept before an ellipsis (cut before escaping, so no entity is split).
        max_lines: Lines kept before an ellipsis; all when None.

    Returns:
        Markup in which ``<``, ``>`` and ``&`` of the original text are entities.
    """
    raw = "" if text is None else str(text)
    if max_lines is not None:
        lines = raw.splitlines() or [""]
        raw = "\n".join(lines[:max_lines]) + ("\n…" if len(lines) > max_lines else "")
    if len(raw) > max_chars:
        raw = raw[: max_chars - 1] + "…"
    return html.escape(raw, quote=False).replace("\n", "<br>")


def hover_texts(values: pd.Series, max_chars: int = 400) -> pd.Series:
    """:func:`hover_text` of every value of a column at once (vectorised; nulls become the empty string)."""
    text = values.astype("string").fillna("")
    long = text.str.len() > max_chars
    text = text.where(~long, text.str.slice(0, max_chars - 1) + "…")
    for raw, markup in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\n", "<br>")):
        text = text.str.replace(raw, markup, regex=False)
    return text
