"""Byte offsets of line-oriented files for the follow layer: fingerprints, growth, snapshots.

A load that read a file up to a newline remembers the offset, the number of lines before it and a
fingerprint of the 64 KiB before it; :func:`read_growth` later returns only the complete lines added
after that offset, or None when the loaded prefix changed. Snapshots let adapters, which read paths,
parse exactly the bytes the bookkeeping describes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from core.ingest import registry
from core.ingest.runner import new_digest

FINGERPRINT_BYTES = 64 * 1024
"""How much of a loaded prefix, counted back from its end, must be unchanged for a file to be appended to."""


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
    digest = new_digest()  # the same digest as a plain ingest records, so the two recognise an unchanged file
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
    """The new bytes to load: up to the last newline."""
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


def read_growth(path: Path, start: int, fingerprint: str) -> Growth | None:
    """Read what ``path`` gained after ``start``, or None when the loaded prefix changed.

    Args:
        path: The file.
        start: Offset just past the last line loaded.
        fingerprint: :func:`prefix_fingerprint` recorded at that load.
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
    complete = new[: new.rfind(b"\n") + 1]  # bytes after the last newline wait for the next poll
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


def tail_note(path: Path, n_bytes: int) -> str:
    """The note shown for bytes left after the last newline."""
    return f"{path}: {n_bytes} bytes after the last newline wait for the next poll (a line counts once complete)"
