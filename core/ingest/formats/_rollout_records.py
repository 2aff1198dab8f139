"""Helpers shared by the trainer-log adapters (verl, TRL, verifiers, ...).

JSONL reading with exact error locations, number checks, JSON text for ``extra``/``meta``, splitting
of flat multi-turn text, and one builder that produces canonical frames with fixed dtypes.

Private (leading underscore) so the registry does not mistake it for an adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import IngestError
from core.ingest.base import STEP_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS, AdapterOptions

_FLOAT_COLUMNS: tuple[str, ...] = ("reward", "outcome", "label", "prm", "value")


def first_record(head: bytes) -> dict[str, Any] | None:
    """Parse the first non-blank line of ``head`` as a JSON object; None when it is not one.

    The head may end mid-line (it is a fixed-size prefix), so only a complete first line is parsed;
    a first line longer than the head is parsed with a lenient prefix decoder instead.
    """
    text = head.decode("utf-8", errors="replace").lstrip()
    line = text.split("\n", 1)[0]
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        try:
            value, _ = json.JSONDecoder().raw_decode(line)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def read_jsonl(path: Path, options: AdapterOptions) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Read a JSON-lines file into ``(1-based line number, record)`` pairs.

    Blank lines are ignored. A truncated last line (a trainer still writing) is skipped with a note
    only when ``options.extra["allow_partial_tail"]`` is true; any other bad line is an error.

    Args:
        path: The file.
        options: Adapter options (``extra["allow_partial_tail"]``).

    Returns:
        The records and the skip notes.

    Raises:
        IngestError: Non-UTF-8 bytes, invalid JSON, a line that is not an object, or an empty file;
            the error names the line.
    """
    raw_lines = path.read_bytes().split(b"\n")
    last_content = max((i for i, line in enumerate(raw_lines) if line.strip()), default=-1)
    records: list[tuple[int, dict[str, Any]]] = []
    skipped: list[str] = []
    for index, raw in enumerate(raw_lines):
        if not raw.strip():
            continue
        line_number = index + 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IngestError(str(path), f"not valid UTF-8 at byte {exc.start} of the line", line_number) from exc
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            if index == last_content and options.extra.get("allow_partial_tail"):
                skipped.append(f"{path}:{line_number}: skipped partial last line ({exc.msg})")
                continue
            raise IngestError(str(path), f"invalid JSON at column {exc.colno}: {exc.msg}", line_number) from exc
        if not isinstance(record, dict):
            raise IngestError(str(path), f"expected a JSON object, got {type(record).__name__}", line_number)
        records.append((line_number, record))
    if not records:
        raise IngestError(str(path), "file holds no records")
    return records, skipped


def number(value: Any, path: Path, record: int | str, field: str, *, required: bool = True) -> float | None:
    """Return ``value`` as a finite float (booleans count as 1.0/0.0).

    Args:
        value: The source value.
        path: Source file, for the error.
        record: Record locator, for the error.
        field: Dotted field path, for the error.
        required: Whether None/absent is an error (else it maps to None).

    Raises:
        IngestError: Missing when required, not a number, or NaN/inf.
    """
    if value is None:
        if required:
            raise IngestError(str(path), "missing (expected a number)", record, field)
        return None
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float):
        raise IngestError(str(path), f"expected a number, got {type(value).__name__} {value!r:.40}", record, field)
    result = float(value)
    if not math.isfinite(result):
        raise IngestError(str(path), f"reward must be finite, got {result}", record, field)
    return result


def require(record: dict[str, Any], key: str, path: Path, locator: int | str, expected: type | None = None) -> Any:
    """Return ``record[key]``, raising IngestError naming the key when absent or of the wrong type."""
    if key not in record:
        raise IngestError(str(path), f"missing key (record has: {', '.join(sorted(record))})", locator, key)
    value = record[key]
    if expected is not None and not isinstance(value, expected):
        raise IngestError(str(path), f"expected {expected.__name__}, got {type(value).__name__}", locator, key)
    return value


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (which strict JSON and DuckDB reject) by strings, recursively."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()  # numpy scalars and arrays from parquet rows become plain Python values
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def json_text(value: dict[str, Any] | None) -> str | None:
    """Serialise ``extra``/``meta`` as JSON text; an empty dict becomes None."""
    if not value:
        return None
    return json.dumps(_json_safe(value), ensure_ascii=False, default=str)


def text_key(text: str) -> str:
    """A short stable digest of ``text``: group ids derived from prompts stay readable and stable."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def prefix_states(prompt: str, steps: list[str]) -> list[str]:
    """States for reasoning steps split from one response: the prompt plus every earlier step.

    The policy saw the prompt and its own earlier steps before writing step k, so that is step k's
    state; identical prefixes across a group then share a state (useful for GiGPO-style anchors).
    """
    lead = prompt if not prompt or prompt[-1].isspace() else prompt + "\n"
    return [lead + "\n".join(steps[:position]) for position in range(len(steps))]


class FrameBuilder:
    """Collects trajectories and builds the canonical frames with the dtypes of :mod:`core.ingest.base`."""

    def __init__(self) -> None:
        self._steps: list[dict[str, Any]] = []
        self._trajectories: list[dict[str, Any]] = []

    def add(
        self,
        *,
        traj_id: str,
        iteration: int,
        group_id: str,
        prompt: str | None,
        split: str,
        outcome: float,
        meta: dict[str, Any] | None,
        steps: list[dict[str, Any]],
    ) -> None:
        """Add one trajectory.

        Args:
            traj_id: Unique within the source.
            iteration: Training step.
            group_id: Group within the iteration.
            prompt: Task text.
            split: ``"train"`` or ``"val"``.
            outcome: Final reward, repeated on every step row.
            meta: Unmapped per-trajectory fields.
            steps: Dicts with ``action`` and any of ``state, reward, node_id, parent_id, label, valid,
                prm, value, extra`` (a dict).
        """
        for position, step in enumerate(steps):
            row = {column: step.get(column) for column in STEP_FRAME_COLUMNS}
            row.update(
                iteration=iteration,
                group_id=group_id,
                traj_id=traj_id,
                step_idx=position,
                outcome=outcome,
                extra=json_text(step.get("extra")),
            )
            self._steps.append(row)
        self._trajectories.append(
            {
                "traj_id": traj_id,
                "iteration": iteration,
                "group_id": group_id,
                "prompt": prompt,
                "split": split,
                "outcome": outcome,
                "meta": json_text(meta),
            }
        )

    def build(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return ``(steps, trajectories)`` frames with the canonical columns and dtypes."""
        steps = pd.DataFrame(self._steps, columns=list(STEP_FRAME_COLUMNS))
        steps = steps.astype({"iteration": "int64", "step_idx": "int32"})
        steps = steps.astype({column: "float64" for column in _FLOAT_COLUMNS})
        steps["valid"] = steps["valid"].astype("boolean")
        trajectories = pd.DataFrame(self._trajectories, columns=list(TRAJ_FRAME_COLUMNS))
        trajectories = trajectories.astype({"iteration": "int64", "outcome": "float64"})
        return steps, trajectories


_ROLE_TURN = re.compile(r"(?:^|\n)(user|tool)\n(.*?)\nassistant\n", re.DOTALL)
"""An environment turn inside a flat decoded response: a ``user``/``tool`` role line, its text, and
the ``assistant`` role line that hands control back (chat-template markers are stripped by
``skip_special_tokens=True`` but the role words survive)."""


def split_flat_turns(output: str) -> list[tuple[str, str]] | None:
    """Split a flat multi-turn response into ``(observation, action)`` pairs at surviving role words.

    Args:
        output: The decoded response of a tool/agent loop.

    Returns:
        One pair per assistant turn, the first with an empty observation; None when the text holds no
        environment turn (a single-turn response, to be split with :func:`split_steps` instead).
    """
    turns = list(_ROLE_TURN.finditer(output))
    if not turns:
        return None
    pairs: list[tuple[str, str]] = []
    observation = ""
    start = 0
    for turn in turns:
        pairs.append((observation, output[start : turn.start()]))
        observation = f"{turn.group(1)}: {turn.group(2)}"
        start = turn.end()
    pairs.append((observation, output[start:]))
    return pairs
