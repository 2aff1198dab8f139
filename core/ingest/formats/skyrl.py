"""SkyRL evaluation dumps: ``{export_path}/dumped_evals/global_step_{N}_evals/{data_source}.jsonl``.

Checked against NovaSky-AI/SkyRL @ a9564572 (``skyrl/train/utils/trainer_utils.py``
``dump_per_dataset_eval_results``). No real dump is public: the test fixture is built from that
layout (tests/fixtures/skyrl/make_fixture.py).

Mapping (log-formats.md B.6):

- ``iteration`` = ``N`` from the ``global_step_{N}_evals`` folder (0 for ``eval_only``); ``split`` = ``"val"``.
- group: none is written, so rollouts with an identical ``input_prompt`` in one file form a group
  (``group_id = "{file stem}/{sha1(prompt)[:12]}"``); ``traj_id = "{folder}/{file stem}:{line}"``.
- steps: ``output_response`` (special tokens kept, as SkyRL decodes it) split with ``options.splitter``;
  state = prompt + earlier steps. outcome = ``score``; a per-token score list is summed (the list is kept
  in ``meta``). ``stop_reason``, ``env_class``, ``env_extras``, ``data_source`` and any other key go to ``meta``.
- The folder's ``aggregated_results.jsonl`` (one metrics line) is a companion, kept in ``run_config``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, finite_number, require, text_key
from core.ingest.formats._rollout_records import head_keys_reason, read_jsonl
from core.ingest.formats._steps import split_response

NAME = "skyrl"
PRIORITY = 30
CHECKED_AGAINST = "SkyRL @ a9564572 (dumped_evals JSONL of dump_per_dataset_eval_results)"
COMPANIONS: tuple[str, ...] = ("aggregated_results.jsonl",)

_KEYS = ("input_prompt", "output_response", "score")
_MAPPED = frozenset(_KEYS)
_STEP_FOLDER = re.compile(r"global_step_(\d+)_evals")


def detect(path: Path, head: bytes) -> str | None:
    """Accept ``.jsonl`` files whose first record has ``input_prompt``, ``output_response`` and ``score``."""
    return head_keys_reason(path, head, _KEYS)


def _score(value: Any, path: Path, line: int) -> float:
    """The scalar score; a per-token list of rewards counts as its sum."""
    if isinstance(value, list):
        return sum(finite_number(item, path, line, f"score[{i}]", optional=True) or 0.0 for i, item in enumerate(value))
    return finite_number(value, path, line, "score")


def _aggregated_results(folder: Path) -> list[dict[str, Any]] | None:
    """The companion metrics file's records, when present and readable."""
    companion = folder / "aggregated_results.jsonl"
    if not companion.exists():
        return None
    records, _ = read_jsonl(companion, AdapterOptions())
    return [record for _, record in records]


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one per-dataset eval dump into canonical frames.

    Raises:
        IngestError: Bad lines, missing keys, non-string texts, non-finite scores, invalid splitter.
    """
    records, skipped = read_jsonl(path, options)
    folder_match = _STEP_FOLDER.fullmatch(path.parent.name)
    iteration = int(folder_match.group(1)) if folder_match else 0
    builder = FrameBuilder()
    splitters_used: set[str] = set()
    for line, record in records:
        prompt = require(record, "input_prompt", path, line, str)
        response = require(record, "output_response", path, line, str)
        require(record, "score", path, line)
        steps, concrete = split_response(prompt, response, options.splitter, path, line, "output_response")
        splitters_used.add(concrete)
        meta = {key: value for key, value in record.items() if key not in _MAPPED or key == "score"}
        if not isinstance(record["score"], list):
            meta.pop("score")
        builder.add(
            traj_id=f"{path.parent.name}/{path.stem}:{line}",
            iteration=iteration,
            group_id=f"{path.stem}/{text_key(prompt)}",
            prompt=prompt,
            split=options.split or "val",
            outcome=_score(record["score"], path, line),
            steps=steps,
            meta=meta,
        )
    run_config: dict[str, Any] = {"splitter": options.splitter, "splitters_applied": sorted(splitters_used)}
    aggregated = _aggregated_results(path.parent)
    if aggregated is not None:
        run_config["aggregated_results"] = aggregated
    export_dir = path.parent.parent.parent if path.parent.parent.name == "dumped_evals" else path.parent
    return builder.rollouts(options, run_config=run_config, default_run=export_dir.name or None, skipped=skipped)
