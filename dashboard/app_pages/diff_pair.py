"""Diff pair: one prompt on both sides of a diff, its groups' credit side by side and the rollouts aligned."""

import streamlit as st

from dashboard import diff_panel as panel
from dashboard import resources as res
from dashboard.formatting import prompt_text
from dashboard.widgets import scheme_picker

st.title("Diff pair")
path = res.db_path()
state = panel.diff_state()
if not all(state.get(k) for k in ("a", "b", "prompt")):
    st.info("Open a prompt from the Diff page: click a row of its table or a point of its scatter.")
    st.page_link("app_pages/diff.py", label="Go to Diff →")
    st.stop()
a, b = panel.state_sides(state)
scheme, params = scheme_picker("pair", default=state.get("scheme", "grpo"), label="Credit scheme")
panel.set_diff_state(scheme=scheme)
key = (path, tuple(a), tuple(b), scheme, tuple(sorted(params.items())))
row, _ = panel.pairs(*key, "all", "outcome change", 1, state["prompt"])
if row.empty:
    st.error("This prompt occurs in neither side; pick one on the Diff page.")
    st.stop()
pair = row.iloc[0]
cols = st.columns(4)
cols[0].metric("Mean outcome A", f"{pair['outcome_a']:.3f}")
cols[1].metric("Mean outcome B", f"{pair['outcome_b']:.3f}", delta=None if pair["d_outcome"] != pair["d_outcome"]
               else f"{pair['d_outcome']:+.3f}")  # fmt: skip
cols[2].metric("Steps A → B", f"{pair['steps_a']:.2f} → {pair['steps_b']:.2f}")
cols[3].metric("Flip", {"lost": "solved → unsolved", "gained": "unsolved → solved"}.get(pair["flip"], "none"))

pickers = st.columns(2)
groups = []
for column, x, side in zip(pickers, "ab", (a, b), strict=True):
    with column:
        groups.append(panel.group_choice(path, x, side, scheme, key[4], state["prompt"]))
first = next((x, g, side) for x, g, side in zip("ab", groups, (a, b), strict=True) if g is not None)
trajs = res.group_trajectories(path, first[2].run, first[1][0], first[1][1])
st.text(prompt_text(trajs["prompt"].dropna().iloc[0] if trajs["prompt"].notna().any() else None))
panel.side_by_side(path, (a.run, b.run), groups, scheme, key[4])
st.page_link("app_pages/diff.py", label="← Back to the diff")
