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

# Re-running on a tab switch lets the hidden tabs skip their work: on an iteration of a 10M-step run the
# scatter alone is 50,000 points to build, send and draw. Their widgets keep their choices (widgets.kept).
tabs = st.tabs(["Group heatmaps", "Ranking vs labels", "Agreement", "Scatter"], key="cmp_view", on_change="rerun")
views = (
    lambda: panel.group_heatmaps(steps, results),
    lambda: panel.ranking_table(run, iteration, slots, bool(coverage["label"] > 0), whole),
    lambda: panel.agreement(results, whole),
    lambda: panel.scatter(steps, results),
)
for tab, view in zip(tabs, views, strict=True):
    if tab.open is not False:  # None when tabs track no state: then every tab runs
        with tab:
            view()
panel.export(steps, results)
