"""Ingest: load logs into the served database without stopping the dashboard (it owns the file).

Two ways in: a one-off load (paths or uploads, one transaction), and Follow, which keeps loading new
files and the new lines of growing ones while a training run writes them. Following runs on a
background thread owned by the shared :class:`dashboard.follower.BackgroundFollower`; this page only
starts and stops it and shows its status in a fragment that refreshes every 2 s.
"""

import tempfile
import time
from pathlib import Path

import streamlit as st

from core.errors import CreditscopeError
from core.ingest import registry
from core.ingest.runner import ingest
from dashboard import resources as res
from dashboard.follower import BackgroundFollower, get_follower

st.title("Ingest")
st.write("The dashboard holds the database open, so load new logs here: a path on this machine, or an upload.")
formats = ["auto", *[m.NAME for m in registry.adapters()]]

with st.form("ingest_form"):
    paths = st.text_area("Files, folders or globs (one per line)", key="ingest_paths")
    uploads = st.file_uploader("…or upload files", accept_multiple_files=True, key="ingest_uploads")
    fmt = st.selectbox("Format", formats, key="ingest_format")
    run = st.text_input("Run name (optional)", key="ingest_run")
    submitted = st.form_submit_button("Ingest")

if submitted:
    targets = [p.strip() for p in paths.splitlines() if p.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        for upload in uploads or []:
            target = Path(tmp) / Path(upload.name).name
            target.write_bytes(upload.getvalue())
            targets.append(str(target))
        if not targets:
            st.warning("Give at least one path or upload.")
            st.stop()
        try:
            with st.spinner("Loading…"):
                report = ingest(res.store(), targets, fmt=fmt, run=run.strip() or None)
        except CreditscopeError as exc:
            st.error(f"Nothing was loaded: {exc}")
            st.stop()
    res.clear_data_caches()
    st.success(f"Loaded {report.n_trajectories} trajectories, {report.n_steps} steps.")
    st.dataframe([vars(s) for s in report.sources], key="ingest_report")


def toggle_follow(follower: BackgroundFollower) -> None:
    """Start or stop following when the toggle flips (a callback: runs before the page reruns)."""
    st.session_state.pop("follow_problem", None)
    if not st.session_state["follow_on"]:
        follower.stop()
        return
    targets = [line.strip() for line in st.session_state.get("follow_paths", "").splitlines() if line.strip()]
    if not targets:
        st.session_state["follow_problem"] = "Give a file, folder or glob to follow."
        return
    run_name = st.session_state.get("follow_run", "").strip() or None
    follower.start(targets, fmt=st.session_state.get("follow_format", "auto"), run=run_name)


@st.fragment(run_every="2s")
def follow_status(follower: BackgroundFollower) -> None:
    """What the follower did, refreshed every 2 s; clears the data caches when new rows landed."""
    status = follower.status()
    if status.generation != st.session_state.get("follow_seen_generation", 0):
        st.session_state["follow_seen_generation"] = status.generation
        res.clear_data_caches()  # pages show the new rows on their next run
    if not status.running and not status.polls:
        st.caption("Not following.")
        return
    state = "Following" if status.running else "Stopped following"
    st.markdown(f"**{state}** " + ", ".join(f"`{p}`" for p in status.paths))
    ago = "—" if status.last_poll_at is None else f"{max(0.0, time.time() - status.last_poll_at):.0f} s ago"
    polls, trajectories, steps, last = st.columns(4)
    polls.metric("Polls", status.polls)
    trajectories.metric("Trajectories loaded", status.trajectories_loaded)
    steps.metric("Steps loaded", status.steps_loaded)
    last.metric("Last poll", ago, help=f"took {status.last_poll_seconds:.2f} s")
    for message in status.errors.values():
        st.warning(f"Retrying every poll: {message}", icon="⚠️")
    for line in status.waiting:
        st.caption(f"Waiting: {line}")
    if status.recent:
        st.code("\n".join(status.recent), language=None)


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
    st.warning(st.session_state["follow_problem"])
follow_status(follower)
