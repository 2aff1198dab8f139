"""PrimeIntellect verifiers ``vf-eval`` results and prime-rl legacy rollout files.

Checked against PrimeIntellect-ai/verifiers @ a329ee92 / 325f9a51 / e4019ff8 (``environments/*/outputs/
evals/<env>--<model>/<run>/results.jsonl`` + ``metadata.json``) and the legacy ``vf.RolloutOutput``
layout of prime-rl 2026-04-10..07-09 (``rollouts/step_N/{train,eval}_rollouts.jsonl``, log-formats.md B.7).

Files: ``results.jsonl`` (or ``<name>.results.jsonl``), read together with the companion
``metadata.json`` (``<name>.metadata.json``) when present; the metadata goes into ``run_config``.

Mapping:

- group_id: ``group_id`` (prime-rl 2026-07..08 records), else ``example_id``, else ``id`` (older
  verifiers), else the prompt's digest; prefixed by split.
- iteration: the ``step_N`` folder of prime-rl paths, else 0 (vf-eval runs are not training steps).
- split: ``options.split``; else ``val`` for vf-eval results (they are evaluations), ``eval_*`` files or
  files under an ``eval``/``evals`` folder; else ``train``.
- traj_id: ``{file stem}/{line number}``.
- outcome: ``reward`` (the rubric's weighted sum). Per-rubric columns (numeric keys with ``reward`` in
  the name, e.g. ``check_answer_reward_func``) and the legacy ``metrics{}`` dict are kept per component
  in ``meta["reward_components"]``; other numeric columns (``total_tool_calls``, timings) in
  ``meta["metrics"]``.
- steps: ``completion`` messages via :func:`core.ingest.messages.messages_to_steps` (one step per
  assistant turn; env/tool feedback is the next step's state); a text completion is split with
  ``options.splitter``. Legacy ``trajectory[i]`` entries (one per model call, with token ids, logprobs
  and advantages) go into step i's ``extra["trajectory"]`` when their count matches the steps, else
  into ``meta["trajectory"]``.
- meta: every other key (``task``, ``answer``, ``info``, ``error``, ...).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, finite_number, require, step_token_arrays, text_key
from core.ingest.formats._rollout_records import head_record, read_jsonl
from core.ingest.formats._steps import chat_steps, prompt_key
from core.ingest.split import validate_splitter

NAME = "verifiers"
PRIORITY = 30
CHECKED_AGAINST = "PrimeIntellect-ai/verifiers a329ee92, 325f9a51, e4019ff8 (vf-eval results.jsonl + metadata.json)"
COMPANIONS: tuple[str, ...] = ("*.metadata.json", "metadata.json")

_MAPPED_KEYS = frozenset({"prompt", "completion", "reward", "example_id", "id", "metrics", "trajectory"})
_STEP_FOLDER = re.compile(r"^step_(\d+)$")
_TRAJECTORY_TEXT_KEYS = frozenset({"prompt", "completion"})


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL whose first record has ``prompt``, a ``completion`` and a ``reward``, with a group key."""
    record = head_record(path, head, ("prompt", "completion", "reward"))
    if isinstance(record, str):
        return record
    if "example_id" not in record and "id" not in record and not path.name.endswith("results.jsonl"):
        return "record has neither example_id nor id and the file is not a vf-eval results.jsonl"
    return None


def metadata_path(path: Path) -> Path:
    """The companion metadata file of a results file (``x.results.jsonl`` -> ``x.metadata.json``)."""
    if path.name.endswith(".results.jsonl"):
        return path.with_name(path.name.removesuffix(".results.jsonl") + ".metadata.json")
    return path.with_name("metadata.json")


def _iteration(path: Path) -> int:
    """The N of a ``step_N`` folder above the file (prime-rl), else 0."""
    for folder in reversed(path.parent.parts):
        if match := _STEP_FOLDER.match(folder):
            return int(match.group(1))
    return 0


def _infer_split(path: Path, options: AdapterOptions) -> str:
    """Train or val, per the module docstring."""
    if options.split is not None:
        return options.split
    if path.name.endswith("results.jsonl") or path.name.startswith("eval"):
        return "val"
    return "val" if any(folder in ("eval", "evals") for folder in path.parent.parts) else "train"


def _numeric_columns(record: dict[str, Any], path: Path, line: int) -> tuple[dict[str, float], dict[str, float]]:
    """Split unmapped numeric top-level columns into reward components and other metrics."""
    components: dict[str, float] = {}
    metrics: dict[str, float] = {}
    for key, value in record.items():
        if key in _MAPPED_KEYS or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        target = components if "reward" in key else metrics
        target[key] = finite_number(value, path, line, key) if "reward" in key else value
    legacy = record.get("metrics")
    if isinstance(legacy, dict):
        for key, value in legacy.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                components[key] = finite_number(value, path, line, f"metrics.{key}")
    return components, metrics


def _attach_trajectory(steps: list[StepRow], meta: dict[str, Any], trajectory: Any, path: Path, line: int) -> None:
    """Put legacy per-call data (tokens, logprobs, advantages) on the matching steps, or keep it in meta.

    A call's ``tokens.completion_logprobs`` become the step's ``token_logprobs`` column (token ids and the
    per-call scalar ``advantage`` stay in ``extra``: ids are not text, and a scalar is not per token).
    """
    if not isinstance(trajectory, list) or not trajectory:
        return
    if len(trajectory) != len(steps) or not all(isinstance(entry, dict) for entry in trajectory):
        meta["trajectory"] = trajectory
        return
    for position, (step, entry) in enumerate(zip(steps, trajectory, strict=True)):
        # prompt/completion repeat the conversation already in state/action; everything else is new
        kept = {k: v for k, v in entry.items() if k not in _TRAJECTORY_TEXT_KEYS}
        tokens = kept.get("tokens")
        if isinstance(tokens, dict) and tokens.get("completion_logprobs") is not None:
            source = {"token_logprobs": tokens["completion_logprobs"]}
            arrays = step_token_arrays(source, path, line, f"trajectory[{position}].tokens")
            step.token_logprobs = arrays["token_logprobs"]
            kept["tokens"] = {k: v for k, v in tokens.items() if k != "completion_logprobs"}
        step.extra["trajectory"] = kept


def _group_key(record: dict[str, Any]) -> str:
    """``group_id``, else ``example_id``, else ``id``, else the prompt's digest."""
    for key in ("group_id", "example_id", "id"):
        if record.get(key) is not None:
            return str(record[key])
    return text_key(prompt_key(record.get("prompt")))


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read a verifiers results file (and its metadata); see the module docstring for the mapping.

    Raises:
        IngestError: Bad JSON, missing keys, malformed messages or a non-finite reward, naming the line
            and field; an unreadable metadata file.
    """
    validate_splitter(options.splitter)
    records, skipped = read_jsonl(path, options)
    split = _infer_split(path, options)
    iteration = _iteration(path)
    builder = FrameBuilder()
    for line, record in records:
        prompt = require(record, "prompt", path, line)
        completion = require(record, "completion", path, line)
        outcome = finite_number(require(record, "reward", path, line), path, line, "reward")
        steps, how = chat_steps(prompt, completion, options.splitter, path, line)
        components, metrics = _numeric_columns(record, path, line)
        meta: dict[str, Any] = {k: v for k, v in record.items() if k not in _MAPPED_KEYS and k not in metrics}
        for key in components:
            meta.pop(key, None)
        meta.update(reward_components=components, metrics=metrics, step_split=how)
        for key in ("example_id", "id"):
            if key in record:
                meta[key] = record[key]
        _attach_trajectory(steps, meta, record.get("trajectory"), path, line)
        builder.add(
            traj_id=f"{path.stem}/{line}",
            iteration=iteration,
            group_id=f"{split}:{_group_key(record)}",
            prompt=prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
            split=split,
            outcome=outcome,
            meta=meta,
            steps=steps,
        )
    run_config: dict[str, Any] = {"splitter": options.splitter}
    companion = metadata_path(path)
    if companion.is_file():
        try:
            run_config["verifiers_metadata"] = json.loads(companion.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IngestError(str(companion), f"companion metadata is not valid JSON ({exc})") from exc
    return builder.rollouts(
        options,
        run_config=run_config,
        default_run=path.name.removesuffix(".jsonl").removesuffix(".results") or None,
        skipped=skipped,
    )
