"""Diff: run A against run B (or two iteration ranges of one run), paired prompt by prompt."""

import streamlit as st

from core.errors import CreditscopeError
from dashboard import diff_panel as panel
from dashboard import resources as res
from dashboard.formatting import md_escape
from dashboard.widgets import scheme_picker

st.title("Diff")
st.caption(
    "Groups are paired by prompt: chat wrapping, system prompts and whitespace do not count. A prompt is solved "
    "on a side when any of its rollouts there succeeded (outcome > 0)."
)
path = res.db_path()
summary = res.runs_summary(path)
if summary.empty:
    st.info("No runs yet. Load logs on the Ingest page or with `creditscope ingest PATH --db FILE`.")
    st.stop()
a, b = panel.side_pickers(summary)
left, right = st.columns([3, 2])
with left:
    scheme, params = scheme_picker("diff", default=panel.diff_state().get("scheme", "grpo"), label="Credit scheme")
panel.set_diff_state(scheme=scheme)
scopes = {"in both": "prompts in both", "all": "all prompts of each side"}
scope = right.radio("Statistics over", list(scopes), format_func=scopes.get, horizontal=True, key="diff_scope")
try:
    panel.check_sides(path, tuple(a), tuple(b))
except CreditscopeError as exc:  # an unknown run, an empty range
    st.error(md_escape(exc))
    st.stop()
key = (path, tuple(a), tuple(b), scheme, tuple(sorted(params.items())))
try:
    counts, stats = panel.summary(*key, scope)
except CreditscopeError as exc:  # a scheme the sides are too big for, or whose inputs they lack
    st.warning(md_escape(f"{exc}. The diff is shown without credit statistics."))
    key = (path, tuple(a), tuple(b), None, ())
    counts, stats = panel.summary(*key, scope)
panel.show_summary(counts, stats, scope)

table, scatter, distributions = st.tabs(["Prompts", "Outcome A vs B", "Distributions"])
with table:
    panel.prompt_table(*key)
with scatter:
    panel.scatter(*key)
with distributions:
    panel.histograms(*key, scope)
