"""``creditscope ingest``: plan the sources, read each with its adapter, load them in one transaction.

One command is one transaction: either every file it names lands, or (on the first bad file) none
does and the error names that file, the record and the field. Re-ingesting an unchanged file is a
no-op (size and mtime first, then a content hash); a changed file replaces exactly its earlier rows.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import duckdb

from core.ingest import registry
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats import native
from core.store.database import Store
from core.store.load import SourceInfo, load_rollouts, previous_state, touch_source
from core.store.native_jsonl import FastPathUnavailable, drop_stage, load_staged, stage_native_jsonl


@dataclass
class SourceResult:
    """What happened to one file."""

    path: str
    format: str
    status: str  # "loaded", "replaced" or "unchanged"
    n_trajectories: int = 0
    n_steps: int = 0
    fast_path: bool = False
    skipped: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    """Per-file results of one ingest command."""

    sources: list[SourceResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Files found in folders but skipped because no adapter reads them (READMEs, configs...)."""

    @property
    def n_steps(self) -> int:
        """Steps written by this command (unchanged files count 0)."""
        return sum(s.n_steps for s in self.sources)

    @property
    def n_trajectories(self) -> int:
        """Trajectories written by this command."""
        return sum(s.n_trajectories for s in self.sources)


def file_digest(path: Path) -> str:
    """BLAKE2b of the file's bytes: decides whether a re-ingested file really changed."""
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
) -> IngestReport:
    """Load files, folders or globs into ``store``, all or nothing.

    Args:
        store: An open, writable store.
        paths: What the user typed.
        fmt: ``"auto"`` or a format name (see ``creditscope formats``).
        run: Put everything into this run instead of the names the sources carry.
        options: Adapter options (step splitter, forced split, adapter-specific extras).
        on_source: Called after each file, e.g. to advance a progress bar.

    Raises:
        core.errors.IngestError: A file is malformed; nothing of this command was written.
        core.errors.FormatNotDetected: No adapter recognises a file (the message says why each declined).
    """
    options = options or AdapterOptions()
    report = IngestReport()
    plan = registry.plan_sources(paths, fmt, notes=report.notes)
    with store.exclusive():
        # Phase 1, outside any transaction: find changed files and parse them. DuckDB staging tables
        # must exist before the writer's transaction starts, or its snapshot would not see them.
        prepared = [_prepare(store, path, module, run, options) for path, module in plan]
        try:
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


def _prepare(store: Store, path: Path, module: ModuleType, run: str | None, options: AdapterOptions) -> _Prepared:
    stat = path.stat()
    source_id = source_id_for(path, run)
    with store.reader() as cur:
        prev = previous_state(cur, source_id)
    if prev is not None and prev[1] == stat.st_size and prev[2] == stat.st_mtime:
        return _Prepared(SourceResult(str(path), module.NAME, "unchanged"))
    digest = file_digest(path)
    if prev is not None and prev[0] == digest:
        with store.writer() as cur:
            touch_source(cur, source_id, stat.st_mtime)
        return _Prepared(SourceResult(str(path), module.NAME, "unchanged"))
    src = SourceInfo(
        source_id=source_id,
        path=str(path.resolve()),
        format=module.NAME,
        run_override=run,
        content_hash=digest,
        size=stat.st_size,
        mtime=stat.st_mtime,
        options={"splitter": options.splitter, "split": options.split, **options.extra},
    )
    result = SourceResult(str(path), module.NAME, "replaced" if prev is not None else "loaded")
    if module is native and path.suffix in (".jsonl", ".ndjson"):
        token = uuid.uuid4().hex[:12]
        try:
            with store.reader() as stage:
                stage_native_jsonl(stage, src.path, token, run, path.stem)
            result.fast_path = True
            return _Prepared(result, src, stage_token=token)
        except FastPathUnavailable:
            pass  # the validating reader below either parses the file or names the bad line and field
    rollouts = module.read(path, options)
    result.skipped = list(rollouts.skipped)
    return _Prepared(result, src, rollouts=rollouts)


def _load(cur: duckdb.DuckDBPyConnection, item: _Prepared) -> SourceResult:
    result = item.result
    if item.src is None:
        return result
    if item.stage_token is not None:
        result.n_trajectories, result.n_steps = load_staged(cur, item.src, item.stage_token)
    else:
        assert item.rollouts is not None
        default_run = item.rollouts.default_run or Path(result.path).stem
        result.n_trajectories, result.n_steps = load_rollouts(cur, item.src, item.rollouts, default_run)
    return result
