"""Finds the format adapters, picks one for each source file, and expands user paths into sources.

Adapters are discovered with :func:`pkgutil.iter_modules` over :mod:`core.ingest.formats`, so a new
format is one new module and no shared list needs editing. A module that fails to import, or lacks
part of the adapter contract, is left out with a warning instead of breaking every other format;
its problem is repeated in :class:`~core.errors.FormatNotDetected` messages so it is not silently lost.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import importlib
import os
import pkgutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from core.errors import CreditscopeError, FormatNotDetected, IngestError
from core.ingest import formats as formats_package
from core.ingest.json_stream import first_value_incomplete

HEAD_BYTES = 64 * 1024
"""How much of a file ``detect`` functions see at least."""

FIRST_RECORD_LIMIT = 32 * 1024 * 1024
"""How far detection reads on to hold a file's whole first record (a long transcript on line one)."""

REQUIRED_ATTRIBUTES: tuple[str, ...] = ("NAME", "PRIORITY", "CHECKED_AGAINST", "detect", "read")

_GLOB_CHARACTERS = frozenset("*?[")


class UnknownFormat(CreditscopeError, ValueError):
    """A ``--format`` name matches no adapter; the message lists the known names."""


@functools.cache
def _discover() -> tuple[tuple[ModuleType, ...], tuple[str, ...]]:
    """Import every adapter module once; return (adapters sorted by priority, problems of broken modules)."""
    modules: list[ModuleType] = []
    problems: list[str] = []
    for info in pkgutil.iter_modules(formats_package.__path__):
        if info.name.startswith("_"):
            continue  # private helpers, not adapters
        qualified = f"{formats_package.__name__}.{info.name}"
        try:
            module = importlib.import_module(qualified)
        except Exception as exc:  # one broken adapter must not disable the others
            problems.append(f"{info.name}: failed to import ({type(exc).__name__}: {exc})")
            continue
        missing = [name for name in REQUIRED_ATTRIBUTES if not hasattr(module, name)]
        if missing:
            problems.append(f"{info.name}: lacks {', '.join(missing)}")
            continue
        modules.append(module)
    for problem in problems:
        warnings.warn(f"format adapter left out: {problem}", RuntimeWarning, stacklevel=3)
    # NAME breaks ties so the order never depends on the file system's listing order.
    modules.sort(key=lambda module: (module.PRIORITY, module.NAME))
    return tuple(modules), tuple(problems)


def adapters() -> list[ModuleType]:
    """Return every adapter module, in detection order (lowest ``PRIORITY`` first, then by ``NAME``).

    Returns:
        The adapter modules; a fresh list the caller may modify.
    """
    return list(_discover()[0])


def broken_adapters() -> list[str]:
    """Return one line per adapter module that could not be used (import error or missing names)."""
    return list(_discover()[1])


def get(name: str) -> ModuleType:
    """Return the adapter whose ``NAME`` is ``name``.

    Args:
        name: A format name as given to ``--format``; ``-`` and ``_`` are interchangeable.

    Returns:
        The adapter module.

    Raises:
        UnknownFormat: No adapter has that name; the message lists the known names.
    """
    wanted = name.replace("-", "_")
    for module in _discover()[0]:
        if module.NAME.replace("-", "_") == wanted:
            return module
    known = ", ".join(sorted(module.NAME for module in _discover()[0]))
    raise UnknownFormat(f"unknown format {name!r}; known formats: {known}")


def read_head(path: Path) -> bytes:
    """Return what ``detect`` functions look at: the first :data:`HEAD_BYTES` bytes of ``path``, or more.

    A record file whose first record does not end within that many bytes (a JSONL line holding a long
    transcript) is read on, doubling, until the head holds the whole first record, the file ends, or
    :data:`FIRST_RECORD_LIMIT` is reached; detection then judges a whole record, never a cut-off one.
    """
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        while len(head) < FIRST_RECORD_LIMIT and first_value_incomplete(head):
            more = handle.read(min(len(head), FIRST_RECORD_LIMIT - len(head)))
            if not more:
                break
            head += more
        return head


def detect(path: Path | str) -> ModuleType:
    """Return the first adapter, in priority order, whose ``detect`` accepts ``path``.

    Args:
        path: A source file.

    Returns:
        The adapter module that reads the file.

    Raises:
        FormatNotDetected: No adapter accepted the file; the message names every adapter tried and
            the reason each one gave.
        IngestError: The file cannot be opened.
    """
    path = Path(path)
    try:
        head = read_head(path)
    except OSError as exc:
        raise IngestError(str(path), f"cannot read file ({exc.strerror or exc})") from exc
    reasons: list[str] = []
    for module in _discover()[0]:
        try:
            reason = module.detect(path, head)
        except Exception as exc:  # a buggy detect() counts as a decline, with its error shown
            reason = f"detect() raised {type(exc).__name__}: {exc}"
        if reason is None:
            return module
        reasons.append(f"{module.NAME}: {reason}")
    reasons.extend(f"(not loaded) {problem}" for problem in _discover()[1])
    tried = "; ".join(reasons) if reasons else "no adapters are installed"
    raise FormatNotDetected(str(path), f"no adapter recognised this file (use --format to force one). Tried: {tried}")


def companion_patterns() -> tuple[str, ...]:
    """Return the glob patterns of side files that adapters read together with a main file."""
    patterns: list[str] = []
    for module in _discover()[0]:
        patterns.extend(getattr(module, "COMPANIONS", ()))
    return tuple(patterns)


def is_companion(path: Path) -> bool:
    """Return whether ``path``'s file name matches any adapter's ``COMPANIONS`` pattern."""
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in companion_patterns())


def _is_hidden(path: Path, root: Path) -> bool:
    """Whether any part of ``path`` below ``root`` starts with a dot (``.git``, editor swap files, ...)."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def unreadable_folders(root: Path) -> list[Path]:
    """Folders under ``root`` this process may not list (a walk passes over them without a word)."""
    return [
        folder
        for folder in sorted(root.rglob("*"))
        if folder.is_dir() and not _is_hidden(folder, root) and not os.access(folder, os.R_OK | os.X_OK)
    ]


def _expand(raw: str) -> tuple[list[Path], bool]:
    """Expand one user-given path (file, folder or glob) into the files it names, sorted.

    Returns:
        The files, and whether they came from walking a folder (where unrecognised files are skipped).
    """
    path = Path(raw)
    if path.is_file():
        if is_companion(path):
            raise IngestError(raw, "this is a side file read together with its main file; ingest the main file")
        return [path], False
    if path.is_dir():
        files = [
            candidate
            for candidate in sorted(path.rglob("*"))
            if candidate.is_file() and not _is_hidden(candidate, path) and not is_companion(candidate)
        ]
        if not files:
            raise IngestError(raw, "folder holds no files to ingest")
        return files, True
    if _GLOB_CHARACTERS & set(raw):
        matches = [
            Path(match)
            for match in sorted(glob.glob(raw, recursive=True))
            if Path(match).is_file() and not Path(match).name.startswith(".") and not is_companion(Path(match))
        ]
        if not matches:
            raise IngestError(raw, "pattern matches no files")
        return matches, False
    raise IngestError(raw, "no such file or folder")


def expand(raw: str) -> list[Path]:
    """The files one user-given path (file, folder or glob) names, as :func:`plan_sources` finds them, unread.

    Raises:
        IngestError: As :func:`plan_sources` does for a missing path, an empty folder or a glob without match.
    """
    return _expand(raw)[0]


def plan_sources(
    paths: Sequence[str], fmt: str = "auto", notes: list[str] | None = None
) -> list[tuple[Path, ModuleType]]:
    """Expand user paths into (file, adapter) pairs, in a stable order.

    Folders are walked recursively in sorted order; hidden files and adapters' companion files are
    skipped. Globs are expanded with ``**`` support. A file named twice is planned once. Log folders
    also hold READMEs, configs and metric files, so with ``fmt="auto"`` a file found by walking a
    folder that no adapter recognises is skipped (and noted); a file named directly or by a glob
    must be recognised.

    Args:
        paths: Files, folders or glob patterns as typed by the user.
        fmt: ``"auto"`` to detect each file's format, or a format name forced on every file.
        notes: When given, one line is appended per skipped unrecognised file, for the CLI to report.

    Returns:
        One ``(path, adapter module)`` pair per file.

    Raises:
        IngestError: A path does not exist, a folder is empty or a glob matches nothing.
        FormatNotDetected: With ``fmt="auto"``, a file named directly that no adapter recognises, or a
            folder in which no file is recognised (the message is that of its first file).
        UnknownFormat: ``fmt`` is not a known format name.
    """
    forced = None if fmt == "auto" else get(fmt)
    seen: set[Path] = set()
    plan: list[tuple[Path, ModuleType]] = []
    for raw in paths:
        files, from_folder = _expand(str(raw))
        if from_folder and notes is not None:
            notes.extend(f"{folder}: skipped, cannot read this folder" for folder in unreadable_folders(Path(raw)))
        first_failure: FormatNotDetected | None = None
        planned_here = 0
        for path in files:
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                module = forced if forced is not None else detect(path)
            except FormatNotDetected as exc:
                if not from_folder:
                    raise
                first_failure = first_failure or exc
                if notes is not None:
                    notes.append(f"{path}: skipped, no adapter recognised it")
                continue
            plan.append((path, module))
            planned_here += 1
        if from_folder and planned_here == 0 and first_failure is not None:
            raise first_failure
    return plan
