"""tinker-cookbook rollout summaries: ``iteration_{NNNNNN}/{base}_rollout_summaries.jsonl`` (+ ``{base}_logtree.json``).

Checked against thinking-machines-lab/tinker-cookbook @ 9dfcc3a2 (``rl/rollout_logging.py``
``serialize_rollout_summaries``, schema_version 1; ``utils/logtree.py``). No real log was available:
the test fixture is built from that code's documented record layout (tests/fixtures/tinker/make_fixture.py).

Mapping (log-formats.md B.10):

- one line = one trajectory; ``iteration`` = the record's ``iteration``; group = ``group_idx`` within the
  iteration, prefixed by the file's base name so train and eval groups never merge
  (``group_id = "train/g3"``); ``traj_id = "{base}/it{iteration}/g{group_idx}/t{traj_idx}"``.
- split: ``"train"`` when the record's ``split`` is ``train``, else ``"val"`` (eval splits); ``options.split`` wins.
- steps = ``steps[]``; ``reward`` = the step reward; outcome = ``total_reward`` (tinker's total: the
  step rewards plus the group-computed ``final_reward``), with ``final_reward`` and the step-reward sum
  kept in ``meta["reward_components"]``.
- text: summaries hold token lengths only. When the companion ``{base}_logtree.json`` exists, steps of
  the logged groups get their prompt (state) and response (action) from it, matched by reward
  (:mod:`._tinker_logtree`; approximate among equal rewards, flagged in ``extra["text_source"]``).
  Other steps have ``action = ""`` and no state; ``ob_len``/``ac_len`` stay in ``extra``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, check_type, finite_number, require
from core.ingest.formats._rollout_records import head_lacks_keys, load_json_document, read_jsonl
from core.ingest.formats._tinker_logtree import LoggedStep, assign_texts, group_steps

NAME = "tinker"
PRIORITY = 30
CHECKED_AGAINST = "tinker-cookbook @ 9dfcc3a2 (rollout summary schema_version 1, logtree JSON)"
COMPANIONS: tuple[str, ...] = ("*_logtree.json",)

_SUFFIX = "_rollout_summaries.jsonl"
_RECORD_KEYS = ("group_idx", "traj_idx", "total_reward", "steps")
_MAPPED_STEP_KEYS = frozenset({"reward"})
_MAPPED_RECORD_KEYS = frozenset({"iteration", "group_idx", "traj_idx", "total_reward", "steps"})


def detect(path: Path, head: bytes) -> str | None:
    """Accept ``*_rollout_summaries.jsonl`` files whose first record has the summary keys."""
    if not path.name.endswith(_SUFFIX):
        return f"file name does not end with {_SUFFIX}"
    missing = head_lacks_keys(head, _RECORD_KEYS)
    return f"first record lacks keys {', '.join(missing)}" if missing else None


def _int_field(record: dict[str, Any], key: str, path: Path, line: int) -> int:
    """A required integer field (bools are not integers here)."""
    value = require(record, key, path, line)
    if not isinstance(value, int) or isinstance(value, bool):
        raise IngestError(str(path), f"expected an integer, got {type(value).__name__}", line, key)
    return value


def _logged_groups(path: Path, base_name: str) -> list[list[LoggedStep]] | None:
    """The companion logtree's steps per logged group, or None when there is no logtree."""
    logtree_path = path.with_name(f"{base_name}_logtree.json")
    if not logtree_path.exists():
        return None
    document = load_json_document(logtree_path)
    return group_steps(check_type(document, dict, logtree_path, None, "root"))


def _steps_of(record: dict[str, Any], path: Path, line: int, logged: list[LoggedStep] | None) -> list[StepRow]:
    """Turn a record's ``steps[]`` into step rows, attaching logtree text where it matches."""
    raw_steps = check_type(record["steps"], list, path, line, "steps")
    if not raw_steps:
        raise IngestError(str(path), "trajectory has no steps", line, "steps")
    rewards: list[float | None] = []
    for index, raw in enumerate(raw_steps):
        step = check_type(raw, dict, path, line, f"steps[{index}]")
        rewards.append(finite_number(step.get("reward"), path, line, f"steps[{index}].reward", optional=True))
    texts = assign_texts(logged, rewards) if logged is not None else [None] * len(raw_steps)
    rows: list[StepRow] = []
    for raw, reward, text in zip(raw_steps, rewards, texts, strict=True):
        extra = {key: value for key, value in raw.items() if key not in _MAPPED_STEP_KEYS}
        if text is not None:
            extra["text_source"] = "logtree (matched by reward)"
        rows.append(
            StepRow(
                action=text.action or "" if text is not None else "",
                state=text.state if text is not None else None,
                reward=reward,
                extra=extra,
            )
        )
    return rows


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one rollout-summary file (and its logtree companion) into canonical frames.

    Raises:
        IngestError: Bad JSON lines, missing/ill-typed keys, non-finite rewards, a trajectory without steps.
    """
    base_name = path.name.removesuffix(_SUFFIX)
    records, skipped = read_jsonl(path, options)
    logged_groups = _logged_groups(path, base_name)
    builder = FrameBuilder()
    for line, record in records:
        iteration = _int_field(record, "iteration", path, line)
        group_idx = _int_field(record, "group_idx", path, line)
        traj_idx = _int_field(record, "traj_idx", path, line)
        total = finite_number(require(record, "total_reward", path, line), path, line, "total_reward")
        require(record, "steps", path, line)
        logged = logged_groups[group_idx] if logged_groups is not None and group_idx < len(logged_groups) else None
        steps = _steps_of(record, path, line, logged)
        final = finite_number(record.get("final_reward"), path, line, "final_reward", optional=True)
        step_sum = sum(step.reward or 0.0 for step in steps)
        meta = {key: value for key, value in record.items() if key not in _MAPPED_RECORD_KEYS}
        meta["reward_components"] = {"final_reward": final, "step_rewards_sum": step_sum}
        builder.add(
            traj_id=f"{base_name}/it{iteration}/g{group_idx}/t{traj_idx}",
            iteration=iteration,
            group_id=f"{base_name}/g{group_idx}",
            prompt=steps[0].state,
            split=options.split or ("train" if record.get("split", base_name) == "train" else "val"),
            outcome=total,
            steps=steps,
            meta=meta,
        )
    match = re.fullmatch(r"iteration_(\d+)", path.parent.name)
    run_dir = path.parent.parent if match else path.parent
    return builder.rollouts(
        options,
        run_config={"tinker_base_name": base_name, "logtree": logged_groups is not None},
        default_run=run_dir.name or None,
        skipped=skipped,
    )
