"""ProcessBench step-error benchmark (Qwen/ProcessBench ``gsm8k.json``, ``math.json``, ...).

Checked against the layout documented in QwenLM/ProcessBench @ e8024636 (README, ``code/run_eval.py``),
summarised in log-formats.md A.9; no real file is stored, the test fixture is built from that layout.

Accepted files: the official JSON array of records, or JSONL with one record per line. A record is
``{id, generator, problem, steps[], final_answer_correct, label}``, ``label`` being the 0-based index of
the earliest wrong step or -1 when all steps are correct.

Mapping (one record = one trajectory):

- steps = ``steps[]`` as given (already split by the benchmark); ``state`` = problem plus previous steps.
- ``label``: steps before the first error 1.0, the first error 0.0, steps after it null: ProcessBench
  only marks the earliest error, so later steps are unknown, not good.
- ``outcome`` = 1.0 if ``final_answer_correct`` else 0.0 (a solution can reach the right answer after
  a wrong step; the benchmark keeps both facts and so do we).
- ``traj_id`` = the record's ``id`` (must be unique in the file); ``group_id`` = hash of ``problem``
  (the same problem answered by several generators forms a group); ``iteration`` = 0.
- ``meta``: ``id``, ``generator``, ``final_answer_correct``, ``label`` and any other field.
Record locators in errors are line numbers for JSONL and ``[index]`` (0-based) for a JSON array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, require, text_key
from core.ingest.formats._rollout_records import head_lacks_keys, head_record, load_json_document, read_jsonl
from core.ingest.formats._steps import reasoning_state

NAME = "processbench"
PRIORITY = 25
CHECKED_AGAINST = "QwenLM/ProcessBench @ e8024636 (README, code/run_eval.py); layout only, no real file"

REQUIRED_KEYS = ("id", "problem", "steps", "final_answer_correct", "label")


def detect(path: Path, head: bytes) -> str | None:
    """Accept a JSON array or JSONL whose first record has ProcessBench's keys."""
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        # The official files are one big array; the head may cut it, so look for the key names.
        missing = head_lacks_keys(head, REQUIRED_KEYS)
        return f"JSON array without keys {'/'.join(missing)}" if missing else None
    record = head_record(path, head, REQUIRED_KEYS, suffix=None)
    return record if isinstance(record, str) else None


def _records(path: Path, options: AdapterOptions) -> tuple[list[tuple[int | str, Any]], list[str]]:
    """Return (locator, record) pairs and skip notes, for either accepted file layout."""
    with path.open("rb") as handle:
        first = handle.read(4096).lstrip()
    if first.startswith(b"["):
        document = load_json_document(path)
        if not isinstance(document, list):
            raise IngestError(str(path), f"expected a JSON array, got {type(document).__name__}")
        return [(f"[{index}]", record) for index, record in enumerate(document)], []
    parsed = read_jsonl(path, options)
    return list(parsed.records), parsed.skipped


def _labels(first_error: Any, n_steps: int, path: Path, record: int | str) -> list[float | None]:
    """Per-step labels from the index of the first wrong step (-1: none wrong)."""
    if isinstance(first_error, bool) or not isinstance(first_error, int) or not -1 <= first_error < n_steps:
        problem = f"expected -1 or a step index below {n_steps}, got {first_error!r}"
        raise IngestError(str(path), problem, record=record, field="label")
    if first_error == -1:
        return [1.0] * n_steps
    return [1.0] * first_error + [0.0] + [None] * (n_steps - first_error - 1)


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read a ProcessBench file into canonical frames (mapping in the module docstring).

    Raises:
        IngestError: Invalid JSON, missing keys, non-string steps, an empty step list, a label outside
            [-1, n_steps), a non-boolean ``final_answer_correct`` or a repeated ``id``.
    """
    records, skipped = _records(path, options)
    builder = FrameBuilder()
    seen_ids: set[str] = set()
    for locator, record in records:
        problem = require(record, "problem", path, locator, str)
        steps = require(record, "steps", path, locator, list)
        if not steps:
            raise IngestError(str(path), "no steps", record=locator, field="steps")
        for index, step in enumerate(steps):
            if not isinstance(step, str):
                problem_text = f"expected str, got {type(step).__name__}"
                raise IngestError(str(path), problem_text, record=locator, field=f"steps[{index}]")
        correct = require(record, "final_answer_correct", path, locator, bool)
        traj_id = str(require(record, "id", path, locator, (str, int)))
        if traj_id in seen_ids:
            raise IngestError(str(path), f"id {traj_id!r} appears twice", record=locator, field="id")
        seen_ids.add(traj_id)
        labels = _labels(record.get("label"), len(steps), path, locator)
        rows = [
            StepRow(action=step, state=reasoning_state(problem, steps[:index]), label=labels[index])
            for index, step in enumerate(steps)
        ]
        builder.add(
            traj_id=traj_id,
            group_id=text_key(problem),
            outcome=1.0 if correct else 0.0,
            steps=rows,
            prompt=problem,
            meta={k: v for k, v in record.items() if k not in ("problem", "steps")},
        )
    return builder.rollouts(
        options, run_config={"steps": "as given by ProcessBench"}, default_run=path.stem, skipped=skipped
    )
