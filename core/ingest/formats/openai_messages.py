"""Generic OpenAI-style chat JSONL: one rollout per line, ``{"messages": [...], "reward": ...}``.

The common denominator of many RL codebases (log-formats.md B.12). Checked against the OpenAI chat
completions wire shape (``tool_calls[].function.{name, arguments}``, ``tool`` messages with
``tool_call_id``) and the variants listed in B.12 (flat ``{id, name, arguments}`` calls, dict
arguments, TRL's ``{"role": "tool", "name": ...}``).

Mapping:

- steps: one per assistant message (:func:`core.ingest.messages.messages_to_steps`); messages before
  the first assistant turn are the first state; tool/user messages between turns the next state.
- outcome: ``reward``, else ``score``; a ``rewards``/``reward_components`` dict of numbers is kept per
  component in ``meta["reward_components"]``. Per-step rewards, when a ``step_rewards`` list with one
  number per assistant turn is present, go to the steps' ``reward``.
- group_id: the first of ``group_id``, ``example_id``, ``task_id``, ``prompt_id`` present, else the
  digest of the prompt messages; iteration: ``step``, ``iteration`` or ``global_step``, else 0;
  split: ``options.split``, else a ``split`` key, else ``train``; traj_id: ``id``/``traj_id`` if
  present, else ``{file stem}/{line number}``.
- meta: every other key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, finite_number, require, text_key
from core.ingest.formats._rollout_records import head_record, read_jsonl
from core.ingest.formats._steps import chat_steps, prompt_key, render_prompt

NAME = "openai_messages"
PRIORITY = 80
CHECKED_AGAINST = "OpenAI chat-completions message/tool_call shape; log-formats.md B.12 variants (2026-08)"

GROUP_KEYS: tuple[str, ...] = ("group_id", "example_id", "task_id", "prompt_id")
ITERATION_KEYS: tuple[str, ...] = ("step", "iteration", "global_step")
TRAJ_KEYS: tuple[str, ...] = ("traj_id", "id")
_MAPPED = frozenset({"messages", "reward", "score", "step_rewards", "split"})


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL whose first record has a ``messages`` list and a ``reward`` or ``score``."""
    record = head_record(path, head)
    if isinstance(record, str):
        return record
    if not isinstance(record.get("messages"), list):
        return "first record has no messages list"
    if "reward" not in record and "score" not in record:
        return "first record has neither reward nor score"
    return None


def _first_present(record: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    """The first ``(key, value)`` among ``keys`` with a non-null value."""
    for key in keys:
        if record.get(key) is not None:
            return key, record[key]
    return None


def _prompt_messages(messages: list[Any]) -> list[Any]:
    """Messages before the first assistant turn (the task as posed)."""
    for index, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            return messages[:index]
    return messages


def _iteration(record: dict[str, Any], path: Path, line: int) -> int:
    """The first iteration key present, else 0."""
    found = _first_present(record, ITERATION_KEYS)
    if found is None:
        return 0
    key, value = found
    if isinstance(value, bool) or not isinstance(value, int):
        raise IngestError(str(path), f"expected an integer, got {type(value).__name__}", line, key)
    return value


def _apply_step_rewards(steps: list[StepRow], record: dict[str, Any], path: Path, line: int) -> None:
    """Copy a ``step_rewards`` list (one number per assistant turn) onto the steps."""
    step_rewards = record.get("step_rewards")
    if step_rewards is None:
        return
    if not isinstance(step_rewards, list) or len(step_rewards) != len(steps):
        raise IngestError(
            str(path), f"expected a list of {len(steps)} numbers (one per assistant turn)", line, "step_rewards"
        )
    for position, (step, value) in enumerate(zip(steps, step_rewards, strict=True)):
        step.reward = finite_number(value, path, line, f"step_rewards[{position}]", optional=True)


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read a chat-messages JSONL file; see the module docstring for the mapping.

    Raises:
        IngestError: Bad JSON, a missing ``messages``/reward, malformed messages or non-finite numbers,
            naming the line and field.
    """
    records, skipped = read_jsonl(path, options)
    builder = FrameBuilder()
    seen_ids: set[str] = set()
    for line, record in records:
        messages = require(record, "messages", path, line, list)
        reward_key = "reward" if "reward" in record else "score"
        outcome = finite_number(require(record, reward_key, path, line), path, line, reward_key)
        prompt_messages = _prompt_messages(messages)
        steps, _ = chat_steps(None, messages, options.splitter, path, line, field="messages")
        _apply_step_rewards(steps, record, path, line)
        meta: dict[str, Any] = {key: value for key, value in record.items() if key not in _MAPPED}
        components_key = "reward_components" if "reward_components" in record else "rewards"
        components_raw = record.get(components_key)
        if isinstance(components_raw, dict):
            # a dict of named rewards is a breakdown of the outcome; a list under "rewards" stays as is
            meta.pop(components_key)
            meta["reward_components"] = {
                name: finite_number(value, path, line, f"{components_key}.{name}", optional=True)
                for name, value in components_raw.items()
            }
        group = _first_present(record, GROUP_KEYS)
        own_id = _first_present(record, TRAJ_KEYS)
        traj_id = str(own_id[1]) if own_id else f"{path.stem}/{line}"
        if traj_id in seen_ids:
            raise IngestError(str(path), f"trajectory id {traj_id!r} repeats an earlier line", line, own_id[0])
        seen_ids.add(traj_id)
        builder.add(
            traj_id=traj_id,
            iteration=_iteration(record, path, line),
            group_id=str(group[1]) if group else text_key(prompt_key(prompt_messages)),
            prompt=render_prompt(prompt_messages),
            split=options.split or str(record.get("split") or "train"),
            outcome=outcome,
            meta=meta,
            steps=steps,
        )
    return builder.rollouts(
        options,
        run_config={"splitter": options.splitter},
        default_run=path.stem,
        skipped=skipped,
    )
