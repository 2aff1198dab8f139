"""Per-step credit heatmaps: rows are trajectories, columns are step positions, readable from 8 to 128 rows.

Plotly heatmap traces emit no click or selection events, so every cell centre also carries an invisible
marker (the "click layer") with ``customdata = [traj_id, step_idx]``: a click anywhere in a cell selects the
marker nearest to the mouse, which is that cell's (the nearest centre of a regular grid is the cell's own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.text import hover_text

DIVERGING = "RdBu"
NEUTRAL = "#bdbdbd"
"""Colour of a group whose values are all equal: no colour would mean anything there."""
OUTCOME_SCALE = [[0.0, "#d7d7d7"], [1.0, "#1b7837"]]
"""The outcome strip's scale: grey for the worst rollout of the group, green for the best."""
CLICK_LAYER = "click layer"
PERCENTILE = 99.0
MIN_ROW_PX, MAX_ROW_PX, PLOT_BUDGET_PX = 10, 28, 1000
MARKS = {
    # name: (symbol, fill, what it marks). Filled symbols get a white outline and the ring is orange, so each
    # mark stands out on red, white and blue cells and on the light and the dark theme's background alike.
    "label = 0": ("x", "#111111", "a step labelled bad"),
    "valid = false": ("triangle-down", "#111111", "an invalid action"),
    "first error": ("circle-open", "#ff8c00", "the trajectory's first bad (or invalid) step"),
    "beyond the colour limit": ("diamond-tall", "#7b3fb0", "saturated: |value| above the colour limit"),
}


@dataclass(frozen=True)
class HeatmapGrid:
    """One group's per-step values laid out as rows (trajectories, best outcome first) × step columns.

    Attributes:
        z: Values, NaN where a trajectory has no such step.
        traj_ids, outcomes: Per row.
        steps: Step index of each column.
        text: Each cell's action text (None where there is no step).
        label, valid: Each cell's label and validity (NaN where unknown).
    """

    z: np.ndarray
    traj_ids: list[str]
    outcomes: np.ndarray
    steps: list[int]
    text: np.ndarray
    label: np.ndarray
    valid: np.ndarray

    def first_errors(self) -> list[tuple[int, int]]:
        """Per row, the first cell labelled 0, else the first invalid one (rows with neither are left out)."""
        found = []
        for row in range(len(self.traj_ids)):
            bad = np.flatnonzero(self.label[row] == 0)
            if not bad.size:
                bad = np.flatnonzero(self.valid[row] == 0)
            if bad.size:
                found.append((row, int(bad[0])))
        return found


def heatmap_grid(steps: pd.DataFrame, values: np.ndarray | pd.Series) -> HeatmapGrid:
    """Pivot per-step ``values`` (aligned with ``steps``) into a :class:`HeatmapGrid`.

    Trajectories are ordered by outcome (best first), then id, so winners and losers separate.
    """
    frame = steps[["traj_id", "step_idx", "action", "outcome"]].copy()
    frame["value"] = np.asarray(values, dtype=float)
    frame["label"] = pd.to_numeric(steps["label"], errors="coerce") if "label" in steps else np.nan
    frame["valid"] = steps["valid"].astype("Float64").astype(float) if "valid" in steps else np.nan
    outcome = frame.groupby("traj_id")["outcome"].first().reset_index()
    order = outcome.sort_values(["outcome", "traj_id"], ascending=[False, True])["traj_id"]
    columns = sorted(int(s) for s in frame["step_idx"].unique())

    def pivot(column: str) -> pd.DataFrame:
        table = frame.pivot(index="traj_id", columns="step_idx", values=column)
        return table.reindex(index=order, columns=columns)

    return HeatmapGrid(
        z=pivot("value").to_numpy(dtype=float),
        traj_ids=[str(t) for t in order],
        outcomes=outcome.set_index("traj_id")["outcome"].reindex(order).to_numpy(dtype=float),
        steps=columns,
        text=pivot("action").to_numpy(dtype=object),
        label=pivot("label").to_numpy(dtype=float),
        valid=pivot("valid").to_numpy(dtype=float),
    )


def robust_limit(*arrays: np.ndarray, percentile: float = PERCENTILE) -> float:
    """Half-width of a symmetric colour range: the ``percentile`` of |value| over all arrays.

    One outlier (a ±1.8 among values of ±0.1) no longer washes every other cell out; cells beyond the
    limit are drawn at the end of the scale and marked. Falls back to the largest |value|, then to 1.
    """
    values = np.concatenate([np.abs(np.asarray(a, dtype=float)).ravel() for a in arrays]) if arrays else np.array([])
    values = values[np.isfinite(values)]
    if not values.size:
        return 1.0
    limit = float(np.percentile(values, percentile))
    return limit if limit > 0 else (float(values.max()) or 1.0)


def row_height(n_rows: int) -> int:
    """Pixels per row: 28 for a few rollouts, shrinking to keep the plot near one screen, never under 10."""
    return int(np.clip(PLOT_BUDGET_PX // max(n_rows, 1), MIN_ROW_PX, MAX_ROW_PX))


def heatmap_figure(
    steps: pd.DataFrame,
    values: np.ndarray | pd.Series,
    *,
    title: str,
    limit: float | None = None,
    limit_source: str = "set by hand",
    colorbar_title: str = "advantage",
    legend: bool = True,
) -> go.Figure:
    """A diverging heatmap centred on 0 with an outcome strip, marks on bad steps and a click layer.

    Args:
        steps: Canonical step rows of one group (or any set of trajectories).
        values: One number per row of ``steps`` (an advantage, a PRM score, a difference...).
        title: Figure title (say which scheme and parameters produced the values).
        limit: Half-width of the colour range; None for :func:`robust_limit`. Pass one value to several
            heatmaps to put them on one scale.
        limit_source: Where a given ``limit`` came from, for the title.
        legend: Show the marks' legend (heatmaps side by side can leave it to one of them).
        colorbar_title: What the colour means.

    Returns:
        Two subplots sharing rows: the outcome strip (x axis 1) and the values (x axis 2), whose traces are
        the heatmap, one marker trace per kind of mark in :data:`MARKS`, and the :data:`CLICK_LAYER`.
    """
    grid = heatmap_grid(steps, values)
    n_rows, n_cols = grid.z.shape
    finite = grid.z[np.isfinite(grid.z)]
    constant = bool(finite.size) and float(finite.min()) == float(finite.max())
    auto = limit is None
    half = robust_limit(grid.z) if auto else (float(limit) or 1.0)
    px = row_height(n_rows)
    rows = np.arange(n_rows)
    labels = [hover_text(f"{t} · R={o:g}", 60) for t, o in zip(grid.traj_ids, grid.outcomes, strict=True)]

    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.03, 0.97], horizontal_spacing=0.004)
    fig.add_trace(_outcome_strip(grid, rows), row=1, col=1)
    fig.add_trace(_value_trace(grid, rows, half, constant, finite, colorbar_title), row=1, col=2)
    for trace in _mark_traces(grid, half, px):
        fig.add_trace(trace, row=1, col=2)
    fig.add_trace(_click_layer(grid), row=1, col=2)

    scale = (
        f"constant: every cell is {finite[0]:.4g}"
        if constant
        else f"colours at ±{half:.3g} ({'p99 of |value|' if auto else limit_source}; ◆ beyond)"
    )
    font = max(8, min(12, px - 2))
    fig.update_layout(
        title={
            "text": f"{hover_text(title, 200)} · {n_rows} rollouts<br><span style='font-size:11px'>{scale}</span>",
            "font": {"size": 14},
            "y": 0.995,
        },
        height=px * n_rows + 150,
        margin={"l": 10, "r": 10, "t": 70 if legend else 50, "b": 40},
        hovermode="closest",
        hoverdistance=-1,  # the nearest cell centre always answers, so every point of a cell is clickable
        clickmode="event+select",
        dragmode=False,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0, "font": {"size": 11}},
        showlegend=legend,
    )
    fig.update_yaxes(
        autorange="reversed", tickmode="array", tickvals=rows.tolist(), ticktext=labels, tickfont={"size": font}
    )
    fig.update_yaxes(showticklabels=False, ticks="", row=1, col=2)  # its ticks would fall on the outcome strip
    fig.update_xaxes(showticklabels=False, ticks="", title={"text": "R", "standoff": 2}, row=1, col=1)
    columns = {
        "range": [min(grid.steps, default=0) - 0.5, max(grid.steps, default=0) + 0.5],
        "dtick": 1 if n_cols <= 40 else 5,
    }
    fig.update_xaxes(title={"text": "step", "standoff": 4}, **columns, row=1, col=2)
    return fig


def _outcome_strip(grid: HeatmapGrid, rows: np.ndarray) -> go.Heatmap:
    low, high = (float(np.nanmin(grid.outcomes)), float(np.nanmax(grid.outcomes))) if len(rows) else (0.0, 1.0)
    return go.Heatmap(
        z=grid.outcomes[:, None],
        x=[0],
        y=rows,
        colorscale=OUTCOME_SCALE,
        zmin=low,
        zmax=high if high > low else low + 1,
        showscale=False,
        name="outcome",
        customdata=np.array([[hover_text(t, 80)] for t in grid.traj_ids], dtype=object),
        hovertemplate="%{customdata}<br>outcome %{z:g}<extra></extra>",
        xgap=0,
        ygap=1,
    )


def _value_trace(
    grid: HeatmapGrid, rows: np.ndarray, half: float, constant: bool, finite: np.ndarray, colorbar_title: str
) -> go.Heatmap:
    colourbar = {"title": {"text": hover_text(colorbar_title, 40)}, "thickness": 14, "len": 0.9}
    if constant:  # a one-colour scale with one tick: a ±1e-9 colour bar would suggest contrasts that are not there
        centre = float(finite[0])
        options = {"colorscale": [[0, NEUTRAL], [1, NEUTRAL]], "zmin": centre - 1, "zmax": centre + 1}
        colourbar |= {"tickmode": "array", "tickvals": [centre], "ticktext": [f"{centre:.4g} (all)"]}
    else:
        options = {"colorscale": DIVERGING, "zmid": 0.0, "zmin": -half, "zmax": half}
    return go.Heatmap(
        z=grid.z,
        x=grid.steps,
        y=rows,
        name="credit",
        hoverinfo="skip",  # the click layer above carries the hover text
        colorbar=colourbar,
        xgap=1,
        ygap=1,
        **options,
    )


def _mark_traces(grid: HeatmapGrid, half: float, px: int) -> list[go.Scatter]:
    """One marker trace per kind of mark (only kinds that occur); they take no hover or clicks."""
    cells = {
        "label = 0": np.argwhere(grid.label == 0),
        "valid = false": np.argwhere(grid.valid == 0),
        "first error": np.array(grid.first_errors(), dtype=int).reshape(-1, 2),
        "beyond the colour limit": np.argwhere(np.abs(np.nan_to_num(grid.z)) > half * (1 + 1e-9)),
    }
    size = max(6, min(14, px - 4))
    traces = []
    for name, where in cells.items():
        if not len(where):
            continue
        symbol, colour, _ = MARKS[name]
        ring = symbol.endswith("-open")
        marker = {
            "symbol": symbol,
            "size": size + 4 if ring else size - 2,
            "color": colour,
            "line": {"width": 2.5, "color": colour} if ring else {"width": 1, "color": "#ffffff"},
        }
        traces.append(
            go.Scatter(
                x=[grid.steps[c] for c in where[:, 1]],
                y=where[:, 0],
                mode="markers",
                name=name,
                hoverinfo="skip",
                marker=marker,
            )
        )
    return traces


def _click_layer(grid: HeatmapGrid) -> go.Scatter:
    """Invisible markers on every cell centre carrying ``[traj_id, step_idx]`` and the cell's hover text.

    A cell past the end of a shorter trajectory carries that trajectory's last step, so the empty part of
    a row still opens its own trajectory rather than a neighbouring row's.
    """
    n_rows, n_cols = grid.z.shape
    present = pd.notna(grid.text)
    xs, ys, custom, hover = [], [], [], []
    for row in range(n_rows):
        logged = np.flatnonzero(present[row])
        last = int(logged[-1]) if logged.size else 0
        traj = grid.traj_ids[row]
        for col in range(n_cols):
            step = grid.steps[col if present[row, col] else last]
            xs.append(grid.steps[col])
            ys.append(row)
            custom.append([traj, str(step)])
            value = grid.z[row, col]
            shown = "–" if not np.isfinite(value) else f"{value:+.4g}"
            text = hover_text(grid.text[row, col], 300, 6) if present[row, col] else f"(ended at step {step})"
            hover.append(f"{hover_text(traj, 60)} · R={grid.outcomes[row]:g}<br>step {step}: {shown}<br>{text}")
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        name=CLICK_LAYER,
        showlegend=False,
        customdata=custom,
        hovertext=hover,
        hoverinfo="text",
        marker={"size": 6, "color": "rgba(0,0,0,0)"},
        selected={"marker": {"opacity": 0}},
        unselected={"marker": {"opacity": 0}},
    )
