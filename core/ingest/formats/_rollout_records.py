"""Reading the records of a source file: JSON lines and whole JSON documents, with exact error locations.

Every adapter reads its source through these functions, so a bad byte, a broken line or a truncated
document is reported the same way everywhere: the file, the 1-based line (or member) and what is wrong.
The ``detect`` helpers at the end work on a file's first 64 KiB, where the first record may be cut off.

Private (leading underscore) so the registry does not mistake it for an adapter.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from core.errors import IngestError
from core.ingest.base import AdapterOptions
from core.ingest.json_stream import first_value, parse_records


def decode_utf8(data: bytes, path: Path | str, locator: int | str | None = None) -> str:
    """Decode ``data`` as UTF-8, or raise an IngestError saying where the first bad byte is.

    Args:
        data: The raw bytes (a whole file, one line or one archive member).
        path: The file the bytes came from.
        locator: The record to name in the error; None names the line of the bad byte within ``data``.

    Returns:
        The decoded text.

    Raises:
        IngestError: The bytes are not valid UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_byte = data[exc.start : exc.start + 1].hex()
        record = locator if locator is not None else data.count(b"\n", 0, exc.start) + 1
        raise IngestError(str(path), f"not valid UTF-8 (byte 0x{bad_byte} at offset {exc.start})", record) from exc


def parse_json(text: str, path: Path | str, locator: int | str | None = None) -> Any:
    """Parse JSON text, raising an IngestError that says where parsing stopped.

    Args:
        text: The JSON text.
        path: The file it came from.
        locator: The record to name (a line number or archive member); None names the line of ``text``
            where parsing failed, so a truncated document points at its end.

    Raises:
        IngestError: Invalid or pathologically nested JSON.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if locator is None:
            raise IngestError(str(path), f"invalid JSON ({exc.msg}, column {exc.colno})", exc.lineno) from exc
        problem = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise IngestError(str(path), problem, locator) from exc
    except RecursionError as exc:  # deeply nested input must not crash the process
        raise IngestError(str(path), "JSON nested too deeply", locator) from exc


def read_bytes(path: Path) -> bytes:
    """Read a whole file, turning OS errors into an IngestError."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(str(path), f"cannot read file ({exc.strerror or exc})") from exc


def load_json_document(path: Path) -> Any:
    """Parse a file holding one JSON document (``.json``, ``.traj``).

    Raises:
        IngestError: The file is unreadable, not UTF-8, empty or not valid JSON; the record is the line
            where decoding or parsing failed.
    """
    text = decode_utf8(read_bytes(path), path)
    if not text.strip():
        raise IngestError(str(path), "file is empty")
    return parse_json(text, path)


class JsonlRecords(NamedTuple):
    """The objects of a record file with their 1-based starting lines, and notes on records skipped on purpose."""

    records: list[tuple[int, dict[str, Any]]]
    skipped: list[str]


def _decode_records_text(data: bytes, path: Path, allow_partial_tail: bool) -> tuple[str, list[str]]:
    """Decode a record file, and the skip note when its last line was cut inside a multi-byte character."""
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        last_line_start = data.rstrip().rfind(b"\n") + 1
        if not (allow_partial_tail and exc.start >= last_line_start):
            decode_utf8(data, path)  # raises, naming the line of the bad byte
        # A trainer mid-write can cut its last line inside a multi-byte character: that line is partial.
        line = data.count(b"\n", 0, last_line_start) + 1
        note = f"{path}:{line}: skipped a partial last line ({len(data) - last_line_start} bytes)"
        return data[:last_line_start].decode("utf-8"), [note]


def read_jsonl(path: Path, options: AdapterOptions) -> JsonlRecords:
    """Read a record file: JSON lines, JSON objects one after another (pretty-printed or not), or a JSON array.

    Every line-oriented adapter reads through this function (via :mod:`core.ingest.json_stream`), so
    PRM800K-style pretty-printed files load as well as JSONL, and errors name the line a record starts on.
    A trainer that is still running may have written only part of its last record. That record alone is
    skipped, with a note, when ``options.extra["allow_partial_tail"]`` is true; any other bad record is an
    error, because silently dropping data from the middle of a file would skew every statistic.

    Args:
        path: The file.
        options: Adapter options (``extra["allow_partial_tail"]`` is honoured).

    Returns:
        The records and the skip notes (for ``Rollouts.skipped``).

    Raises:
        IngestError: An unreadable or empty file, bad UTF-8, invalid JSON, or a record that is not an
            object; the error names the line.
    """
    allow_partial_tail = bool(options.extra.get("allow_partial_tail"))
    text, skipped = _decode_records_text(read_bytes(path), path, allow_partial_tail)
    parsed = parse_records(text, str(path), allow_partial_tail=allow_partial_tail)
    records: list[tuple[int, dict[str, Any]]] = []
    for line_number, record in parsed.records:
        if not isinstance(record, dict):
            problem = f"expected a JSON object per record, got {type(record).__name__}"
            raise IngestError(str(path), problem, line_number)
        records.append((line_number, record))
    if not records:
        raise IngestError(str(path), "file holds no records")
    return JsonlRecords(records, skipped + parsed.skipped)


def first_record(head: bytes) -> dict[str, Any] | None:
    """Parse the first record of ``head`` (a JSON line, a pretty-printed object or an array's first element).

    The registry hands ``detect`` a head that holds the whole first record (see
    :func:`core.ingest.json_stream.first_value_incomplete`), up to a size limit; when the record is still
    cut off, this returns None and callers fall back to :func:`head_lacks_keys`.
    """
    value = _first_value_of(head)
    return dict(value) if isinstance(value, dict) else None  # a copy: one caller's edit must not reach the next


@functools.lru_cache(maxsize=4)
def _first_value_of(head: bytes) -> Any:
    """:func:`first_value` of a head, decoded once for all the adapters that ``detect`` a file in turn.

    A dozen adapters look at the same head; parsing it once per file keeps detection cheap when a folder
    holds thousands of small files. (``bytes`` caches its hash, so the lookup does not rehash the head.)
    """
    return first_value(head.decode("utf-8", errors="replace"))


def head_record(
    path: Path, head: bytes, required: Sequence[str] = (), suffix: str | None = ".jsonl"
) -> dict[str, Any] | str:
    """The first record of a JSON-lines head, or why a ``detect`` function should decline the file.

    Args:
        path: The file (its suffix is checked when ``suffix`` is given).
        head: The file's first bytes.
        required: Keys the first record must have.
        suffix: The file suffix the format uses, or None to accept any.

    Returns:
        The record when the file qualifies, else the reason (a string) it does not.
    """
    if suffix is not None and path.suffix != suffix:
        return f"not a {suffix} file"
    record = first_record(head)
    if record is None:
        return "first record is not a JSON object"
    missing = [key for key in required if key not in record]
    return f"first record lacks keys {'/'.join(missing)}" if missing else record


def head_lacks_keys(head: bytes, keys: Sequence[str]) -> list[str]:
    """Return the keys among ``keys`` that do NOT appear as ``"key":`` in ``head`` (empty: all present).

    A text search, for heads whose first record is too long to parse.
    """
    text = head.decode("utf-8", errors="replace")
    return [key for key in keys if not re.search(rf'"{re.escape(key)}"\s*:', text)]


def head_keys_reason(path: Path, head: bytes, keys: Sequence[str], suffix: str = ".jsonl") -> str | None:
    """A ``detect`` reason for files recognised by suffix and key names in the head; None to accept."""
    if path.suffix != suffix:
        return f"not a {suffix} file"
    missing = head_lacks_keys(head, keys)
    return f"first record lacks keys {', '.join(missing)}" if missing else None
