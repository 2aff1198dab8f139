"""Generic OpenAI-style chat JSONL: one rollout per line, ``{"messages": [...], "reward": ...}``.

The common denominator of many RL codebases (log-formats.md B.12). Checked against the OpenAI chat
completions wire shape (``tool_calls[].function.{name, arguments}``, ``tool`` messages with
``tool_call_id``) and the variants listed in B.12 (flat ``{id, name, arguments}`` calls, dict
arguments, TRL's ``{"role": "tool", "name": ...}``).

Mapping:

- steps: one per assistant message (:func:`core.ingest.messages.messages_to_steps`); messages before
  the first assistant turn are the first state; tool/user messages between turns the next state.
- outcome: ``--reward-field DOTTED.PATH`` when given; else ``reward``, else ``score``; else, when exactly one
  top-level object holds a ``reward`` or ``score`` key (``reward_info.reward``), that one (detected from the
  first record and required in every record; two candidates are ambiguous and refused, naming both). The
  path used is recorded in the run config. A ``rewards``/``reward_components`` dict of numbers is kept per
  component in ``meta["reward_components"]``. Per-step rewards, when a ``step_rewards`` list with one
  number per assistant turn is present, go to the steps' ``reward``.
- group_id: ``--group-field DOTTED.PATH`` when given (required in every record), else the first of
  ``group_id``, ``example_id``, ``task_id``, ``prompt_id`` present, else the digest of the prompt
  messages; iteration: ``step``, ``iteration`` or ``global_step``, else 0; split: ``options.split``, else
  a ``split`` key, else ``train``; traj_id: ``--id-field DOTTED.PATH`` when given, else
  ``id``/``traj_id`` if present, else ``{file stem}/{line number}``.
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
REWARD_KEYS: tuple[str, ...] = ("reward", "score")
_MAPPED = frozenset({"messages", "reward", "score", "step_rewards", "split"})


def nested_reward_paths(record: dict[str, Any]) -> list[str]:
    """Dotted paths of ``reward``/``score`` keys one level down (``reward_info.reward``), in record order."""
    return [
        f"{key}.{name}"
        for key, value in record.items()
        if isinstance(value, dict)
        for name in REWARD_KEYS
        if name in value
    ]


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL whose first record has a ``messages`` list and a reward (top level or unambiguous one down)."""
    record = head_record(path, head)
    if isinstance(record, str):
        return record
    if not isinstance(record.get("messages"), list):
        return "first record has no messages list"
    if any(key in record for key in REWARD_KEYS):
        return None
    nested = nested_reward_paths(record)
    if len(nested) == 1:
        return None
    if nested:
        return f"first record has several nested rewards ({', '.join(nested)}); choose one with --reward-field"
    return "first record has neither reward nor score (top level or one level down; --reward-field names another)"


def _dotted(record: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """``(found, value)`` of a dotted path such as ``reward_info.reward``."""
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _reward_path(first: dict[str, Any], options: AdapterOptions, path: Path, line: int) -> str:
    """The reward's dotted path: the option, else ``reward``/``score``, else the one nested candidate."""
    if options.extra.get("reward_field"):
        return str(options.extra["reward_field"])
    for key in REWARD_KEYS:
        if key in first:
            return key
    nested = nested_reward_paths(first)
    if len(nested) == 1:
        return nested[0]
    if nested:
        problem = f"several nested rewards ({', '.join(nested)}); choose one with --reward-field"
    else:
        problem = "no reward or score (top level or one level down); name it with --reward-field DOTTED.PATH"
    raise IngestError(str(path), problem, line)


def _field(record: dict[str, Any], dotted: str, option: str, path: Path, line: int) -> Any:
    """The value at a user-given dotted path, which every record must have."""
    found, value = _dotted(record, dotted)
    if not found or value is None:
        raise IngestError(str(path), f"missing (named by {option})", line, dotted)
    return value


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
    reward_path = _reward_path(records[0][1], options, path, records[0][0])
    group_field, id_field = options.extra.get("group_field"), options.extra.get("id_field")
    builder = FrameBuilder()
    seen_ids: set[str] = set()
    for line, record in records:
        messages = require(record, "messages", path, line, list)
        if reward_path in REWARD_KEYS and not options.extra.get("reward_field") and reward_path not in record:
            reward_path_here = next((key for key in REWARD_KEYS if key in record), reward_path)
        else:
            reward_path_here = reward_path
        found, raw_outcome = _dotted(record, reward_path_here)
        if not found:
            raise IngestError(str(path), "missing reward", line, reward_path_here)
        outcome = finite_number(raw_outcome, path, line, reward_path_here)
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
        if group_field:
            group = (group_field, _field(record, group_field, "--group-field", path, line))
        own_id = _first_present(record, TRAJ_KEYS)
        if id_field:
            own_id = (id_field, _field(record, id_field, "--id-field", path, line))
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
        run_config={
            "splitter": options.splitter,
            "reward_field": reward_path,
            "group_field": group_field,
            "id_field": id_field,
        },
        default_run=path.stem,
        skipped=skipped,
    )
