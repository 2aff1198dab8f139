"""Trajectory: one rollout step by step, as plain text, with rewards, labels and credit, and what-if PRM edits."""

import streamlit as st

from dashboard import resources as res
from dashboard.formatting import prompt_text, step_facts
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
    st.error(f"No trajectory {traj_id!r} in run {run!r}.")
    st.stop()

siblings = res.group_trajectories(path, run, int(row["iteration"]), row["group_id"])["traj_id"].tolist()
pos = siblings.index(traj_id)
nav = st.columns([1, 1, 4])
if nav[0].button("← previous", disabled=pos == 0, key="traj_prev"):
    res.open_page("app_pages/trajectory.py", traj=siblings[pos - 1])
if nav[1].button("next →", disabled=pos == len(siblings) - 1, key="traj_next"):
    res.open_page("app_pages/trajectory.py", traj=siblings[pos + 1])
nav[2].caption(f"{run} · iteration {row['iteration']} · group {row['group_id']} · {pos + 1}/{len(siblings)}")

cols = st.columns(3)
cols[0].metric("Outcome", f"{row['outcome']:g}")
cols[1].metric("Steps", int(row["n_steps"]))
cols[2].metric("Split", row["split"])
st.text("Prompt:\n" + prompt_text(row["prompt"]))

scheme, params = scheme_picker("traj")
iteration, group = int(row["iteration"]), row["group_id"]
group_steps = res.group_steps(path, run, iteration, group)
mine = (group_steps["traj_id"] == traj_id).to_numpy()
try:
    adv = res.group_credit(path, run, iteration, group, scheme, tuple(sorted(params.items())))
    credit = dict(zip(group_steps.loc[mine, "step_idx"], adv[mine], strict=True))
except Exception as exc:  # a scheme missing its inputs explains how to get them
    st.warning(str(exc))
    credit = {}

for step in steps.itertuples():
    with st.container(border=True, key=f"step_{step.step_idx}"):
        facts = step_facts(step.reward, step.label, step.valid, step.prm, credit.get(step.step_idx), scheme)
        st.caption(f"Step {step.step_idx} · {facts}")
        if step.state:
            with st.expander("State", expanded=False):
                st.text(step.state)
        st.text(step.action)

what_if_panel(path, run, traj_id, steps, group_steps)
