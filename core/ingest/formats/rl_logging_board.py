"""RL Logging Board rollout files: ``rollout_samples/<task>/data.jsonl``, one JSON object per rollout.

Checked against HarderThenHarder/RLLoggingBoard @ cf56d5d9 (``rollout_samples/eval_poem_task/data.jsonl``:
keys prompt, response, reward, step, ref_response, ref_reward; 3000 records, steps 0..2300 every 100).

Mapping:

- iteration: ``step``; group_id: ``{step}:{sha1(prompt)[:12]}`` (rollouts of an identical prompt in
  the same step; the file stores no group key); traj_id: ``{file stem}/{line number}``.
- split: ``options.split`` if given, else ``val`` when the file or its folder is named like an eval set
  (``eval_poem_task``, ``validation``, ...), else ``train``.
- outcome: ``reward`` (single-turn, outcome-level); steps are ``response`` split with
  ``options.splitter``; step k's state is the prompt plus the earlier steps.
- per-token arrays: when a record carries ``response_tokens`` (token texts) that spell ``response`` exactly,
  they and the board's ``logprobs``/``ref_logprobs`` (and ROLL's ``old_log_probs2_entropy``), when of the
  same length, are cut at the steps' character offsets
  (:func:`._steps.tokens_per_step`) into each step's ``tokens``/``token_logprobs``/``token_ref_logprobs``;
  otherwise (no token texts, special tokens, byte-level pieces) nothing is guessed and they stay in meta.
- meta: everything else, including the reference model's ``ref_response``/``ref_reward``, the board's
  ``values`` and ``token_rewards`` (per token, no canonical column), token arrays that could not be aligned,
  plus ``step_split`` (the concrete splitter used).
"""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, finite_number, require, step_token_arrays, text_key
from core.ingest.formats._rollout_records import head_record, read_jsonl
from core.ingest.formats._steps import split_response, tokens_per_step
from core.ingest.split import validate_splitter

NAME = "rl_logging_board"
PRIORITY = 40
CHECKED_AGAINST = "HarderThenHarder/RLLoggingBoard cf56d5d9 rollout_samples/*/data.jsonl"

REQUIRED_KEYS: tuple[str, ...] = ("prompt", "response", "reward", "step")
_MAPPED_KEYS = frozenset(REQUIRED_KEYS)
_EVAL_NAME = re.compile(r"(^|[_\-.])(eval|val|valid|validation|test)([_\-.]|$)", re.IGNORECASE)


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL whose first record has string ``prompt``/``response``, a ``reward`` and a ``step``."""
    record = head_record(path, head, REQUIRED_KEYS)
    if isinstance(record, str):
        return record
    if not isinstance(record["prompt"], str) or not isinstance(record["response"], str):
        return "prompt/response are not strings (chat-message lists are other formats)"
    return None


def _infer_split(path: Path, options: AdapterOptions) -> str:
    """Train or val: forced, else from the file and folder names."""
    if options.split is not None:
        return options.split
    names = (path.stem, path.parent.name)
    return "val" if any(_EVAL_NAME.search(name) for name in names) else "train"


_TOKEN_KEYS = {
    "tokens": "response_tokens",
    "token_logprobs": "logprobs",
    "token_ref_logprobs": "ref_logprobs",
    "token_entropies": "old_log_probs2_entropy",  # ROLL's board files (log-formats.md B.8)
}
"""The board's per-token keys that have a canonical column (canonical name -> record key)."""


def _attach_tokens(steps: list[StepRow], record: dict, response: str, path: Path, line: int) -> frozenset[str]:
    """Cut the record's per-token arrays into the steps; return the record keys consumed (none if not aligned)."""
    present = {name: record[key] for name, key in _TOKEN_KEYS.items() if record.get(key) is not None}
    tokens = present.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        return frozenset()
    if any(not isinstance(values, list) or len(values) != len(tokens) for values in present.values()):
        return frozenset()  # padded to a batch length, or per sequence: which entries are whose is not guessed
    arrays = step_token_arrays(present, path, line, "")
    spans = tokens_per_step(response, [step.action for step in steps], tokens)
    if spans is None:
        return frozenset()
    for step, span in zip(steps, spans, strict=True):
        for name, values in arrays.items():
            setattr(step, name, values[span.start : span.stop])
    return frozenset(_TOKEN_KEYS[name] for name in arrays)


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one RL Logging Board ``data.jsonl``; see the module docstring for the mapping.

    Raises:
        IngestError: Bad JSON, missing keys, a non-integer ``step`` or a non-finite ``reward``, naming
            the line and field.
    """
    validate_splitter(options.splitter)
    records, skipped = read_jsonl(path, options)
    split = _infer_split(path, options)
    builder = FrameBuilder()
    for line, record in records:
        prompt = require(record, "prompt", path, line, str)
        response = require(record, "response", path, line, str)
        step = require(record, "step", path, line, int)
        if isinstance(step, bool):
            raise IngestError(str(path), "expected an integer, got bool", line, "step")
        outcome = finite_number(require(record, "reward", path, line), path, line, "reward")
        steps, how = split_response(prompt, response, options.splitter, path, line, "response")
        aligned = _attach_tokens(steps, record, response, path, line)
        meta = {key: value for key, value in record.items() if key not in _MAPPED_KEYS | aligned}
        meta["step_split"] = how
        builder.add(
            traj_id=f"{path.stem}/{line}",
            iteration=step,
            group_id=f"{step}:{text_key(prompt)}",
            prompt=prompt,
            split=split,
            outcome=outcome,
            meta=meta,
            steps=steps,
        )
    return builder.rollouts(
        options,
        run_config={"splitter": options.splitter},
        default_run=path.parent.name or None,
        skipped=skipped,
    )
