"""AReaL adapter, on a fixture built from the documented dump layout (no public real dump exists)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import areal

TRIAL = Path(__file__).parent.parent / "fixtures" / "areal" / "logs" / "user" / "gsm8k-grpo" / "trial0"
Q17 = TRIAL / "rollout" / "3" / "q17.jsonl"


def test_every_dump_file_is_detected() -> None:
    plan = registry.plan_sources([str(TRIAL)])
    assert len(plan) == 3 and all(module is areal for _, module in plan)


def test_task_file_is_one_group_at_the_folder_version() -> None:
    lines = [json.loads(line) for line in Q17.read_text().splitlines()]
    rollouts = areal.read(Q17, AdapterOptions())
    assert rollouts.trajectories["traj_id"].tolist() == [f"rollout/3/q17:{i}" for i in range(3)]
    assert set(rollouts.trajectories["group_id"]) == {"q17"}
    assert (rollouts.steps["iteration"] == 3).all()
    assert rollouts.trajectories["outcome"].tolist() == [line["reward"] for line in lines]
    # Blank-line split: 3, 2 and 1 steps.
    assert rollouts.steps.groupby("traj_id").size().tolist() == [3, 2, 1]
    assert rollouts.default_run == "trial0"
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert (meta["head_version"], meta["tail_version"], meta["prompt_len"]) == (2, 3, lines[0]["prompt_len"])


def test_eval_rollout_folder_is_val() -> None:
    rollouts = areal.read(TRIAL / "eval-rollout" / "4" / "q90.jsonl", AdapterOptions())
    assert rollouts.trajectories["split"].tolist() == ["val"]


def test_infinite_reward_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "rollout" / "3"
    folder.mkdir(parents=True)
    path = folder / "q17.jsonl"
    lines = Q17.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1].replace('"reward": 0.0', '"reward": Infinity') + "\n")
    with pytest.raises(IngestError) as caught:
        areal.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (2, "reward")
