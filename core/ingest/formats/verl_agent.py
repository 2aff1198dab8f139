"""verl-agent multi-turn dumps: ``{rollout_data_dir}/{global_steps}.jsonl`` with one row per env turn.

Checked against langfengQ/verl-agent (read via xlan156/verl-agent @ upstream 796ed31):
``agent_system/multi_turn_rollout/rollout_loop.py``, ``verl/trainer/ppo/ray_trainer.py`` and the env
prompt templates in ``agent_system/environments/prompts/`` (log-formats.md B.2). No real file was
available; the fixture is built from that layout.

The dump has verl's keys (``input``, ``output``, ``score``, ``step``) but one row per (environment,
turn), and none of ``uid``/``traj_uid`` is written, so trajectories are re-threaded heuristically:

1. A row's turn number comes from the prompt template: ``You are now at step N`` (or ``already taken
   K step(s)`` -> K+1); a prompt with neither is a first turn (the no-history template).
2. First-turn rows start trajectories. Rows with an identical first-turn prompt form a group (the
   ``env.rollout.n`` environments of one task start from the same observation).
3. A turn-N row continues an open trajectory whose last row is turn N-1 and that has the same task
   (``Your task is to: ...``, when both prompts state it). Each candidate is scored by how many of its
   latest actions (the ``<action>`` text, else the whole output) appear, in order, in this row's
   history section (the prompt text before ``You are now at step``, so the admissible-action list
   does not count); its last action must appear. The best score wins; ties go to file order.
4. A tie -> ``meta["threading"] = "ambiguous"`` (the tied trajectories had identical histories, so
   either choice yields the same steps so far); no candidate -> the row starts its own trajectory
   with ``meta["threading"] = "orphan"``; otherwise ``"matched"``.

Mapping: a step per row; state = the row's prompt, action = its output; step reward = ``score`` (the
env reward of that turn); outcome = the sum of step rewards (episode return). iteration and split as
in the ``verl`` adapter. traj_id: ``{split}/{file stem}/{line of the first turn}``. Unmapped keys of
each row go into the step's ``extra``; the parsed turn number and action into ``extra["threading"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats import verl
from core.ingest.formats._frames import FrameBuilder, StepRow, finite_number, require, text_key
from core.ingest.formats._rollout_records import first_record, read_jsonl

NAME = "verl_agent"
PRIORITY = 25
CHECKED_AGAINST = "langfengQ/verl-agent 796ed31 (via xlan156/verl-agent): rollout_loop.py, env prompt templates"

_CURRENT_STEP = re.compile(r"You are now at step (\d+)")
_TAKEN_STEPS = re.compile(r"already taken (\d+) step")
_TASK = re.compile(r"Your task is to:? ([^\n]+)")
_ACTION = re.compile(r"<action>(.*?)</action>", re.DOTALL)
_AGENT_MARKERS: tuple[str, ...] = ("admissible actions", "You are now at step", "Your current observation")


def detect(path: Path, head: bytes) -> str | None:
    """Accept verl-style JSONL whose first prompt is a verl-agent env template."""
    reason = verl.detect(path, head)
    if reason is not None:
        return reason
    record = first_record(head) or {}
    if not any(marker in record.get("input", "") for marker in _AGENT_MARKERS):
        return "input is not a verl-agent env prompt (no 'admissible actions'/'current observation' text)"
    return None


def _turn(prompt: str) -> int:
    """1-based turn number from the template text."""
    if match := _CURRENT_STEP.search(prompt):
        return int(match.group(1))
    if match := _TAKEN_STEPS.search(prompt):
        return int(match.group(1)) + 1
    return 1


def _action(output: str) -> str:
    """The env action the turn took: the last ``<action>`` text, else the whole output."""
    found = _ACTION.findall(output)
    return found[-1].strip() if found else output.strip()


def _task(prompt: str) -> str | None:
    match = _TASK.search(prompt)
    return match.group(1).strip() if match else None


@dataclass
class _Thread:
    """A trajectory being re-threaded."""

    first_line: int
    group_prompt: str
    task: str | None
    threading: str
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    last_turn: int = 0
    actions: list[str] = field(default_factory=list)


def _history_section(prompt: str) -> str:
    """The part of a prompt that renders past turns (before the current observation and action list)."""
    marker = _CURRENT_STEP.search(prompt)
    return prompt[: marker.start()] if marker else prompt


def _history_score(actions: list[str], history: str) -> int:
    """How many of the latest ``actions`` appear in ``history`` in order (0 when the last one does not)."""
    best = 0
    for count in range(1, len(actions) + 1):
        position = 0
        for action in actions[-count:]:
            found = history.find(action, position)
            if found < 0:
                return best
            position = found + len(action)
        best = count
    return best


def _thread_rows(records: list[tuple[int, dict[str, Any]]], path: Path) -> list[_Thread]:
    """Re-thread rows into trajectories (rules in the module docstring), ordered by first line."""
    parsed = []
    for line, record in records:
        prompt = require(record, "input", path, line, str)
        output = require(record, "output", path, line, str)
        parsed.append((_turn(prompt), line, record, prompt, output))
    threads: list[_Thread] = []
    # Turn order first, so every turn-N row sees all turn-(N-1) threads; file order within a turn.
    for turn, line, record, prompt, output in sorted(parsed, key=lambda item: (item[0], item[1])):
        task = _task(prompt)
        history = _history_section(prompt)
        scored = [
            (_history_score(thread.actions, history), thread)
            for thread in threads
            if turn > 1
            and thread.last_turn == turn - 1
            and (thread.task is None or task is None or thread.task == task)
        ]
        scored = [(score, thread) for score, thread in scored if score > 0]
        if scored:
            best = max(score for score, _ in scored)
            tied = [thread for score, thread in scored if score == best]
            thread = tied[0]
            if len(tied) > 1:
                thread.threading = "ambiguous"
        else:
            thread = _Thread(line, prompt, task, "matched" if turn == 1 else "orphan")
            threads.append(thread)
        thread.rows.append((line, record))
        thread.last_turn = turn
        thread.actions.append(_action(output))
        thread.task = thread.task or task
    return sorted(threads, key=lambda thread: thread.first_line)


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one verl-agent step dump and re-thread it; see the module docstring.

    Raises:
        IngestError: Bad JSON, missing keys or non-finite scores, naming the line and field.
    """
    records, skipped = read_jsonl(path, options)
    split = verl.infer_split(path, records, options)
    builder = FrameBuilder()
    for thread in _thread_rows(records, path):
        steps: list[StepRow] = []
        for line, record in thread.rows:
            reward = finite_number(require(record, "score", path, line), path, line, "score")
            extra = {key: value for key, value in record.items() if key not in ("input", "output", "score")}
            extra["threading"] = {"line": line, "turn": _turn(record["input"]), "action": _action(record["output"])}
            steps.append(StepRow(action=record["output"], state=record["input"], reward=reward, extra=extra))
        first_line, first_record_ = thread.rows[0]
        builder.add(
            traj_id=f"{split}/{path.stem}/{thread.first_line}",
            iteration=verl.iteration_of(first_record_, path, first_line),
            group_id=f"{split}:{text_key(thread.group_prompt)}",
            prompt=thread.group_prompt,
            split=split,
            outcome=sum(step.reward or 0.0 for step in steps),
            meta={"threading": thread.threading, "task": thread.task},
            steps=steps,
        )
    return builder.rollouts(
        options,
        run_config={"verl_agent_threading": "turn number + task + previous action in history (heuristic)"},
        default_run=path.parent.name or None,
        skipped=skipped,
    )
