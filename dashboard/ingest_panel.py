"""The Ingest page's Follow controls: the toggle's callback and the live status fragment.

Following runs on a background thread owned by the shared :class:`dashboard.follower.BackgroundFollower`;
these functions only start and stop it and show its status (kept out of the page so it stays thin).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import streamlit as st

from core.errors import CreditscopeError
from core.ingest.runner import IngestReport, ingest
from core.serving import ServeAccess
from dashboard import resources as res
from dashboard.follower import BackgroundFollower
from dashboard.formatting import md_escape

UPLOAD_RUN_FOLDER = "uploads"
"""Inner folder of every stored upload: formats that name a run after a file's folder name it ``uploads``."""


def load_submission(paths_text: str, uploads: list[tuple[str, bytes]], fmt: str, run: str | None) -> None:
    """The one-off load of the Ingest form: typed paths (checked against the data roots) and uploads.

    Everything lands in one transaction or nothing does; the message says what happened to each file.
    """
    targets = [p.strip() for p in paths_text.splitlines() if p.strip()]
    try:
        ServeAccess.from_env().check_paths(targets)
        # Uploads are kept beside the database, so a re-upload is recognised as the same source.
        targets += save_uploads(uploads, uploads_folder(res.db_path())) if uploads else []
        if not targets:
            st.warning("Give at least one path or upload.")
            return
        with st.spinner("Loading…"):
            report = ingest(res.store(), targets, fmt=fmt, run=run)
    except CreditscopeError as exc:
        st.error(md_escape(f"Nothing was loaded: {exc}"))
        return
    res.clear_data_caches()
    (st.success if report.n_trajectories else st.info)(describe_report(report))
    st.dataframe([vars(s) for s in report.sources], key="ingest_report")


def describe_report(report: IngestReport) -> str:
    """What one load did, file by file status: new rows, replaced rows, and files that were already there."""
    by_status: dict[str, int] = {}
    for source in report.sources:
        by_status[source.status] = by_status.get(source.status, 0) + 1
    written = sum(by_status.get(s, 0) for s in ("loaded", "replaced", "appended"))
    parts = [f"Loaded {report.n_trajectories} trajectories, {report.n_steps} steps from {written} file(s)"]
    if by_status.get("replaced"):
        parts.append(f"{by_status['replaced']} of them changed since their last load and replaced their own rows")
    if by_status.get("appended"):
        parts.append(f"{by_status['appended']} of them had grown and only their new lines were added")
    if by_status.get("unchanged"):
        parts.append(f"{by_status['unchanged']} file(s) unchanged since they were loaded before, nothing new")
    if by_status.get("waiting"):
        parts.append(f"{by_status['waiting']} file(s) hold no complete record yet")
    return "; ".join(parts) + "."


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
    try:
        ServeAccess.from_env().check_paths(targets)
    except CreditscopeError as exc:
        st.session_state["follow_problem"] = str(exc)
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
    st.markdown(f"**{state}** " + md_escape(", ".join(status.paths)))
    ago = "—" if status.last_poll_at is None else f"{max(0.0, time.time() - status.last_poll_at):.0f} s ago"
    polls, trajectories, steps, last = st.columns(4)
    polls.metric("Polls", status.polls)
    trajectories.metric("Trajectories loaded", status.trajectories_loaded)
    steps.metric("Steps loaded", status.steps_loaded)
    last.metric("Last poll", ago, help=f"took {status.last_poll_seconds:.2f} s")
    for message in status.errors.values():
        st.warning(md_escape(f"Retrying every poll: {message}"), icon="⚠️")
    for line in status.waiting:
        st.caption(md_escape(f"Waiting: {line}"))
    if status.recent:
        st.code("\n".join(status.recent), language=None)


def uploads_folder(db_path: str) -> Path:
    """Where uploaded files are kept: ``<db stem>_uploads/`` beside the database (see :func:`save_uploads`).

    Ingest identifies a source by its path, so the same upload must land at the same path every time:
    written to a fresh temporary folder, re-uploading an unchanged file clashed with its own earlier
    rows ("trajectory id occurs more than once") instead of being skipped as unchanged, and the
    ``sources`` table pointed at a deleted file.
    """
    db = Path(db_path)
    return db.with_name(f"{db.stem}_uploads")


def upload_name(name: str) -> str:
    """The base name an upload is stored under; a name that cannot be one (``..``, empty) is refused.

    Raises:
        CreditscopeError: The name reduces to nothing usable.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in ("", ".", "..") or "\0" in base:
        raise CreditscopeError(f"upload {name!r}: not a usable file name; rename the file and upload it again")
    return base


def save_uploads(uploads: list[tuple[str, bytes]], folder: Path) -> list[str]:
    """Store ``(file name, content)`` pairs under content-derived folders and return their paths.

    Each file goes to ``folder/<sha1 of its bytes>/uploads/<base name>``: a different file with the same
    name is another path, so another source, and never replaces the rows of an earlier upload; two files
    of one upload with the same name are both kept; the same bytes uploaded again land on the same path
    and are recognised as unchanged. The base name is kept because some formats are recognised by it.
    An existing file is left untouched, so its size and mtime still match what ingest recorded.

    Raises:
        CreditscopeError: A name that cannot be a file name (nothing is written then).
    """
    names = [upload_name(name) for name, _ in uploads]  # refuse before writing anything
    paths = []
    for name, (_, content) in zip(names, uploads, strict=True):
        target = folder / hashlib.sha1(content).hexdigest()[:16] / UPLOAD_RUN_FOLDER / name
        if not (target.is_file() and target.read_bytes() == content):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        paths.append(str(target))
    return paths
