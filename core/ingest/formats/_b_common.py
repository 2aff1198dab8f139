"""Shared plumbing for the step-labelled, tree and agent adapters.

Used by prm800k, processbench, math_shepherd, omegaprm, treerl, swe_agent and agentgym.
The module name starts with ``_`` so :mod:`core.ingest.registry` does not mistake it for an adapter.
It holds what every one of those adapters needs and must do identically: decoding files with error
locations, validating numbers (NaN/inf are errors, never silently mapped), turning per-trajectory step
lists into canonical frames with the right dtypes, and walking rollout trees.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import IngestError
from core.ingest.base import STEP_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS, AdapterOptions, Rollouts

_STEP_FLOAT_COLUMNS = ("reward", "outcome", "label", "prm", "value")


def decode_utf8(path: Path, data: bytes) -> str:
    """Decode ``data`` as UTF-8, or raise an IngestError naming the line of the first bad byte.

    Args:
        path: The file the bytes came from (for the error message).
        data: The raw bytes.

    Returns:
        The decoded text.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise IngestError(str(path), f"not valid UTF-8 (byte 0x{bad} at offset {exc.start})", record=line) from exc


def read_text(path: Path) -> str:
    """Read a whole file as UTF-8 text, turning OS and decoding errors into IngestError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(str(path), f"cannot read file ({exc.strerror or exc})") from exc
    return decode_utf8(path, data)


def load_json_document(path: Path) -> Any:
    """Parse a file holding one JSON document (``.json``, ``.traj``).

    Raises:
        IngestError: The file is unreadable, not UTF-8, empty or not valid JSON; ``record`` is the
            line where parsing failed, so a truncated file points at its end.
    """
    text = read_text(path)
    if not text.strip():
        raise IngestError(str(path), "file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(str(path), f"invalid JSON ({exc.msg}, column {exc.colno})", record=exc.lineno) from exc


@dataclass
class JsonlRecords:
    """The records of a JSONL file with their 1-based line numbers, plus notes on lines skipped on purpose."""

    records: list[tuple[int, Any]]
    skipped: list[str] = field(default_factory=list)


def read_jsonl(path: Path, options: AdapterOptions) -> JsonlRecords:
    """Parse a JSONL file, one JSON value per non-blank line.

    A trainer that is still running may have written only part of its last line. That line alone is
    skipped (with a note) when ``options.extra["allow_partial_tail"]`` is true; any other unparsable
    line is an error, because silently dropping data from the middle of a file would skew every statistic.

    Args:
        path: The JSONL file.
        options: Adapter options (``extra["allow_partial_tail"]`` is honoured).

    Returns:
        The parsed records and the skip notes.

    Raises:
        IngestError: Unreadable file, bad UTF-8, or an invalid line (``record`` = its line number).
    """
    lines = read_text(path).split("\n")
    # A file ending in "\n" yields a final empty piece; only a non-empty final piece can be a partial write.
    last_content_line = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    ends_with_newline = lines[-1] == ""
    parsed = JsonlRecords(records=[])
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            parsed.records.append((index + 1, json.loads(line)))
        except json.JSONDecodeError as exc:
            is_partial_tail = index == last_content_line and not ends_with_newline
            if is_partial_tail and options.extra.get("allow_partial_tail"):
                parsed.skipped.append(f"{path}:{index + 1}: skipped a partial last line ({len(line)} characters)")
                continue
            hint = " (the last line looks truncated; allow_partial_tail skips it)" if is_partial_tail else ""
            problem = f"invalid JSON ({exc.msg}, column {exc.colno}){hint}"
            raise IngestError(str(path), problem, record=index + 1) from exc
    return parsed


def json_head_record(head: bytes) -> dict[str, Any] | None:
    """Return the first line of ``head`` parsed as a JSON object, or None when it is not one.

    Detection only sees the first 64 KiB, so a first line longer than that cannot be parsed here;
    callers then fall back to looking for key names in the raw text.
    """
    first_line = head.split(b"\n", 1)[0]
    try:
        value = json.loads(first_line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def missing_keys_reason(
    record: dict[str, Any] | None, required: Sequence[str], what: str = "first record"
) -> str | None:
    """Return None when ``record`` has every key in ``required``; else a detection reason naming the gap."""
    if record is None:
        return f"{what} is not a JSON object"
    missing = [key for key in required if key not in record]
    return f"{what} lacks keys {'/'.join(missing)}" if missing else None


def finite_number(
    value: Any, path: Path, record: int | str, field_name: str, *, optional: bool = False
) -> float | None:
    """Validate a numeric field and return it as float.

    Booleans are rejected on purpose: ``true`` in a reward field is far more often a mislabelled
    column than an intended 1.0, and the adapters that expect booleans convert them explicitly.

    Raises:
        IngestError: Missing (unless ``optional``), not a number, NaN or infinite.
    """
    if value is None:
        if optional:
            return None
        raise IngestError(str(path), "expected a number, got null", record=record, field=field_name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IngestError(str(path), f"expected a number, got {type(value).__name__}", record=record, field=field_name)
    number = float(value)
    if not math.isfinite(number):
        raise IngestError(str(path), f"number must be finite, got {number}", record=record, field=field_name)
    return number


def require(
    container: Any, key: str | int, expected: type | tuple[type, ...], path: Path, record: int | str, field_name: str
) -> Any:
    """Return ``container[key]`` after checking it exists and has the expected type.

    Args:
        container: A dict (``key`` is a name) or list (``key`` is an index).
        key: The key or index.
        expected: Accepted type(s).
        path: Source file, for the error.
        record: Record locator, for the error.
        field_name: Dotted path of the field, for the error.

    Raises:
        IngestError: The key is missing or the value has the wrong type.
    """
    if not isinstance(container, dict):
        raise IngestError(str(path), f"expected an object, got {type(container).__name__}", record=record)
    if key not in container:
        raise IngestError(str(path), "missing key", record=record, field=field_name)
    value = container[key]
    if not isinstance(value, expected):
        names = "/".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise IngestError(str(path), f"expected {names}, got {type(value).__name__}", record=record, field=field_name)
    return value


def text_key(text: str) -> str:
    """Short stable id for a piece of text (a problem statement used as a group key)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (which Python's json accepts on input) by strings, so output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def to_json(value: dict[str, Any] | None) -> str | None:
    """Serialise an ``extra``/``meta`` dict as strict JSON text, or None when there is nothing to keep."""
    if not value:
        return None
    return json.dumps(_json_safe(value), ensure_ascii=False, allow_nan=False)


@dataclass
class StepRow:
    """One step as an adapter produces it; iteration, group, trajectory, index and outcome are filled in later."""

    action: str
    state: str | None = None
    reward: float | None = None
    label: float | None = None
    node_id: str | None = None
    parent_id: str | None = None
    valid: bool | None = None
    prm: float | None = None
    value: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class FrameBuilder:
    """Collects trajectories and emits :class:`Rollouts` whose frames match the adapter contract exactly."""

    def __init__(self) -> None:
        self._steps: list[dict[str, Any]] = []
        self._trajectories: list[dict[str, Any]] = []
        self._traj_ids: set[str] = set()

    def add(
        self,
        *,
        traj_id: str,
        group_id: str,
        outcome: float,
        steps: Sequence[StepRow],
        iteration: int = 0,
        prompt: str | None = None,
        split: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Add one trajectory and its steps (``step_idx`` is the position in ``steps``).

        Raises:
            ValueError: ``traj_id`` was already added, or ``steps`` is empty (adapters check both
                first and raise an IngestError that names the record; this guards programming errors).
        """
        if traj_id in self._traj_ids:
            raise ValueError(f"duplicate traj_id {traj_id!r}")
        if not steps:
            raise ValueError(f"trajectory {traj_id!r} has no steps")
        self._traj_ids.add(traj_id)
        self._trajectories.append(
            {
                "traj_id": traj_id,
                "iteration": iteration,
                "group_id": group_id,
                "prompt": prompt,
                "split": split,
                "outcome": outcome,
                "meta": to_json(meta),
            }
        )
        for index, step in enumerate(steps):
            self._steps.append(
                {
                    "iteration": iteration,
                    "group_id": group_id,
                    "traj_id": traj_id,
                    "step_idx": index,
                    "state": step.state,
                    "action": step.action,
                    "reward": step.reward,
                    "outcome": outcome,
                    "node_id": step.node_id,
                    "parent_id": step.parent_id,
                    "label": step.label,
                    "valid": step.valid,
                    "prm": step.prm,
                    "value": step.value,
                    "extra": to_json(step.extra),
                }
            )

    def build(self, options: AdapterOptions, **rollout_fields: Any) -> Rollouts:
        """Return the collected data as :class:`Rollouts` (``rollout_fields`` go to its other attributes).

        ``options.split`` forces every trajectory's split; otherwise an unset split becomes "train",
        since none of these sources distinguish validation rollouts.
        """
        steps = pd.DataFrame(self._steps, columns=list(STEP_FRAME_COLUMNS))
        steps["iteration"] = steps["iteration"].astype("int64")
        steps["step_idx"] = steps["step_idx"].astype("int64")
        for column in _STEP_FLOAT_COLUMNS:
            steps[column] = steps[column].astype("float64")
        steps["valid"] = steps["valid"].astype("boolean")
        trajectories = pd.DataFrame(self._trajectories, columns=list(TRAJ_FRAME_COLUMNS))
        trajectories["iteration"] = trajectories["iteration"].astype("int64")
        trajectories["outcome"] = trajectories["outcome"].astype("float64")
        if options.split is not None:
            trajectories["split"] = options.split
        else:
            trajectories["split"] = trajectories["split"].fillna("train")
        return Rollouts(steps=steps, trajectories=trajectories, **rollout_fields)


@dataclass
class TreePath:
    """One root-to-leaf path of a nested tree: the nodes below the root and their ids."""

    nodes: list[dict[str, Any]]
    node_ids: list[str]
    locators: list[str]


def tree_paths(
    root: dict[str, Any], id_prefix: str, *, children_of: Callable[[dict[str, Any]], list[Any]], locator: str
) -> Iterator[TreePath]:
    """Yield every root-to-leaf path of a nested tree, depth first, children in stored order.

    The root is excluded from each path (in every tree format read here it is the question or an
    empty prompt node, not a step). Node ids are the child-index path from the root, e.g.
    ``"<prefix>/0/2"``, so they are stable across re-reads and shared prefixes share ids.
    A root without children yields nothing.

    Args:
        root: The root node.
        id_prefix: Prefix making ids unique across the trees of one file.
        children_of: Returns a node's children list (the adapter validates its type).
        locator: Dotted path of ``root`` in the record, to build each node's ``locators`` entry.
    """
    # Explicit stack instead of recursion: search trees can be deep enough to hit Python's limit.
    stack: list[tuple[dict[str, Any], list[dict[str, Any]], list[str], list[str]]] = [(root, [], [], [])]
    while stack:
        node, nodes, ids, locs = stack.pop()
        children = children_of(node)
        if not children and nodes:
            yield TreePath(nodes=nodes, node_ids=ids, locators=locs)
            continue
        parent_id = ids[-1] if ids else id_prefix
        parent_loc = locs[-1] if locs else locator
        for index in reversed(range(len(children))):
            stack.append(
                (
                    children[index],
                    [*nodes, children[index]],
                    [*ids, f"{parent_id}/{index}"],
                    [*locs, f"{parent_loc}.children[{index}]"],
                )
            )


def reasoning_state(prompt: str | None, previous_steps: Sequence[str]) -> str:
    """The state before a reasoning step: the problem followed by the steps so far, one per line."""
    return "\n".join([prompt or "", *previous_steps]) if previous_steps else (prompt or "")
