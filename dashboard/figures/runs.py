"""Run-level curves: how a training run's rollouts change across iterations."""

from __future__ import annotations

import numpy as np
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


def ema(values: np.ndarray | pd.Series, weight: float) -> np.ndarray:
    """Exponential moving average with start-up bias correction, as TensorBoard and W&B smooth curves.

    ``s_t = weight * s_(t-1) + (1 - weight) * x_t`` from ``s = 0``, divided by ``1 - weight ** k`` after
    ``k`` finite points, so the first points are not pulled towards 0. NaN points are skipped (they keep
    NaN and do not move the average). ``weight`` 0 returns the values unchanged.
    """
    x = np.asarray(values, dtype=float)
    if not 0.0 <= weight < 1.0:
        raise ValueError("smoothing weight must be in [0, 1)")
    out = np.full_like(x, np.nan)
    last, seen = 0.0, 0
    for i, value in enumerate(x):
        if np.isfinite(value):
            last = weight * last + (1.0 - weight) * value
            seen += 1
            out[i] = last / (1.0 - weight**seen)
    return out


def iteration_curves_figure(curves: pd.DataFrame, smoothing: float = 0.0) -> go.Figure:
    """Four panels, one line per run, x = iteration (frame from ``queries.iteration_curves``).

    With ``smoothing`` > 0 each line is its :func:`ema` and the raw points stay behind it, faint.
    """
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title in CURVES], horizontal_spacing=0.08)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    for i, (run_id, frame) in enumerate(curves.groupby("run_id", sort=True)):
        colour = palette[i % len(palette)]
        frame = frame.sort_values("iteration")
        for j, (column, _) in enumerate(CURVES):
            where = {"row": j // 2 + 1, "col": j % 2 + 1}
            if smoothing > 0:
                fig.add_trace(
                    go.Scatter(x=frame["iteration"], y=frame[column], mode="lines", line={"color": colour, "width": 1},
                               opacity=0.25, legendgroup=str(run_id), showlegend=False, hoverinfo="skip"),
                    **where,
                )  # fmt: skip
            fig.add_trace(
                go.Scatter(
                    x=frame["iteration"],
                    y=ema(frame[column], smoothing) if smoothing > 0 else frame[column],
                    mode="lines" if smoothing > 0 else "lines+markers",
                    name=hover_text(run_id, 80),  # plotly reads legend names as markup: a run id is text
                    legendgroup=str(run_id),
                    showlegend=j == 0,
                    line={"color": colour},
                ),
                **where,
            )
    fig.update_xaxes(title_text="iteration", row=2)
    fig.update_layout(height=560, margin={"t": 40, "l": 10, "r": 10, "b": 10}, legend={"orientation": "h"})
    return fig
