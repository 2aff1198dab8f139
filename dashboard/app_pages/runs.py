"""Runs: every run in the database and its training curves, several runs overlaid; a row opens its groups."""

import streamlit as st

from dashboard import resources as res
from dashboard.figures.runs import iteration_curves_figure
from dashboard.formatting import default_plot_runs, run_table_columns

st.title("Runs")
summary = res.runs_summary(res.db_path())
if summary.empty:
    st.info("No runs yet. Load logs on the Ingest page or with `creditscope ingest PATH --db FILE`.")
    st.stop()

st.caption("Select a row to open the run's groups.")
event = st.dataframe(
    summary, hide_index=True, key="runs_table", width="stretch", column_order=run_table_columns(list(summary.columns)),
    on_select="rerun", selection_mode="single-row",
)  # fmt: skip
rows = event["selection"]["rows"] if event else []  # dict access: also works for test-injected state
if rows and rows[0] < len(summary):
    res.open_page("app_pages/groups.py", run=summary["run_id"].iloc[rows[0]], iteration=None, group=None, traj=None)
runs = summary["run_id"].tolist()
chosen = st.multiselect("Runs to plot", runs, default=default_plot_runs(summary), key="runs_plot")
smoothing = st.slider(
    "Smoothing", 0.0, 0.99, 0.0, 0.01, key="runs_smoothing",
    help="Exponential moving average of each curve (weight of the past, as in TensorBoard); 0 is off.",
)  # fmt: skip
if chosen:
    curves = res.iteration_curves(res.db_path(), tuple(chosen))
    st.plotly_chart(iteration_curves_figure(curves, smoothing), key="runs_curves")

st.page_link("app_pages/groups.py", label="Browse the groups of a run →")
