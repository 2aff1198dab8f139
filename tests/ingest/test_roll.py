"""ROLL adapter, on fixtures built from the documented columnar dump layout (no public real dump exists)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import roll

FIXTURES = Path(__file__).parent.parent / "fixtures" / "roll"
RLVR = FIXTURES / "rlvr" / "rollout_dump_data.step_7.jsonl"
AGENTIC = FIXTURES / "agentic" / "rollout_dump_data.step_2.jsonl"


@pytest.mark.parametrize("path", [RLVR, AGENTIC], ids=["rlvr", "agentic"])
def test_detected(path: Path) -> None:
    assert registry.detect(path) is roll


def test_rlvr_columns_become_one_trajectory_per_response() -> None:
    columns = json.loads(RLVR.read_text())
    rollouts = roll.read(RLVR, AdapterOptions())
    assert len(rollouts.trajectories) == len(columns["responses"]) == 4
    assert rollouts.trajectories["group_id"].tolist() == columns["id"]
    assert rollouts.trajectories["outcome"].tolist() == columns["scores"]
    assert rollouts.steps.groupby("traj_id").size().tolist() == [2, 2, 1, 2]
    assert (rollouts.steps["iteration"] == 7).all()
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta["ground_truth"] == "81" and meta["sampling_params"] == {"temperature": 1.0, "n": 2}


def test_agentic_rows_thread_messages_and_step_rewards() -> None:
    rollouts = roll.read(AGENTIC, AdapterOptions())
    assert rollouts.trajectories["traj_id"].tolist() == ["Sokoban_0_3_11_0", "Sokoban_0_3_11_1"]
    assert set(rollouts.trajectories["group_id"]) == {"Sokoban_0_3_11"}
    assert rollouts.trajectories["outcome"].tolist() == [1.0, 0.0]
    first = rollouts.steps[rollouts.steps["traj_id"] == "Sokoban_0_3_11_0"]
    assert first["reward"].tolist() == [0.0, 1.0]
    assert first["state"].tolist() == ["system: You are in a grid.\n\nuser: Start.", "user: You moved left."]
    assert json.loads(rollouts.trajectories["meta"].iloc[0])["exp_name"] == "sokoban-demo"


def test_ragged_columns_and_missing_scores_are_errors(tmp_path: Path) -> None:
    columns = json.loads(RLVR.read_text())
    path = tmp_path / "rollout_dump_data.step_7.jsonl"
    path.write_text(json.dumps({**columns, "scores": columns["scores"][:3]}))
    with pytest.raises(IngestError, match="different lengths"):
        roll.read(path, AdapterOptions())
    path.write_text(json.dumps({k: v for k, v in columns.items() if k != "scores"}))
    with pytest.raises(IngestError) as caught:
        roll.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (1, "scores")
    path.write_text(json.dumps({**columns, "scores": [1.0, None, 0.0, 1.0]}))
    with pytest.raises(IngestError) as caught:
        roll.read(path, AdapterOptions())
    assert caught.value.field == "scores[1]"
