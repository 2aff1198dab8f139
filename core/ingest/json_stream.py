"""One reader for record files: JSON lines, pretty-printed JSON values one after another, or a JSON array.

Trainers and datasets write records three ways: one compact object per line (JSONL), objects written
one after another with indentation (PRM800K's own example files), or one JSON array. Every line-oriented
adapter reads its file through :func:`parse_records`, so all three load, and an error always names the
line where the bad record starts (and, when the problem is further down a pretty-printed record, the line
and column where parsing stopped).

Records are numbered by the line they start on: adapters derive trajectory ids from that number, so two
records starting on one line (a minified array, ``{...}{...}``) are refused with a one-line error rather
than given ids that collide.

:func:`first_value_incomplete` tells the registry whether a file's head ends inside its first record,
so detection can read on until it holds a whole record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from core.errors import IngestError

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_BOM = "\ufeff"


@dataclass
class ParsedRecords:
    """The values of a record file with the 1-based line each starts on, and notes on a skipped partial tail."""

    records: list[tuple[int, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    layout: str = "lines"
    """``"lines"`` (one record per line), ``"values"`` (records spanning lines) or ``"array"``."""


class _Lines:
    """Maps string offsets to 1-based line numbers, counting newlines incrementally (offsets only grow)."""

    def __init__(self, text: str):
        self.text = text
        self.offset = 0
        self.line = 1

    def at(self, position: int) -> int:
        if position < self.offset:  # rare: an error position before the last record start
            return self.text.count("\n", 0, position) + 1
        self.line += self.text.count("\n", self.offset, position)
        self.offset = position
        return self.line


def _skip_whitespace(text: str, position: int) -> int:
    return _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]  # always matches


def _ran_out(text: str, error: json.JSONDecodeError) -> bool:
    """Whether parsing failed because the text ended (a record cut off), not because of a bad character."""
    end = len(text.rstrip())
    if error.pos >= end:
        return True
    # An unterminated string reports where the string started; it is cut off when no line break follows.
    return error.msg.startswith("Unterminated string") and "\n" not in text[error.pos : end]


def parse_records(
    text: str, path: str, *, allow_partial_tail: bool = False, objects_only: bool = True
) -> ParsedRecords:
    """Parse every JSON value of ``text`` (JSONL, concatenated values or one array) with its starting line.

    Args:
        text: The decoded file.
        path: The file, for errors.
        allow_partial_tail: Skip (with a note) a last record that was cut off, as a trainer still writing
            leaves it; otherwise that is an error with a hint.
        objects_only: Refuse a record that is not a JSON object.

    Returns:
        The records and skip notes.

    Raises:
        IngestError: Invalid JSON (naming the record's first line), two records on one line, or data after
            a top-level array.
    """
    parsed = ParsedRecords()
    lines = _Lines(text)
    last_line = text.rstrip().count("\n") + 1
    position = _skip_whitespace(text, 1 if text.startswith(_BOM) else 0)
    in_array = text.startswith("[", position)
    if in_array:
        parsed.layout = "array"
        position = _skip_whitespace(text, position + 1)
        if text.startswith("]", position):
            return _after_array(text, position + 1, path, lines, parsed)
    previous_line = 0
    while position < len(text):
        start_line = lines.at(position)
        try:
            value, end = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            cut_off = start_line == last_line or _ran_out(text, exc)
            if cut_off and allow_partial_tail:
                size = len(text[position:].encode("utf-8", errors="replace"))
                parsed.skipped.append(f"{path}:{start_line}: skipped a partial last record ({size} bytes)")
                return parsed
            error_line = lines.at(exc.pos) if exc.pos >= position else start_line
            where = f"line {error_line} column {exc.colno}" if error_line != start_line else f"column {exc.colno}"
            hint = " (the last record looks truncated; allow_partial_tail skips it)" if cut_off else ""
            raise IngestError(path, f"invalid JSON ({exc.msg} at {where}){hint}", start_line) from exc
        except RecursionError as exc:  # deeply nested input must not crash the process
            raise IngestError(path, "JSON nested too deeply", start_line) from exc
        if objects_only and not isinstance(value, dict):
            problem = f"expected a JSON object per record, got {type(value).__name__}"
            raise IngestError(path, problem, start_line)
        if start_line == previous_line:
            problem = (
                "a second JSON record starts on this line; records are named by their line, so write one record"
                " per line (or pretty-printed, each starting on a new line)"
            )
            raise IngestError(path, problem, start_line)
        previous_line = start_line
        parsed.records.append((start_line, value))
        if text.count("\n", position, end) and parsed.layout == "lines":
            parsed.layout = "values"
        position = _skip_whitespace(text, end)
        if in_array:
            if text.startswith("]", position):
                return _after_array(text, position + 1, path, lines, parsed)
            if position < len(text) and not text.startswith(",", position):
                found = text[position : position + 1]
                raise IngestError(path, f"expected ',' or ']' in the JSON array, found {found!r}", lines.at(position))
            position = _skip_whitespace(text, position + 1)
    if in_array:  # the text ended inside the array
        if allow_partial_tail:
            parsed.skipped.append(f"{path}: the JSON array is not closed yet (a trainer still writing?)")
            return parsed
        raise IngestError(path, "the JSON array is not closed (missing ']')", lines.at(len(text)))
    return parsed


def _after_array(text: str, position: int, path: str, lines: _Lines, parsed: ParsedRecords) -> ParsedRecords:
    """Check that nothing but whitespace follows a top-level array."""
    position = _skip_whitespace(text, position)
    if position < len(text):
        raise IngestError(path, "unexpected data after the JSON array", lines.at(position))
    return parsed


def first_value(text: str) -> Any:
    """The first JSON value of ``text`` (a record file's head), the first element of a top-level array.

    Returns:
        The value, or None when the head holds no complete first value.
    """
    position = _skip_whitespace(text, 1 if text.startswith(_BOM) else 0)
    if text.startswith("[", position):
        position = _skip_whitespace(text, position + 1)
    try:
        return _DECODER.raw_decode(text, position)[0]
    except (json.JSONDecodeError, RecursionError):
        return None


def first_value_incomplete(head: bytes) -> bool:
    """Whether ``head`` starts a one-line JSON record (or array) that the end of ``head`` cuts off.

    The registry reads on while this holds, so ``detect`` functions see a whole first record even when
    it is longer than the usual head (a long transcript on the first line of a JSONL file). A record
    that spans lines (a pretty-printed document, such as an Inspect ``.json`` log) is not read on for:
    its key names are near its start, and reading a whole large document twice would only cost time.
    """
    text = head.decode("utf-8", errors="replace")
    position = _skip_whitespace(text, 1 if text.startswith(_BOM) else 0)
    if not text.startswith(("{", "["), position) or "\n" in text[position:].rstrip():
        return False
    if text.startswith("[", position):
        position = _skip_whitespace(text, position + 1)
        if position >= len(text):
            return True
    try:
        _DECODER.raw_decode(text, position)
    except json.JSONDecodeError as exc:
        return _ran_out(text, exc)
    except RecursionError:
        return False
    return False
