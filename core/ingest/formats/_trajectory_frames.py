"""Builds canonical step/trajectory frames from per-trajectory Python records (helper for A2's adapters).

Adapters collect one :class:`StepRow` list per trajectory and hand it to a :class:`FrameBuilder`;
the builder enforces the frame columns and dtypes of :mod:`core.ingest.base` in one place so every
adapter produces identical frames. It also hosts the small value checks that every adapter repeats:
finite numbers (NaN/inf rewards are errors naming the record) and JSON text for ``extra``/``meta``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.errors import IngestError
from core.ingest.base import STEP_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS

_FLOAT_STEP_COLUMNS: tuple[str, ...] = ("reward", "outcome", "label", "prm", "value")


@dataclass
class StepRow:
    """One step of a trajectory before it becomes a frame row.

    Attributes mirror the canonical step columns; ``extra`` holds unmapped source fields.
    """

    action: str
    state: str | None = None
    reward: float | None = None
    node_id: str | None = None
    parent_id: str | None = None
    label: float | None = None
    valid: bool | None = None
    prm: float | None = None
    value: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def json_safe(value: Any) -> Any:
    """Return ``value`` with non-finite floats replaced by strings, so it serialises as strict JSON.

    JSON has no NaN/Infinity literals and DuckDB's JSON type rejects them, but trainers do log them
    in metrics; keeping them as ``"NaN"``/``"Infinity"``/``"-Infinity"`` strings loses nothing.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def json_text(value: dict[str, Any] | None) -> str | None:
    """Serialise an ``extra``/``meta`` dict as JSON text; empty or None becomes None."""
    if not value:
        return None
    return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False)


def optional_number(value: Any, path: str, record: int | str | None, field_name: str) -> float | None:
    """Return ``value`` as a finite float, None when it is None.

    Args:
        value: The source value (bool, int, float or None).
        path: Source file, for the error message.
        record: Record locator (1-based line or member name).
        field_name: Dotted path of the field.

    Returns:
        The float, or None.

    Raises:
        IngestError: ``value`` is not a number, or is NaN/infinite.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if not isinstance(value, int | float):
        raise IngestError(path, f"expected a number, got {type(value).__name__} {value!r:.60}", record, field_name)
    number = float(value)
    if not math.isfinite(number):
        raise IngestError(path, f"reward must be finite, got {value!r}", record, field_name)
    return number


def required_number(value: Any, path: str, record: int | str | None, field_name: str) -> float:
    """Like :func:`optional_number`, but a missing (None) value is an error too."""
    number = optional_number(value, path, record, field_name)
    if number is None:
        raise IngestError(path, "missing number", record, field_name)
    return number


def require_key(record: dict[str, Any], key: str, path: str, locator: int | str | None, prefix: str = "") -> Any:
    """Return ``record[key]`` or raise an IngestError naming the missing field."""
    if key not in record:
        raise IngestError(path, "missing required key", locator, f"{prefix}{key}")
    return record[key]


def require_dict(value: Any, path: str, locator: int | str | None, field_name: str) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object, else raise an IngestError naming the field."""
    if not isinstance(value, dict):
        raise IngestError(path, f"expected an object, got {type(value).__name__}", locator, field_name)
    return value


def require_list(value: Any, path: str, locator: int | str | None, field_name: str) -> list[Any]:
    """Return ``value`` if it is a JSON array, else raise an IngestError naming the field."""
    if not isinstance(value, list):
        raise IngestError(path, f"expected a list, got {type(value).__name__}", locator, field_name)
    return value


class FrameBuilder:
    """Accumulates trajectories and builds the canonical ``steps``/``trajectories`` frames."""

    def __init__(self) -> None:
        self._step_rows: list[dict[str, Any]] = []
        self._traj_rows: list[dict[str, Any]] = []
        self._traj_ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._traj_rows)

    def add(
        self,
        *,
        traj_id: str,
        iteration: int,
        group_id: str,
        prompt: str | None,
        split: str,
        outcome: float,
        steps: list[StepRow],
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Add one trajectory and its steps.

        Raises:
            ValueError: ``traj_id`` was already added or ``steps`` is empty (adapter bugs, not input errors).
        """
        if traj_id in self._traj_ids:
            raise ValueError(f"duplicate traj_id {traj_id!r}")
        if not steps:
            raise ValueError(f"trajectory {traj_id!r} has no steps")
        self._traj_ids.add(traj_id)
        self._traj_rows.append(
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
        for step_idx, step in enumerate(steps):
            self._step_rows.append(
                {
                    "iteration": iteration,
                    "group_id": group_id,
                    "traj_id": traj_id,
                    "step_idx": step_idx,
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
                    "extra": json_text(step.extra),
                }
            )

    def build(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return ``(steps, trajectories)`` with the canonical columns, in order, and dtypes."""
        steps = pd.DataFrame(self._step_rows, columns=list(STEP_FRAME_COLUMNS))
        trajectories = pd.DataFrame(self._traj_rows, columns=list(TRAJ_FRAME_COLUMNS))
        steps["iteration"] = steps["iteration"].astype("int64")
        steps["step_idx"] = steps["step_idx"].astype("int32")
        for column in _FLOAT_STEP_COLUMNS:
            steps[column] = steps[column].astype("float64")
        steps["valid"] = steps["valid"].astype("boolean")
        for column in ("group_id", "traj_id", "state", "action", "node_id", "parent_id", "extra"):
            # pandas turns None into NaN in mixed columns; the store expects SQL NULL, i.e. None.
            steps[column] = steps[column].astype("object").where(steps[column].notna(), None)
        for column in ("prompt", "meta"):
            trajectories[column] = trajectories[column].astype("object").where(trajectories[column].notna(), None)
        trajectories["iteration"] = trajectories["iteration"].astype("int64")
        trajectories["outcome"] = trajectories["outcome"].astype("float64")
        return steps, trajectories
