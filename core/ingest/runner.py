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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import duckdb
import xxhash

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import PARTIAL_TAIL, AdapterOptions
from core.store.database import Store
from core.store.load import SourceInfo, SourceState, finish_source, load_rollouts, previous_state, touch_source
from core.store.native_jsonl import FastPathFailed, FastPathUnavailable, load_native_jsonl
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


def new_digest() -> xxhash.xxh3_128:
    """The content digest files are compared by: XXH3-128, a non-cryptographic hash at memory speed.

    It tells an edited file from an unchanged one (not a forgery from the original), and at a few GB/s
    it costs a 1M-step file ~0.05 s where SHA-1 took ~0.3 s of the load.
    """
    return xxhash.xxh3_128()


def file_digest(path: Path) -> str:
    """Digest of the file's bytes (:func:`new_digest`): decides whether a re-ingested file really changed."""
    digest = new_digest()
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
    work = _Work(store, run, options)
    reported: set[int] = set()
    with store.exclusive(), work:
        while True:
            results: list[SourceResult] = []
            try:
                with store.writer() as cur:
                    for index, source in enumerate(sources):
                        work.current = index
                        results.append(work.load(cur, source, index))
                        if on_source is not None and index not in reported:
                            reported.add(index)
                            on_source(results[-1])
                break
            except FastPathFailed as exc:
                # DuckDB aborted the transaction (it does on any error) and it rolled back: load everything
                # again, this file with its layout detected over the whole file when DuckDB refused a sampled
                # layout, else through the Python reader, which loads it or names the bad line.
                sampled = work.current not in work.whole_file
                (work.whole_file if exc.refused and sampled else work.python_only).add(work.current)
            except duckdb.InterruptException:
                raise KeyboardInterrupt from None
    report.sources.extend(results)
    return report


class _Work:
    """The state of one command across tries: digests computed on a helper thread, files for the Python reader."""

    def __init__(self, store: Store, run: str | None, options: AdapterOptions) -> None:
        self.store, self.run, self.options = store, run, options
        self.python_only: set[int] = set()
        self.whole_file: set[int] = set()
        self.current = 0
        self._digests: dict[Path, Future[str]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="creditscope-digest")

    def __enter__(self) -> _Work:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def digest(self, path: Path) -> Future[str]:
        """The file's digest, computed once per command on the helper thread while DuckDB parses."""
        if path not in self._digests:
            self._digests[path] = self._pool.submit(file_digest, path)
        return self._digests[path]

    def load(self, cur: duckdb.DuckDBPyConnection, source: Source, index: int) -> SourceResult:
        """Load one source inside the command's transaction; returns what happened to it."""
        path, module = source.path, source.module
        if source.known is not None:  # the caller decided what to read and what to record
            given = source.result or SourceResult(str(path), module.NAME, "loaded")
            result = replace(given, skipped=list(given.skipped))  # a fresh copy for each try of the transaction
            return self._read_and_load(cur, source, source.known, result, index, None)
        src = source_info(path, module, self.run, self.options)
        prev = previous_state(cur, src.source_id)
        same = same_reading(prev, src)
        if same is not None and same.size == src.size and same.mtime == src.mtime:
            return SourceResult(str(path), module.NAME, "unchanged")
        digest = self.digest(path)
        fast = index not in self.python_only and _fast_path_candidate(module, path)
        if not fast or (same is not None and same.size == src.size):
            # Only the digest can tell whether the file changed; a changed file is then surely read, so
            # for the fast path DuckDB parses while the helper thread hashes.
            if same is not None and same.content_hash == digest.result():
                touch_source(cur, src.source_id, src.mtime)
                return SourceResult(str(path), module.NAME, "unchanged")
        # If the file grows while it is read, the recorded size and digest describe the older bytes, so the next
        # ingest sees a change and reads it again: nothing is appended behind the bookkeeping's back.
        result = SourceResult(str(path), module.NAME, "replaced" if prev is not None else "loaded")
        return self._read_and_load(cur, source, src, result, index, digest)

    def _read_and_load(
        self,
        cur: duckdb.DuckDBPyConnection,
        source: Source,
        src: SourceInfo,
        result: SourceResult,
        index: int,
        digest: Future[str] | None,
    ) -> SourceResult:
        path, module = source.path, source.module
        fast = index not in self.python_only and _fast_path_candidate(module, path)
        read_from = source.read_from or path
        append = source.append_to is not None
        if fast:
            try:
                load_native_jsonl(
                    cur,
                    src,
                    read_from=str(read_from),
                    default_run=path.stem,
                    split=self.options.split,
                    append=append,
                    whole_file=index in self.whole_file,
                )
            except FastPathUnavailable:
                fast = False  # nothing was written: the Python reader takes the file in this same transaction
            else:
                result.fast_path = True
                if digest is not None:
                    src = replace(src, content_hash=digest.result())
                n_traj, n_steps = finish_source(cur, src, {}, checked=True)
        if not fast:
            with _errors_name(read_from, path):
                rollouts = module.read(read_from, self.options)
            result.skipped.extend(note.replace(str(read_from), str(path)) for note in rollouts.skipped)
            if digest is not None:
                src = replace(src, content_hash=digest.result())
            n_traj, n_steps = load_rollouts(cur, src, rollouts, rollouts.default_run or path.stem, append=append)
        if source.append_to is not None:  # report what this load added, not the source's new totals
            n_traj, n_steps = n_traj - source.append_to.n_trajectories, n_steps - source.append_to.n_steps
        result.n_trajectories, result.n_steps = n_traj, n_steps
        return result


def _fast_path_candidate(module: ModuleType, path: Path) -> bool:
    return module.NAME == "native" and path.suffix in (".jsonl", ".ndjson")


@contextmanager
def _errors_name(read_from: Path, path: Path) -> Iterator[None]:
    """Report an error found in a snapshot against the real file (line numbers already agree)."""
    try:
        yield
    except IngestError as exc:
        if read_from == path or exc.path != str(read_from):
            raise
        raise IngestError(str(path), exc.problem.replace(str(read_from), str(path)), exc.record, exc.field) from exc
