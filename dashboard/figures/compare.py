"""Figures of the Compare page: scheme-vs-scheme agreement, per-step scatter, ranking bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.text import hover_text, hover_texts

SCATTER_TRACE = "steps"
LABEL_COLOURS = ("#d62728", "#7f7f7f", "#2ca02c")
"""Scatter points by step label: 0 (bad), none or other, 1 (good)."""


def correlation_figure(agreement: pd.DataFrame, names: list[str], metric: str = "spearman") -> go.Figure:
    """Symmetric matrix of ``metric`` (from ``core.credit.agreement_table``) between schemes."""
    matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for row in agreement.itertuples():
        matrix.loc[row.scheme_a, row.scheme_b] = matrix.loc[row.scheme_b, row.scheme_a] = getattr(row, metric)
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(dtype=float),
            x=names,
            y=names,
            zmin=-1 if metric == "spearman" else 0,
            zmax=1,
            colorscale="RdBu",
            zmid=0 if metric == "spearman" else 0.5,
            text=np.round(matrix.to_numpy(dtype=float), 2),
            texttemplate="%{text}",
            colorbar={"title": {"text": metric.replace("_", " ")}},
        )
    )
    fig.update_layout(
        height=120 + 40 * len(names), margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis={"autorange": "reversed"}
    )
    return fig


def scatter_figure(steps: pd.DataFrame, a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> go.Figure:
    """One point per step: scheme A's credit vs scheme B's, coloured by the step label when known.

    ``customdata`` carries ``[traj_id, step_idx]`` so a click can open the step. Every per-point array is
    built column-wise (numpy, Arrow string kernels): an iteration of a 10M-step run has 50,000 points.
    """
    labels = pd.to_numeric(steps["label"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    colour = np.where(labels == 1.0, 2, np.where(labels == 0.0, 0, 1)).astype(np.int8)  # index into LABEL_COLOURS
    axis_a, axis_b = hover_text(name_a, 80), hover_text(name_b, 80)
    step = steps["step_idx"].astype(int).astype(str)
    # Plotly renders hover text as a subset of HTML, ids included: everything shown is escaped here.
    hover = hover_texts(steps["traj_id"], 60) + " step " + step + "<br>" + hover_texts(steps["action"], 160)
    fig = go.Figure(
        go.Scattergl(
            name=SCATTER_TRACE,
            x=np.asarray(a, dtype=float),
            y=np.asarray(b, dtype=float),
            mode="markers",
            marker={
                "color": colour,
                "cmin": 0,
                "cmax": len(LABEL_COLOURS) - 1,
                "colorscale": [[i / (len(LABEL_COLOURS) - 1), c] for i, c in enumerate(LABEL_COLOURS)],
                "size": 6,
                "opacity": 0.6,
            },
            customdata=np.stack([steps["traj_id"].astype(str).to_numpy(dtype=object), step.to_numpy(dtype=object)], 1),
            text=hover.to_numpy(dtype=object),
            hovertemplate=f"{axis_a}: %{{x:.3f}}<br>{axis_b}: %{{y:.3f}}<br>%{{text}}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis_title=axis_a,
        yaxis_title=axis_b,
        height=460,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title="green: labelled good · red: labelled bad · grey: no label",
    )
    return fig
