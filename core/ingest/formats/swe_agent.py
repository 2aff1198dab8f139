"""SWE-agent trajectory files (``<instance_id>.traj``: ``{environment, trajectory[], history[], info}``).

Checked against SWE-agent/SWE-agent @ 3ea751c0 ``tests/test_data/trajectories/.../pydicom__pydicom-1458.traj``.

Mapping (one file = one trajectory):

- steps = ``trajectory[]`` entries ``{action, observation, response, state, thought}``; ``action`` = the
  executed command; the model's full ``response`` and its ``thought`` stay in ``extra``.
- ``state`` of step 0 = the task: the first user message of ``history`` that is not a demonstration
  (``is_demo``); ``state`` of step t+1 = the observation of step t, followed by the environment state
  SWE-agent recorded after it (open file, working directory). The last observation goes to
  ``meta.final_observation``.
- ``outcome`` = 1.0 when ``info.exit_status`` is ``"submitted"`` and ``info.submission`` is a non-empty
  patch, else 0.0. Whether the patch resolves the issue is decided by a SWE-bench evaluation that is
  not in this file; join it in afterwards if you have it. No per-step reward or label exists.
- ``traj_id`` = ``<parent folder>/<file stem>``; ``group_id`` = the file stem (the SWE-bench instance,
  so runs of the same instance group together); ``iteration`` = 0.
- ``meta``: ``environment``, the whole ``info`` (exit status, submission, model_stats) and ``history``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, require
from core.ingest.formats._rollout_records import head_lacks_keys, load_json_document
from core.ingest.messages import content_text

NAME = "swe_agent"
PRIORITY = 20
CHECKED_AGAINST = "SWE-agent/SWE-agent @ 3ea751c087f3 (tests/test_data/trajectories, .traj)"

_STEP_MAPPED = ("action", "observation")
_TRAJECTORY_LIST = re.compile(rb'"trajectory"\s*:\s*\[')


def detect(path: Path, head: bytes) -> str | None:
    """Accept a JSON object with a ``trajectory`` list of action/observation/thought steps."""
    if not head.lstrip().startswith(b"{"):
        return "not a JSON object"
    # "trajectory" must hold a list: creditscope's native JSONL has a "trajectory" string instead.
    if not _TRAJECTORY_LIST.search(head):
        return "no 'trajectory' list"
    missing = head_lacks_keys(head, ("action", "observation", "thought"))
    return f"no SWE-agent step keys {'/'.join(missing)}" if missing else None


def _task_prompt(history: Any) -> str | None:
    """The first non-demonstration user message of ``history`` (the issue statement), or None."""
    if not isinstance(history, list):
        return None
    for message in history:
        # SWE-agent writes is_demo as a bool or as the string "True".
        if isinstance(message, dict) and message.get("role") == "user" and str(message.get("is_demo")) != "True":
            return content_text(message.get("content"))
    return None


def _observation_state(observation: str, env_state: Any) -> str:
    """What the agent saw before its next action: the observation plus the recorded environment state."""
    if isinstance(env_state, str) and env_state.strip():
        return f"{observation.rstrip()}\n[state] {env_state.strip()}"
    return observation


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one SWE-agent ``.traj`` file into canonical frames (mapping in the module docstring).

    Raises:
        IngestError: Invalid or truncated JSON, a missing or empty ``trajectory``, or a step without
            string ``action``/``observation``.
    """
    document = load_json_document(path)
    locator = path.name
    steps = require(document, "trajectory", path, locator, list)
    if not steps:
        raise IngestError(str(path), "trajectory has no steps", record=locator, field="trajectory")
    prompt = _task_prompt(document.get("history"))
    rows: list[StepRow] = []
    state: str | None = prompt
    for index, step in enumerate(steps):
        where = f"trajectory[{index}]"
        action = require(step, "action", path, locator, str, f"{where}.action")
        observation = require(step, "observation", path, locator, str, f"{where}.observation")
        rows.append(StepRow(action=action, state=state, extra={k: v for k, v in step.items() if k not in _STEP_MAPPED}))
        state = _observation_state(observation, step.get("state"))
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    submission = info.get("submission")
    submitted = info.get("exit_status") == "submitted" and isinstance(submission, str) and bool(submission.strip())
    meta: dict[str, Any] = {k: v for k, v in document.items() if k != "trajectory"}
    meta["final_observation"] = steps[-1]["observation"]
    builder = FrameBuilder()
    builder.add(
        traj_id=f"{path.parent.name}/{path.stem}",
        group_id=path.stem,
        outcome=1.0 if submitted else 0.0,
        steps=rows,
        prompt=prompt,
        meta=meta,
    )
    return builder.rollouts(options, run_config={"steps": "SWE-agent trajectory entries"}, default_run=path.parent.name)
