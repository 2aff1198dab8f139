"""Group: one GRPO group's rollouts side by side; its credit under a scheme as a heatmap, tree and state graph."""

import streamlit as st

from dashboard import resources as res
from dashboard import tree_panel
from dashboard.drill import open_trajectory
from dashboard.formatting import default_scheme, md_escape, prompt_text
from dashboard.widgets import iteration_from_url, scheme_picker

st.title("Group")
path = res.db_path()
top = st.columns([2, 1, 2])
with top[0]:
    run = res.pick_run(res.runs_summary(path)["run_id"].tolist(), key="group_run")
if run is None:
    st.stop()
url = res.url_state()
its = res.iterations(path, run)
it_default = iteration_from_url(url.get("iteration"), its, f"iteration {its[0]}")
iteration = top[1].selectbox("Iteration", its, index=its.index(it_default) if it_default in its else 0, key="group_it")
group_ids = res.groups(path, run, iteration, "")["group_id"].tolist()
if url.get("group") and url["group"] not in group_ids and it_default == iteration:
    st.warning(md_escape(f"No group {url['group']!r} in iteration {iteration}; showing {group_ids[0]!r} instead."))
pick = group_ids.index(url["group"]) if url.get("group") in group_ids else 0
group = top[2].selectbox("Group", group_ids, index=pick, key="group_id")
res.set_url_state(run=run, iteration=iteration, group=group)

steps = res.group_steps(path, run, iteration, group)
trajs = res.group_trajectories(path, run, iteration, group)
st.text(prompt_text(trajs["prompt"].dropna().iloc[0] if trajs["prompt"].notna().any() else None))
cols = st.columns(3)
cols[0].metric("Rollouts", len(trajs))
cols[1].metric("Mean outcome", f"{trajs['outcome'].mean():.3f}")
cols[2].metric("Outcome std", f"{trajs['outcome'].std(ddof=1) if len(trajs) > 1 else 0:.3f}")

scheme, params = scheme_picker("group", default=default_scheme(steps))
try:
    adv = res.group_credit(path, run, iteration, group, scheme, tuple(sorted(params.items())))
except Exception as exc:  # a scheme missing its inputs explains how to get them; the tree still shows the rest
    st.warning(md_escape(exc))
    adv = None
view = tree_panel.GroupView((run, iteration, group), steps, trajs, scheme, params, adv)
# Re-running on a tab switch lets the hidden tabs skip building their figures.
tabs = st.tabs(["Heatmap", "Tree", "State graph"], key="group_view", on_change="rerun")
renderers = (tree_panel.render_heatmap_tab, tree_panel.render_tree_tab, tree_panel.render_state_graph_tab)
for tab, render in zip(tabs, renderers, strict=True):
    if tab.open is not False:  # None when tabs track no state: then every tab runs
        with tab:
            render(view)

st.subheader("Rollouts")
table = trajs[["traj_id", "outcome", "n_steps", "split"]]
event = st.dataframe(table, hide_index=True, key="group_trajs", on_select="rerun", selection_mode="single-row")
rows = event["selection"]["rows"] if event else []  # dict access: also works for test-injected state
if rows and rows[0] < len(table):
    open_trajectory(table.iloc[rows[0]]["traj_id"])
