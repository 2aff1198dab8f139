"""Run-level curves: how a training run's rollouts change across iterations."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.text import hover_text

CURVES: tuple[tuple[str, str], ...] = (
    ("mean_outcome", "Mean outcome"),
    ("success_rate", "Success rate (outcome > 0)"),
    ("mean_steps", "Mean steps per trajectory"),
    ("zero_variance_share", "Groups with zero outcome variance"),
)


def iteration_curves_figure(curves: pd.DataFrame) -> go.Figure:
    """Four panels, one line per run, x = iteration (frame from ``queries.iteration_curves``)."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title in CURVES], horizontal_spacing=0.08)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    for i, (run_id, frame) in enumerate(curves.groupby("run_id", sort=True)):
        colour = palette[i % len(palette)]
        for j, (column, _) in enumerate(CURVES):
            fig.add_trace(
                go.Scatter(
                    x=frame["iteration"],
                    y=frame[column],
                    mode="lines+markers",
                    name=hover_text(run_id, 80),  # plotly reads legend names as markup: a run id is text
                    legendgroup=str(run_id),
                    showlegend=j == 0,
                    line={"color": colour},
                ),
                row=j // 2 + 1,
                col=j % 2 + 1,
            )
    fig.update_xaxes(title_text="iteration", row=2)
    fig.update_layout(height=560, margin={"t": 40, "l": 10, "r": 10, "b": 10}, legend={"orientation": "h"})
    return fig
