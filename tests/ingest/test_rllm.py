"""rLLM adapter, on a fixture built from the documented episode layout (no public real log exists)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import rllm

EPISODES = Path(__file__).parent.parent / "fixtures" / "rllm" / "logs" / "demo" / "solver-exp" / "episodes"
TRAIN = EPISODES / "train_step_4_epoch_0"


def test_folder_plan_reads_episodes_and_skips_batch_summary() -> None:
    plan = registry.plan_sources([str(EPISODES)])
    assert len(plan) == 4 and all(module is rllm for _, module in plan)
    assert all(path.name != "batch_summary.json" for path, _ in plan)


def test_rollouts_of_one_task_share_a_group_and_steps_match() -> None:
    files = sorted(TRAIN.glob("episode_*.json"))
    results = [rllm.read(path, AdapterOptions()) for path in files]
    episodes = [json.loads(path.read_text()) for path in files]
    assert {r.trajectories["group_id"].iloc[0] for r in results} == {"task-17:solver"}
    for result, episode in zip(results, episodes, strict=True):
        trajectory = episode["trajectories"][0]
        assert len(result.steps) == len(trajectory["steps"])
        assert result.steps["action"].tolist() == [s["model_response"] for s in trajectory["steps"]]
        assert result.steps["reward"].tolist() == [s["reward"] for s in trajectory["steps"]]
        assert result.trajectories["outcome"].iloc[0] == trajectory["reward"]
        assert (result.steps["iteration"] == episode["training_step"]).all()
    two_turns = results[1].steps
    # No observation logged: the state is the chat since the previous assistant turn.
    assert two_turns["state"].tolist() == ["user: What is 17 * 3?", "user: Try again."]
    extras = [json.loads(e) for e in two_turns["extra"]]
    assert "chat_completions" not in extras[0] and len(extras[1]["chat_completions"]) == 4  # kept once
    assert extras[0]["action"] == {"answer": "41"}


def test_validation_episodes_get_their_own_groups() -> None:
    result = rllm.read(next((EPISODES / "val_step_4_epoch_0").glob("episode_*.json")), AdapterOptions())
    assert result.trajectories["split"].tolist() == ["val"]
    assert result.trajectories["group_id"].tolist() == ["val/task-17:solver"]


def test_null_trajectory_reward_falls_back_to_is_correct(tmp_path: Path) -> None:
    episode = json.loads(next(TRAIN.glob("*_idtask-17_2.json")).read_text())
    episode["trajectories"][0]["reward"] = None
    path = tmp_path / "episode_hashx_idy.json"
    path.write_text(json.dumps(episode))
    result = rllm.read(path, AdapterOptions())
    assert result.trajectories["outcome"].iloc[0] == 0.0
    assert json.loads(result.trajectories["meta"].iloc[0])["outcome_source"] == "episode.is_correct"


def test_bad_step_reward_and_missing_step_are_errors(tmp_path: Path) -> None:
    episode = json.loads(next(TRAIN.glob("*_idtask-17_1.json")).read_text())
    episode["trajectories"][0]["steps"][1]["reward"] = "1"
    path = tmp_path / "episode_hashx_idy.json"
    path.write_text(json.dumps(episode))
    with pytest.raises(IngestError) as caught:
        rllm.read(path, AdapterOptions())
    assert caught.value.field == "trajectories[0].steps[1].reward"
    del episode["training_step"]
    path.write_text(json.dumps(episode))
    with pytest.raises(IngestError) as caught:
        rllm.read(path, AdapterOptions())
    assert caught.value.field == "training_step"
