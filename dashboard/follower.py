"""Live follow inside the dashboard: a background thread ingests growing logs through the dashboard's own store.

DuckDB lets one process hold a database file, and while ``creditscope serve`` runs that process is the
dashboard, so ``creditscope ingest --follow`` cannot open the file. Following therefore happens here:
one :class:`BackgroundFollower` per database (a ``st.cache_resource`` singleton, see
:func:`get_follower`) owns a thread that calls :func:`core.ingest.follow.poll_once` every couple of
seconds on the dashboard's :class:`~core.store.database.Store` (each poll takes its own cursors, and
writes go through the store's writer lock, so pages keep reading meanwhile).

The thread never calls ``st.*`` (Streamlit does not support that). It only updates a status object under
a lock; the Ingest page's ``@st.fragment(run_every="2s")`` reads :meth:`BackgroundFollower.status` and
clears the data caches when :attr:`FollowStatus.generation` moved, i.e. when new rows landed.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import streamlit as st

from core.ingest.base import AdapterOptions
from core.ingest.follow import Follower, PollReport, poll_once
from core.ingest.runner import SourceResult
from core.store.database import Store
from dashboard.resources import get_store

RECENT_LINES = 30
"""How many "what landed" lines the status keeps."""

PollFunction = Callable[..., PollReport]


@dataclass(frozen=True)
class FollowStatus:
    """A consistent snapshot of the follower, safe to read from any session."""

    running: bool
    paths: tuple[str, ...] = ()
    polls: int = 0
    last_poll_at: float | None = None
    """Wall-clock time (``time.time()``) the last poll started."""
    last_poll_seconds: float = 0.0
    generation: int = 0
    """Increases by one after every poll that wrote rows: a reader whose last seen value differs must refresh."""
    trajectories_loaded: int = 0
    steps_loaded: int = 0
    recent: tuple[str, ...] = ()
    """What landed, newest first."""
    errors: dict[str, str] = field(default_factory=dict)
    """Per file (or path): why it could not be loaded in the last poll; retried every poll."""
    waiting: tuple[str, ...] = ()
    """Followed paths that name no file yet."""


class BackgroundFollower:
    """Follows paths into ``store`` on a daemon thread until :meth:`stop`.

    Args:
        store: The dashboard's store (shared with the pages).
        interval: Seconds between the starts of two polls.
        poll: One poll; :func:`core.ingest.follow.poll_once` unless a test swaps it.
    """

    def __init__(self, store: Store, interval: float = 2.0, poll: PollFunction = poll_once) -> None:
        self._store = store
        self._interval = interval
        self._poll = poll
        self._lock = threading.Lock()  # guards the fields below; the thread writes, sessions read
        self._thread: threading.Thread | None = None
        self._follower: Follower | None = None
        self._status = FollowStatus(running=False)
        self._recent: deque[str] = deque(maxlen=RECENT_LINES)

    def start(
        self,
        paths: Sequence[str],
        *,
        fmt: str = "auto",
        run: str | None = None,
        options: AdapterOptions | None = None,
    ) -> None:
        """Start following ``paths`` (files, folders or globs), replacing whatever was followed before.

        Raises:
            ValueError: ``paths`` is empty.
        """
        paths = tuple(p for p in paths if p.strip())
        if not paths:
            raise ValueError("give at least one file, folder or glob to follow")
        self.stop()
        follower = Follower(
            lambda: self._safe_poll(paths, fmt, run, options), interval=self._interval, on_poll=self._record
        )
        with self._lock:
            self._recent.clear()
            self._status = FollowStatus(running=True, paths=paths, generation=self._status.generation)
            self._follower = follower
            self._thread = threading.Thread(target=follower.run, name="creditscope-follow", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop following and wait for a poll in progress to finish (it is never cut off mid-transaction)."""
        with self._lock:
            follower, thread = self._follower, self._thread
            self._follower = self._thread = None
        if follower is not None:
            follower.stop()
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            self._status = _replace(self._status, running=False)

    @property
    def running(self) -> bool:
        """Whether a follow thread is active."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def status(self) -> FollowStatus:
        """The latest status (a frozen snapshot)."""
        with self._lock:
            return self._status

    def _safe_poll(
        self, paths: tuple[str, ...], fmt: str, run: str | None, options: AdapterOptions | None
    ) -> PollReport:
        """One poll that cannot kill the thread: an unexpected error is shown in the status and retried."""
        try:
            return self._poll(self._store, paths, fmt=fmt, run=run, options=options)
        except Exception as exc:  # a bug must show up on the page, not silently end following
            detail = traceback.format_exception_only(exc)[-1].strip()
            return PollReport(errors={"follower": f"poll failed: {detail}"}, started_at=time.time())

    def _record(self, report: PollReport) -> None:
        """Fold one poll into the status (runs on the follow thread)."""
        stamp = time.strftime("%H:%M:%S", time.localtime(report.started_at))
        with self._lock:
            for source in report.landed:
                self._recent.appendleft(f"{stamp} {_describe(source)}")
            previous = self._status
            self._status = _replace(
                previous,
                polls=previous.polls + 1,
                last_poll_at=report.started_at,
                last_poll_seconds=report.seconds,
                generation=previous.generation + (1 if report.landed else 0),
                trajectories_loaded=previous.trajectories_loaded + report.n_trajectories,
                steps_loaded=previous.steps_loaded + report.n_steps,
                recent=tuple(self._recent),
                errors=dict(report.errors),
                waiting=tuple(report.waiting),
            )


def _replace(status: FollowStatus, **changes: object) -> FollowStatus:
    return FollowStatus(**{**vars(status), **changes})  # type: ignore[arg-type]


def _describe(source: SourceResult) -> str:
    lines = f" (lines {source.lines[0]}-{source.lines[1]})" if source.status == "appended" and source.lines else ""
    return (
        f"{source.status} {source.path}: +{source.n_trajectories} trajectories, +{source.n_steps} steps"
        f" [{source.format}]{lines}"
    )


def _stop_released(follower: BackgroundFollower) -> None:
    """Clearing ``st.cache_resource`` (tests, a reloaded app) must not leave an orphan thread writing."""
    follower.stop()


@st.cache_resource(show_spinner=False, on_release=_stop_released)
def get_follower(db_path: str) -> BackgroundFollower:
    """The one follower of the database at ``db_path`` in this server process (shared by all sessions)."""
    return BackgroundFollower(get_store(db_path))
