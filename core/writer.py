"""A small writer a training loop calls to dump rollouts as creditscope native JSONL.

One line per trajectory, written in a single call and flushed at once, so a dashboard following the
file live only ever sees whole lines. Every record is validated before anything is written: a bad
value raises :class:`InvalidRollout` naming the field (``steps[3].reward``), and the file is left as it
was. Record layout (the native format)::

    {"run": str, "iteration": int, "group": str, "trajectory": str, "prompt": str | null,
     "outcome": number, "split": "train" | "val", "meta": {...},
     "steps": [{"state", "action", "reward", "label", "node", "parent", "valid", "prm", "value",
                "tokens": [...], "token_logprobs": [...], "token_ref_logprobs": [...],
                "token_entropies": [...], "token_advantages": [...],
                ...any extra keys, e.g. "token_ids": [...]}]}

Example::

    with RolloutWriter("runs/grpo-7b.jsonl", run="grpo-7b") as writer:
        writer.write(iteration=step, group=f"{step}-{prompt_id}", trajectory=f"{step}-{prompt_id}-{k}",
                     prompt=prompt, outcome=reward, steps=[{"action": completion, "reward": reward}])
"""

from __future__ import annotations

import json
import math
import numbers
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from core.schema import TOKEN_COLUMN_NAMES
from core.tokens import TokenArrayError, token_arrays

SPLITS = ("train", "val")
_TEXT_FIELDS = ("state",)
_NUMBER_FIELDS = ("reward", "label", "prm", "value")
_ID_FIELDS = ("node", "parent")


class InvalidRollout(ValueError):
    """A record handed to :meth:`RolloutWriter.write` is malformed; nothing was written.

    Attributes:
        field: Dotted path of the offending field, e.g. ``steps[2].reward``.
        problem: What is wrong.
    """

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def _number(value: Any, field: str, *, optional: bool) -> float | None:
    """A finite float from ints, floats and numpy scalars (bools are rejected as likely mistakes)."""
    if value is None and optional:
        return None
    if hasattr(value, "item") and not isinstance(value, numbers.Real):
        value = value.item()  # 0-d torch tensors and numpy arrays
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidRollout(field, f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidRollout(field, f"must be finite, got {number}")
    return number


def _text(value: Any, field: str, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidRollout(field, f"expected a string, got {type(value).__name__}")
    return value


def _identifier(value: Any, field: str) -> str:
    """Ids must be non-empty strings: they become group/trajectory/node keys in the store."""
    if not isinstance(value, str) or not value:
        raise InvalidRollout(field, f"expected a non-empty string, got {value!r}")
    return value


def _jsonable(value: Any, field: str) -> Any:
    """Convert extra data to plain JSON types (arrays and tensors via ``tolist``), rejecting NaN/inf."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _number(value, field, optional=False)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item, f"{field}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item, f"{field}[{index}]") for index, item in enumerate(value)]
    if hasattr(value, "tolist"):  # numpy arrays, torch tensors: token logprobs and ids
        return _jsonable(value.tolist(), field)
    raise InvalidRollout(field, f"cannot store a {type(value).__name__} as JSON")


def _step(raw: Mapping[str, Any], field: str) -> dict[str, Any]:
    """Validate one step; known keys are type-checked, any other key is kept as extra data."""
    if not isinstance(raw, Mapping):
        raise InvalidRollout(field, f"expected a mapping, got {type(raw).__name__}")
    step: dict[str, Any] = {"action": _text(raw.get("action"), f"{field}.action", optional=False)}
    for key in _TEXT_FIELDS:
        step[key] = _text(raw.get(key), f"{field}.{key}", optional=True)
    for key in _NUMBER_FIELDS:
        step[key] = _number(raw.get(key), f"{field}.{key}", optional=True)
    for key in _ID_FIELDS:
        step[key] = None if raw.get(key) is None else _identifier(raw[key], f"{field}.{key}")
    valid = raw.get("valid")
    if valid is not None and not isinstance(valid, bool):
        raise InvalidRollout(f"{field}.valid", f"expected true, false or null, got {valid!r}")
    step["valid"] = valid
    try:  # per-token arrays (lists, numpy arrays or tensors): one length within the step, finite numbers
        step.update(token_arrays(raw))
    except TokenArrayError as exc:
        raise InvalidRollout(f"{field}.{exc.field}", exc.problem) from exc
    known = {"action", "valid", *_TEXT_FIELDS, *_NUMBER_FIELDS, *_ID_FIELDS, *TOKEN_COLUMN_NAMES}
    for key, value in raw.items():
        if key not in known:
            step[str(key)] = _jsonable(value, f"{field}.{key}")
    return step


class RolloutWriter:
    """Appends validated trajectories to a native JSONL file, one flushed line each.

    Thread-safe: reward workers may call :meth:`write` concurrently. Use one file per process in
    multi-process training (e.g. put the rank in the file name); lines from several processes
    appending to one file could interleave.

    Args:
        path: The JSONL file; parent folders are created.
        run: Run name written into every record.
        mode: ``"a"`` appends to an existing file (resumed training), ``"w"`` starts it afresh.
        split: Default split of written trajectories (``"train"`` or ``"val"``).
        fsync: Also ``os.fsync`` after each line, for readers on other machines of a network file system.
    """

    def __init__(
        self,
        path: str | Path,
        run: str,
        *,
        mode: Literal["a", "w"] = "a",
        split: str = "train",
        fsync: bool = False,
    ):
        if mode not in ("a", "w"):
            raise ValueError(f"mode must be 'a' or 'w', got {mode!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.path = Path(path)
        self.run = _identifier(run, "run")
        self.split = split
        self._fsync = fsync
        self._lock = threading.Lock()
        self._written: set[str] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open(mode, encoding="utf-8")

    def write(
        self,
        *,
        iteration: int,
        group: str,
        trajectory: str,
        steps: Sequence[Mapping[str, Any]],
        outcome: float,
        prompt: str | None = None,
        split: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Validate one trajectory and append it as a line.

        Args:
            iteration: Training step / policy version the rollout was sampled at (>= 0).
            group: Rollouts of the same prompt in the same iteration share it (the GRPO group).
            trajectory: Unique id of this trajectory (unique within the run).
            steps: One mapping per step: ``action`` (required), ``state``, ``reward``, ``label``,
                ``node``, ``parent``, ``valid``, ``prm``, ``value``; optional per-token arrays of the
                action, aligned index by index: ``tokens`` (strings), ``token_logprobs``,
                ``token_ref_logprobs``, ``token_entropies``, ``token_advantages`` (lists, numpy arrays or
                tensors of finite numbers, one length within a step); plus any extra keys (token ids...).
            outcome: Final reward of the trajectory.
            prompt: The task text.
            split: ``"train"`` or ``"val"``; defaults to the writer's split.
            meta: Anything else about the trajectory (JSON-serialisable).

        Raises:
            InvalidRollout: A field is missing, has the wrong type, is NaN/inf, or ``trajectory`` was
                already written by this writer. Nothing is written in that case.
            ValueError: The writer is closed.
        """
        if isinstance(iteration, bool) or not isinstance(iteration, numbers.Integral) or iteration < 0:
            raise InvalidRollout("iteration", f"expected a non-negative integer, got {iteration!r}")
        chosen_split = self.split if split is None else split
        if chosen_split not in SPLITS:
            raise InvalidRollout("split", f"expected one of {SPLITS}, got {chosen_split!r}")
        if isinstance(steps, str | bytes) or not isinstance(steps, Sequence) or not steps:
            raise InvalidRollout("steps", "expected a non-empty list of steps")
        record = {
            "run": self.run,
            "iteration": int(iteration),
            "group": _identifier(group, "group"),
            "trajectory": _identifier(trajectory, "trajectory"),
            "prompt": _text(prompt, "prompt", optional=True),
            "outcome": _number(outcome, "outcome", optional=False),
            "split": chosen_split,
            "meta": _jsonable(dict(meta or {}), "meta"),
            "steps": [_step(raw, f"steps[{index}]") for index, raw in enumerate(steps)],
        }
        # Serialise before taking the lock and before writing, so a failure leaves no partial line.
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is None:
                raise ValueError("the writer is closed")
            if trajectory in self._written:
                raise InvalidRollout("trajectory", f"{trajectory!r} was already written")
            self._file.write(line)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
            self._written.add(trajectory)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._file is None

    def close(self) -> None:
        """Close the file; calling it again does nothing."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> RolloutWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
