"""Checks on source values and the one builder of canonical step/trajectory frames.

Every adapter validates numbers and required keys with these functions, so the same mistake in any
format reads the same way (``file:line: field: expected a number, got str 'abc'``), and builds its output
with :class:`FrameBuilder`, which enforces the columns and dtypes of :mod:`core.ingest.base` in one place.

Private (leading underscore) so the registry does not mistake it for an adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import IngestError
from core.ingest.base import STEP_FRAME_COLUMNS, TOKEN_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS, AdapterOptions, Rollouts
from core.tokens import TokenArrayError, token_arrays

if TYPE_CHECKING:
    import pandas as pd

_FLOAT_STEP_COLUMNS: tuple[str, ...] = ("reward", "outcome", "label", "prm", "value")
_TEXT_STEP_COLUMNS: tuple[str, ...] = ("group_id", "traj_id", "state", "action", "node_id", "parent_id", "extra")
_JSON_TYPE_NAMES: dict[type, str] = {dict: "an object", list: "a list"}


def finite_number(
    value: Any, path: Path | str, record: int | str | None, field: str, *, optional: bool = False, booleans: bool = True
) -> float | None:
    """Return a numeric source value as a finite float.

    Args:
        value: The source value.
        path: Source file, for the error.
        record: Record locator (1-based line or member name), for the error.
        field: Dotted path of the field, for the error.
        optional: Whether None (null or absent) is allowed; it then maps to None.
        booleans: Whether ``true``/``false`` count as 1.0/0.0. Step-label and tree formats pass False:
            there a boolean in a reward field is far more often a mislabelled column than a score.

    Returns:
        The float, or None for an allowed missing value.

    Raises:
        IngestError: Missing when required, not a number, NaN or infinite.
    """
    if value is None:
        if optional:
            return None
        raise IngestError(str(path), "expected a number, got null", record, field)
    if isinstance(value, bool) and booleans:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IngestError(str(path), f"expected a number, got {type(value).__name__} {value!r:.40}", record, field)
    number = float(value)
    if not math.isfinite(number):
        raise IngestError(str(path), f"number must be finite, got {number}", record, field)
    return number


def check_type(
    value: Any, expected: type | tuple[type, ...], path: Path | str, record: int | str | None, field: str | None
) -> Any:
    """Return ``value`` when it has the expected type, else raise an IngestError naming the field.

    Args:
        value: The source value.
        expected: Accepted type(s); ``dict`` reads "an object" and ``list`` "a list" in the message.
        path: Source file, for the error.
        record: Record locator, for the error.
        field: Dotted path of the field, for the error.
    """
    if isinstance(value, expected):
        return value
    types = expected if isinstance(expected, tuple) else (expected,)
    names = "/".join(_JSON_TYPE_NAMES.get(kind, kind.__name__) for kind in types)
    raise IngestError(str(path), f"expected {names}, got {type(value).__name__}", record, field)


def require(
    container: Any,
    key: str,
    path: Path | str,
    record: int | str | None,
    expected: type | tuple[type, ...] | None = None,
    field: str | None = None,
) -> Any:
    """Return ``container[key]`` after checking that the key exists (and, optionally, the value's type).

    Args:
        container: The JSON object holding the key.
        key: The key.
        path: Source file, for the error.
        record: Record locator, for the error.
        expected: Accepted type(s) of the value, or None for any.
        field: Dotted path of the value for the error; defaults to ``key``.

    Raises:
        IngestError: ``container`` is not an object, the key is missing, or the value has the wrong type.
    """
    if not isinstance(container, dict):
        raise IngestError(str(path), f"expected an object, got {type(container).__name__}", record)
    where = field or key
    if key not in container:
        raise IngestError(str(path), f"missing key (present: {', '.join(sorted(map(str, container)))})", record, where)
    value = container[key]
    return value if expected is None else check_type(value, expected, path, record, where)


def text_key(text: str) -> str:
    """A short stable digest of ``text``: group ids derived from prompts stay readable and stable."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def json_safe(value: Any) -> Any:
    """Return ``value`` as plain JSON-serialisable data with non-finite floats replaced by strings.

    JSON has no NaN/Infinity literals and DuckDB's JSON type rejects them, but trainers do log them in
    metrics; ``"NaN"``/``"Infinity"``/``"-Infinity"`` strings lose nothing. numpy scalars and arrays
    (from parquet rows) become Python values first.
    """
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def json_text(value: dict[str, Any] | None) -> str | None:
    """Serialise an ``extra``/``meta`` dict as strict JSON text; empty or None becomes None."""
    if not value:
        return None
    return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False, default=str)


@dataclass
class StepRow:
    """One step as an adapter produces it; iteration, group, trajectory, index and outcome are filled in later.

    Attributes mirror the canonical step columns; ``extra`` holds unmapped source fields. The token
    arrays (:data:`core.ingest.base.TOKEN_FRAME_COLUMNS`) are optional: fill them with
    :func:`step_token_arrays`, which checks them and names the field of a bad one.
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
    tokens: list[str] | None = None
    token_logprobs: list[float] | None = None
    token_ref_logprobs: list[float] | None = None
    token_entropies: list[float] | None = None
    token_advantages: list[float] | None = None


def step_token_arrays(
    source: dict[str, Any], path: Path | str, record: int | str | None, field: str
) -> dict[str, list[Any]]:
    """The checked token arrays of one source step, as keyword arguments for :class:`StepRow`.

    Args:
        source: The step's fields under the canonical names (``tokens``, ``token_logprobs``, ...); an
            adapter whose format names them otherwise renames them first.
        path: Source file, for the error.
        record: Record locator, for the error.
        field: Dotted path of the step inside the record (``steps[3]``), for the error.

    Raises:
        IngestError: A token array is malformed (``steps[3].token_logprobs[7]: expected a finite number``).
    """
    try:
        return token_arrays(source)
    except TokenArrayError as exc:
        raise IngestError(str(path), exc.problem, record, f"{field}.{exc.field}" if field else exc.field) from exc


class FrameBuilder:
    """Collects trajectories and builds the canonical ``steps``/``trajectories`` frames."""

    def __init__(self) -> None:
        self._step_rows: list[dict[str, Any]] = []
        self._traj_rows: list[dict[str, Any]] = []
        self._traj_ids: set[str] = set()
        self._token_columns: set[str] = set()

    def __len__(self) -> int:
        return len(self._traj_rows)

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

        Args:
            traj_id: Unique within the source.
            group_id: Group within the iteration.
            outcome: Final reward, repeated on every step row.
            steps: The steps, in order.
            iteration: Training step (0 for sources that have none).
            prompt: Task text.
            split: ``"train"`` or ``"val"``; None when the source does not say (see :meth:`build`).
            meta: Unmapped per-trajectory fields.

        Raises:
            ValueError: ``traj_id`` was already added or ``steps`` is empty. Adapters check both first and
                raise an IngestError naming the record; this guards programming errors.
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
            arrays = {name: getattr(step, name) for name in TOKEN_FRAME_COLUMNS if getattr(step, name) is not None}
            self._token_columns.update(arrays)
            self._step_rows.append(
                {
                    **arrays,
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

    def build(self, split: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return ``(steps, trajectories)`` with the canonical columns, in order, and dtypes.

        Args:
            split: Forces every trajectory's split (``options.split``). Otherwise a trajectory added
                without one becomes ``"train"``: sources that do not say hold training or labelled data.
        """
        import pandas as pd  # imported here: a native JSONL load never needs pandas

        # Token columns only when some step has them: most formats log none, and the store fills NULL.
        token_columns = [name for name in TOKEN_FRAME_COLUMNS if name in self._token_columns]
        steps = pd.DataFrame(self._step_rows, columns=[*STEP_FRAME_COLUMNS, *token_columns])
        steps = steps.astype({"iteration": "int64", "step_idx": "int32"})
        steps = steps.astype({column: "float64" for column in _FLOAT_STEP_COLUMNS})
        steps["valid"] = steps["valid"].astype("boolean")
        for column in (*_TEXT_STEP_COLUMNS, *token_columns):
            # pandas turns None into NaN in mixed columns; the store expects SQL NULL, i.e. None.
            steps[column] = steps[column].astype("object").where(steps[column].notna(), None)
        trajectories = pd.DataFrame(self._traj_rows, columns=list(TRAJ_FRAME_COLUMNS))
        trajectories = trajectories.astype({"iteration": "int64", "outcome": "float64"})
        for column in ("prompt", "meta"):
            trajectories[column] = trajectories[column].astype("object").where(trajectories[column].notna(), None)
        trajectories["split"] = split if split is not None else trajectories["split"].fillna("train")
        return steps, trajectories

    def rollouts(self, options: AdapterOptions, **rollout_fields: Any) -> Rollouts:
        """Return the collected data as :class:`Rollouts`, honouring ``options.split``.

        Args:
            options: The adapter options (``split`` forces every trajectory's split).
            **rollout_fields: The other :class:`Rollouts` attributes (``run_config``, ``default_run``, ``skipped``).
        """
        steps, trajectories = self.build(options.split)
        return Rollouts(steps=steps, trajectories=trajectories, **rollout_fields)
