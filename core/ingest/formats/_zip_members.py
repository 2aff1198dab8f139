"""Reads zip archive members safely: every compression method Inspect writes, streamed, under size limits.

Python 3.11's :mod:`zipfile` reads stored, deflate, bzip2 and LZMA members. Current Inspect AI writes
``.eval`` members with Zstandard (zip method 93), which this module decompresses with the ``zstandard``
package, across frames (Inspect splits large members into several frames). The method is looked up per
member, so an archive mixing methods reads too; any other method is a one-line error naming the file,
the member and the method.

Limits (a small archive can declare or hide gigabytes: a zip bomb). Before anything is decompressed,
each member's declared size is checked against the per-member limit and the declared total against the
per-file limit. While decompressing, output is counted in chunks and a member that expands beyond its
declared size is refused as corrupt, so memory never exceeds what the limits allow. The limits come
from ``AdapterOptions.extra`` (``max_member_mb``, ``max_archive_mb``; CLI ``--max-member-mb`` and
``--max-archive-mb``) and every refusal says which limit was hit and how to raise it.

Private (leading underscore) so the registry does not mistake it for an adapter.
"""

from __future__ import annotations

import io
import lzma
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import IngestError

DEFAULT_MEMBER_MB = 256
"""Default cap on one member's uncompressed size, in MiB."""

DEFAULT_ARCHIVE_MB = 1024
"""Default cap on the uncompressed size of all members read from one archive, in MiB."""

ZSTANDARD = 93
"""Zip method number of Zstandard (APPNOTE 4.4.5), which :mod:`zipfile` in Python < 3.14 cannot read."""

METHOD_NAMES: dict[int, str] = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
    ZSTANDARD: "zstandard",
    9: "deflate64",
    95: "xz",
    96: "jpeg",
    97: "wavpack",
    98: "ppmd",
    99: "aes-encrypted",
}

_CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_MAGIC = b"PK\x03\x04"
_MIB = 1 << 20


@dataclass(frozen=True)
class SizeLimits:
    """Uncompressed-size caps in bytes, per member and per archive."""

    member: int = DEFAULT_MEMBER_MB * _MIB
    archive: int = DEFAULT_ARCHIVE_MB * _MIB

    @classmethod
    def from_options(cls, extra: dict[str, Any], path: Path) -> SizeLimits:
        """Read ``max_member_mb`` / ``max_archive_mb`` from adapter options (positive numbers of MiB)."""
        values = []
        for key, default in (("max_member_mb", DEFAULT_MEMBER_MB), ("max_archive_mb", DEFAULT_ARCHIVE_MB)):
            raw = extra.get(key, default)
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not raw > 0:
                raise IngestError(str(path), f"option {key} must be a positive number of MiB, got {raw!r}")
            values.append(int(raw * _MIB))
        return cls(member=values[0], archive=values[1])


def _size(n: int) -> str:
    """A byte count in words (``1.6 GB``)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def check_limits(path: Path, infos: Iterable[zipfile.ZipInfo], limits: SizeLimits) -> None:
    """Refuse, before decompressing anything, members or a total whose declared size is over the limits.

    Raises:
        IngestError: Naming the member (or the file) and the limit, and how to raise it.
    """
    total = 0
    for info in infos:
        if info.file_size > limits.member:
            problem = (
                f"uncompressed size {_size(info.file_size)} is over the per-member limit of "
                f"{limits.member // _MIB} MiB (raise it with --max-member-mb)"
            )
            raise IngestError(str(path), problem, info.filename)
        total += info.file_size
    if total > limits.archive:
        problem = (
            f"members would expand to {_size(total)}, over the per-file limit of {limits.archive // _MIB} MiB "
            "(raise it with --max-archive-mb)"
        )
        raise IngestError(str(path), problem)


def _zstandard_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """Decompress a Zstandard member from its raw bytes, never past its declared size, and check its CRC."""
    import zstandard

    handle = archive.fp
    if handle is None:
        raise IngestError(str(path), "archive is closed", info.filename)
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
        raise IngestError(str(path), "corrupt zip member (bad local header)", info.filename)
    fields = _LOCAL_HEADER.unpack(header)
    handle.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
    compressed = handle.read(info.compress_size)
    if len(compressed) != info.compress_size:
        raise IngestError(str(path), "corrupt zip member (truncated data)", info.filename)
    output = bytearray()
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(compressed), read_across_frames=True) as reader:
            while chunk := reader.read(_CHUNK):
                output += chunk
                if len(output) > info.file_size:
                    declared = _size(info.file_size)
                    problem = f"member expands beyond its declared size of {declared} (corrupt or a zip bomb)"
                    raise IngestError(str(path), problem, info.filename)
    except zstandard.ZstdError as exc:
        raise IngestError(str(path), f"corrupt Zstandard data ({exc})", info.filename) from exc
    if len(output) != info.file_size or zlib.crc32(output) != info.CRC:
        raise IngestError(str(path), "corrupt zip member (size or CRC-32 does not match)", info.filename)
    return bytes(output)


def _zipfile_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """Read a member that :mod:`zipfile` decompresses, in chunks (it stops at the declared size, checks the CRC)."""
    output = bytearray()
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            output += chunk
            if len(output) > info.file_size:  # zipfile stops at file_size; kept as a guard all the same
                raise IngestError(str(path), "member expands beyond its declared size", info.filename)
    return bytes(output)


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """Return one member's uncompressed bytes (its declared size was checked by :func:`check_limits`).

    Raises:
        IngestError: An encrypted member, a compression method that cannot be read (naming it), or
            corrupt data, naming the file and the member.
    """
    method = info.compress_type
    name = METHOD_NAMES.get(method, "unknown")
    if info.flag_bits & 0x1:
        raise IngestError(str(path), "member is encrypted; creditscope reads unencrypted archives only", info.filename)
    try:
        if method == ZSTANDARD:
            return _zstandard_member(archive, info, path)
        if method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
            return _zipfile_member(archive, info, path)
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError, ValueError) as exc:
        raise IngestError(str(path), f"corrupt zip member ({exc})", info.filename) from exc
    supported = ", ".join(METHOD_NAMES[m] for m in (0, 8, 12, 14, ZSTANDARD))
    problem = f"compression method {method} ({name}) is not supported (readable: {supported})"
    raise IngestError(str(path), problem, info.filename)
