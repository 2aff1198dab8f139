"""``creditscope ingest``: plan the sources, read each with its adapter, load them in one transaction.

One command is one transaction: either every file it names lands, or (on the first bad file) none
does and the error names that file, the record and the field. Re-ingesting an unchanged file is a
no-op (size and mtime first, then a content hash); a changed file replaces exactly its earlier rows,
except that a grown file of a line-appendable format only has its new lines read and their rows added
(see :mod:`core.ingest.follow` for the rule and the bookkeeping). Trade-off of the incremental path:
when a file grows, only the 64 KiB before the loaded offset are compared, so an in-place edit further
back goes unnoticed until the file is rewritten or shrinks; a same-size change is still caught by the
content hash.

:func:`poll_once` is one poll of ``--follow`` and of the dashboard's Follow toggle: follow mode (bytes
after the last newline wait for the next poll) and one transaction per file, so one bad file does not
hold back the others.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import duckdb

from core.errors import CreditscopeError
from core.ingest import registry
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.follow import (
    PARTIAL_TAIL,
    PollReport,
    appends_by_line,
    bytes_before,
    errors_name,
    has_content,
    prefix_fingerprint,
    read_growth,
    scan_file,
    snapshot_path,
    tail_note,
    without_partial_tail,
)
from core.ingest.formats import native
from core.store.database import Store
from core.store.load import SourceInfo, SourceState, load_rollouts, note_partial_growth, previous_state, touch_source
from core.store.native_jsonl import FastPathUnavailable, drop_stage, load_staged, stage_native_jsonl
from core.store.progress import ProgressReporter, reporting


@dataclass
class SourceResult:
    """What happened to one file."""

    path: str
    format: str
    status: str  # "loaded", "replaced", "appended", "unchanged" or "waiting" (no complete line yet)
    n_trajectories: int = 0
    n_steps: int = 0
    fast_path: bool = False
    skipped: list[str] = field(default_factory=list)
    lines: tuple[int, int] | None = None
    """First and last line number read, for line-appendable sources that were read."""


@dataclass
class IngestReport:
    """Per-file results of one ingest command."""

    sources: list[SourceResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Files found in folders but skipped because no adapter reads them (READMEs, configs...)."""

    @property
    def n_steps(self) -> int:
        """Steps written by this command (unchanged files count 0; appended files count their new steps)."""
        return sum(s.n_steps for s in self.sources)

    @property
    def n_trajectories(self) -> int:
        """Trajectories written by this command."""
        return sum(s.n_trajectories for s in self.sources)


def file_digest(path: Path) -> str:
    """SHA-1 of the file's bytes: decides whether a re-ingested file really changed."""
    return scan_file(path).digest


def source_id_for(path: Path, run_override: str | None) -> str:
    """A file ingested under two different ``--run`` names is two sources."""
    return hashlib.sha1(f"{path.resolve()}\0{run_override or ''}".encode()).hexdigest()[:20]


def ingest(
    store: Store,
    paths: Sequence[str],
    *,
    fmt: str = "auto",
    run: str | None = None,
    options: AdapterOptions | None = None,
    on_source: Callable[[SourceResult], None] | None = None,
    on_progress: ProgressReporter | None = None,
) -> IngestReport:
    """Load files, folders or globs into ``store``, all or nothing.

    Args:
        store: An open, writable store.
        paths: What the user typed.
        fmt: ``"auto"`` or a format name (see ``creditscope formats``).
        run: Put everything into this run instead of the names the sources carry.
        options: Adapter options (step splitter, forced split, adapter-specific extras, follow mode).
        on_source: Called after each file, e.g. to advance a progress bar.
        on_progress: Called as ``(file name, phase, fraction)`` while DuckDB parses or writes a large
            native file (see :mod:`core.store.progress`), from a watcher thread.

    Raises:
        core.errors.IngestError: A file is malformed; nothing of this command was written.
        core.errors.FormatNotDetected: No adapter recognises a file (the message says why each declined).
    """
    report = IngestReport()
    plan = registry.plan_sources(paths, fmt, notes=report.notes)
    with reporting(on_progress):
        return ingest_plan(store, plan, run=run, options=options, on_source=on_source, report=report)


def ingest_plan(
    store: Store,
    plan: Sequence[tuple[Path, ModuleType]],
    *,
    run: str | None = None,
    options: AdapterOptions | None = None,
    on_source: Callable[[SourceResult], None] | None = None,
    report: IngestReport | None = None,
) -> IngestReport:
    """Load already planned ``(file, adapter)`` pairs in one transaction (see :func:`ingest`)."""
    options = options or AdapterOptions()
    report = report or IngestReport()
    with store.exclusive():
        # Phase 1, outside any transaction: find changed files and parse them. DuckDB staging tables
        # must exist before the writer's transaction starts, or its snapshot would not see them.
        prepared: list[_Prepared] = []
        try:
            for path, module in plan:
                prepared.append(_prepare(store, path, module, run, options))
            with store.writer() as cur:  # phase 2: one transaction for the whole command
                for item in prepared:
                    result = _load(cur, item)
                    report.sources.append(result)
                    if on_source is not None:
                        on_source(result)
        finally:
            with store.reader() as stage:
                for item in prepared:
                    if item.stage_token:
                        drop_stage(stage, item.stage_token)
    return report


def poll_once(
    store: Store,
    paths: Sequence[str],
    *,
    fmt: str = "auto",
    run: str | None = None,
    options: AdapterOptions | None = None,
) -> PollReport:
    """One poll of a follow loop: load what is new under ``paths``, one transaction per file.

    Unlike :func:`ingest`, nothing raises: a path that names no file yet is listed in
    :attr:`PollReport.waiting`, and a file that fails (a bad line, an unknown format) in
    :attr:`PollReport.errors`; both are tried again next poll while the other files load.
    Follow mode is always on (bytes after a file's last newline wait for the next poll).
    """
    options = options or AdapterOptions()
    options = replace(options, extra={**options.extra, PARTIAL_TAIL: True})
    report = PollReport(started_at=time.time())
    started = time.perf_counter()
    plan: dict[Path, ModuleType] = {}
    for raw in paths:  # planned one by one so a missing path does not hide the others
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
            report.sources.extend(ingest_plan(store, [(path, module)], run=run, options=options).sources)
        except (CreditscopeError, OSError, duckdb.Error) as exc:  # retried next poll; the others go on
            report.errors[str(path)] = str(exc)
    report.seconds = time.perf_counter() - started
    return report


def _nothing_there_yet(raw: str) -> bool:
    """Whether a followed path names nothing loadable yet: no such file, an empty folder, a glob without match."""
    path = Path(raw)
    if path.is_dir():
        return not any(candidate.is_file() for candidate in path.rglob("*"))
    return not path.exists() and not glob.glob(raw, recursive=True)


@dataclass
class _Prepared:
    """A planned source after phase 1: unchanged, staged in DuckDB, or parsed into frames."""

    result: SourceResult
    src: SourceInfo | None = None
    stage_token: str | None = None
    rollouts: Rollouts | None = None
    appended_to: SourceState | None = None
    """The state the new rows are added to; None for a full load."""


def _recorded_options(options: AdapterOptions) -> dict:
    """The options that shape rows (follow mode does not), JSON-normalised to compare with stored ones."""
    rows = without_partial_tail(options)
    return json.loads(json.dumps({"splitter": rows.splitter, "split": rows.split, **rows.extra}, default=str))


def _prepare(store: Store, path: Path, module: ModuleType, run: str | None, options: AdapterOptions) -> _Prepared:
    stat = path.stat()
    source_id = source_id_for(path, run)
    with store.reader() as cur:
        prev = previous_state(cur, source_id)
    recorded = _recorded_options(options)
    # Rows depend on the adapter and its options as much as on the bytes (another --split or --splitter
    # gives other rows), so an earlier load vouches for a file only if it read the file the same way.
    same = prev if prev is not None and (prev.format, prev.options) == (module.NAME, recorded) else None
    if same is not None and same.size == stat.st_size and same.mtime == stat.st_mtime:
        return _Prepared(SourceResult(str(path), module.NAME, "unchanged"))
    following = bool(options.extra.get(PARTIAL_TAIL))
    by_line = appends_by_line(module, path, options)
    src = SourceInfo(
        source_id=source_id,
        path=str(path.resolve()),
        format=module.NAME,
        run_override=run,
        content_hash="",
        size=stat.st_size,
        mtime=stat.st_mtime,
        options=recorded,
    )
    # A same-size change keeps the stronger whole-file hash check; growth goes through the fingerprint.
    if (
        by_line
        and same is not None
        and same.loaded_bytes is not None
        and not (same.size == stat.st_size and same.content_hash)
    ):
        appended = _prepare_append(store, path, module, src, same, options, following)
        if appended is not None:
            return appended
    with tempfile.TemporaryDirectory(prefix="creditscope-") as tmp:
        # Following a line-oriented file, parse a snapshot: a trainer appending while we read must not
        # slip lines past the bookkeeping (they would be appended a second time on the next poll).
        snapshot = snapshot_path(Path(tmp), path) if by_line and following else None
        staged: _Staged | None = None
        if (
            snapshot is None
            and _fast_path_candidate(module, path, options)
            and not (same is not None and same.size == stat.st_size)
        ):
            # The file will surely be read, so DuckDB parses while Python hashes (hashlib releases the GIL):
            # the digest is only needed for the bookkeeping, and a 1M-step file takes ~0.3 s to hash.
            with ThreadPoolExecutor(max_workers=1) as pool:
                scanning = pool.submit(scan_file, path)
                staged = _stage(store, path, path, run)
                scan = scanning.result()
        else:
            scan = scan_file(path, copy_to=snapshot)
        if same is not None and same.content_hash == scan.digest:
            with store.writer() as cur:
                touch_source(cur, source_id, stat.st_mtime)
            return _Prepared(SourceResult(str(path), module.NAME, "unchanged"))
        result = SourceResult(str(path), module.NAME, "replaced" if prev is not None else "loaded")
        src = replace(src, content_hash=scan.digest, size=scan.size)
        if not by_line:
            return _read(store, path, module, src, result, options, path, staged)
        read_from = snapshot or path
        end = scan.complete_end if following else scan.size
        if following and not has_content(read_from, end):
            return _Prepared(SourceResult(str(path), module.NAME, "waiting", skipped=[tail_note(path, scan.size)]))
        if end < scan.size:
            os.truncate(read_from, end)  # only ever the snapshot: `end < size` happens in follow mode only
            result.skipped.append(tail_note(path, scan.size - end))
        before = bytes_before(read_from, end)
        src = replace(src, loaded_bytes=end, loaded_lines=scan.newlines, prefix_hash=prefix_fingerprint(before, end))
        result.lines = (1, scan.newlines + (0 if before.endswith(b"\n") else 1))
        prepared = _read(store, path, module, src, result, without_partial_tail(options), read_from, staged)
    if snapshot is None and path.stat().st_size != scan.size:
        # The file grew while it was parsed, so the rows may cover more than the recorded offset: record
        # no offset and no digest, which makes the next ingest replace the file in full.
        prepared.src = replace(src, content_hash="", loaded_bytes=None, loaded_lines=None, prefix_hash=None)
    return prepared


def _prepare_append(
    store: Store,
    path: Path,
    module: ModuleType,
    src: SourceInfo,
    prev: SourceState,
    options: AdapterOptions,
    following: bool,
) -> _Prepared | None:
    """Read only what ``path`` gained since ``prev``; None when the loaded prefix changed (replace in full)."""
    assert prev.loaded_bytes is not None and prev.loaded_lines is not None and prev.prefix_hash is not None
    growth = read_growth(path, prev.loaded_bytes, prev.prefix_hash, following=following)
    if growth is None:
        return None
    if not growth.complete.strip():
        with store.writer() as cur:
            note_partial_growth(cur, src.source_id, growth.mtime, growth.size)
        skipped = [tail_note(path, growth.left_for_later)] if growth.left_for_later else []
        return _Prepared(SourceResult(str(path), module.NAME, "unchanged", skipped=skipped))
    lines_through = prev.loaded_lines + growth.complete.count(b"\n")
    src = replace(
        src,
        size=growth.size,
        mtime=growth.mtime,
        loaded_bytes=growth.end,
        loaded_lines=lines_through,
        prefix_hash=prefix_fingerprint(growth.before + growth.complete, growth.end),
    )
    last_line = lines_through + (0 if growth.complete.endswith(b"\n") else 1)
    result = SourceResult(str(path), module.NAME, "appended", lines=(prev.loaded_lines + 1, last_line))
    if growth.left_for_later:
        result.skipped.append(tail_note(path, growth.left_for_later))
    with tempfile.TemporaryDirectory(prefix="creditscope-") as tmp:
        snapshot = snapshot_path(Path(tmp), path)
        # One blank line per loaded line: readers skip blank lines, so new lines keep their real numbers.
        snapshot.write_bytes(b"\n" * prev.loaded_lines + growth.complete)
        prepared = _read(store, path, module, src, result, without_partial_tail(options), snapshot)
    prepared.appended_to = prev
    return prepared


@dataclass(frozen=True)
class _Staged:
    """Outcome of a DuckDB fast-path attempt: the staging token, or None when the file needs the Python reader."""

    token: str | None


def _fast_path_candidate(module: ModuleType, path: Path, options: AdapterOptions) -> bool:
    # A forced split is rare enough to leave to the Python reader rather than thread it through the SQL.
    return module is native and path.suffix in (".jsonl", ".ndjson") and not options.split


def _stage(store: Store, path: Path, read_from: Path, run: str | None) -> _Staged:
    """Try the DuckDB fast path on ``read_from``."""
    token = uuid.uuid4().hex[:12]
    try:
        with store.reader() as stage:
            stage_native_jsonl(stage, str(read_from), token, run, path.stem)
    except FastPathUnavailable:
        return _Staged(None)  # the validating reader either parses the file or names the bad line and field
    return _Staged(token)


def _read(
    store: Store,
    path: Path,
    module: ModuleType,
    src: SourceInfo,
    result: SourceResult,
    options: AdapterOptions,
    read_from: Path,
    staged: _Staged | None = None,
) -> _Prepared:
    """Parse ``read_from`` (the file itself or a snapshot of it) as ``path``: DuckDB fast path, else the adapter.

    ``staged`` is a fast-path attempt already made on the same bytes (see :func:`_prepare`).
    """
    if _fast_path_candidate(module, path, options):
        staged = staged or _stage(store, path, read_from, src.run_override)
        if staged.token is not None:
            result.fast_path = True
            return _Prepared(result, src, stage_token=staged.token)
    with errors_name(read_from, path):
        rollouts = module.read(read_from, options)
    result.skipped.extend(note.replace(str(read_from), str(path)) for note in rollouts.skipped)
    return _Prepared(result, src, rollouts=rollouts)


def _load(cur: duckdb.DuckDBPyConnection, item: _Prepared) -> SourceResult:
    result = item.result
    if item.src is None:
        return result
    append = item.appended_to is not None
    if item.stage_token is not None:
        n_traj, n_steps = load_staged(cur, item.src, item.stage_token, append=append)
    else:
        assert item.rollouts is not None
        default_run = item.rollouts.default_run or Path(result.path).stem
        n_traj, n_steps = load_rollouts(cur, item.src, item.rollouts, default_run, append=append)
    if item.appended_to is not None:  # report what this load added, not the source's new totals
        n_traj, n_steps = n_traj - item.appended_to.n_trajectories, n_steps - item.appended_to.n_steps
    result.n_trajectories, result.n_steps = n_traj, n_steps
    return result
