"""The Trajectory page's compact step list as HTML: one line per step that opens to the full state and action.

Log text only ever reaches the markup through :func:`html.escape` (and stays inside ``<pre>`` or ``<span>``
text), so the browser shows it character for character: no tag, entity, Markdown or LaTeX in a log is
interpreted. Native ``<details>`` elements open and close in the browser without a rerun. The colours are
translucent, so the list reads on the light and on the dark theme.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

import pandas as pd
from plotly.colors import sample_colorscale

from core.schema import LOGGED_PRM
from dashboard.figures.heatmap import DIVERGING
from dashboard.figures.tokens_html import TOKEN_STYLE

STEP_ID = "cs-step-{}"
"""Element id of a step's row, the target of jump-to-step scrolling."""

STYLE = """<style>
.cs-steps{font-size:0.86rem;line-height:1.35}
.cs-steps .cs-row{display:grid;grid-template-columns:3.2em minmax(0,1fr) 4.6em 3.6em 3.4em 4.2em 6.2em;gap:0.5em;
  align-items:center;padding:1px 6px}
.cs-steps .cs-head{font-weight:600;opacity:0.75;border-bottom:1px solid rgba(128,128,128,0.35)}
.cs-steps details{border-bottom:1px solid rgba(128,128,128,0.18)}
.cs-steps summary{list-style:none;cursor:pointer}
.cs-steps summary::-webkit-details-marker{display:none}
.cs-steps summary:hover{background:rgba(128,128,128,0.10)}
.cs-steps details[open]>summary{background:rgba(128,128,128,0.08)}
.cs-steps .cs-current{outline:2px solid #f5a623;outline-offset:-2px;background:rgba(245,166,35,0.10)}
.cs-steps .cs-idx{font-variant-numeric:tabular-nums;opacity:0.8}
.cs-steps .cs-act{font-family:"Source Code Pro",ui-monospace,monospace;white-space:nowrap;overflow:hidden;
  text-overflow:ellipsis}
.cs-steps .cs-num{font-variant-numeric:tabular-nums;text-align:right}
.cs-steps .cs-bad{color:#d62728;font-weight:600}
.cs-steps .cs-credit{border-radius:3px;padding:0 4px}
.cs-steps .cs-body{padding:4px 6px 8px 3.7em}
.cs-steps .cs-label{font-size:0.75rem;opacity:0.7;margin-top:4px}
.cs-steps pre{font-family:"Source Code Pro",ui-monospace,monospace;font-size:0.8rem;white-space:pre-wrap;
  overflow-wrap:anywhere;margin:2px 0;padding:6px;border-radius:4px;background:rgba(128,128,128,0.10)}
</style>"""


def credit_colour(value: float | None, limit: float) -> tuple[str, str]:
    """Background and text colour of a credit value on the heatmaps' diverging scale (red < 0 < blue)."""
    if value is None or not math.isfinite(value):
        return "transparent", "inherit"
    position = 0.5 + 0.5 * max(-1.0, min(1.0, value / (limit or 1.0)))
    background = sample_colorscale(DIVERGING, [position])[0]
    return background, "#ffffff" if abs(position - 0.5) > 0.32 else "#111111"


def first_line(text: object, limit: int = 160) -> str:
    """The first non-empty line of a step's text, cut to ``limit`` characters (plain text, not escaped)."""
    raw = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    line = next((part for part in raw.splitlines() if part.strip()), "")
    more = "…" if len(line) > limit or len(raw.strip().splitlines()) > 1 else ""
    return line[:limit] + more


def _number(value: object, fmt: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


def _valid(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "yes" if bool(value) else "no"


def step_list_html(
    steps: pd.DataFrame,
    credit: Mapping[int, float],
    *,
    scheme: str,
    limit: float,
    current: int | None = None,
    expand: str = "current",
    action_html: Mapping[int, str] | None = None,
    summary_html: Mapping[int, str] | None = None,
) -> str:
    """The compact list of a trajectory's steps.

    Args:
        steps: The trajectory's canonical step rows (``step_idx``, ``state``, ``action``, ``reward``,
            ``label``, ``valid``, ``prm``).
        credit: The chosen scheme's credit per step index (missing steps show "–").
        scheme: Name shown in the credit column's header.
        limit: Credit at which the colour saturates (the group's robust limit, as on the heatmap).
        current: The step to highlight (``step=`` in the URL), or None.
        expand: ``"all"``, ``"none"`` or ``"current"`` (only the highlighted step open).
        action_html: Markup to show instead of a step's plain action (the token view), by step index.
            Its builder must escape the log text itself.
        summary_html: Likewise for the action's first line in the step's one-line summary.

    Returns:
        One HTML string: a style block, a header row and a ``<details>`` element per step whose id is
        :data:`STEP_ID` formatted with the step index.
    """
    head = ["#", "action (first line)", "reward", "label", "valid", "prm", html.escape(scheme[:12])]
    parts = [STYLE, TOKEN_STYLE if action_html else "", '<div class="cs-steps">', '<div class="cs-row cs-head">']
    parts += [f'<span class="{"cs-num" if i > 1 else ""}">{h}</span>' for i, h in enumerate(head)]
    parts.append("</div>")
    for step in steps.itertuples():
        idx = int(step.step_idx)
        is_open = expand == "all" or (expand == "current" and idx == current)
        value = credit.get(idx)
        background, colour = credit_colour(value, limit)
        label_bad = not pd.isna(step.label) and float(step.label) == 0
        valid_bad = not pd.isna(step.valid) and not bool(step.valid)
        classes = "cs-current" if idx == current else ""
        parts.append(f'<details id="{STEP_ID.format(idx)}" class="{classes}"{" open" if is_open else ""}>')
        parts.append('<summary class="cs-row">')
        parts.append(f'<span class="cs-idx">{idx}</span>')
        summary = (summary_html or {}).get(idx)
        parts.append(
            f'<span class="cs-act">{summary if summary is not None else html.escape(first_line(step.action))}</span>'
        )
        parts.append(f'<span class="cs-num">{_number(step.reward, ".3g")}</span>')
        parts.append(f'<span class="cs-num{" cs-bad" if label_bad else ""}">{_number(step.label, "g")}</span>')
        parts.append(f'<span class="cs-num{" cs-bad" if valid_bad else ""}">{_valid(step.valid)}</span>')
        parts.append(_prm_cell(step.prm, getattr(step, "prm_source", None)))
        shown = _number(value, "+.3f")
        style = f"background:{background};color:{colour}"
        parts.append(f'<span class="cs-num"><span class="cs-credit" style="{style}">{shown}</span></span>')
        parts.append("</summary>")
        parts.append('<div class="cs-body">')
        if isinstance(step.state, str) and step.state:
            parts.append(f'<div class="cs-label">state</div><pre>{html.escape(step.state)}</pre>')
        action = "" if step.action is None or pd.isna(step.action) else str(step.action)
        body = (action_html or {}).get(idx)
        parts.append('<div class="cs-label">action</div>')
        parts.append(body if body is not None else f"<pre>{html.escape(action)}</pre>")
        parts.append("</div></details>")
    parts.append("</div>")
    return "".join(parts)


def _prm_cell(prm: object, source: object) -> str:
    """The prm cell; its tooltip says where the score comes from (the log, or which scorer)."""
    if source is None or pd.isna(source):
        return f'<span class="cs-num">{_number(prm, ".3f")}</span>'
    title = html.escape(f"prm from {'the log' if source == LOGGED_PRM else source}", quote=True)
    return f'<span class="cs-num" title="{title}">{_number(prm, ".3f")}</span>'


def scroll_script(step: int) -> str:
    """A script that scrolls the page to a step's row once it is drawn (only a step number goes in).

    It holds no ``<``: the sanitiser in front of ``st.html`` drops a script whose text looks like markup.
    """
    target = STEP_ID.format(int(step))
    return (
        "<script>(function(){let tries=0;const go=()=>{const el=document.getElementById("
        f'"{target}");if(el){{el.scrollIntoView({{block:"center"}});}}else if(50>tries++){{setTimeout(go,100);}}}};'
        "go();})();</script>"
    )
