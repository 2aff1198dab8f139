"""``creditscope ingest``: plan the sources, read each with its adapter, load them in one transaction.

One command is one transaction: either every file it names lands, or (on the first bad file) none
does and the error names that file, the record and the field. Re-ingesting an unchanged file is a
no-op (size and mtime first, then a content hash); a changed file replaces exactly its earlier rows.

This module knows nothing about growing files. :mod:`core.ingest.follow` sits above it: it decides
what part of a file to read (the new lines of a grown file, a snapshot up to the last complete line)
and hands that over as a :class:`Source` with its bookkeeping already filled in.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import duckdb

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import PARTIAL_TAIL, AdapterOptions, Rollouts
from core.store.database import Store
from core.store.load import SourceInfo, SourceState, load_rollouts, previous_state, touch_source
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
    """First and last line number read, when the caller read a range of lines (see core.ingest.follow)."""


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


@dataclass(frozen=True)
class Source:
    """One file to load. By default the whole file, replacing its earlier rows when it changed.

    A caller that has already decided what to read (the follow layer) fills the optional fields:

    Attributes:
        path: The real file: it names the source, the run default and every error.
        module: The adapter that reads it.
        read_from: Parse these bytes instead (a snapshot mirroring ``path``, see core.ingest.follow); line
            numbers in errors are the snapshot's, so it must keep the real file's numbering.
        known: The bookkeeping to record for this load; the unchanged checks are then skipped.
        append_to: The stored state the new rows are added to, instead of replacing the source's rows.
        result: What to report (status, line range, notes) when ``known`` is given.
    """

    path: Path
    module: ModuleType
    read_from: Path | None = None
    known: SourceInfo | None = None
    append_to: SourceState | None = None
    result: SourceResult | None = None


def file_digest(path: Path) -> str:
    """SHA-1 of the file's bytes: decides whether a re-ingested file really changed."""
    digest = hashlib.sha1(usedforsecurity=False)  # content identity, not security: the fastest hashlib digest here
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_id_for(path: Path, run_override: str | None) -> str:
    """A file ingested under two different ``--run`` names is two sources."""
    return hashlib.sha1(f"{path.resolve()}\0{run_override or ''}".encode()).hexdigest()[:20]


def recorded_options(options: AdapterOptions) -> dict:
    """The options that shape rows (tolerating a partial tail does not), JSON-normalised to compare with stored ones."""
    extra = {key: value for key, value in options.extra.items() if key != PARTIAL_TAIL}
    return json.loads(json.dumps({"splitter": options.splitter, "split": options.split, **extra}, default=str))


def source_info(path: Path, module: ModuleType, run: str | None, options: AdapterOptions) -> SourceInfo:
    """The bookkeeping of a load of the whole of ``path`` as it is now (content hash still unknown)."""
    stat = path.stat()
    return SourceInfo(
        source_id=source_id_for(path, run),
        path=str(path.resolve()),
        format=module.NAME,
        run_override=run,
        content_hash="",
        size=stat.st_size,
        mtime=stat.st_mtime,
        options=recorded_options(options),
    )


def same_reading(prev: SourceState | None, src: SourceInfo) -> SourceState | None:
    """``prev`` when it read the file the way ``src`` will (same adapter and options), else None.

    Rows depend on the adapter and its options as much as on the bytes (another --split or --splitter
    gives other rows), so an earlier load vouches for a file only if it read the file the same way.
    """
    return prev if prev is not None and (prev.format, prev.options) == (src.format, src.options) else None


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
        options: Adapter options (step splitter, forced split, adapter-specific extras).
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
        sources = [Source(path, module) for path, module in plan]
        return ingest_sources(store, sources, run=run, options=options, on_source=on_source, report=report)


def ingest_sources(
    store: Store,
    sources: Sequence[Source],
    *,
    run: str | None = None,
    options: AdapterOptions | None = None,
    on_source: Callable[[SourceResult], None] | None = None,
    report: IngestReport | None = None,
) -> IngestReport:
    """Load planned sources in one transaction (see :func:`ingest`)."""
    options = options or AdapterOptions()
    report = report or IngestReport()
    with store.exclusive():
        # Phase 1, outside any transaction: find changed files and parse them. DuckDB staging tables
        # must exist before the writer's transaction starts, or its snapshot would not see them.
        prepared: list[_Prepared] = []
        try:
            for source in sources:
                prepared.append(_prepare(store, source, run, options))
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


@dataclass
class _Prepared:
    """A planned source after phase 1: unchanged, staged in DuckDB, or parsed into frames."""

    result: SourceResult
    src: SourceInfo | None = None
    stage_token: str | None = None
    rollouts: Rollouts | None = None
    appended_to: SourceState | None = None
    """The state the new rows are added to; None for a full load."""


def _prepare(store: Store, source: Source, run: str | None, options: AdapterOptions) -> _Prepared:
    path, module = source.path, source.module
    if source.known is not None:  # the caller decided what to read and what to record
        result = source.result or SourceResult(str(path), module.NAME, "loaded")
        prepared = _read(store, source, source.known, result, options)
        prepared.appended_to = source.append_to
        return prepared
    src = source_info(path, module, run, options)
    with store.reader() as cur:
        prev = previous_state(cur, src.source_id)
    same = same_reading(prev, src)
    if same is not None and same.size == src.size and same.mtime == src.mtime:
        return _Prepared(SourceResult(str(path), module.NAME, "unchanged"))
    staged: _Staged | None = None
    if _fast_path_candidate(module, path, options) and not (same is not None and same.size == src.size):
        # The file will surely be read, so DuckDB parses while Python hashes (hashlib releases the GIL):
        # the digest is only needed for the bookkeeping, and a 1M-step file takes ~0.3 s to hash.
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashing = pool.submit(file_digest, path)
            staged = _stage(store, path, path, run)
            digest = hashing.result()
    else:
        digest = file_digest(path)
    if same is not None and same.content_hash == digest:
        with store.writer() as cur:
            touch_source(cur, src.source_id, src.mtime)
        return _Prepared(SourceResult(str(path), module.NAME, "unchanged"))
    # If the file grows while it is read, the recorded size and digest describe the older bytes, so the next
    # ingest sees a change and reads it again: nothing is appended behind the bookkeeping's back.
    result = SourceResult(str(path), module.NAME, "replaced" if prev is not None else "loaded")
    return _read(store, source, replace(src, content_hash=digest), result, options, staged)


@dataclass(frozen=True)
class _Staged:
    """Outcome of a DuckDB fast-path attempt: the staging token, or None when the file needs the Python reader."""

    token: str | None


def _fast_path_candidate(module: ModuleType, path: Path, options: AdapterOptions) -> bool:
    # A forced split is rare enough to leave to the Python reader rather than thread it through the SQL.
    return module.NAME == "native" and path.suffix in (".jsonl", ".ndjson") and not options.split


def _stage(store: Store, path: Path, read_from: Path, run: str | None) -> _Staged:
    """Try the DuckDB fast path on ``read_from``."""
    token = uuid.uuid4().hex[:12]
    try:
        with store.reader() as stage:
            stage_native_jsonl(stage, str(read_from), token, run, path.stem)
    except FastPathUnavailable:
        return _Staged(None)  # the validating reader either parses the file or names the bad line and field
    return _Staged(token)


@contextmanager
def _errors_name(read_from: Path, path: Path) -> Iterator[None]:
    """Report an error found in a snapshot against the real file (line numbers already agree)."""
    try:
        yield
    except IngestError as exc:
        if read_from == path or exc.path != str(read_from):
            raise
        raise IngestError(str(path), exc.problem.replace(str(read_from), str(path)), exc.record, exc.field) from exc


def _read(
    store: Store,
    source: Source,
    src: SourceInfo,
    result: SourceResult,
    options: AdapterOptions,
    staged: _Staged | None = None,
) -> _Prepared:
    """Parse the source (its snapshot if it has one): DuckDB fast path, else the adapter.

    ``staged`` is a fast-path attempt already made on the same bytes (see :func:`_prepare`).
    """
    path, module = source.path, source.module
    read_from = source.read_from or path
    if _fast_path_candidate(module, path, options):
        staged = staged or _stage(store, path, read_from, src.run_override)
        if staged.token is not None:
            result.fast_path = True
            return _Prepared(result, src, stage_token=staged.token)
    with _errors_name(read_from, path):
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
