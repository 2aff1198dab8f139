"""Ingest: load logs into the served database without stopping the dashboard (it owns the file).

Two ways in: a one-off load (paths or uploads, one transaction), and Follow, which keeps loading new
files and the new lines of growing ones while a training run writes them (controls in
:mod:`dashboard.ingest_panel`).
"""

import streamlit as st

from core.ingest import registry
from core.serving import ServeAccess
from dashboard import resources as res
from dashboard.follower import get_follower
from dashboard.formatting import md_escape
from dashboard.ingest_panel import follow_status, load_submission, toggle_follow

st.title("Ingest")
st.write("The dashboard holds the database open, so load new logs here: a path on this machine, or an upload.")
if ServeAccess.from_env().restricted:
    st.text(ServeAccess.from_env().describe())
formats = ["auto", *[m.NAME for m in registry.adapters()]]

with st.form("ingest_form"):
    paths = st.text_area("Files, folders or globs (one per line)", key="ingest_paths")
    uploads = st.file_uploader("…or upload files", accept_multiple_files=True, key="ingest_uploads")
    fmt = st.selectbox("Format", formats, key="ingest_format")
    run = st.text_input("Run name (optional)", key="ingest_run")
    submitted = st.form_submit_button("Ingest")

if submitted:
    files = [(upload.name, upload.getvalue()) for upload in uploads or []]
    load_submission(paths, files, fmt, run.strip() or None)

st.divider()
st.subheader("Follow a folder or file")
st.write(
    "Keeps loading new files and the new lines of growing ones while a training run writes them (only the new "
    "lines are read; a half-written last line waits for the next poll). Use this instead of "
    "`creditscope ingest --follow` while the dashboard runs: DuckDB lets only one process open the database."
)
follower = get_follower(res.db_path())
running = follower.running
st.text_area("Files, folders or globs to follow (one per line)", key="follow_paths", disabled=running)
format_column, run_column = st.columns(2)
format_column.selectbox("Format", formats, key="follow_format", disabled=running)
run_column.text_input("Run name (optional)", key="follow_run", disabled=running)
# The follower is shared by every session, so the toggle shows its real state, whoever switched it.
st.session_state["follow_on"] = running
st.toggle("Follow", key="follow_on", on_change=toggle_follow, args=(follower,))
if "follow_problem" in st.session_state:
    st.warning(md_escape(st.session_state["follow_problem"]))
follow_status(follower)
