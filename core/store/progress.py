"""Progress of long DuckDB statements, for a caller that wants to draw a bar.

A million-step file is parsed by a single ``read_json`` statement and written by a single INSERT, so
counting files shows nothing for seconds. DuckDB estimates how far a running statement has got
(``query_progress()``, readable from another thread while the statement runs); :func:`tracking` polls
it. The reporter travels in a context variable set by :func:`reporting`, so the ingest runner does not
have to pass it through every private function between the command and the statement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import duckdb

ProgressReporter = Callable[[str, str, float], None]
"""``report(what, phase, fraction)``: ``what`` names the file, ``phase`` the step ("reading",
"writing"), ``fraction`` in [0, 1], non-decreasing within a phase, 1.0 when the phase ends."""

_REPORTER: ContextVar[ProgressReporter | None] = ContextVar("creditscope_progress", default=None)
_POLL_SECONDS = 0.2


@contextmanager
def reporting(reporter: ProgressReporter | None) -> Iterator[None]:
    """Send the progress of statements run inside this block (in this thread) to ``reporter``."""
    token = _REPORTER.set(reporter)
    try:
        yield
    finally:
        _REPORTER.reset(token)


@contextmanager
def tracking(cur: duckdb.DuckDBPyConnection, what: str, phase: str) -> Iterator[None]:
    """Report the progress of the statements ``cur`` runs inside this block, if anyone listens.

    Progress settings are per cursor in DuckDB, so they are switched on here, on ``cur`` itself.
    """
    reporter = _REPORTER.get()
    if reporter is None:
        yield
        return
    cur.execute("SET enable_progress_bar = true")  # DuckDB keeps the estimate current only with this on
    cur.execute("SET enable_progress_bar_print = false")
    cur.execute("SET progress_bar_time = 0")
    stop = threading.Event()
    best = [0.0]

    def poll() -> None:
        while not stop.wait(_POLL_SECONDS):
            percent = cur.query_progress()  # -1 while DuckDB has no estimate
            if percent >= 0 and percent / 100 > best[0]:
                best[0] = min(1.0, percent / 100)
                reporter(what, phase, best[0])

    reporter(what, phase, 0.0)
    watcher = threading.Thread(target=poll, name="duckdb-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
    reporter(what, phase, 1.0)
