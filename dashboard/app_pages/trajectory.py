"""Trajectory: one rollout as a compact list of steps (plain text), with credit, navigation and what-if PRM edits."""

import streamlit as st

from dashboard import resources as res
from dashboard import trajectory_panel as panel
from dashboard.figures.heatmap import robust_limit
from dashboard.formatting import default_scheme, md_escape, prompt_text
from dashboard.token_view import token_view
from dashboard.whatif import what_if_panel
from dashboard.widgets import scheme_picker

st.title("Trajectory")
path = res.db_path()
url = res.url_state()
run, traj_id = url.get("run"), url.get("traj")
if not run or not traj_id:
    st.info("Open a trajectory from a Group page (or add `?run=...&traj=...` to the URL).")
    st.stop()
row, steps = res.trajectory(path, run, traj_id)
if row is None:
    runs = res.runs_summary(path)["run_id"].tolist()
    missing = f"No trajectory {traj_id!r} in run {run!r}" if run in runs else f"No run {run!r} in this database"
    st.error(md_escape(f"{missing}; nothing is shown. Pick a run and a group on the Groups page."))
    st.page_link("app_pages/groups.py", label="Open the Groups page")
    st.stop()

iteration, group = int(row["iteration"]), str(row["group_id"])
siblings = res.group_trajectories(path, run, iteration, group)["traj_id"].tolist()
groups = res.groups(path, run, iteration, "")["group_id"].tolist()
step_ids = [int(s) for s in steps["step_idx"]]
pos = panel.Position(run, iteration, group, traj_id, siblings, groups, step_ids)
current, problem = panel.parse_step(url.get("step"), step_ids)
if problem:
    st.warning(md_escape(problem))
st.text(f"{run} · iteration {iteration} · group {group} · rollout {pos.rollout + 1}/{len(siblings)} · {traj_id}")
panel.navigation(path, pos, current)

cols = st.columns([1, 1, 1, 3])
cols[0].metric("Outcome", f"{row['outcome']:g}")
cols[1].metric("Steps", int(row["n_steps"]))
cols[2].metric("Split", md_escape(row["split"]))
prompt = prompt_text(row["prompt"])
with cols[3].expander("Prompt", expanded=len(prompt) < 300 and prompt.count("\n") < 3):
    st.text("Prompt:\n" + prompt)

group_steps = res.group_steps(path, run, iteration, group)
scheme, params = scheme_picker("traj", default=default_scheme(group_steps))
mine = (group_steps["traj_id"] == traj_id).to_numpy()
try:
    adv = res.group_credit(path, run, iteration, group, scheme, tuple(sorted(params.items())))
    credit = dict(zip(group_steps.loc[mine, "step_idx"], adv[mine], strict=True))
    limit = robust_limit(adv.to_numpy())
except Exception as exc:  # a scheme missing its inputs explains how to get them
    st.warning(md_escape(exc))
    credit, limit = {}, 1.0

tokens = token_view(path, run, traj_id, steps, credit, scheme)
shown = panel.prm_filtered_steps(steps, group_steps)
panel.step_list(shown, credit, scheme=scheme, limit=limit, current=current, tokens=tokens)
what_if_panel(path, run, traj_id, steps, group_steps)
