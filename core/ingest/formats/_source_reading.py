"""Reads JSON and JSON-lines sources with errors that name the file, line and field (helper for A2's adapters).

Also offers the cheap checks ``detect`` functions run on a file's first 64 KiB, where the first JSON
record may be cut off: :func:`first_json_object` parses it when complete, :func:`head_mentions_keys`
falls back to looking for ``"key":`` tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions


def decode_utf8(data: bytes, path: Path | str, locator: int | str | None = None) -> str:
    """Decode ``data`` as UTF-8, raising an IngestError with the byte offset of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_byte = data[exc.start : exc.start + 1]
        raise IngestError(str(path), f"not valid UTF-8 (byte {exc.start}: {bad_byte!r})", locator) from exc


def parse_json_text(text: str, path: Path | str, locator: int | str | None = None) -> Any:
    """Parse JSON text, raising an IngestError that says where parsing stopped."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise IngestError(str(path), problem, locator) from exc
    except RecursionError as exc:  # pathologically nested input must not crash the process
        raise IngestError(str(path), "JSON nested too deeply", locator) from exc


def load_json_file(path: Path) -> Any:
    """Read a whole-file JSON document (UTF-8)."""
    return parse_json_text(decode_utf8(path.read_bytes(), path), path)


def read_jsonl(path: Path, options: AdapterOptions) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Read a JSON-lines file into ``(line number, object)`` pairs.

    Blank lines are ignored. A line that is not a JSON object is an error naming its 1-based line,
    except the LAST line when ``options.extra["allow_partial_tail"]`` is true: trainers append lines
    while running, so a cut-off final line is skipped and reported instead.

    Args:
        path: The file.
        options: Adapter options (``extra["allow_partial_tail"]``).

    Returns:
        The records and the notes on skipped lines (for ``Rollouts.skipped``).

    Raises:
        IngestError: Bad UTF-8, invalid JSON, or a line that is not an object.
    """
    lines = path.read_bytes().split(b"\n")
    last_content = max((index for index, raw in enumerate(lines) if raw.strip()), default=-1)
    records: list[tuple[int, dict[str, Any]]] = []
    skipped: list[str] = []
    for index, raw in enumerate(lines):
        if not raw.strip():
            continue
        line_number = index + 1
        try:
            record = parse_json_text(decode_utf8(raw, path, line_number), path, line_number)
        except IngestError:
            if index == last_content and options.extra.get("allow_partial_tail"):
                skipped.append(f"{path}:{line_number}: skipped a truncated last line ({len(raw)} bytes)")
                continue
            raise
        if not isinstance(record, dict):
            raise IngestError(str(path), f"expected a JSON object per line, got {type(record).__name__}", line_number)
        records.append((line_number, record))
    if not records:
        raise IngestError(str(path), "file holds no records")
    return records, skipped


def text_digest(text: str) -> str:
    """A short stable digest of ``text``, used as a readable group id for groups keyed by identical prompts."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def prefix_states(prompt: str, steps: list[str]) -> list[str]:
    """States for steps split from one response: the prompt plus every earlier step, one per line.

    The policy saw the prompt and its own earlier steps before writing step k; identical prefixes in a
    group then share a state (GiGPO-style anchors). Same convention as the other single-response adapters.
    """
    lead = prompt if not prompt or prompt[-1].isspace() else prompt + "\n"
    return [lead + "\n".join(steps[:position]) for position in range(len(steps))]


def first_json_object(head: bytes) -> dict[str, Any] | None:
    """Return the first line of ``head`` parsed as a JSON object, or None if it is cut off or not an object."""
    first_line = head.split(b"\n", 1)[0]
    try:
        value = json.loads(first_line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def head_mentions_keys(head: bytes, keys: Iterable[str]) -> list[str]:
    """Return the keys among ``keys`` that do NOT appear as ``"key":`` in ``head`` (empty = all present)."""
    text = head.decode("utf-8", errors="replace")
    return [key for key in keys if not re.search(rf'"{re.escape(key)}"\s*:', text)]
