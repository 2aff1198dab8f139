"""Following growing log files: a layer above the one-shot ingest that polls, keeps offsets and appends.

Trainers append one rollout per line while they run. Re-reading such a file in full on every poll
costs time proportional to the whole file, so a poll reads only what it gained and hands those bytes
to :func:`core.ingest.runner.ingest_sources` as a :class:`~core.ingest.runner.Source` with the
bookkeeping filled in:

- **Which formats.** :data:`LINE_APPENDABLE` lists the formats whose new lines can be loaded on their
  own (the rule is in its docstring). Every other format is replaced in full when its file changes.
- **What it gained.** A poll's load of a line-appendable file records the byte offset just past the
  last line read, the number of lines before it, and a fingerprint of the 64 KiB before it
  (:mod:`core.ingest.offsets`). ``read_growth`` checks that fingerprint and returns the new complete
  lines, or None when the loaded prefix changed (rewritten, truncated, or its unterminated last line
  extended). A file loaded by a plain ``ingest`` has no offsets and is read in full once by the first
  poll that sees it grow.
- **Partial lines.** A line counts once its newline is written; bytes after the last newline are a
  trainer mid-write and wait for the next poll.
- **Line numbers.** Adapters read paths, not byte ranges, and several derive trajectory ids from line
  numbers. The new lines are therefore written to a snapshot file that mirrors the real path (so
  names, folders and companion files look the same) and starts with one blank line per line already
  loaded: every line reader skips blank lines, so the new lines keep their real numbers.
- **The loop.** :func:`poll_once` loads each file in its own transaction; :class:`Follower` calls a poll
  function every few seconds until stopped; the CLI runs it in the foreground, the dashboard on a
  background thread (``dashboard/follower.py``).
"""

from __future__ import annotations

import glob
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import duckdb

from core.errors import CreditscopeError
from core.ingest import registry
from core.ingest.base import PARTIAL_TAIL, AdapterOptions
from core.ingest.offsets import (
    Growth,
    bytes_before,
    has_content,
    prefix_fingerprint,
    read_growth,
    scan_file,
    snapshot_path,
    tail_note,
)
from core.ingest.runner import Source, SourceResult, ingest_sources, same_reading, source_id_for, source_info
from core.store.database import Store
from core.store.load import (
    SourceInfo,
    SourceState,
    forget_source,
    note_partial_growth,
    previous_state,
    touch_source,
)


def _always(module: ModuleType, path: Path, options: AdapterOptions) -> bool:
    return True


def _native_lines(module: ModuleType, path: Path, options: AdapterOptions) -> bool:
    return path.suffix in (".jsonl", ".ndjson")  # native Parquet is a table, not lines


LINE_APPENDABLE: dict[str, Callable[[ModuleType, Path, AdapterOptions], bool]] = {
    "native": _native_lines,
    "rl_logging_board": _always,
    "verifiers": _always,
    "openai_messages": _always,
}
"""Formats whose new lines may be appended without re-reading the file, each with a check for one file.

The rule: every row an adapter makes from a line depends only on that line, its line number, the
file's path and the options, never on other lines. Then the rows of new lines added to the rows of
earlier lines equal a full re-read. Groups spanning lines stay right when the group id is computed
from the line alone (rl_logging_board uses a digest of the prompt, verifiers and openai_messages the
record's group key), so a new rollout joins its group. Duplicate trajectory ids across old and new lines
are caught by the store's checks as usual. Formats not listed are replaced in full: verl chooses one step
rule per group from all of its rollouts (and its split from all records), so a new line can change the
rows of earlier ones; verl_agent threads per-turn rows across lines; others read whole documents.
"""


def appends_by_line(module: ModuleType, path: Path, options: AdapterOptions) -> bool:
    """Whether a grown ``path`` read by ``module`` may be loaded by appending its new lines."""
    rule = LINE_APPENDABLE.get(module.NAME)
    return rule is not None and rule(module, path, options)


@dataclass
class PollReport:
    """One poll of a follow loop: what landed, what failed (per file), and how long it took."""

    sources: list[SourceResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """Message per file (or per pattern, when planning failed) that could not be loaded this poll."""
    waiting: list[str] = field(default_factory=list)
    """Followed paths that name no file yet (a missing file, an empty folder, a glob without match)."""
    started_at: float = 0.0
    seconds: float = 0.0

    @property
    def landed(self) -> list[SourceResult]:
        """Sources whose rows changed this poll (written, or dropped because their file was emptied)."""
        return [s for s in self.sources if s.status in ("loaded", "replaced", "appended", "dropped")]

    @property
    def n_steps(self) -> int:
        """Steps written this poll."""
        return sum(s.n_steps for s in self.landed if s.status != "dropped")

    @property
    def n_trajectories(self) -> int:
        """Trajectories written this poll."""
        return sum(s.n_trajectories for s in self.landed if s.status != "dropped")


def poll_once(
    store: Store,
    paths: Sequence[str],
    *,
    fmt: str = "auto",
    run: str | None = None,
    options: AdapterOptions | None = None,
) -> PollReport:
    """One poll: load what is new under ``paths``, one transaction per file.

    Unlike :func:`core.ingest.runner.ingest`, nothing raises: a path that names no file yet is listed in
    :attr:`PollReport.waiting`, and a file that fails (a bad line, an unknown format) in
    :attr:`PollReport.errors`; both are tried again next poll while the other files load. A last record
    still being written waits for the next poll.
    """
    options = options or AdapterOptions()
    options = replace(options, extra={**options.extra, PARTIAL_TAIL: True})
    report = PollReport(started_at=time.time())
    started = time.perf_counter()
    plan: dict[Path, ModuleType] = {}
    for raw in paths:  # planned one by one so a missing path does not hide the others
        report.sources.extend(_drop_emptied(store, raw, run, options))
        try:
            for path, module in registry.plan_sources([raw], fmt, notes=report.notes):
                plan.setdefault(path.resolve(), module)
        except (CreditscopeError, OSError) as exc:
            if _nothing_there_yet(raw):  # a trainer that has not written its first file is not an error
                report.waiting.append(f"{raw}: no files yet")
            else:
                report.errors[str(raw)] = str(exc)
    for path, module in plan.items():
        try:
            report.sources.append(_poll_file(store, path, module, run, options))
        except (CreditscopeError, OSError, duckdb.Error) as exc:  # retried next poll; the others go on
            report.errors[str(path)] = str(exc)
    report.seconds = time.perf_counter() - started
    return report


def _drop_emptied(store: Store, raw: str, run: str | None, options: AdapterOptions) -> list[SourceResult]:
    """Drop the rows of loaded files under ``raw`` that are now empty (truncated to 0 bytes): their log is gone.

    A file truncated to some lines is re-read and replaced as usual; an empty one names no format any more,
    so it would otherwise keep its old rows for good.
    """
    try:
        files = registry.expand(raw)
    except (CreditscopeError, OSError):
        return []
    dropped = []
    for path in files:
        try:
            if path.stat().st_size:
                continue
        except OSError:
            continue
        source_id = source_id_for(path, run)
        with store.writer() as cur:
            prev = previous_state(cur, source_id)
            if prev is None:
                continue
            forget_source(cur, source_id)
        dropped.append(SourceResult(str(path), prev.format, "dropped", prev.n_trajectories, prev.n_steps))
    return dropped


def _nothing_there_yet(raw: str) -> bool:
    """Whether a followed path names nothing loadable yet: no such file, an empty file or folder, no match."""
    path = Path(raw)
    if path.is_file():
        return path.stat().st_size == 0  # created, nothing written yet
    if path.is_dir():
        return not any(candidate.is_file() for candidate in path.rglob("*"))
    return not path.exists() and not glob.glob(raw, recursive=True)


def _poll_file(store: Store, path: Path, module: ModuleType, run: str | None, options: AdapterOptions) -> SourceResult:
    """Load what one file gained since the last load: its new lines, or all of it; in its own transaction."""
    if not appends_by_line(module, path, options):  # re-read in full when it changed, as a plain ingest does
        return ingest_sources(store, [Source(path, module)], run=run, options=options).sources[0]
    src = source_info(path, module, run, options)
    with store.reader() as cur:
        prev = previous_state(cur, src.source_id)
    same = same_reading(prev, src)
    if same is not None and same.size == src.size and same.mtime == src.mtime:
        return SourceResult(str(path), module.NAME, "unchanged")
    # Snapshots end at a newline, so their last line is complete: a bad one there is a real error.
    complete = replace(options, extra={k: v for k, v in options.extra.items() if k != PARTIAL_TAIL})
    with tempfile.TemporaryDirectory(prefix="creditscope-") as tmp:
        # A same-size change keeps the stronger whole-file hash check; growth goes through the fingerprint.
        if (
            same is not None
            and same.loaded_bytes is not None
            and same.loaded_lines is not None
            and same.prefix_hash is not None
            and not (same.size == src.size and same.content_hash)
        ):
            growth = read_growth(path, same.loaded_bytes, same.prefix_hash)
            if growth is not None:
                return _append(store, path, module, src, same, growth, Path(tmp), complete)
        return _replace(store, path, module, src, prev, same, Path(tmp), complete)


def _append(
    store: Store,
    path: Path,
    module: ModuleType,
    src: SourceInfo,
    prev: SourceState,
    growth: Growth,
    tmp: Path,
    options: AdapterOptions,
) -> SourceResult:
    """Load the complete new lines of a grown file, adding their rows to the stored ones."""
    assert prev.loaded_lines is not None
    notes = [tail_note(path, growth.left_for_later)] if growth.left_for_later else []
    if not growth.complete.strip():
        with store.writer() as cur:
            note_partial_growth(cur, src.source_id, growth.mtime, growth.size)
        return SourceResult(str(path), module.NAME, "unchanged", skipped=notes)
    lines_through = prev.loaded_lines + growth.complete.count(b"\n")
    known = replace(
        src,
        size=growth.size,
        mtime=growth.mtime,
        loaded_bytes=growth.end,
        loaded_lines=lines_through,
        prefix_hash=prefix_fingerprint(growth.before + growth.complete, growth.end),
    )
    last_line = lines_through + (0 if growth.complete.endswith(b"\n") else 1)
    result = SourceResult(str(path), module.NAME, "appended", lines=(prev.loaded_lines + 1, last_line), skipped=notes)
    snapshot = snapshot_path(tmp, path)
    # One blank line per loaded line: readers skip blank lines, so new lines keep their real numbers.
    snapshot.write_bytes(b"\n" * prev.loaded_lines + growth.complete)
    source = Source(path, module, read_from=snapshot, known=known, append_to=prev, result=result)
    return ingest_sources(store, [source], options=options).sources[0]


def _replace(
    store: Store,
    path: Path,
    module: ModuleType,
    src: SourceInfo,
    prev: SourceState | None,
    same: SourceState | None,
    tmp: Path,
    options: AdapterOptions,
) -> SourceResult:
    """Load a snapshot of the file up to its last complete line, replacing the source's rows."""
    # Parse a snapshot: a trainer appending while we read must not slip lines past the bookkeeping
    # (they would be appended a second time on the next poll).
    snapshot = snapshot_path(tmp, path)
    scan = scan_file(path, copy_to=snapshot)
    if same is not None and same.content_hash == scan.digest:
        with store.writer() as cur:
            touch_source(cur, src.source_id, src.mtime)
        return SourceResult(str(path), module.NAME, "unchanged")
    end = scan.complete_end
    if not has_content(snapshot, end):
        return SourceResult(str(path), module.NAME, "waiting", skipped=[tail_note(path, scan.size)])
    notes = []
    if end < scan.size:
        os.truncate(snapshot, end)
        notes.append(tail_note(path, scan.size - end))
    known = replace(
        src,
        content_hash=scan.digest,
        size=scan.size,
        loaded_bytes=end,
        loaded_lines=scan.newlines,
        prefix_hash=prefix_fingerprint(bytes_before(snapshot, end), end),
    )
    status = "replaced" if prev is not None else "loaded"
    result = SourceResult(str(path), module.NAME, status, lines=(1, scan.newlines), skipped=notes)
    source = Source(path, module, read_from=snapshot, known=known, result=result)
    return ingest_sources(store, [source], options=options).sources[0]


class Follower:
    """Calls ``poll`` every ``interval`` seconds until :meth:`stop`; safe to stop from another thread.

    Args:
        poll: One poll, e.g. ``lambda: poll_once(store, paths, options=options)``.
        interval: Seconds from the start of one poll to the start of the next (a slow poll is not
            followed by a full extra wait).
        on_poll: Called with every poll's report, on the loop's thread.
    """

    def __init__(
        self,
        poll: Callable[[], PollReport],
        interval: float = 2.0,
        on_poll: Callable[[PollReport], None] | None = None,
    ) -> None:
        if not interval > 0:  # zero would poll (and rehash every file) without pause
            raise ValueError(f"interval must be positive, got {interval}")
        self._poll = poll
        self.interval = interval
        self._on_poll = on_poll
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the loop to end after the poll in progress (if any)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def run(self, max_polls: int | None = None) -> int:
        """Poll until stopped (or ``max_polls`` polls ran); returns the number of polls."""
        polls = 0
        while not self._stop.is_set() and (max_polls is None or polls < max_polls):
            started = time.monotonic()
            report = self._poll()
            polls += 1
            if self._on_poll is not None:
                self._on_poll(report)
            if max_polls is not None and polls >= max_polls:
                break
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        return polls
