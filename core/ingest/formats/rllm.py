"""rLLM episode logs: ``{episode_log_dir}/episodes/{train|val}_step_{s}_epoch_{e}/episode_hash{h}_id{id}.json``.

Checked against rllm-org/rllm @ 9beb6e0f (``rllm/utils/episode_logger.py``, ``rllm/types.py``). No real
episode file is public: the test fixture is built from that layout (tests/fixtures/rllm/make_fixture.py).

One file = one episode; each of its ``trajectories[]`` is a canonical trajectory. Mapping (log-formats.md B.5):

- ``iteration`` = ``training_step``; ``split`` = ``"val"`` for ``val_*`` folders, else ``"train"``.
- group = the task: ``episode_id = "{task_id}:{rollout_idx}"``, so the part before the last ``:``; with
  the trajectory ``name`` appended (``"{task_id}:{name}"``) as rLLM's multi-agent advantage groups do, and
  ``val/`` prepended for validation so train and val rollouts never share a group.
  ``traj_id = "{folder}/{episode_id}/t{index}"``.
- steps = ``steps[]``; action = ``model_response`` (the raw text; the parsed ``action`` goes to ``extra``);
  state = ``observation`` when it is non-empty, else the messages of ``chat_completions`` since the
  previous assistant turn; ``reward`` = the step reward.
- outcome = the trajectory ``reward``; if that is null, ``is_correct`` (1/0); else the sum of step rewards.
- ``chat_completions`` holds the whole conversation up to each step; to avoid storing it quadratically it
  is kept only on the last step, and on earlier steps only when it is not a prefix of the last one.
  Episode fields go to ``meta["episode"]``, trajectory fields to ``meta["trajectory"]``.
- The per-folder ``batch_summary.json`` is a companion and is not ingested.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, check_type, finite_number, require
from core.ingest.formats._rollout_records import head_lacks_keys, load_json_document
from core.ingest.messages import MessageFormatError, messages_to_steps

NAME = "rllm"
PRIORITY = 30
CHECKED_AGAINST = "rLLM @ 9beb6e0f (EpisodeLogger episode JSON)"
COMPANIONS: tuple[str, ...] = ("batch_summary.json",)

_FILE_NAME = re.compile(r"episode_hash.*_id.*\.json")
_STEP_MAPPED = frozenset({"observation", "model_response", "reward", "chat_completions"})


def detect(path: Path, head: bytes) -> str | None:
    """Accept episode JSON files (keys ``episode_id`` and ``trajectories``, or the episode file name)."""
    if path.suffix != ".json":
        return "not a .json file"
    if not head.lstrip().startswith(b"{"):
        return "not a JSON object"
    if _FILE_NAME.fullmatch(path.name) or not head_lacks_keys(head, ("episode_id", "trajectories")):
        return None
    return "JSON lacks keys episode_id/trajectories"


def _as_text(value: Any) -> str:
    """Render an observation/action (string, or structured) as text."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _state_from_messages(messages: Any, path: Path, field: str) -> str | None:
    """The observation part of ``chat_completions``: messages after the previous assistant turn."""
    if not isinstance(messages, list) or not messages:
        return None
    try:
        converted = messages_to_steps(messages, field_prefix=field)
    except MessageFormatError as exc:
        raise IngestError(str(path), exc.problem, None, exc.field) from exc
    return converted[-1]["state"] if converted else None


def _steps(trajectory: dict[str, Any], path: Path, prefix: str) -> list[StepRow]:
    raw_steps = check_type(trajectory.get("steps", []), list, path, None, f"{prefix}.steps")
    final_chat = raw_steps[-1].get("chat_completions") if raw_steps and isinstance(raw_steps[-1], dict) else None
    rows: list[StepRow] = []
    for index, raw in enumerate(raw_steps):
        field = f"{prefix}.steps[{index}]"
        step = check_type(raw, dict, path, None, field)
        chat = step.get("chat_completions")
        state = _as_text(step.get("observation")) or _state_from_messages(chat, path, f"{field}.chat_completions")
        extra = {key: value for key, value in step.items() if key not in _STEP_MAPPED}
        is_last = index == len(raw_steps) - 1
        if chat is not None and (is_last or not isinstance(final_chat, list) or final_chat[: len(chat)] != chat):
            extra["chat_completions"] = chat
        action = step.get("model_response")
        rows.append(
            StepRow(
                action=action if isinstance(action, str) and action else _as_text(step.get("action")),
                state=state or None,
                reward=finite_number(step.get("reward"), path, None, f"{field}.reward", optional=True),
                extra=extra,
            )
        )
    return rows


def _outcome(
    trajectory: dict[str, Any], episode: dict[str, Any], steps: list[StepRow], path: Path, prefix: str
) -> tuple[float, str]:
    """Trajectory reward, else the episode's ``is_correct``, else the sum of step rewards."""
    reward = finite_number(trajectory.get("reward"), path, None, f"{prefix}.reward", optional=True)
    if reward is not None:
        return reward, "trajectory.reward"
    if isinstance(episode.get("is_correct"), bool):
        return float(episode["is_correct"]), "episode.is_correct"
    return sum(step.reward or 0.0 for step in steps), "sum of step rewards"


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one episode file into canonical frames (one trajectory per ``trajectories[]`` entry).

    Raises:
        IngestError: Invalid JSON, missing keys, wrong types, non-finite rewards, an episode without steps.
    """
    episode = check_type(load_json_document(path), dict, path, None, None)
    episode_id = str(require(episode, "episode_id", path, None))
    trajectories = require(episode, "trajectories", path, None, list)
    step_value = episode.get("training_step")
    if not isinstance(step_value, int) or isinstance(step_value, bool):
        raise IngestError(str(path), f"expected an integer, got {type(step_value).__name__}", None, "training_step")
    is_val = path.parent.name.startswith("val")
    task_id = episode_id.rsplit(":", 1)[0]
    episode_meta = {key: value for key, value in episode.items() if key != "trajectories"}
    builder = FrameBuilder()
    skipped: list[str] = []
    for index, raw in enumerate(trajectories):
        prefix = f"trajectories[{index}]"
        trajectory = check_type(raw, dict, path, None, prefix)
        steps = _steps(trajectory, path, prefix)
        if not steps:
            skipped.append(f"{path}: {prefix} has no steps")
            continue
        outcome, outcome_source = _outcome(trajectory, episode, steps, path, prefix)
        name = trajectory.get("name")
        group = f"{task_id}:{name}" if name else task_id
        builder.add(
            traj_id=f"{path.parent.name}/{episode_id}/t{index}",
            iteration=step_value,
            group_id=f"val/{group}" if is_val else group,
            prompt=steps[0].state,
            split=options.split or ("val" if is_val else "train"),
            outcome=outcome,
            steps=steps,
            meta={
                "episode": episode_meta,
                "trajectory": {key: value for key, value in trajectory.items() if key != "steps"},
                "outcome_source": outcome_source,
            },
        )
    if not len(builder):
        raise IngestError(str(path), "episode has no trajectory with steps", None, "trajectories")
    # .../{experiment}/episodes/{mode}_step_s_epoch_e/file.json: the experiment folder names the run.
    run_dir = path.parent.parent.parent if path.parent.parent.name == "episodes" else path.parent
    return builder.rollouts(options, run_config={}, default_run=run_dir.name or None, skipped=skipped)
