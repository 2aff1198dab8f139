"""Reads the pieces of an Inspect AI log: the header, the samples and the reductions.

Two containers exist (log-formats.md B.11): the default ``.eval`` zip (``header.json``,
``samples/{id}_epoch_{n}.json``, ``reductions.json``, ``summaries.json`` and, while running,
``_journal/``) and the ``.json`` format, one EvalLog document holding everything. Errors name the
file and, for a zip, the member that is bad.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.formats._rollout_records import decode_utf8, load_json_document, parse_json
from core.ingest.formats._zip_members import SizeLimits, check_limits, read_member

ZIP_MAGIC = b"PK\x03\x04"

_HEADER_MEMBER = "header.json"
_JOURNAL_START_MEMBER = "_journal/start.json"
_REDUCTIONS_MEMBER = "reductions.json"
_SAMPLES_PREFIX = "samples/"


@dataclass
class InspectLog:
    """An Inspect log split into what the adapter maps.

    Attributes:
        header: The EvalLog without samples (version, status, eval, plan, results, stats, ...).
        samples: ``(locator, sample)`` pairs; the locator is the zip member or ``samples[i]``.
        reductions: Per-scorer epoch reductions (``[{scorer, reducer, samples[...]}]``), possibly empty.
        unread_members: Zip members not read because they duplicate sample data (summaries, journal).
    """

    header: dict[str, Any]
    samples: list[tuple[str, dict[str, Any]]]
    reductions: list[Any] = field(default_factory=list)
    unread_members: list[str] = field(default_factory=list)


def _read_member(archive: zipfile.ZipFile, path: Path, member: str) -> Any:
    """Read and parse one JSON member (any compression Inspect writes), naming the member in any error."""
    data = read_member(archive, archive.getinfo(member), path)
    return parse_json(decode_utf8(data, path, member), path, member)


def _sample_sort_key(member: str) -> tuple[int, str]:
    """Order ``samples/{id}_epoch_{n}.json`` by epoch then id, numerically where ids are numbers."""
    stem = member.removeprefix(_SAMPLES_PREFIX).removesuffix(".json")
    sample_id, _, epoch = stem.rpartition("_epoch_")
    return (int(epoch) if epoch.isdigit() else 0, sample_id.zfill(12) if sample_id.isdigit() else sample_id)


def read_eval_zip(path: Path, limits: SizeLimits | None = None) -> InspectLog:
    """Read a ``.eval`` zip log, refusing members or totals over ``limits`` before decompressing them.

    Raises:
        IngestError: Not a zip, a corrupt member, an unsupported compression method, a size limit hit,
            invalid JSON, or neither a header nor a journal start.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise IngestError(str(path), f"not a readable .eval zip archive ({exc})") from exc
    with archive:
        names = archive.namelist()
        # A log that is still being written has no header.json yet; its journal start has the same spec.
        header_member = _HEADER_MEMBER if _HEADER_MEMBER in names else _JOURNAL_START_MEMBER
        if header_member not in names:
            raise IngestError(str(path), "zip has neither header.json nor _journal/start.json (not an Inspect log?)")
        sample_members = sorted(
            (name for name in names if name.startswith(_SAMPLES_PREFIX) and name.endswith(".json")),
            key=_sample_sort_key,
        )
        wanted = [header_member, *sample_members, *([_REDUCTIONS_MEMBER] if _REDUCTIONS_MEMBER in names else [])]
        check_limits(path, (archive.getinfo(name) for name in wanted), limits or SizeLimits())
        header = _read_member(archive, path, header_member)
        if not isinstance(header, dict):
            raise IngestError(str(path), "expected a JSON object", header_member)
        samples: list[tuple[str, dict[str, Any]]] = []
        for member in sample_members:
            sample = _read_member(archive, path, member)
            if not isinstance(sample, dict):
                raise IngestError(str(path), "expected a JSON object", member)
            samples.append((member, sample))
        reductions = _read_member(archive, path, _REDUCTIONS_MEMBER) if _REDUCTIONS_MEMBER in names else []
        used = {header_member, _REDUCTIONS_MEMBER, *sample_members}
        unread = [name for name in names if name not in used and not name.endswith("/")]
    return InspectLog(header=header, samples=samples, reductions=reductions or [], unread_members=unread)


def read_json_log(path: Path) -> InspectLog:
    """Read a ``.json`` EvalLog (one document with ``samples`` inline).

    Raises:
        IngestError: Invalid JSON, or ``samples`` not a list of objects.
    """
    document = load_json_document(path)
    if not isinstance(document, dict):
        raise IngestError(str(path), f"expected a JSON object, got {type(document).__name__}")
    raw_samples = document.get("samples") or []
    if not isinstance(raw_samples, list):
        raise IngestError(str(path), f"expected a list, got {type(raw_samples).__name__}", None, "samples")
    samples: list[tuple[str, dict[str, Any]]] = []
    for index, sample in enumerate(raw_samples):
        if not isinstance(sample, dict):
            raise IngestError(str(path), "expected a sample object", f"samples[{index}]")
        samples.append((f"samples[{index}]", sample))
    header = {key: value for key, value in document.items() if key not in ("samples", "reductions")}
    return InspectLog(header=header, samples=samples, reductions=document.get("reductions") or [])


def read_inspect_log(path: Path, limits: SizeLimits | None = None) -> InspectLog:
    """Read either container, chosen by the file's first bytes (a zip starts with ``PK``)."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(ZIP_MAGIC))
    except OSError as exc:
        raise IngestError(str(path), f"cannot read file ({exc.strerror or exc})") from exc
    return read_eval_zip(path, limits) if magic == ZIP_MAGIC else read_json_log(path)


def resolve_attachments(value: Any, attachments: dict[str, str]) -> Any:
    """Replace ``attachment://<hash>`` strings with the attachment text (unknown hashes stay as they are)."""
    if isinstance(value, str):
        if value.startswith("attachment://"):
            return attachments.get(value.removeprefix("attachment://"), value)
        return value
    if isinstance(value, dict):
        return {key: resolve_attachments(item, attachments) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_attachments(item, attachments) for item in value]
    return value
