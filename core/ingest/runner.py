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
from core.store.load import (
    SourceInfo,
    SourceState,
    finish_sources,
    load_rollouts,
    previous_states,
    touch_source,
)
from core.store.native_jsonl import FastPathFailed, FastPathUnavailable, NativeFile, load_native_jsonl
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
    resolved = path.resolve()
    return SourceInfo(
        source_id=source_id_for(resolved, run),
        path=str(resolved),
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
    work = _Work(run, options, on_source)
    with store.exclusive(), work:
        while True:
            try:
                with store.writer() as cur:
                    results = work.load_all(cur, sources)
                break
            except FastPathFailed as exc:
                # DuckDB aborted the transaction (it does on any error) and it rolled back: load everything
                # again, this file with its layout detected over the whole file when DuckDB refused a sampled
                # layout, else through the Python reader, which loads it or names the bad line. A batch of
                # small files that failed is loaded file by file, to find the one.
                work.escalate(exc)
            except duckdb.InterruptException:
                raise KeyboardInterrupt from None
    report.sources.extend(results)
    return report


@dataclass
class _Ready:
    """A source that changed and will be read: its bookkeeping, what to report, and its digest to come."""

    index: int
    source: Source
    src: SourceInfo
    result: SourceResult
    digest: Future[str] | None

    @property
    def read_from(self) -> Path:
        return self.source.read_from or self.source.path


class _Work:
    """One command across tries of its transaction: digests on a helper thread, and how each file is read."""

    def __init__(self, run: str | None, options: AdapterOptions, on_source: Callable[[SourceResult], None] | None):
        self.run, self.options, self._on_source = run, options, on_source
        self.python_only: set[int] = set()
        self.whole_file: set[int] = set()
        self.one_by_one: set[int] = set()
        self.current: list[int] = []
        self._reported: set[int] = set()
        self._digests: dict[Path, Future[str]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="creditscope-digest")

    def __enter__(self) -> _Work:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def escalate(self, exc: FastPathFailed) -> None:
        """Read the files of the failed load another way on the next try."""
        if len(self.current) > 1:
            self.one_by_one.update(self.current)
            return
        index = self.current[0]
        sampled = index not in self.whole_file
        (self.whole_file if exc.refused and sampled else self.python_only).add(index)

    def digest(self, path: Path) -> Future[str]:
        """The file's digest, computed once per command on the helper thread while DuckDB parses."""
        if path not in self._digests:
            self._digests[path] = self._pool.submit(file_digest, path)
        return self._digests[path]

    def load_all(self, cur: duckdb.DuckDBPyConnection, sources: Sequence[Source]) -> list[SourceResult]:
        """Load every source inside the command's transaction; returns their results in order.

        Native files that only need a fresh full load are read together by one set of statements, so the
        cost per file stays small with thousands of files.
        """
        results: dict[int, SourceResult] = {}
        known = [s for s in sources if s.known is None]
        states = previous_states(cur, [source_id_for(s.path, self.run) for s in known])
        ready: list[_Ready] = []
        for index, source in enumerate(sources):
            outcome = self._check(cur, source, index, states)
            if isinstance(outcome, SourceResult):
                self._done(results, index, outcome)
            else:
                ready.append(outcome)
        batch = [r for r in ready if self._fast(r) and r.source.known is None and r.index not in self.one_by_one]
        if len(batch) > 1:
            self.current = [r.index for r in batch]
            try:
                self._load_native(cur, batch)
            except FastPathUnavailable:
                self.one_by_one.update(self.current)  # nothing was written; each file finds its own way
                batch = []
        batched = {item.index for item in batch} if len(batch) > 1 else set()
        for item in ready:
            if item.index in batched:
                self._done(results, item.index, item.result)
                continue
            self.current = [item.index]
            self._done(results, item.index, self._load_one(cur, item))
        return [results[index] for index in range(len(sources))]

    def _done(self, results: dict[int, SourceResult], index: int, result: SourceResult) -> None:
        results[index] = result
        if self._on_source is not None and index not in self._reported:
            self._reported.add(index)
            self._on_source(result)

    def _fast(self, item: _Ready) -> bool:
        return item.index not in self.python_only and _fast_path_candidate(item.source.module, item.source.path)

    def _check(
        self, cur: duckdb.DuckDBPyConnection, source: Source, index: int, states: dict[str, SourceState]
    ) -> SourceResult | _Ready:
        """Whether the source changed since its last load: its result if not, what to read if so."""
        path, module = source.path, source.module
        if source.known is not None:  # the caller decided what to read and what to record
            given = source.result or SourceResult(str(path), module.NAME, "loaded")
            result = replace(given, skipped=list(given.skipped))  # a fresh copy for each try of the transaction
            return _Ready(index, source, source.known, result, None)
        src = source_info(path, module, self.run, self.options)
        prev = states.get(src.source_id)
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
        return _Ready(index, source, src, result, digest)

    def _load_native(self, cur: duckdb.DuckDBPyConnection, items: Sequence[_Ready]) -> None:
        """Load native JSONL files through DuckDB in one set of statements; fills in their results."""
        files = [NativeFile(item.src, str(item.read_from), item.source.path.stem) for item in items]
        load_native_jsonl(
            cur,
            files,
            split=self.options.split,
            append=items[0].source.append_to is not None,
            whole_file=any(item.index in self.whole_file for item in items),
        )
        srcs = [replace(i.src, content_hash=i.digest.result()) if i.digest else i.src for i in items]
        for item, (n_traj, n_steps) in zip(items, finish_sources(cur, srcs, {}, checked=True), strict=True):
            item.result.fast_path = True
            self._count(item, n_traj, n_steps)

    def _load_one(self, cur: duckdb.DuckDBPyConnection, item: _Ready) -> SourceResult:
        if self._fast(item):
            try:
                self._load_native(cur, [item])
                return item.result
            except FastPathUnavailable:
                pass  # nothing was written: the Python reader takes the file in this same transaction
        path, read_from = item.source.path, item.read_from
        with _errors_name(read_from, path):
            rollouts = item.source.module.read(read_from, self.options)
        item.result.skipped.extend(note.replace(str(read_from), str(path)) for note in rollouts.skipped)
        src = replace(item.src, content_hash=item.digest.result()) if item.digest else item.src
        append = item.source.append_to is not None
        self._count(item, *load_rollouts(cur, src, rollouts, rollouts.default_run or path.stem, append=append))
        return item.result

    @staticmethod
    def _count(item: _Ready, n_traj: int, n_steps: int) -> None:
        if item.source.append_to is not None:  # report what this load added, not the source's new totals
            n_traj, n_steps = n_traj - item.source.append_to.n_trajectories, n_steps - item.source.append_to.n_steps
        item.result.n_trajectories, item.result.n_steps = n_traj, n_steps


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
