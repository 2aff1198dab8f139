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
from core.ingest.formats._single_response import require_text, response_steps
from core.ingest.formats._source_reading import head_mentions_keys, read_jsonl
from core.ingest.formats._trajectory_frames import FrameBuilder, require_key, required_number

NAME = "areal"
PRIORITY = 30
CHECKED_AGAINST = "AReaL @ 4aef98d8 (workflow_executor._dump_trajectory JSONL)"

_KEYS = ("task_id", "sample_idx", "reward", "prompt", "completion")
_MAPPED = frozenset({"task_id", "sample_idx", "reward", "prompt", "completion"})


def detect(path: Path, head: bytes) -> str | None:
    """Accept ``.jsonl`` files whose first record has the AReaL dump keys."""
    if path.suffix != ".jsonl":
        return "not a .jsonl file"
    missing = head_mentions_keys(head, _KEYS)
    return f"first record lacks keys {', '.join(missing)}" if missing else None


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
    for line, record in records:
        for key in _KEYS:
            require_key(record, key, str(path), line)
        prompt = require_text(record["prompt"], path, line, "prompt")
        completion = require_text(record["completion"], path, line, "completion")
        steps, concrete = response_steps(prompt, completion, options.splitter, path, line, "completion")
        splitters_used.add(concrete)
        builder.add(
            traj_id=f"{mode}/{path.parent.name}/{record['task_id']}:{record['sample_idx']}",
            iteration=_iteration(path, record, line),
            group_id=str(record["task_id"]),
            prompt=prompt,
            split=options.split or ("val" if mode == "eval-rollout" else "train"),
            outcome=required_number(record["reward"], str(path), line, "reward"),
            steps=steps,
            meta={key: value for key, value in record.items() if key not in _MAPPED},
        )
    steps_frame, trajectories = builder.build()
    # .../{experiment}/{trial}/{rollout}/{version}/{task}.jsonl: the trial folder names the run.
    trial = path.parent.parent.parent.name if mode in ("rollout", "eval-rollout") else path.parent.name
    run_config = {"splitter": options.splitter, "splitters_applied": sorted(splitters_used)}
    return Rollouts(steps_frame, trajectories, run_config, default_run=trial or None, skipped=skipped)
