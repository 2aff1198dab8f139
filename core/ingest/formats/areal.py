"""AReaL rollout dumps: ``{fileroot}/logs/{user}/{exp}/{trial}/{rollout|eval-rollout}/{version}/{task_id}.jsonl``.

Checked against inclusionAI/AReaL @ 4aef98d8 (``areal/infra/workflow_executor.py`` ``_dump_trajectory``,
written when ``dump_to_file: true``). No real dump is public: the test fixture is built from that
layout (tests/fixtures/areal/make_fixture.py). The pre-2026 colorama ``.txt`` dumps are not read.

Mapping (log-formats.md B.9):

- ``iteration`` = the ``{version}`` folder (the policy **weight version**, not a trainer step), falling back
  to the line's ``tail_version``; ``head_version``/``tail_version`` stay in ``meta``.
- group = ``task_id`` (one file per task); ``traj_id = "{rollout folder}/{version}/{task_id}:{sample_idx}"``.
- split: ``"val"`` under ``eval-rollout``, else ``"train"``.
- steps: ``completion`` (multi-turn workflows are concatenated into it, special tokens kept) split with
  ``options.splitter``; state = prompt + earlier steps. outcome = ``reward``. ``seqlen``, ``prompt_len``
  and any other key go to ``meta``.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, finite_number, require
from core.ingest.formats._rollout_records import head_keys_reason, read_jsonl
from core.ingest.formats._steps import split_response

NAME = "areal"
PRIORITY = 30
CHECKED_AGAINST = "AReaL @ 4aef98d8 (workflow_executor._dump_trajectory JSONL)"

_KEYS = ("task_id", "sample_idx", "reward", "prompt", "completion")
_MAPPED = frozenset({"task_id", "sample_idx", "reward", "prompt", "completion"})


def detect(path: Path, head: bytes) -> str | None:
    """Accept ``.jsonl`` files whose first record has the AReaL dump keys."""
    return head_keys_reason(path, head, _KEYS)


def _iteration(path: Path, record: dict, line: int) -> int:
    """The weight version: the ``{version}`` folder name, else the line's ``tail_version``."""
    if path.parent.name.isdigit():
        return int(path.parent.name)
    version = record.get("tail_version")
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    raise IngestError(str(path), "no version: folder is not a number and tail_version is missing", line, "tail_version")


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one task's dump file into canonical frames.

    Raises:
        IngestError: Bad lines, missing keys, non-string texts, non-finite rewards, no version.
    """
    records, skipped = read_jsonl(path, options)
    mode = path.parent.parent.name
    builder = FrameBuilder()
    splitters_used: set[str] = set()
    seen: set[str] = set()
    for line, record in records:
        for key in _KEYS:
            require(record, key, path, line)
        prompt = require(record, "prompt", path, line, str)
        completion = require(record, "completion", path, line, str)
        steps, concrete = split_response(prompt, completion, options.splitter, path, line, "completion")
        splitters_used.add(concrete)
        traj_id = f"{mode}/{path.parent.name}/{record['task_id']}:{record['sample_idx']}"
        if traj_id in seen:
            problem = f"task_id/sample_idx repeat an earlier line (trajectory {traj_id!r})"
            raise IngestError(str(path), problem, line, "sample_idx")
        seen.add(traj_id)
        builder.add(
            traj_id=traj_id,
            iteration=_iteration(path, record, line),
            group_id=str(record["task_id"]),
            prompt=prompt,
            split=options.split or ("val" if mode == "eval-rollout" else "train"),
            outcome=finite_number(record["reward"], path, line, "reward"),
            steps=steps,
            meta={key: value for key, value in record.items() if key not in _MAPPED},
        )
    # .../{experiment}/{trial}/{rollout}/{version}/{task}.jsonl: the trial folder names the run.
    trial = path.parent.parent.parent.name if mode in ("rollout", "eval-rollout") else path.parent.name
    run_config = {"splitter": options.splitter, "splitters_applied": sorted(splitters_used)}
    return builder.rollouts(options, run_config=run_config, default_run=trial or None, skipped=skipped)
