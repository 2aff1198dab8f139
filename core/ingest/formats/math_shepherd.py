"""Math-Shepherd MCTS step labels (dataset peiyi9979/Math-Shepherd: ``{input, label, task}`` per line).

Checked against the native sample in openreasoner/openr @ 54ae004c ``preprocess/tests/samples_math-shepherd.jsonl``
and the layout in log-formats.md A.2 (OpenRLHF trains on it with placeholder ``ки`` and reward tokens ``+``/``-``).

Mapping (one line = one solution = one trajectory):

- ``input`` is ``question + " " + solution`` where every step ends with the step tag ``ки``; ``label`` is
  the same text with ``+`` or ``-`` in place of each tag. The text is split on the tags (the tag and
  surrounding whitespace are dropped); the question is the text before the first ``Step 1:`` marker
  (when there is none, ``prompt`` is null and the first step keeps the whole first segment).
- ``label``: ``+`` -> 1.0, ``-`` -> 0.0 (``core.schema.LABEL_MAPPING_DOC``). The ``label`` text must equal
  ``input`` with each tag replaced, otherwise the line is rejected (the labels could not be trusted).
- ``outcome`` = the last step's label: Math-Shepherd labels the final step by whether its answer
  matches the reference, so it is the solution's correctness.
- ``traj_id`` = ``<file stem>:<line>``; ``group_id`` = hash of the question; ``iteration`` = 0;
  ``meta`` keeps ``task`` and any other field of the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, require, text_key
from core.ingest.formats._rollout_records import head_record, read_jsonl
from core.ingest.formats._steps import reasoning_state

NAME = "math_shepherd"
PRIORITY = 25
CHECKED_AGAINST = "peiyi9979/Math-Shepherd layout; sample lines from openreasoner/openr @ 54ae004c"

STEP_TAG = "ки"
_TAG_TO_LABEL = {"+": 1.0, "-": 0.0}
_FIRST_STEP_MARKER = re.compile(r"Step\s*1\s*:")


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL whose first record has ``input`` and ``label`` strings with the ``ки`` step tag."""
    record = head_record(path, head, ("input", "label"), suffix=None)
    if isinstance(record, str):
        return record
    if not isinstance(record["input"], str) or STEP_TAG not in record["input"]:
        return f"input has no '{STEP_TAG}' step tag"
    return None


def _tag_labels(segments: list[str], label_text: str, path: Path, line: int) -> list[float]:
    """Read the ``+``/``-`` that stands in ``label_text`` where ``input`` had each step tag.

    ``segments`` is ``input.split(STEP_TAG)``; ``label_text`` must be those segments joined by single
    ``+``/``-`` characters. Walking it segment by segment pins each label to its step exactly.
    """
    labels: list[float] = []
    position = 0
    for index, segment in enumerate(segments):
        if not label_text.startswith(segment, position):
            problem = f"text differs from input before step tag {index + 1}"
            raise IngestError(str(path), problem, record=line, field="label")
        position += len(segment)
        if index == len(segments) - 1:
            break
        tag = label_text[position : position + 1]
        if tag not in _TAG_TO_LABEL:
            problem = f"expected '+' or '-' in place of step tag {index + 1}, got {tag!r}"
            raise IngestError(str(path), problem, record=line, field="label")
        labels.append(_TAG_TO_LABEL[tag])
        position += 1
    if position != len(label_text):
        raise IngestError(str(path), "text continues after the input ends", record=line, field="label")
    return labels


def _split_question(first_segment: str) -> tuple[str | None, str]:
    """Split the text before the first tag into (question, first step text)."""
    marker = _FIRST_STEP_MARKER.search(first_segment)
    if marker is None:
        return None, first_segment.strip()
    return first_segment[: marker.start()].strip(), first_segment[marker.start() :].strip()


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read a Math-Shepherd JSONL file into canonical frames (mapping in the module docstring).

    Raises:
        IngestError: Invalid JSON, missing/non-string ``input`` or ``label``, no step tag, or a
            ``label`` text that does not mirror ``input``; the error names line and field.
    """
    parsed = read_jsonl(path, options)
    builder = FrameBuilder()
    for line, record in parsed.records:
        input_text = require(record, "input", path, line, str)
        label_text = require(record, "label", path, line, str)
        segments = input_text.split(STEP_TAG)
        if len(segments) < 2:
            raise IngestError(str(path), f"no '{STEP_TAG}' step tag", record=line, field="input")
        labels = _tag_labels(segments, label_text, path, line)
        question, first_step = _split_question(segments[0])
        texts = [first_step, *(segment.strip() for segment in segments[1:-1])]
        rows = [
            StepRow(action=text, state=reasoning_state(question, texts[:index]), label=labels[index])
            for index, text in enumerate(texts)
        ]
        meta: dict[str, Any] = {k: v for k, v in record.items() if k not in ("input", "label")}
        if trailing := segments[-1].strip():
            meta["text_after_last_tag"] = trailing  # kept so nothing of the input is lost
        builder.add(
            traj_id=f"{path.stem}:{line}",
            group_id=text_key(question if question is not None else input_text),
            outcome=labels[-1],
            steps=rows,
            prompt=question,
            meta=meta,
        )
    return builder.rollouts(
        options, run_config={"splitter": f"step tag '{STEP_TAG}'"}, default_run=path.stem, skipped=parsed.skipped
    )
