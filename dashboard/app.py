"""creditscope dashboard entry point: page frame and navigation (``creditscope serve --db FILE``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.follower import get_follower
from dashboard.formatting import md_escape
from dashboard.resources import clear_data_caches, db_path

HERE = Path(__file__).parent / "app_pages"

st.set_page_config(page_title="creditscope", page_icon="🔎", layout="wide")

# The default page is served at / but still reserves its own pathname, hence "home" and the /runs alias.
RUNS = st.Page(HERE / "runs.py", title="Runs", url_path="home", default=True)


def _runs_alias() -> None:
    """Streamlit serves the default page only at ``/``; this keeps ``/runs`` links working."""
    st.switch_page(RUNS)


PAGES = {
    "Explore": [
        RUNS,
        st.Page(HERE / "groups.py", title="Groups", url_path="groups"),
        st.Page(HERE / "group.py", title="Group", url_path="group"),
        st.Page(HERE / "trajectory.py", title="Trajectory", url_path="trajectory"),
    ],
    "Diff": [
        st.Page(HERE / "diff.py", title="Diff", url_path="diff"),
        st.Page(HERE / "diff_pair.py", title="Diff pair", url_path="diff_pair"),
    ],
    "Credit": [
        st.Page(HERE / "compare.py", title="Compare", url_path="compare"),
        st.Page(HERE / "rescore.py", title="Rescore", url_path="rescore"),
    ],
    "Data": [
        st.Page(HERE / "ingest.py", title="Ingest", url_path="ingest"),
        st.Page(_runs_alias, title="Runs", url_path="runs", visibility="hidden"),
    ],
}

page = st.navigation(PAGES)
st.sidebar.caption("Database: " + md_escape(db_path()))
# Rows that a live follow landed since this session last looked make every page's cached queries stale.
follow = get_follower(db_path()).status()
if follow.generation != st.session_state.get("follow_seen_generation", 0):
    st.session_state["follow_seen_generation"] = follow.generation
    clear_data_caches()
if follow.running:
    st.sidebar.caption(f"Following {len(follow.paths)} path(s) · {follow.polls} polls (see Ingest)")
page.run()
