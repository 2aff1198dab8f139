"""verl ``trainer.rollout_data_dir`` / ``trainer.validation_data_dir`` dumps: ``{dir}/{global_steps}.jsonl``.

Checked against volcengine/verl @ b178a3cd (``ray_trainer._dump_generations``) and the real dump
``rollouts/2.jsonl`` of Hecate0821/hecate_verl @ c21a8be2 (keys input/output/score/step/request_id).

Mapping (log-formats.md B.1):

- iteration: the ``step`` key, else the file name's number (``37.jsonl``), else 0.
- split: ``options.split`` if given; else ``val`` when a folder in the path is named like validation
  (``val``, ``validation_data_dir``, ``val_generations``, ...) or the records carry ``reward`` (only
  validation dumps write it); else ``train``.
- group_id: verl writes no group key and reorders rows (``_balance_batch``), so a group is the rows of
  one file with an identical ``input``: ``{split}:{sha1(input)[:12]}``.
- traj_id: ``{split}/{file stem}/{line number}``, stable across re-reads.
- outcome: ``score`` (reward-function score before any KL penalty); step ``reward`` stays null because
  verl logs no per-step reward.
- steps: one rule per group, chosen from the whole group (:func:`._steps.group_step_rules`), so step
  indices compare across a group's rollouts. A multi-turn (tool agent loop) output is one flat string;
  when role words survive in any rollout of the group (a ``user``/``tool`` line, its text, then an
  ``assistant`` line), every rollout of the group is cut into one step per assistant turn (a rollout
  without a tool call is one turn, one step) and the tool/user text in between becomes the next step's
  state. Otherwise every output of the group is split with ``options.splitter`` (``auto`` resolved once
  per group: ``step_k`` if any output has ``Step k`` markers, else ``blank_lines``) and step k's state is
  the input plus the earlier steps.
- meta: every other key (``gts``, ``acc``, ``pred``, ``request_id``, ``reward``, any reward_extra_info)
  plus ``step_split`` (``"turns"`` or the concrete splitter used; the same for every rollout of a group).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, finite_number, require, text_key
from core.ingest.formats._rollout_records import head_record, read_jsonl
from core.ingest.formats._steps import group_step_rules, steps_by_rule
from core.ingest.split import validate_splitter

NAME = "verl"
PRIORITY = 30
CHECKED_AGAINST = "volcengine/verl b178a3cd (_dump_generations); hecate_verl c21a8be2 rollouts/2.jsonl"

REQUIRED_KEYS: tuple[str, ...] = ("input", "output", "score")
_MAPPED_KEYS = frozenset({"input", "output", "score", "step"})
_VALIDATION_FOLDER = re.compile(r"(^|[_\-.])(val|valid|validation|eval)([_\-.]|$)", re.IGNORECASE)


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL whose first record has string ``input``/``output`` and a ``score``."""
    record = head_record(path, head, REQUIRED_KEYS)
    if isinstance(record, str):
        return record
    if not isinstance(record["input"], str) or not isinstance(record["output"], str):
        return "input/output are not strings"
    return None


def infer_split(path: Path, records: list[tuple[int, dict[str, Any]]], options: AdapterOptions) -> str:
    """Train or val, per the module docstring."""
    if options.split is not None:
        return options.split
    if any(_VALIDATION_FOLDER.search(folder) for folder in path.parent.parts[-3:]):
        return "val"
    return "val" if all("reward" in record for _, record in records) else "train"


def iteration_of(record: dict[str, Any], path: Path, line: int) -> int:
    """The ``step`` key, else the file name's number, else 0."""
    step = record.get("step")
    if step is None:
        return int(path.stem) if path.stem.isdigit() else 0
    if isinstance(step, bool) or not isinstance(step, int):
        raise IngestError(str(path), f"expected an integer, got {type(step).__name__}", line, "step")
    return step


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one verl step dump; see the module docstring for the mapping.

    Raises:
        IngestError: Bad JSON, a missing or non-string ``input``/``output``, a non-numeric or non-finite
            ``score`` (naming the line and field).
    """
    validate_splitter(options.splitter)
    records, skipped = read_jsonl(path, options)
    split = infer_split(path, records, options)
    texts = [
        (line, require(record, "input", path, line, str), require(record, "output", path, line, str))
        for line, record in records
    ]
    groups = [f"{split}:{text_key(prompt)}" for _, prompt, _ in texts]
    rules = group_step_rules(list(zip(groups, (output for _, _, output in texts), strict=True)), options.splitter)
    builder = FrameBuilder()
    for (line, record), (_, prompt, output), group in zip(records, texts, groups, strict=True):
        outcome = finite_number(require(record, "score", path, line), path, line, "score")
        steps = steps_by_rule(prompt, output, rules[group], path, line, "output")
        meta = {key: value for key, value in record.items() if key not in _MAPPED_KEYS}
        meta["step_split"] = rules[group]
        builder.add(
            traj_id=f"{split}/{path.stem}/{line}",
            iteration=iteration_of(record, path, line),
            group_id=group,
            prompt=prompt,
            split=split,
            outcome=outcome,
            meta=meta,
            steps=steps,
        )
    return builder.rollouts(
        options,
        run_config={
            "splitter": options.splitter,
            "verl_turns": "split at role words user/tool ... assistant",
            "step_rule": "one per group: turns if any rollout has an environment turn, else one splitter",
        },
        default_run=path.parent.name or None,
        skipped=skipped,
    )
