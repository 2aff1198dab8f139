"""Per-step advantage heatmaps: rows are trajectories, columns are step positions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.text import hover_text

DIVERGING = "RdBu"
MAX_LABELLED_ROWS = 32


def advantage_matrix(steps: pd.DataFrame, values: np.ndarray | pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pivot per-step ``values`` into (trajectories × step_idx) matrices of values and of action text.

    Trajectories are ordered by outcome (best first), then id, so winners and losers separate.
    """
    frame = steps[["traj_id", "step_idx", "action", "outcome"]].copy()
    frame["value"] = np.asarray(values, dtype=float)
    order = (
        frame.groupby("traj_id")["outcome"]
        .first()
        .reset_index()
        .sort_values(["outcome", "traj_id"], ascending=[False, True])
    )
    z = frame.pivot(index="traj_id", columns="step_idx", values="value").reindex(order["traj_id"])
    text = frame.pivot(index="traj_id", columns="step_idx", values="action").reindex(order["traj_id"])
    return z, text


def heatmap_figure(
    steps: pd.DataFrame,
    values: np.ndarray | pd.Series,
    *,
    title: str,
    zmax: float | None = None,
    colorbar_title: str = "advantage",
) -> go.Figure:
    """A diverging heatmap centred on 0; hover shows the step's text; ``customdata`` holds trajectory ids.

    Args:
        steps: Canonical step rows of one group (or any set of trajectories).
        values: One number per row of ``steps`` (an advantage, a PRM score, a label...).
        title: Figure title (say which scheme and parameters produced the values).
        zmax: Half-width of the colour range; pass the same value to several heatmaps to share a scale.
        colorbar_title: What the colour means.
    """
    z, text = advantage_matrix(steps, values)
    outcomes = steps.groupby("traj_id")["outcome"].first().reindex(z.index)
    finite = np.abs(z.to_numpy(dtype=float))
    finite = finite[np.isfinite(finite)]
    half = zmax if zmax is not None else (float(finite.max()) if finite.size else 1.0) or 1.0
    hover = np.vectorize(hover_text, otypes=[object])(text.to_numpy(dtype=object))
    ids = np.repeat(z.index.to_numpy(dtype=object)[:, None], z.shape[1], axis=1)
    labels = [f"{t}  (R={o:g})" for t, o in zip(z.index, outcomes, strict=True)]
    fig = go.Figure(
        go.Heatmap(
            z=z.to_numpy(dtype=float),
            x=[int(c) for c in z.columns],
            y=labels,
            customdata=ids,
            text=hover,
            hovertemplate="%{y}<br>step %{x}: %{z:.3f}<br>%{text}<extra></extra>",
            colorscale=DIVERGING,
            zmid=0.0,
            zmin=-half,
            zmax=half,
            colorbar={"title": {"text": colorbar_title}},
            xgap=1,
            ygap=1,
        )
    )
    # Past MAX_LABELLED_ROWS the rows get thinner than a label: keep the figure a screen tall and leave
    # the trajectory ids to the hover text.
    labelled = len(labels) <= MAX_LABELLED_ROWS
    fig.update_layout(
        title=title if labelled else f"{title} · {len(labels)} trajectories (ids on hover)",
        xaxis={"title": "step", "dtick": 1},
        yaxis={"autorange": "reversed", "type": "category", "showticklabels": labelled},
        height=max(260, 28 * len(labels) + 120) if labelled else 1000,
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )
    return fig
