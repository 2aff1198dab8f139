"""A native file may hold several runs, and trajectory ids are unique only within a run.

Every read path (DuckDB fast path, validating Python reader, Parquet) must keep two runs' ``t0`` apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest import runner
from core.ingest.runner import ingest
from core.store import queries
from core.store.database import Store
from core.store.native_jsonl import FastPathUnavailable

RUNS = {"seed-a": [0.0, 1.0], "seed-b": [1.0, 1.0]}
"""Per run, the outcome of trajectories t0, t1: the same ids in both runs."""


def _records() -> list[dict]:
    return [
        {
            "run": run,
            "trajectory": f"t{index}",
            "group": "g",
            "outcome": outcome,
            "steps": [{"action": f"{run} t{index} s0"}, {"action": f"{run} t{index} s1", "prm": outcome}],
        }
        for run, outcomes in RUNS.items()
        for index, outcome in enumerate(outcomes)
    ]


def _check_runs_kept_apart(store: Store) -> None:
    summary = queries.runs_summary(store).set_index("run_id")
    assert summary["trajectories"].to_dict() == {"seed-a": 2, "seed-b": 2}
    assert summary["steps"].to_dict() == {"seed-a": 4, "seed-b": 4}
    steps = queries.steps(store)
    assert len(steps) == 8
    # Each step stays with its own run's trajectory (its action text names the run).
    assert all(action.startswith(run) for run, action in zip(steps["run_id"], steps["action"], strict=True))
    outcomes = queries.trajectories(store, run_id="seed-b").set_index("traj_id")["outcome"].to_dict()
    assert outcomes == {"t0": 1.0, "t1": 1.0}


def test_fast_path_keeps_runs_with_the_same_trajectory_ids_apart(tmp_path: Path) -> None:
    path = tmp_path / "two_seeds.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in _records()))
    store = Store.open(":memory:")
    assert ingest(store, [str(path)]).sources[0].fast_path
    _check_runs_kept_apart(store)


def test_validating_reader_keeps_runs_with_the_same_trajectory_ids_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "two_seeds.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in _records()))

    def refuse(*args: object, **kwargs: object) -> None:
        raise FastPathUnavailable("forced by the test")

    monkeypatch.setattr(runner, "load_native_jsonl", refuse)
    store = Store.open(":memory:")
    assert not ingest(store, [str(path)]).sources[0].fast_path
    _check_runs_kept_apart(store)


def test_parquet_keeps_runs_with_the_same_trajectory_ids_apart(tmp_path: Path) -> None:
    rows = [
        {
            "run_id": record["run"],
            "iteration": 0,
            "group_id": record["group"],
            "traj_id": record["trajectory"],
            "step_idx": step_idx,
            "action": step["action"],
            "outcome": record["outcome"],
            "prm": step.get("prm"),
        }
        for record in _records()
        for step_idx, step in enumerate(record["steps"])
    ]
    path = tmp_path / "two_seeds.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False)
    store = Store.open(":memory:")
    ingest(store, [str(path)])
    _check_runs_kept_apart(store)


def test_run_override_still_rejects_ids_that_then_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--run`` puts both seeds into one run, where two ``t0`` are a real conflict."""
    path = tmp_path / "two_seeds.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in _records()))

    def refuse(*args: object, **kwargs: object) -> None:
        raise FastPathUnavailable("forced by the test")

    monkeypatch.setattr(runner, "load_native_jsonl", refuse)
    store = Store.open(":memory:")
    with pytest.raises(IngestError, match="trajectory id 't[01]' occurs more than once in its run"):
        ingest(store, [str(path)], run="merged")
    assert queries.runs_summary(store).empty
