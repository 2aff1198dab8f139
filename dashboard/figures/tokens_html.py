"""The token view: an action's tokens coloured by a per-token value, with the value on hover and a legend.

Pure builders (no streamlit). Token texts only reach the markup through :func:`html.escape` (as text, and
in the ``title`` attribute that the browser shows on hover), so a token is always shown as the characters
it holds. Colours are translucent: a value near the neutral end leaves the theme's own background.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LOGPROB, ENTROPY, ADVANTAGE, RATIO = "log-prob", "entropy", "per-token advantage", "log-ratio to reference"
CREDIT, WHATIF = "step credit", "PRM what-if (new − old)"
LOGGED_MODES: dict[str, tuple[str, ...]] = {
    LOGPROB: ("token_logprobs",),
    ENTROPY: ("token_entropies",),
    ADVANTAGE: ("token_advantages",),
    RATIO: ("token_logprobs", "token_ref_logprobs"),
}
"""Modes read from logged per-token arrays, and the arrays each one needs."""

RED, BLUE, PURPLE = (178, 24, 43), (33, 102, 172), (106, 61, 154)
"""The heatmaps' diverging ends (red below 0, blue above) and a hue for entropy."""

TOKEN_STYLE = """<style>
.cs-tokens{font-family:"Source Code Pro",ui-monospace,monospace;font-size:0.8rem;white-space:pre-wrap;
  overflow-wrap:anywhere;margin:2px 0;padding:6px;border-radius:4px;background:rgba(128,128,128,0.06)}
.cs-tok{border-radius:2px}
.cs-legend{display:flex;align-items:center;gap:0.6em;font-size:0.8rem;margin:4px 0}
.cs-legend .cs-bar{width:180px;height:10px;border-radius:2px;border:1px solid rgba(128,128,128,0.4)}
</style>"""


@dataclass(frozen=True)
class Scale:
    """How values map to colours.

    Attributes:
        kind: ``"diverging"`` (red below 0, blue above, symmetric at ``high``), ``"low_is_bad"`` (log-probs:
            red growing from 0 down to ``low``) or ``"sequential"`` (purple growing from 0 up to ``high``).
        low, high: The ends of the scale; values beyond are drawn at the end.
    """

    kind: str
    low: float
    high: float

    def colour(self, value: float | None) -> tuple[str, str]:
        """Background and text colour of ``value`` (missing values: no background, the theme's text)."""
        if value is None or not math.isfinite(value):
            return "transparent", "inherit"
        if self.kind == "diverging":
            strength, rgb = min(1.0, abs(value) / (self.high or 1.0)), (RED if value < 0 else BLUE)
        elif self.kind == "low_is_bad":
            strength, rgb = min(1.0, max(0.0, value / (self.low or -1.0))), RED
        else:
            strength, rgb = min(1.0, max(0.0, value / (self.high or 1.0))), PURPLE
        alpha = round(0.85 * strength, 3)
        return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha})", "#ffffff" if alpha > 0.5 else "inherit"


def scale_for(mode: str, values: Sequence[float]) -> Scale:
    """The scale of a mode over all values shown (robust ends: the 1st / 99th percentile of the magnitudes)."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if mode == LOGPROB:
        low = float(np.percentile(finite, 1)) if finite.size else -1.0
        return Scale("low_is_bad", min(low, -1e-6), 0.0)
    if mode == ENTROPY:
        high = float(np.percentile(finite, 99)) if finite.size else 1.0
        return Scale("sequential", 0.0, high if high > 0 else 1.0)
    high = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    return Scale("diverging", -(high or 1.0), high or 1.0)


def token_values(mode: str, arrays: dict[str, list | None], n_tokens: int, step_value: float | None) -> list:
    """One value per token: from the logged arrays, or the step's own value (credit, what-if) on every token."""
    if mode in (CREDIT, WHATIF):
        return [step_value] * n_tokens
    if mode == RATIO:
        policy, reference = arrays.get("token_logprobs"), arrays.get("token_ref_logprobs")
        if policy is None or reference is None:
            return [None] * n_tokens
        return [p - r for p, r in zip(policy, reference, strict=True)]
    logged = arrays.get(LOGGED_MODES[mode][0])
    return list(logged) if logged is not None else [None] * n_tokens


def _number(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:+.4g}"


def token_spans(
    tokens: Sequence[str], values: Sequence[float | None], scale: Scale, label: str, *, first_line: bool = False
) -> str:
    """The tokens as coloured ``<span>`` elements whose hover (``title``) gives the token and its value.

    With ``first_line`` the spans stop at the first line break (for a step's one-line summary).
    """
    parts = []
    for token, value in zip(tokens, values, strict=True):
        text = str(token)
        if first_line and "\n" in text:
            text = text.split("\n", 1)[0]
            if text:
                parts.append(_span(text, token, value, scale, label))
            parts.append("…")
            break
        parts.append(_span(text, token, value, scale, label))
    return "".join(parts)


def _span(text: str, token: str, value: float | None, scale: Scale, label: str) -> str:
    background, colour = scale.colour(value)
    title = html.escape(f"{token!r} · {label} {_number(value)}", quote=True)
    return (
        f'<span class="cs-tok" style="background:{background};color:{colour}" title="{title}">'
        f"{html.escape(text)}</span>"
    )


def token_block(tokens: Sequence[str], values: Sequence[float | None], scale: Scale, label: str) -> str:
    """A whole action as coloured tokens, line breaks kept, in the step list's monospace block."""
    return f'<div class="cs-tokens">{token_spans(tokens, values, scale, label)}</div>'


def legend_html(scale: Scale, label: str, source: str) -> str:
    """A colour bar with its ends, what the colour is and where the tokens came from."""
    stops = {
        "diverging": [scale.colour(scale.low)[0], "rgba(0,0,0,0)", scale.colour(scale.high)[0]],
        "low_is_bad": [scale.colour(scale.low)[0], "rgba(0,0,0,0)"],
        "sequential": ["rgba(0,0,0,0)", scale.colour(scale.high)[0]],
    }[scale.kind]
    return (
        f'{TOKEN_STYLE}<div class="cs-legend"><span>{html.escape(label)}:</span>'
        f"<span>{scale.low:+.3g}</span>"
        f'<span class="cs-bar" style="background:linear-gradient(to right,{",".join(stops)})"></span>'
        f"<span>{scale.high:+.3g}</span><span>· {html.escape(source)} · hover a token for its value</span></div>"
    )
