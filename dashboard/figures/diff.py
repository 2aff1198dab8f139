"""Figures and tables of the Diff pages: outcome scatter per prompt, overlaid distributions, summary, aligned steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from dashboard.figures.text import hover_text

SIDE_COLOURS = {"A": "#1f77b4", "B": "#ff7f0e"}
FLIP_COLOURS = {"lost": "#d62728", "gained": "#2ca02c", "": "#7f7f7f"}
DIFFERS = "background-color: #fff3b0"
"""Highlight of an aligned step whose actions differ between the two sides."""


def outcome_scatter(pairs: pd.DataFrame) -> go.Figure:
    """One point per prompt in both sides: mean outcome in A (x) against B (y), coloured by flip.

    ``customdata`` holds the prompt key, so a click opens the pair. Points above the diagonal improved.
    """
    flip = pairs["flip"].fillna("")
    hover = [hover_text(text, 200) for text in pairs["prompt"]]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"color": "#bbbbbb", "dash": "dot"},
            hoverinfo="skip",
            showlegend=False,
        )  # fmt: skip
    )
    for name, label in (("", "same"), ("lost", "solved in A only"), ("gained", "solved in B only")):
        part = (flip == name).to_numpy()
        fig.add_trace(
            go.Scatter(
                x=pairs["outcome_a"].to_numpy(dtype=float)[part],
                y=pairs["outcome_b"].to_numpy(dtype=float)[part],
                mode="markers",
                name=label,
                marker={"color": FLIP_COLOURS[name], "size": 10, "line": {"width": 1, "color": "#fff"}},
                customdata=pairs["prompt_key"].to_numpy(dtype=object)[part][:, None],
                text=np.asarray(hover, dtype=object)[part],
                hovertemplate="A %{x:.3f} → B %{y:.3f}<br>%{text}<extra></extra>",
            )
        )
    lo = float(np.nanmin([pairs["outcome_a"].min(), pairs["outcome_b"].min(), 0.0])) if len(pairs) else 0.0
    hi = float(np.nanmax([pairs["outcome_a"].max(), pairs["outcome_b"].max(), 1.0])) if len(pairs) else 1.0
    pad = 0.04 * (hi - lo or 1.0)
    fig.data[0].update(x=[lo, hi], y=[lo, hi])
    fig.update_layout(
        xaxis={"title": "mean outcome in A", "range": [lo - pad, hi + pad]},
        yaxis={"title": "mean outcome in B", "range": [lo - pad, hi + pad], "scaleanchor": "x"},
        height=520,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h"},
        clickmode="event+select",
    )
    return fig


def histogram_figure(bins: pd.DataFrame, title: str, x_title: str) -> go.Figure:
    """A and B's distributions (shares of each side, from ``diff_queries.histogram``) as overlaid bars."""
    fig = go.Figure()
    exact = bool(len(bins)) and float(bins["width"].max()) == 0.0
    values = np.sort(bins["x0"].unique())
    gap = float(np.diff(values).min()) if exact and len(values) > 1 else 1.0
    for side in ("A", "B"):
        part = bins[bins["side"] == side]
        width = np.full(len(part), 0.8 * gap) if exact else part["width"].to_numpy(dtype=float)
        fig.add_trace(
            go.Bar(
                x=part["x0"].to_numpy(dtype=float) + (0 if exact else width / 2),
                y=part["share"].to_numpy(dtype=float),
                width=width,
                name=side,
                marker={"color": SIDE_COLOURS[side]},
                opacity=0.55,
                customdata=part["count"].to_numpy(dtype=float),
                hovertemplate=f"{side}: %{{y:.1%}} (%{{customdata:,.0f}})<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="overlay",
        title=title,
        xaxis_title=x_title,
        yaxis={"title": "share of the side", "tickformat": ".0%"},
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h"},
    )
    return fig


SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("prompts", "prompts"),
    ("groups", "groups"),
    ("trajectories", "trajectories"),
    ("mean_outcome", "mean outcome"),
    ("success_rate", "success rate (outcome > 0)"),
    ("mean_steps", "steps per trajectory"),
    ("zero_variance_share", "groups with zero outcome variance"),
    ("credit_mean_abs", "credit: mean |advantage| per step"),
    ("credit_zero_share", "credit: share of steps with zero advantage"),
    ("credit_positive_share", "credit: share of steps with positive advantage"),
    ("credit_std", "credit: std of advantages"),
)


def summary_frame(stats: pd.DataFrame) -> pd.DataFrame:
    """The per-side statistics of ``diff_queries.summary`` as rows ``metric, A, B, B − A``."""
    rows = [
        {"metric": label, "A": float(stats.loc["A", key]), "B": float(stats.loc["B", key])}
        for key, label in SUMMARY_ROWS
        if key in stats.columns
    ]
    frame = pd.DataFrame(rows)
    frame["B − A"] = frame["B"] - frame["A"]
    return frame


TABLE_COLUMNS: tuple[str, ...] = (
    "prompt", "flip", "outcome_a", "outcome_b", "d_outcome", "steps_a", "steps_b", "d_steps", "credit_a",
    "credit_b", "d_credit", "zero_var_a", "zero_var_b", "groups_a", "groups_b", "trajectories_a", "trajectories_b",
)  # fmt: skip
"""Columns of the per-prompt table as shown (the rest stay in the frame for opening a pair)."""


def aligned_styler(aligned: pd.DataFrame, label_a: str, label_b: str) -> Styler:
    """Steps of two rollouts side by side (``core.diff.aligned_steps``), rows whose actions differ highlighted."""
    shown = aligned.rename(
        columns={"a": label_a, "b": label_b, "credit_a": f"{label_a} credit", "credit_b": f"{label_b} credit"}
    )
    differs = shown["differs"].to_numpy()
    return shown.style.apply(lambda row: [DIFFERS if differs[row.name] else ""] * len(row), axis=1).format(
        precision=3, na_rep="–"
    )
