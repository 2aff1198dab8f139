"""Exceptions with messages a user can act on: they name the file, the record and the field."""

from __future__ import annotations


class CreditscopeError(Exception):
    """Base class for errors creditscope reports to users."""


def _one_line(text: str) -> str:
    """``text`` with its line breaks folded into single spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip()) if "\n" in str(text) else text


class IngestError(CreditscopeError):
    """A source could not be ingested. Nothing from it was written.

    The message reads ``file:record: field: problem`` so it can be pasted into an editor's
    "go to line" box, e.g. ``rollouts.jsonl:1832: steps[3].reward: expected number, got "abc"``.

    Attributes:
        path: The file that failed.
        record: 1-based line number for line-oriented files, or a record locator such as
            ``samples/3_epoch_1.json``; None when the problem concerns the whole file.
        field: Dotted path of the offending field inside the record, or None.
        problem: What is wrong, in words.
    """

    def __init__(self, path: str, problem: str, record: int | str | None = None, field: str | None = None):
        self.path = str(path)
        self.record = record
        self.field = None if field is None else _one_line(field)
        # Problems quote library messages and source values, which may span lines; the error stays one line.
        self.problem = _one_line(problem)
        problem, field = self.problem, self.field
        where = self.path if record is None else f"{self.path}:{record}"
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


class FormatNotDetected(IngestError):
    """No adapter recognised a source; the message lists each adapter tried and why it declined."""


class DatabaseLocked(CreditscopeError):
    """The DuckDB file is held read-write by another process (typically the dashboard)."""


class MissingInput(CreditscopeError):
    """A credit scheme or view needs a column the data does not have; the message says how to get it."""
