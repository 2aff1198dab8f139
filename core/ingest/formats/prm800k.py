"""PRM800K step-labelled solutions (openai/prm800k ``phase{1,2}_{train,test}.jsonl``).

Checked against openai/prm800k @ 7ecc7947 (README) and the native sample in openreasoner/openr @ 54ae004c
``preprocess/tests/samples_prm800k.jsonl``.

Mapping (one JSONL line = one labelled solution = one trajectory):

- ``traj_id`` = ``<file stem>:<line>``; ``group_id`` = hash of ``question.problem`` (several labellers
  and generations of one problem form a group); ``iteration`` = 0; ``prompt`` = the problem.
- Steps follow ``label.steps``: the chosen completion (``completions[chosen_completion]``), else the
  labeller's ``human_completion``. A final step with neither is where labelling stopped: with
  ``finish_reason == "found_error"`` the first completion rated -1 (in phase 2 the pre-generated step)
  becomes the last step, labelled 0.0, so the trajectory ends at its error; otherwise (``give_up``,
  ``bad_problem``) no step is made and the unchosen alternatives are kept in ``meta``.
- ``label``: rating +1 -> 1.0, 0 -> 1.0 (neutral is not an error, see ``core.schema.LABEL_MAPPING_DOC``),
  -1 -> 0.0; human-written steps carry no rating, so their label is null (unknown).
- ``outcome``: 0.0 when labelling ``found_error``; else 1.0/0.0 from comparing the text after ``# Answer``
  in the last step with ``question.ground_truth_answer`` (whitespace and ``$`` ignored) when both are
  known; else 1.0 when ``finish_reason == "solution"`` and no chosen step is rated -1, otherwise 0.0.
  ``meta.outcome_source`` says which rule applied.
- ``extra`` per step: the raw ``rating``, ``flagged``, ``source`` (model/human/found_error),
  ``chosen_completion`` and every alternative completion (text, rating, flagged). ``meta``: every
  other field of the line (labeler, timestamp, generation, question fields, finish_reason, ...).
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

NAME = "prm800k"
PRIORITY = 20
CHECKED_AGAINST = "openai/prm800k @ 7ecc7947 (README); sample lines from openreasoner/openr @ 54ae004c"

_RATING_TO_LABEL: dict[int, float] = {1: 1.0, 0: 1.0, -1: 0.0}
_ANSWER_MARKER = re.compile(r"#\s*Answer\s*\n", re.IGNORECASE)


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL whose first record has PRM800K's ``labeler``/``question``/``label`` keys."""
    record = head_record(path, head, ("labeler", "question", "label"), suffix=None)
    if isinstance(record, str):
        return record
    if not isinstance(record["label"], dict) or "steps" not in record["label"]:
        return "label has no steps list"
    return None


def _label_of(rating: Any, path: Path, line: int, field_name: str) -> float | None:
    """Map a PRM800K rating to a canonical label (None for an unrated human step)."""
    if rating is None:
        return None
    if isinstance(rating, bool) or not isinstance(rating, int) or rating not in _RATING_TO_LABEL:
        raise IngestError(str(path), f"rating must be -1, 0, 1 or null, got {rating!r}", record=line, field=field_name)
    return _RATING_TO_LABEL[rating]


def _final_answer(text: str) -> str | None:
    """The text after PRM800K's ``# Answer`` marker, or None when the step has none."""
    parts = _ANSWER_MARKER.split(text, maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else None


def _normalise_answer(answer: str) -> str:
    """Answer text compared loosely: without whitespace and ``$`` delimiters."""
    return re.sub(r"[\s$]", "", answer)


def _read_steps(
    record: dict[str, Any], path: Path, line: int
) -> tuple[list[tuple[str, float | None, dict[str, Any]]], dict[str, Any]]:
    """Return (text, label, extra) per step and meta notes about where labelling stopped."""
    label = require(record, "label", path, line, dict)
    raw_steps = require(label, "steps", path, line, list, "label.steps")
    finish_reason = label.get("finish_reason")
    steps: list[tuple[str, float | None, dict[str, Any]]] = []
    notes: dict[str, Any] = {}
    for index, raw in enumerate(raw_steps):
        where = f"label.steps[{index}]"
        if not isinstance(raw, dict):
            raise IngestError(str(path), f"expected object, got {type(raw).__name__}", record=line, field=where)
        completions = raw.get("completions") or []
        if not isinstance(completions, list) or not all(isinstance(c, dict) for c in completions):
            raise IngestError(str(path), "expected a list of objects", record=line, field=f"{where}.completions")
        chosen = raw.get("chosen_completion")
        human = raw.get("human_completion")
        if chosen is not None:
            if isinstance(chosen, bool) or not isinstance(chosen, int) or not 0 <= chosen < len(completions):
                problem = f"index {chosen!r} out of range for {len(completions)} completions"
                raise IngestError(str(path), problem, record=line, field=f"{where}.chosen_completion")
            picked, source = completions[chosen], "model"
            picked_field = f"{where}.completions[{chosen}]"
        elif human is not None:
            picked, source, picked_field = human, "human", f"{where}.human_completion"
            if not isinstance(picked, dict):
                raise IngestError(str(path), "expected object", record=line, field=picked_field)
        else:
            # Labelling stopped at this step: it must be the last one.
            if index != len(raw_steps) - 1:
                problem = "step has no chosen or human completion but later steps follow"
                raise IngestError(str(path), problem, record=line, field=where)
            wrong = [i for i, c in enumerate(completions) if c.get("rating") == -1]
            if finish_reason == "found_error" and wrong:
                picked, source = completions[wrong[0]], "found_error"
                picked_field = f"{where}.completions[{wrong[0]}]"
            else:
                notes["unchosen_final_step"] = raw
                break
        text = require(picked, "text", path, line, str, f"{picked_field}.text")
        step_label = _label_of(picked.get("rating"), path, line, f"{picked_field}.rating")
        extra = {
            "rating": picked.get("rating"),
            "flagged": picked.get("flagged"),
            "source": source,
            "chosen_completion": chosen,
            # Every field of every alternative, so a later analysis can compare the branches.
            "alternatives": [c for c in completions if c is not picked],
        }
        extra.update({k: v for k, v in picked.items() if k not in ("text", "rating", "flagged", "source")})
        steps.append((text, step_label, extra))
    return steps, notes


def _outcome(
    steps: list[tuple[str, float | None, dict[str, Any]]], finish_reason: Any, ground_truth: Any
) -> tuple[float, str, str | None]:
    """Return (outcome, rule used, final answer text) per the rules in the module docstring."""
    final_answer = _final_answer(steps[-1][0])
    if finish_reason == "found_error":
        return 0.0, "found_error", final_answer
    if final_answer is not None and isinstance(ground_truth, str):
        matched = _normalise_answer(final_answer) == _normalise_answer(ground_truth)
        return (1.0 if matched else 0.0), "answer_match", final_answer
    clean = finish_reason == "solution" and all(extra.get("rating") != -1 for _, _, extra in steps)
    return (1.0 if clean else 0.0), "finish_reason", final_answer


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read a PRM800K JSONL file into canonical frames (mapping in the module docstring).

    Raises:
        IngestError: Invalid JSON, missing ``question.problem``/``label.steps``, bad ratings or
            completion indices, or a line with no labelled step; the error names line and field.
    """
    parsed = read_jsonl(path, options)
    builder = FrameBuilder()
    for line, record in parsed.records:
        question = require(record, "question", path, line, dict)
        problem = require(question, "problem", path, line, str, "question.problem")
        steps, notes = _read_steps(record, path, line)
        if not steps:
            raise IngestError(str(path), "no labelled step to ingest", record=line, field="label.steps")
        label = record["label"]
        outcome, rule, final_answer = _outcome(steps, label.get("finish_reason"), question.get("ground_truth_answer"))
        meta: dict[str, Any] = {k: v for k, v in record.items() if k not in ("question", "label")}
        meta["question"] = {k: v for k, v in question.items() if k != "problem"}
        meta.update({k: v for k, v in label.items() if k != "steps"})
        meta.update(notes, outcome_source=rule, final_answer=final_answer)
        texts = [text for text, _, _ in steps]
        rows = [
            StepRow(action=text, state=reasoning_state(problem, texts[:index]), label=step_label, extra=extra)
            for index, (text, step_label, extra) in enumerate(steps)
        ]
        builder.add(
            traj_id=f"{path.stem}:{line}",
            group_id=text_key(problem),
            outcome=outcome,
            steps=rows,
            prompt=problem,
            meta=meta,
        )
    return builder.rollouts(
        options,
        run_config={"steps": "chosen or human completion per label step"},
        default_run=path.stem,
        skipped=parsed.skipped,
    )
