"""The Ingest page's Follow controls: the toggle's callback and the live status fragment.

Following runs on a background thread owned by the shared :class:`dashboard.follower.BackgroundFollower`;
these functions only start and stop it and show its status (kept out of the page so it stays thin).
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from dashboard import resources as res
from dashboard.follower import BackgroundFollower


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


def uploads_folder(db_path: str) -> Path:
    """Where uploaded files are kept: ``<db stem>_uploads/`` beside the database.

    Ingest identifies a source by its path, so an upload must land at the same path every time:
    written to a fresh temporary folder, re-uploading an unchanged file clashed with its own earlier
    rows ("trajectory id occurs more than once") instead of being skipped as unchanged, and the
    ``sources`` table pointed at a deleted file.
    """
    db = Path(db_path)
    return db.with_name(f"{db.stem}_uploads")


def save_uploads(uploads: list[tuple[str, bytes]], folder: Path) -> list[str]:
    """Write ``(file name, content)`` pairs into ``folder`` (names reduced to their base name) and return the paths.

    An unchanged file is left untouched, so its size and mtime still match what ingest recorded.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in uploads:
        target = folder / Path(name).name
        if not (target.is_file() and target.read_bytes() == content):
            target.write_bytes(content)
        paths.append(str(target))
    return paths
