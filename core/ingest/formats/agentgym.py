"""AgentGym episode dumps (``{episodes[{episode_id, data_idx, total_reward, success, transitions[]}], statistics}``).

Checked against WooooDyy/AgentGym @ 8d78dca4 ``agentenv-mcp/trajectories.json``.

Mapping (one episode = one trajectory):

- steps = ``transitions[]`` ``{step, action, observation, reward, done}``; ``reward`` = the transition's
  reward (must be a finite number). The episode's first observation is not logged, so step 0 has no
  ``state``; ``state`` of step t+1 = the observation returned after step t. The last observation goes to
  ``meta.final_observation``.
- ``outcome`` = ``total_reward`` (the episode return AgentGym reports); ``success``, ``total_steps`` and
  the rest stay in ``meta``.
- ``traj_id`` = ``<file stem>:episode<episode_id>``; ``group_id`` = ``data_idx:<data_idx>`` (episodes of
  the same task instance); ``iteration`` = 0. ``statistics`` goes to the run config.
- ``extra`` per step: ``step``, ``done`` and any other transition field.
Record locators in errors are ``episodes[i]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, finite_number, require
from core.ingest.formats._rollout_records import head_lacks_keys, load_json_document

NAME = "agentgym"
PRIORITY = 25
CHECKED_AGAINST = "WooooDyy/AgentGym @ 8d78dca446bc (agentenv-mcp/trajectories.json)"

_TRANSITION_MAPPED = ("action", "observation", "reward")


def detect(path: Path, head: bytes) -> str | None:
    """Accept a JSON object whose ``episodes`` carry ``transitions``."""
    if not head.lstrip().startswith(b"{"):
        return "not a JSON object"
    missing = head_lacks_keys(head, ("episodes", "transitions"))
    return f"no AgentGym keys {'/'.join(missing)}" if missing else None


def _episode_rows(episode: dict[str, Any], path: Path, locator: str) -> tuple[list[StepRow], str]:
    """Steps of one episode and its last observation."""
    transitions = require(episode, "transitions", path, locator, list)
    if not transitions:
        raise IngestError(str(path), "episode has no transitions", record=locator, field="transitions")
    rows: list[StepRow] = []
    state: str | None = None
    for index, transition in enumerate(transitions):
        where = f"transitions[{index}]"
        action = require(transition, "action", path, locator, str, f"{where}.action")
        observation = require(transition, "observation", path, locator, str, f"{where}.observation")
        reward = finite_number(transition.get("reward"), path, locator, f"{where}.reward", booleans=False)
        extra = {k: v for k, v in transition.items() if k not in _TRANSITION_MAPPED}
        rows.append(StepRow(action=action, state=state, reward=reward, extra=extra))
        state = observation
    return rows, state or ""


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read an AgentGym trajectories JSON file into canonical frames (mapping in the module docstring).

    Raises:
        IngestError: Invalid JSON, missing ``episodes``/``transitions``/``total_reward``, non-string
            actions or observations, NaN/inf or non-numeric rewards, or a repeated ``episode_id``.
    """
    document = load_json_document(path)
    episodes = require(document, "episodes", path, path.name, list)
    builder = FrameBuilder()
    seen: set[str] = set()
    for index, episode in enumerate(episodes):
        locator = f"episodes[{index}]"
        episode_id = str(require(episode, "episode_id", path, locator, (int, str)))
        if episode_id in seen:
            raise IngestError(str(path), f"episode_id {episode_id} appears twice", record=locator, field="episode_id")
        seen.add(episode_id)
        outcome = finite_number(episode.get("total_reward"), path, locator, "total_reward", booleans=False)
        rows, final_observation = _episode_rows(episode, path, locator)
        meta = {k: v for k, v in episode.items() if k != "transitions"}
        meta["final_observation"] = final_observation
        builder.add(
            traj_id=f"{path.stem}:episode{episode_id}",
            group_id=f"data_idx:{episode.get('data_idx', episode_id)}",
            outcome=outcome,
            steps=rows,
            meta=meta,
        )
    run_config = {k: v for k, v in document.items() if k != "episodes"}
    return builder.rollouts(options, run_config=run_config, default_run=path.stem)
