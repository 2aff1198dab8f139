"""ROLL rollout dumps: ``{rollout_dump_dir}/rollout_dump_data.step_{N}.jsonl``, one columnar JSON line.

Checked against alibaba/ROLL @ 8eb27cc2 (``roll/pipeline/rlvr/utils.py``, ``roll/pipeline/agentic/utils.py``
``dump_rollout_trajectories``). No real dump is public: the test fixture is built from that layout
(tests/fixtures/roll/make_fixture.py).

The line is a dict of equally long lists (one entry per rollout). Mapping (log-formats.md B.8):

- RLVR dumps (a ``responses`` column): group = ``id`` (else the prompt's sha1, since responses to one
  prompt are contiguous blocks of ``num_return_sequences``); steps = ``responses[i]`` split with
  ``options.splitter``, state = prompt + earlier steps; outcome = ``scores[i]``.
- Agentic dumps (a ``trajectory_data`` column of JSON strings): group = ROLL's
  ``traj_group_id = "{tag}_{group_id}_{episode_id}_{group_seed}"`` from ``env_info``; steps = one per
  assistant message of ``messages[i]`` (:func:`core.ingest.messages.messages_to_steps`); per-step
  ``reward_info.step_rewards`` become step rewards when their count matches; outcome = ``episode_reward``.
- ``iteration`` = ``global_step[i]``, else ``N`` from the file name. ``split`` = ``"train"``.
  ``traj_id = "step{N}/{row}"`` (agentic: ROLL's ``trajectory_id`` when present). Every other column's
  entry for the row goes to ``meta`` (JSON-string columns are decoded).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, check_type, finite_number, text_key
from core.ingest.formats._rollout_records import head_lacks_keys, read_jsonl
from core.ingest.formats._steps import split_response
from core.ingest.messages import MessageFormatError, messages_to_steps

NAME = "roll"
PRIORITY = 30
CHECKED_AGAINST = "ROLL @ 8eb27cc2 (rollout_dump_data.step_N.jsonl, RLVR and agentic columns)"

_FILE_NAME = re.compile(r"rollout_dump_data\.step_(\d+)\.jsonl")
_RLVR_MAPPED = frozenset({"global_step", "id", "prompt", "responses", "scores"})
_AGENTIC_MAPPED = frozenset({"global_step", "trajectory_data", "messages"})


def detect(path: Path, head: bytes) -> str | None:
    """Accept ``rollout_dump_data.step_N.jsonl``, or a columnar line with ``responses``/``trajectory_data``."""
    if not head.lstrip().startswith(b"{"):
        return "not a JSON object line"
    if _FILE_NAME.fullmatch(path.name):
        return None
    if not head_lacks_keys(head, ("global_step", "responses", "scores")):
        return None
    if not head_lacks_keys(head, ("trajectory_data", "messages")):
        return None
    return "file name is not rollout_dump_data.step_N.jsonl and the head lacks ROLL columns"


def _decoded(value: Any) -> Any:
    """ROLL stores nested columns as JSON strings; decode them for ``meta`` (plain strings stay)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _columns(record: dict[str, Any], path: Path, line: int) -> int:
    """Check that every column is a list of one common length; return that length."""
    lengths = {key: len(check_type(value, list, path, line, key)) for key, value in record.items()}
    if len(set(lengths.values())) > 1:
        raise IngestError(str(path), f"columns have different lengths: {lengths}", line)
    return next(iter(lengths.values()), 0)


def _iteration(record: dict[str, Any], row: int, file_step: int | None, path: Path, line: int) -> int:
    value = record["global_step"][row] if "global_step" in record else file_step
    if not isinstance(value, int) or isinstance(value, bool):
        raise IngestError(str(path), "no integer global_step (column or file name)", line, f"global_step[{row}]")
    return value


def _agentic_steps(data: dict[str, Any], messages: Any, path: Path, line: int, row: int) -> list[StepRow]:
    """Steps of an agentic row: one per assistant message, with step rewards when they line up."""
    try:
        converted = messages_to_steps(messages, field_prefix=f"messages[{row}]")
    except MessageFormatError as exc:
        raise IngestError(str(path), exc.problem, line, exc.field) from exc
    reward_info = data.get("reward_info") if isinstance(data.get("reward_info"), dict) else {}
    step_rewards = reward_info.get("step_rewards") or []
    aligned = isinstance(step_rewards, list) and len(step_rewards) == len(converted)
    rows: list[StepRow] = []
    for k, step in enumerate(converted):
        field = f"trajectory_data[{row}].reward_info.step_rewards[{k}]"
        reward = finite_number(step_rewards[k], path, line, field, optional=True) if aligned else None
        rows.append(StepRow(action=step["action"], state=step["state"], reward=reward, extra=step["extra"]))
    return rows


def _add_agentic(
    builder: FrameBuilder, record: dict[str, Any], row: int, iteration: int, path: Path, line: int, split: str
) -> None:
    """Add row ``row`` of an agentic dump (trajectory_data + messages columns) to ``builder``."""
    data = check_type(_decoded(record["trajectory_data"][row]), dict, path, line, f"trajectory_data[{row}]")
    messages = _decoded(record["messages"][row]) if "messages" in record else []
    env = data.get("env_info") if isinstance(data.get("env_info"), dict) else {}
    group = f"{env.get('tag')}_{env.get('group_id')}_{env.get('episode_id')}_{env.get('group_seed', env.get('seed'))}"
    steps = _agentic_steps(data, messages, path, line, row)
    if not steps:
        raise IngestError(str(path), "trajectory has no assistant message", line, f"messages[{row}]")
    reward_info = data.get("reward_info") if isinstance(data.get("reward_info"), dict) else {}
    field = f"trajectory_data[{row}].reward_info.episode_reward"
    meta = {key: _decoded(value[row]) for key, value in record.items() if key not in _AGENTIC_MAPPED}
    meta["trajectory_data"] = data
    builder.add(
        traj_id=str(data.get("trajectory_id") or f"{group}_{env.get('env_id', row)}"),
        iteration=iteration,
        group_id=group,
        prompt=steps[0].state,
        split=split,
        outcome=finite_number(reward_info.get("episode_reward"), path, line, field),
        steps=steps,
        meta=meta,
    )


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one ROLL dump file into canonical frames.

    Raises:
        IngestError: Bad JSON, ragged columns, missing columns, non-finite scores, bad messages.
    """
    records, skipped = read_jsonl(path, options)
    name_match = _FILE_NAME.fullmatch(path.name)
    file_step = int(name_match.group(1)) if name_match else None
    split = options.split or "train"
    builder = FrameBuilder()
    splitters_used: set[str] = set()
    for line, record in records:
        rows = _columns(record, path, line)
        agentic = "trajectory_data" in record
        if not agentic and not {"responses", "scores", "prompt"} <= record.keys():
            missing = sorted({"responses", "scores", "prompt"} - record.keys())
            raise IngestError(str(path), "missing required column", line, missing[0])
        for row in range(rows):
            iteration = _iteration(record, row, file_step, path, line)
            if agentic:
                _add_agentic(builder, record, row, iteration, path, line, split)
                continue
            prompt = check_type(record["prompt"][row], str, path, line, f"prompt[{row}]")
            response = check_type(record["responses"][row], str, path, line, f"responses[{row}]")
            steps, concrete = split_response(prompt, response, options.splitter, path, line, f"responses[{row}]")
            splitters_used.add(concrete)
            group = record["id"][row] if "id" in record else text_key(prompt)
            builder.add(
                # One line per file in practice; the line number keeps ids unique if a file holds several.
                traj_id=f"step{iteration}/{row}" if line == 1 else f"step{iteration}/{line}:{row}",
                iteration=iteration,
                group_id=str(group),
                prompt=prompt,
                split=split,
                outcome=finite_number(record["scores"][row], path, line, f"scores[{row}]"),
                steps=steps,
                meta={key: _decoded(value[row]) for key, value in record.items() if key not in _RLVR_MAPPED},
            )
    if not len(builder):
        raise IngestError(str(path), "dump holds no rollouts")
    run_config = {"splitter": options.splitter, "splitters_applied": sorted(splitters_used)}
    return builder.rollouts(options, run_config=run_config, default_run=path.parent.name or None, skipped=skipped)
