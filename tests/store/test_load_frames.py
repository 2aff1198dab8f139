"""``core.store.load.load_rollouts`` on adapter frames that break the contract: the user sees the real problem."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest.base import STEP_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS, Rollouts
from core.store import queries
from core.store.database import Store
from core.store.load import SourceInfo, load_rollouts

SOURCE = SourceInfo("src-1", "/logs/run.jsonl", "test", None, "digest", 10, 1.0, {})


def _frames(step_traj_ids: list[str], traj_ids: list[str], iteration: object = 0) -> Rollouts:
    steps = pd.DataFrame([dict.fromkeys(STEP_FRAME_COLUMNS) for _ in step_traj_ids])
    steps["traj_id"] = step_traj_ids
    steps["step_idx"] = range(len(step_traj_ids))
    steps["action"] = "act"
    trajs = pd.DataFrame([dict.fromkeys(TRAJ_FRAME_COLUMNS) for _ in traj_ids])
    trajs["traj_id"] = traj_ids
    trajs["iteration"] = iteration
    trajs["group_id"] = "g"
    trajs["outcome"] = 1.0
    return Rollouts(steps=steps, trajectories=trajs)


def test_steps_of_no_trajectory_are_an_error_not_silently_dropped() -> None:
    store = Store.open(":memory:")
    with pytest.raises(IngestError, match="1 step rows belong to no trajectory"), store.writer() as cur:
        load_rollouts(cur, SOURCE, _frames(["t0", "t0", "orphan"], ["t0"]), "run")
    assert queries.runs_summary(store).empty


def test_a_failing_statement_reports_its_own_error() -> None:
    """Not DuckDB's "transaction is aborted" from the clean-up that runs after it."""
    store = Store.open(":memory:")
    with pytest.raises(duckdb.ConversionException), store.writer() as cur:
        load_rollouts(cur, SOURCE, _frames(["t0"], ["t0"], iteration="not a number"), "run")
    assert queries.runs_summary(store).empty
