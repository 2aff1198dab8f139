"""The Compare page's panels: side-by-side heatmaps, ranking against labels, agreement, scatter, export.

Kept out of the page script so the page reads as a description of the UI.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.credit import SCHEMES, agreement_table
from core.credit.streaming import RunSummary
from dashboard import resources as res
from dashboard.drill import clicked_step, open_trajectory
from dashboard.figures.compare import correlation_figure, scatter_figure
from dashboard.figures.heatmap import heatmap_figure, robust_limit
from dashboard.widgets import colour_limit_input, kept_choice

PREFERRED = ("grpo", "gigpo", "treerl", "prm", "mc_value", "gae", "salt", "spa")


def default_schemes(coverage: pd.Series, n: int) -> list[str]:
    """The first ``n`` preferred schemes whose required columns the run actually has."""
    usable = [name for name in PREFERRED if all(coverage.get(col, 1) > 0 for col in SCHEMES[name].required)]
    return (usable + [s for s in SCHEMES if s not in usable])[:n]


def group_heatmaps(steps: pd.DataFrame, results: dict[str, np.ndarray]) -> None:
    """One group's heatmaps on one colour scale, then scheme A minus scheme B; a cell click opens its step."""
    keys = steps[["iteration", "group_id"]].drop_duplicates()
    groups = keys["iteration"].astype(str) + " / " + keys["group_id"].astype(str)
    top = st.columns([3, 1])
    choice = kept_choice(top[0].selectbox, "Group (iteration / group)", groups.tolist(), "cmp_group")
    with top[1]:
        chosen_limit = colour_limit_input("cmp_heat_limit")
    it, gid = choice.split(" / ", 1)
    mask = ((steps["iteration"] == int(it)) & (steps["group_id"] == gid)).to_numpy()
    limit = chosen_limit or robust_limit(*(v[mask] for v in results.values()))
    source = "set by hand" if chosen_limit else "shared p99 of |value|"
    run = str(steps["run_id"].iloc[0])
    for column, (label, values) in zip(st.columns(len(results)), results.items(), strict=True):
        with column:  # side by side the columns are narrow: the marks' legend is on the difference view below
            figure = heatmap_figure(
                steps[mask], values[mask], title=label, limit=limit, limit_source=source, legend=False
            )
            _clickable(figure, f"cmp_heat_{label}", run)
    labels = list(results)
    a, b = st.columns(2)
    first = kept_choice(a.selectbox, "A", labels, "cmp_diff_a")
    second = kept_choice(b.selectbox, "B", labels, "cmp_diff_b", default=1)
    diff = results[first][mask] - results[second][mask]
    figure = heatmap_figure(steps[mask], diff, title=f"{first} − {second}", colorbar_title="A − B", limit=chosen_limit)
    _clickable(figure, "cmp_heat_diff", run)


def _clickable(figure: go.Figure, key: str, run: str) -> None:
    """Draw a heatmap whose cells open their step on the Trajectory page."""
    event = st.plotly_chart(figure, key=key, on_select="rerun", selection_mode="points")
    clicked = clicked_step(event)
    if clicked is not None:
        open_trajectory(*clicked, run=run)


def whole_run(path: str, run: str, key: tuple, slots: list[tuple[str, dict]]) -> RunSummary:
    """The whole-run summary, streamed with a progress bar the first time (then cached)."""
    summary = res.whole_run(path, run, key, _overrides(slots))
    st.caption(
        f"Ranking and agreement cover all {summary.n_steps:,} steps of the run, computed iteration by iteration; "
        f"heatmaps, scatter and download show {len(summary.sample_steps):,} steps of "
        f"{res.WHOLE_RUN_SAMPLE_GROUPS} groups spread over the run (`creditscope advantages` exports every step)."
    )
    return summary


def _overrides(slots: list[tuple[str, dict]]) -> tuple[tuple[str, tuple], ...]:
    """Per scheme, the parameters of its first slot (what the ranking uses instead of the defaults)."""
    return tuple((name, tuple(sorted(p.items()))) for name, p in dict(reversed(slots)).items())


def ranking_table(
    run: str, iteration: int | None, slots: list[tuple[str, dict]], has_labels: bool, whole: RunSummary | None = None
) -> None:
    """Every scheme ranked by ROC-AUC and ProcessBench first-error F1 against the step labels."""
    if not has_labels:
        st.info("This run has no step labels, so schemes cannot be scored against ground truth.")
        return
    sizes = res.groups(res.db_path(), run, iteration, "")["n"]
    if len(sizes) and sizes.median() < 2:
        st.warning(
            "Most groups here hold a single trajectory, so group-relative schemes (GRPO, RLOO, GiGPO, the tree "
            "schemes) have nothing to compare within a group: their ranking says little about them."
        )
    table = whole.ranking if whole is not None else res.ranking(res.db_path(), run, iteration, _overrides(slots))
    st.caption(
        "Chosen schemes use your parameters; the others their defaults. First-error threshold: 0 "
        "(0.5 for probabilities). Schemes whose inputs are missing say why in `note`."
    )
    st.dataframe(table, hide_index=True, key="cmp_ranking")


def agreement(results: dict[str, np.ndarray], whole: RunSummary | None = None) -> None:
    """Spearman correlation / sign agreement between the chosen schemes over every step."""
    metric = kept_choice(st.radio, "Metric", ["spearman", "sign_agreement"], "cmp_metric", horizontal=True)
    table = whole.agreement if whole is not None else agreement_table(results)
    st.plotly_chart(correlation_figure(table, list(results), metric), key="cmp_corr")


def scatter(steps: pd.DataFrame, results: dict[str, np.ndarray]) -> None:
    """Any two schemes' per-step credit; clicking a point opens that step's trajectory."""
    labels = list(results)
    a, b = st.columns(2)
    x = kept_choice(a.selectbox, "x", labels, "cmp_x")
    y = kept_choice(b.selectbox, "y", labels, "cmp_y", default=1)
    event = st.plotly_chart(
        scatter_figure(steps, results[x], results[y], x, y),
        key="cmp_scatter",
        on_select="rerun",
        selection_mode="points",
    )
    clicked = clicked_step(event)
    if clicked is not None:
        open_trajectory(*clicked, run=str(steps["run_id"].iloc[0]))


def export(steps: pd.DataFrame, results: dict[str, np.ndarray]) -> None:
    """A CSV with the step keys and one column per chosen scheme, written only when the button is clicked."""

    def csv() -> bytes:  # runs on its own thread after the click: the page never waits for it
        out = steps[["run_id", "iteration", "group_id", "traj_id", "step_idx"]].copy()
        for label, values in results.items():
            out[label] = values
        return out.to_csv(index=False).encode()

    st.download_button(
        "Download advantages (CSV)",
        csv,
        file_name="advantages.csv",
        mime="text/csv",
        key="cmp_download",
    )
