"""Runs: every run in the database and its training curves, several runs overlaid."""

import streamlit as st

from dashboard import resources as res
from dashboard.figures.runs import iteration_curves_figure
from dashboard.formatting import default_plot_runs, run_table_columns

st.title("Runs")
summary = res.runs_summary(res.db_path())
if summary.empty:
    st.info("No runs yet. Load logs on the Ingest page or with `creditscope ingest PATH --db FILE`.")
    st.stop()

st.dataframe(
    summary, hide_index=True, key="runs_table", width="stretch", column_order=run_table_columns(list(summary.columns))
)
runs = summary["run_id"].tolist()
chosen = st.multiselect("Runs to plot", runs, default=default_plot_runs(summary), key="runs_plot")
if chosen:
    curves = res.iteration_curves(res.db_path(), tuple(chosen))
    st.plotly_chart(iteration_curves_figure(curves), key="runs_curves")

st.page_link("app_pages/groups.py", label="Browse the groups of a run →")
