"""Figures of PRM rescoring: the reliability diagram and old-vs-new scores of a what-if edit (pure)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

NEUTRAL = "#9e9e9e"
"""Grey for reference lines and counts: elsewhere in the dashboard red means bad credit, so counts are not red."""


def reliability_figure(calibration: pd.DataFrame) -> go.Figure:
    """Mean label per score bin against the diagonal, with the bin counts as bars underneath.

    Args:
        calibration: Output of ``core.prm.evaluate.calibration_table``.

    Returns:
        A two-row figure: reliability curve on top, step counts per bin below.
    """
    centres = (calibration["bin_low"] + calibration["bin_high"]) / 2
    low, high = float(calibration["bin_low"].min()), float(calibration["bin_high"].max())
    filled = calibration["count"] > 0
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06)
    fig.add_trace(
        go.Scatter(
            x=[low, high],
            y=[low, high],
            mode="lines",
            name="perfectly calibrated",
            line={"dash": "dot", "color": NEUTRAL},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=calibration.loc[filled, "mean_score"],
            y=calibration.loc[filled, "mean_label"],
            mode="lines+markers",
            name="mean label",
            customdata=calibration.loc[filled, "count"],
            hovertemplate="mean score %{x:.3f}<br>mean label %{y:.3f}<br>%{customdata} steps<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=centres,
            y=calibration["count"],
            width=(calibration["bin_high"] - calibration["bin_low"]) * 0.9,
            name="steps per bin",
            marker={"color": NEUTRAL},
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="mean label", range=[-0.05, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="steps", row=2, col=1)
    fig.update_xaxes(title_text="PRM score", range=[low, high], row=2, col=1)
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h"})
    return fig


def what_if_figure(comparison: pd.DataFrame) -> go.Figure:
    """Old and new PRM score per step of an edited trajectory; edited steps are marked.

    Args:
        comparison: Output of ``core.prm.whatif.score_comparison``.

    Returns:
        A line figure over ``step_idx``.
    """
    steps = comparison["step_idx"].astype(str)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=comparison["old_prm"], mode="lines+markers", name="as logged"))
    fig.add_trace(go.Scatter(x=steps, y=comparison["new_prm"], mode="lines+markers", name="edited"))
    for step in steps[comparison["edited"].to_numpy()]:
        fig.add_vline(x=step, line={"dash": "dot", "color": "grey"})
    fig.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="step (dotted: edited)",
        # Step indices are labels, not a continuum: a numeric axis put ticks at 0.5, 1.5, ...
        xaxis_type="category",
        yaxis_title="PRM score",
        legend={"orientation": "h"},
    )
    return fig
