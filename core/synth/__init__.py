"""Sample environments with exact ground truth, for the demo, the tests and the benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from core.schema import OPTIONAL_STEP_INPUTS, STEP_COLUMN_NAMES, TOKEN_COLUMN_NAMES
from core.synth.runs import ENVS, records

__all__ = ["ENVS", "generate_steps", "records", "write_jsonl"]

_STEP_KEYS = {"node": "node_id", "parent": "parent_id"}


def write_jsonl(path: str | Path, env: str, **kwargs: int | str) -> int:
    """Write a run of ``env`` as native JSONL; returns the number of steps written."""
    n_steps = 0
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records(env, **kwargs):  # type: ignore[arg-type]
            fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
            n_steps += len(rec["steps"])
    return n_steps


def generate_steps(
    env: str,
    *,
    prompts: int = 6,
    iterations: int = 10,
    group_size: int = 8,
    seed: int = 0,
    pool: int = 0,
    with_tokens: bool = False,
) -> pd.DataFrame:
    """Canonical step rows of a sample run, without a database.

    Columns: :data:`core.schema.STEP_COLUMN_NAMES`, plus the optional inputs the run carries
    (``logp_policy``/``logp_ref`` for the arithmetic environments), plus with ``with_tokens`` the
    per-token arrays (:data:`core.schema.TOKEN_COLUMN_NAMES`) the run logs, as list columns.

    Handy for unit tests and benchmarks of the credit engine and the tree builders. ``pool`` draws the
    prompts from a fixed set shared by every seed (see :func:`core.synth.runs.records`).
    """
    rows = []
    for rec in records(env, prompts=prompts, iterations=iterations, group_size=group_size, seed=seed, pool=pool):
        for t, step in enumerate(rec["steps"]):
            row = {_STEP_KEYS.get(k, k): v for k, v in step.items()}
            row.update(
                run_id=rec["run"],
                iteration=rec["iteration"],
                group_id=rec["group"],
                traj_id=rec["trajectory"],
                step_idx=t,
                outcome=rec["outcome"],
            )
            rows.append(row)
    frame = pd.DataFrame(rows)
    for col in STEP_COLUMN_NAMES:
        if col not in frame:
            frame[col] = None
    tokens = [c for c in TOKEN_COLUMN_NAMES if c in frame] if with_tokens else []
    frame = frame[list(STEP_COLUMN_NAMES) + [c for c in OPTIONAL_STEP_INPUTS if c in frame] + tokens]
    frame["valid"] = frame["valid"].astype("boolean")
    for col in ("reward", "outcome", "label", "prm", "value"):
        frame[col] = frame[col].astype("float64")
    return frame
