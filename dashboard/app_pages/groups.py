"""Groups: the GRPO groups of one run and iteration, searchable; pick one to open it."""

import streamlit as st

from core.store.queries import GROUP_SORTS
from dashboard import resources as res
from dashboard.widgets import iteration_from_url, prm_threshold_filter

st.title("Groups")
path = res.db_path()
top = st.columns([2, 1, 3])
with top[0]:
    run = res.pick_run(res.runs_summary(path)["run_id"].tolist())
if run is None:
    st.stop()

its = res.iterations(path, run)
url = res.url_state()
default_it = iteration_from_url(url.get("iteration"), its, "all iterations")
options = ["all", *its]
iteration = top[1].selectbox(
    "Iteration", options, index=options.index(default_it) if default_it is not None else 0, key="groups_iteration"
)
search = top[2].text_input("Search prompts and actions", key="groups_search")
# Sorted and paged in DuckDB: a 10M-step run has more groups than a browser table can hold.
order = st.columns([2, 1, 1, 2])
sort = order[0].selectbox("Sort by", list(GROUP_SORTS), key="groups_sort")
descending = order[1].toggle("Descending", key="groups_desc")
number = order[2].number_input("Page", min_value=1, value=1, step=1, key="groups_page")
scope = None if iteration == "all" else int(iteration)
found = res.groups_page(path, run, scope, search.strip(), sort, descending, number)
table, first = found.frame, (number - 1) * res.GROUPS_PAGE_SIZE
tau = prm_threshold_filter("groups")
if tau is not None and len(table):  # counted for the groups on this page only, in DuckDB
    keys = (tuple(int(i) for i in table["iteration"]), tuple(str(g) for g in table["group_id"]))
    counts = res.prm_below_counts(path, run, *keys, tau)
    table = table.merge(counts, on=["iteration", "group_id"], how="left").fillna({"prm_below": 0, "prm_unscored": 0})
    below, unscored = table["prm_below"].astype(int), int(table["prm_unscored"].sum())
    missing = f"; {unscored} steps have no PRM score (see the Rescore page)" if unscored else ""
    st.caption(
        f"{below.sum()} steps in {(below > 0).sum()} of the {len(table)} groups shown score below {tau:g}{missing}"
    )
    table = table.rename(columns={"prm_below": f"steps prm < {tau:g}", "prm_unscored": "steps without prm"})
shown = f"rows {first + 1}–{first + len(table)}" if len(table) else "no rows on this page"
order[3].caption(f"{found.total} groups · {shown} · zero-variance groups give every rollout zero GRPO advantage")

event = st.dataframe(
    table, hide_index=True, key="groups_table", on_select="rerun", selection_mode="single-row", width="stretch"
)
rows = event.selection.rows if event is not None else []
if rows and rows[0] < len(table):
    chosen = table.iloc[rows[0]]
    res.open_page(
        "app_pages/group.py", run=run, iteration=int(chosen["iteration"]), group=chosen["group_id"], traj=None
    )
