"""Rescore: run a PRM over a run's steps, choose which scores `steps.prm` shows, and judge them against labels."""

import streamlit as st

from dashboard import prm_panel as panel
from dashboard import resources as res

st.title("Rescore with a PRM")
path = res.db_path()
run = res.pick_run(res.runs_summary(path)["run_id"].tolist(), key="prm_run")
if run is None:
    st.stop()

st.subheader("Rescore")
panel.rescore_form(path, run)
st.subheader("Scorers of this run")
panel.scorer_chooser(path, run)
st.subheader("PRM vs step labels")
has_labels = bool(res.coverage(path).set_index("run_id").loc[run, "label"] > 0)
panel.evaluation_panel(path, run, has_labels)
