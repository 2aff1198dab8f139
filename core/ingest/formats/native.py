"""creditscope's native formats: JSONL with one trajectory per line, and the flat step table as Parquet.

JSONL record (one line; only ``trajectory``, ``outcome`` and ``steps[].action`` are required)::

    {"run": "arith", "iteration": 3, "group": "it3-p0", "trajectory": "it3-p0-r1", "prompt": "...",
     "outcome": 1.0, "split": "train", "meta": {...},
     "steps": [{"state": "...", "action": "17 * 3 = 51", "reward": 0.0, "label": 1, "node": "n4",
                "parent": "n1", "valid": true, "prm": 0.93, "value": 0.71,
                "tokens": ["17", " *", " 3", " =", " 51"], "token_logprobs": [0, 0, 0, 0, -0.04],
                "any_other_key": ...}]}

Defaults: ``run`` = ``--run`` or the file's stem, ``iteration`` = 0, ``group`` = the prompt (else the
trajectory id), ``split`` = "train". Unknown top-level keys are merged into ``meta``; unknown step keys
are kept per step in ``extra``. Optional per-token arrays of the step's action (``tokens``,
``token_logprobs``, ``token_ref_logprobs``, ``token_entropies``, ``token_advantages``; any subset, one
length within a step, finite numbers) are stored as LIST columns (:data:`core.schema.TOKEN_COLUMNS`).
Parquet: one row per step with the canonical column names (``run_id`` optional) plus optional
``prompt``/``split`` and token list columns; other columns go to ``extra``.

Bulk ingest of JSONL does not use :func:`read`: DuckDB reads the file directly
(:mod:`core.store.native_jsonl`); :func:`read` is the validating fallback that names the exact line
and field of any problem, and the reader for small files and tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import IngestError
from core.ingest.base import STEP_FRAME_COLUMNS, TOKEN_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS, AdapterOptions, Rollouts
from core.ingest.formats._frames import step_token_arrays

if TYPE_CHECKING:
    pass

NAME = "native"
PRIORITY = 90
CHECKED_AGAINST = "creditscope native format v1 (this repository)"

_TOP = ("run", "iteration", "group", "trajectory", "prompt", "outcome", "split", "meta", "steps")
_STEP = ("state", "action", "reward", "label", "node", "parent", "valid", "prm", "value")
_STEP_TO_COLUMN = {"node": "node_id", "parent": "parent_id"}
_PARQUET_REQUIRED = ("traj_id", "step_idx", "action", "outcome")
_INT64 = (-(2**63), 2**63 - 1)


def detect(path: Path, head: bytes) -> str | None:
    """Accept ``.jsonl`` whose first record has ``trajectory`` and a ``steps`` list, or canonical Parquet."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            names = set(pq.read_schema(path).names)
        except Exception as exc:  # unreadable footer: not ours to explain here
            return f"unreadable parquet ({exc})"
        missing = [c for c in _PARQUET_REQUIRED if c not in names]
        return f"parquet lacks canonical columns {missing}" if missing else None
    if path.suffix not in (".jsonl", ".ndjson"):
        return "not a .jsonl/.parquet file"
    line = head.split(b"\n", 1)[0]
    try:
        first = json.loads(line)
    except ValueError:
        return "first line is not a complete JSON object"
    if not isinstance(first, dict) or "trajectory" not in first or not isinstance(first.get("steps"), list):
        return "first record lacks 'trajectory' and a 'steps' list"
    return None


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read and validate a native file into canonical frames."""
    import pandas as pd  # imported here: a native JSONL load never needs pandas

    if path.suffix == ".parquet":
        return _read_parquet(path, options)
    steps: list[dict[str, Any]] = []
    trajs: list[dict[str, Any]] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            rec = _parse_line(path, lineno, raw)
            traj = validate_record(str(path), lineno, rec)
            trajs.append(traj)
            for t, step in enumerate(rec["steps"]):
                row = {_STEP_TO_COLUMN.get(k, k): step.get(k) for k in _STEP}
                for key in ("node_id", "parent_id"):
                    row[key] = None if row[key] is None else str(row[key])
                row.update(step_token_arrays(step, path, lineno, f"steps[{t}]"))
                extra = {k: v for k, v in step.items() if k not in _STEP and k not in TOKEN_FRAME_COLUMNS}
                row.update(
                    run_id=traj["run_id"],
                    traj_id=traj["traj_id"],
                    step_idx=t,
                    extra=json.dumps(extra) if extra else None,
                )
                steps.append(row)
    if not trajs:
        raise IngestError(str(path), "file holds no records")
    step_frame = pd.DataFrame(steps)
    for col in STEP_FRAME_COLUMNS:
        if col not in step_frame:
            step_frame[col] = None
    tokens = [c for c in TOKEN_FRAME_COLUMNS if c in step_frame]
    for col in tokens:  # pandas fills a step without the array with NaN; the store wants NULL
        step_frame[col] = step_frame[col].astype("object").where(step_frame[col].notna(), None)
    traj_frame = pd.DataFrame(trajs)[[*TRAJ_FRAME_COLUMNS, "run_id"]]
    if options.split:  # `--split` overrides what the records say, as for every other format
        traj_frame["split"] = options.split
    # run_id rides along on the steps: trajectory ids repeat across the runs of one file.
    return Rollouts(
        steps=step_frame[[*STEP_FRAME_COLUMNS, *tokens, "run_id"]], trajectories=traj_frame, default_run=path.stem
    )


def _parse_line(path: Path, lineno: int, raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(str(path), f"not valid UTF-8 (byte {exc.start} of the line)", record=lineno) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(str(path), f"invalid JSON ({exc.msg} at column {exc.colno})", record=lineno) from exc
    except RecursionError as exc:  # deeply nested input must not crash the process
        raise IngestError(str(path), "JSON nested too deeply to read", record=lineno) from exc


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _check(path: str, line: int, field: str, value: Any, kind: str, required: bool = False) -> None:
    """Raise an IngestError unless ``value`` is of ``kind`` (or None when not required)."""
    if value is None:
        if required:
            raise IngestError(path, "required field is missing or null", record=line, field=field)
        return
    ok = {
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "id": isinstance(value, str | int) and not isinstance(value, bool),
        "text": isinstance(value, str),
        "bool": isinstance(value, bool),
    }[kind]
    if not ok:
        raise IngestError(path, f"expected {kind}, got {_describe(value)}", record=line, field=field)
    if kind == "number" and not math.isfinite(value):
        raise IngestError(path, f"expected a finite number, got {value}", record=line, field=field)


def validate_record(path: str, line: int, rec: Any) -> dict[str, Any]:
    """Validate one JSONL record and return its trajectory row (run_id None when the record names none)."""
    if not isinstance(rec, dict):
        raise IngestError(path, f"expected a JSON object, got {_describe(rec)}", record=line)
    _check(path, line, "trajectory", rec.get("trajectory"), "id", required=True)
    _check(path, line, "outcome", rec.get("outcome"), "number", required=True)
    for key, kind in (("run", "id"), ("iteration", "integer"), ("group", "id"), ("prompt", "text"), ("split", "text")):
        _check(path, line, key, rec.get(key), kind)
    for key in ("trajectory", "run"):  # ids name rows in the store; an empty one names nothing
        if rec.get(key) == "":
            raise IngestError(path, 'expected a non-empty id, got ""', record=line, field=key)
    iteration = rec.get("iteration")
    if iteration is not None and not _INT64[0] <= iteration <= _INT64[1]:
        raise IngestError(path, f"expected a 64-bit integer, got {iteration}", record=line, field="iteration")
    if rec.get("split") not in (None, "train", "val"):
        raise IngestError(path, f"expected 'train' or 'val', got {_describe(rec['split'])}", record=line, field="split")
    steps = rec.get("steps")
    if not isinstance(steps, list) or not steps:
        raise IngestError(path, f"expected a non-empty list, got {_describe(steps)}", record=line, field="steps")
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        if not isinstance(step, dict):
            raise IngestError(path, f"expected an object, got {_describe(step)}", record=line, field=where)
        _check(path, line, f"{where}.action", step.get("action"), "text", required=True)
        _check(path, line, f"{where}.state", step.get("state"), "text")
        for key in ("reward", "label", "prm", "value"):
            _check(path, line, f"{where}.{key}", step.get(key), "number")
        if step.get("label") is not None and not 0 <= step["label"] <= 1:
            problem = f"expected a label in [0, 1] (1 good, 0 bad), got {_describe(step['label'])}"
            raise IngestError(path, problem, record=line, field=f"{where}.label")
        _check(path, line, f"{where}.valid", step.get("valid"), "bool")
        for key in ("node", "parent"):
            _check(path, line, f"{where}.{key}", step.get(key), "id")
    meta = rec.get("meta")
    extra_top = {k: v for k, v in rec.items() if k not in _TOP}
    if extra_top:
        meta = {**meta, **extra_top} if isinstance(meta, dict) else {"meta": meta, **extra_top}
    traj_id = str(rec["trajectory"])
    group = rec.get("group", rec.get("prompt", traj_id))
    return {
        "run_id": None if rec.get("run") is None else str(rec["run"]),
        "traj_id": traj_id,
        "iteration": rec.get("iteration") or 0,
        "group_id": str(group if group is not None else traj_id),
        "prompt": rec.get("prompt"),
        "split": rec.get("split") or "train",
        "outcome": float(rec["outcome"]),
        "meta": None if meta is None else json.dumps(meta),
    }


def _read_parquet(path: Path, options: AdapterOptions) -> Rollouts:
    import pandas as pd  # imported here: a native JSONL load never needs pandas

    frame = pd.read_parquet(path)
    tokens = [c for c in TOKEN_FRAME_COLUMNS if c in frame]
    canonical = set(STEP_FRAME_COLUMNS) | set(tokens) | {"run_id", "prompt", "split"}
    extra_cols = [c for c in frame.columns if c not in canonical]
    if tokens:  # list columns arrive as numpy arrays: check them row by row and store plain lists
        checked: dict[str, list[Any]] = {c: [] for c in tokens}
        for index, values in enumerate(zip(*(frame[c] for c in tokens), strict=True)):
            arrays = step_token_arrays(dict(zip(tokens, values, strict=True)), path, f"row {index + 1}", "")
            for c in tokens:
                checked[c].append(arrays.get(c))
        for c in tokens:
            frame[c] = pd.Series(checked[c], index=frame.index, dtype="object")
    for col in STEP_FRAME_COLUMNS:
        if col not in frame:
            frame[col] = None
    if extra_cols:
        frame["extra"] = [json.dumps(r, default=str) for r in frame[extra_cols].to_dict("records")]
    # Trajectory ids are unique only within a run, so a file holding several runs groups by both.
    keys = ["run_id", "traj_id"] if "run_id" in frame else ["traj_id"]
    ordered = frame.sort_values([*keys, "step_idx"])
    firsts = ordered.groupby(keys, sort=False, dropna=False).first().reset_index()
    trajs = pd.DataFrame(
        {
            "run_id": firsts["run_id"] if "run_id" in firsts else None,
            "traj_id": firsts["traj_id"].astype(str),
            "iteration": firsts["iteration"].fillna(0).astype("int64"),
            "group_id": firsts["group_id"].astype(str),
            "prompt": firsts["prompt"] if "prompt" in firsts else None,
            "split": firsts["split"] if "split" in firsts else "train",
            "outcome": firsts["outcome"].astype("float64"),
            "meta": None,
        }
    )
    step_columns = [*STEP_FRAME_COLUMNS, *tokens, *(["run_id"] if "run_id" in frame else [])]
    return Rollouts(steps=frame[step_columns], trajectories=trajs, default_run=path.stem)
