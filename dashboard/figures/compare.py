"""Figures of the Compare page: scheme-vs-scheme agreement, per-step scatter, ranking bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.text import hover_text


def shared_zmax(*arrays: np.ndarray) -> float:
    """Half-width of one colour range covering every array (so heatmaps side by side compare)."""
    values = np.concatenate([np.abs(np.asarray(a, dtype=float)) for a in arrays]) if arrays else np.array([])
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size and values.max() > 0 else 1.0


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

    ``customdata`` carries ``[traj_id, step_idx]`` so a click can open the step.
    """
    labels = pd.to_numeric(steps["label"], errors="coerce")
    colour = labels.map({1.0: "#2ca02c", 0.0: "#d62728"}).fillna("#7f7f7f")
    hover = [hover_text(t, 160) for t in steps["action"]]
    fig = go.Figure(
        go.Scattergl(
            x=np.asarray(a, dtype=float),
            y=np.asarray(b, dtype=float),
            mode="markers",
            marker={"color": colour.tolist(), "size": 6, "opacity": 0.6},
            customdata=np.stack([steps["traj_id"].astype(str), steps["step_idx"].astype(int).astype(str)], axis=1),
            text=hover,
            hovertemplate=f"{name_a}: %{{x:.3f}}<br>{name_b}: %{{y:.3f}}<br>%{{customdata[0]}} step "
            "%{customdata[1]}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis_title=name_a,
        yaxis_title=name_b,
        height=460,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title="green: labelled good · red: labelled bad · grey: no label",
    )
    return fig
