"""Compare: 2–4 credit schemes on the same rollouts, side by side, scored against ground truth."""

import streamlit as st

from core.errors import CreditscopeError
from dashboard import compare_panel as panel
from dashboard import resources as res
from dashboard.formatting import md_escape
from dashboard.widgets import scheme_picker

st.title("Compare schemes")
path = res.db_path()
top = st.columns([3, 2, 2])
with top[0]:
    run = res.pick_run(res.runs_summary(path)["run_id"].tolist(), key="cmp_run")
if run is None:
    st.stop()
# An iteration by default: the whole run of a large log streams through every scheme (a minute per 10M steps).
scope = top[1].selectbox("Scope", ["whole run", *res.iterations(path, run)], index=1, key="cmp_scope")
iteration = None if scope == "whole run" else int(scope)
n = top[2].radio("How many schemes", [2, 3, 4], index=1, horizontal=True, key="cmp_n")

coverage = res.coverage(path).set_index("run_id").loc[run]
defaults = panel.default_schemes(coverage, n)
slots = []
for i, column in enumerate(st.columns(n)):
    with column:
        slots.append(scheme_picker(f"cmp{i}", default=defaults[i], label=f"Scheme {i + 1}"))
whole = None
try:
    key = tuple((name, tuple(sorted(params.items()))) for name, params in slots)
    if iteration is None:
        whole = panel.whole_run(path, run, key, slots)
        steps, results = whole.sample_steps, whole.sample_credit
    else:
        steps, results = res.scope_credit(path, run, iteration, key)
except CreditscopeError as exc:  # e.g. a scheme needing PRM scores on an unscored run
    st.warning(md_escape(exc))
    st.stop()
if len(results) < 2:
    st.info("Pick at least two different schemes (or parameter settings).")
    st.stop()

heat, rank, agree, scatter = st.tabs(["Group heatmaps", "Ranking vs labels", "Agreement", "Scatter"])
with heat:
    panel.group_heatmaps(steps, results)
with rank:
    panel.ranking_table(run, iteration, slots, bool(coverage["label"] > 0), whole)
with agree:
    panel.agreement(results, whole)
with scatter:
    panel.scatter(steps, results)
panel.export(steps, results)
