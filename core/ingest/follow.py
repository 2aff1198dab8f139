"""Following growing log files: which formats may be appended to, what a file gained, and the poll loop.

Trainers append one rollout per line while they run. Re-reading such a file in full on every poll
costs time proportional to the whole file, so :mod:`core.ingest.runner` reads only what it gained:

- **Which formats.** :data:`LINE_APPENDABLE` lists the formats whose new lines can be loaded on their
  own (the rule is in its docstring). Every other format is replaced in full when its file changes.
- **What it gained.** A load of a line-appendable file records the byte offset just past the last
  line read, the number of lines before it, and :func:`prefix_fingerprint` of the 64 KiB before
  it. :func:`read_growth` checks that fingerprint and returns the new complete lines, or None when the
  loaded prefix changed (rewritten, truncated, or its unterminated last line extended).
- **Partial lines.** In follow mode (:data:`PARTIAL_TAIL`) a line counts once its newline is written;
  bytes after the last newline are a trainer mid-write and wait for the next poll.
- **Line numbers.** Adapters read paths, not byte ranges, and several derive trajectory ids from line
  numbers. The new lines are therefore written to a snapshot file that mirrors the real path (so
  names, folders and companion files look the same) and starts with one blank line per line already
  loaded: every line reader skips blank lines, so the new lines keep their real numbers.
- **The loop.** :class:`Follower` calls a poll function every few seconds until stopped; the CLI runs
  it in the foreground, the dashboard on a background thread (``dashboard/follower.py``).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions

if TYPE_CHECKING:
    from core.ingest.runner import SourceResult

PARTIAL_TAIL = "allow_partial_tail"
"""``AdapterOptions.extra`` key that turns on follow mode (the name adapters already honour)."""

FINGERPRINT_BYTES = 64 * 1024
"""How much of a loaded prefix, counted back from its end, must be unchanged for a file to be appended to."""


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


def prefix_fingerprint(before: bytes, end: int) -> str:
    """Fingerprint of a loaded prefix of ``end`` bytes, given (at least) its last :data:`FINGERPRINT_BYTES`."""
    digest = hashlib.blake2b(before[-FINGERPRINT_BYTES:], digest_size=16)
    digest.update(end.to_bytes(8, "little"))
    return digest.hexdigest()


def bytes_before(path: Path, end: int) -> bytes:
    """The :data:`FINGERPRINT_BYTES` bytes of ``path`` before offset ``end`` (fewer near the start)."""
    with open(path, "rb") as fh:
        fh.seek(max(0, end - FINGERPRINT_BYTES))
        return fh.read(end - max(0, end - FINGERPRINT_BYTES))


@dataclass(frozen=True)
class FileScan:
    """One pass over a whole file: its digest, size, newline count and where its last complete line ends."""

    digest: str
    size: int
    newlines: int
    complete_end: int


def scan_file(path: Path, copy_to: Path | None = None) -> FileScan:
    """Hash ``path`` and count its newlines in one pass, optionally copying exactly the bytes seen to ``copy_to``.

    The copy is what makes a file being appended to safe to parse: the digest, the line count and
    the bytes parsed all describe the same snapshot.
    """
    digest = hashlib.sha1(usedforsecurity=False)  # content identity, not security: the fastest hashlib digest here
    newlines = complete_end = size = 0
    with open(path, "rb") as fh, open(copy_to or os.devnull, "wb") as copy:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
            if copy_to is not None:
                copy.write(chunk)
            if (count := chunk.count(b"\n")) > 0:
                newlines += count
                complete_end = size + chunk.rfind(b"\n") + 1
            size += len(chunk)
    return FileScan(digest.hexdigest(), size, newlines, complete_end)


@dataclass(frozen=True)
class Growth:
    """What a file gained after its loaded prefix of ``start`` bytes."""

    start: int
    before: bytes
    """The bytes just before ``start`` (they matched the stored fingerprint)."""
    complete: bytes
    """The new bytes to load: up to the last newline in follow mode, else all of them."""
    size: int
    mtime: float

    @property
    def end(self) -> int:
        """Offset just past the bytes to load."""
        return self.start + len(self.complete)

    @property
    def left_for_later(self) -> int:
        """Bytes after the last newline, left for the next poll."""
        return self.size - self.end


def read_growth(path: Path, start: int, fingerprint: str, *, following: bool) -> Growth | None:
    """Read what ``path`` gained after ``start``, or None when the loaded prefix changed.

    Args:
        path: The file.
        start: Offset just past the last line loaded.
        fingerprint: :func:`prefix_fingerprint` recorded at that load.
        following: Keep bytes after the last newline for later (follow mode).
    """
    with open(path, "rb") as fh:
        mtime = os.fstat(fh.fileno()).st_mtime
        fh.seek(max(0, start - FINGERPRINT_BYTES))
        before = fh.read(start - max(0, start - FINGERPRINT_BYTES))
        if len(before) != min(start, FINGERPRINT_BYTES) or prefix_fingerprint(before, start) != fingerprint:
            return None
        new = fh.read()  # to the end as it is now; size and bytes then describe the same moment
    if before and not before.endswith(b"\n") and new[:1] not in (b"", b"\n"):
        return None  # the last loaded line had no newline and was extended, so its record changed
    complete = new[: new.rfind(b"\n") + 1] if following else new
    return Growth(start=start, before=before, complete=complete, size=start + len(new), mtime=mtime)


def has_content(path: Path, end: int) -> bool:
    """Whether the first ``end`` bytes of ``path`` hold anything but whitespace (a new file may not, yet)."""
    with open(path, "rb") as fh:
        position = 0
        while position < end:
            chunk = fh.read(min(1 << 20, end - position))
            if not chunk:
                return False
            if chunk.strip():
                return True
            position += len(chunk)
    return False


def snapshot_path(root: Path, path: Path) -> Path:
    """Where a snapshot of ``path`` goes so that its adapter sees the same file name and folder names.

    Adapters derive run names, splits and iterations from the file name and its folders and read
    companion files next to it, so the snapshot mirrors the absolute path under ``root`` and links the
    companions (e.g. verifiers' ``metadata.json``) beside it.
    """
    real = path.resolve()
    snapshot = root / "snapshot" / real.relative_to(real.anchor)
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    for sibling in real.parent.iterdir():
        if sibling != real and registry.is_companion(sibling):
            (snapshot.parent / sibling.name).symlink_to(sibling)
    return snapshot


@contextmanager
def errors_name(snapshot: Path, path: Path) -> Iterator[None]:
    """Report an error found in a snapshot against the real file (line numbers already agree)."""
    try:
        yield
    except IngestError as exc:
        if snapshot == path or exc.path != str(snapshot):
            raise
        raise IngestError(str(path), exc.problem.replace(str(snapshot), str(path)), exc.record, exc.field) from exc


def without_partial_tail(options: AdapterOptions) -> AdapterOptions:
    """``options`` for reading complete lines only: a bad line there is a real error, not a trainer mid-write."""
    extra = {key: value for key, value in options.extra.items() if key != PARTIAL_TAIL}
    return AdapterOptions(splitter=options.splitter, split=options.split, extra=extra)


def tail_note(path: Path, n_bytes: int) -> str:
    """The note shown for bytes left after the last newline."""
    return f"{path}: {n_bytes} bytes after the last newline wait for the next poll (a line counts once complete)"


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
        """Sources that wrote rows this poll."""
        return [s for s in self.sources if s.status in ("loaded", "replaced", "appended")]

    @property
    def n_steps(self) -> int:
        """Steps written this poll."""
        return sum(s.n_steps for s in self.landed)

    @property
    def n_trajectories(self) -> int:
        """Trajectories written this poll."""
        return sum(s.n_trajectories for s in self.landed)


class Follower:
    """Calls ``poll`` every ``interval`` seconds until :meth:`stop`; safe to stop from another thread.

    Args:
        poll: One poll, e.g. ``lambda: runner.poll_once(store, paths, options=options)``.
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
