import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import STEP_FRAME_COLUMNS, AdapterOptions
from core.ingest.formats import agentgym

FIXTURE = Path(__file__).parent.parent / "fixtures" / "agent_trajectories" / "agentgym-mcp_trajectories.json"


@pytest.fixture(scope="module")
def raw():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rollouts():
    return agentgym.read(FIXTURE, AdapterOptions())


def _write(tmp_path: Path, document: dict) -> Path:
    source = tmp_path / "episodes.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    return source


def test_auto_detection_picks_agentgym():
    assert registry.detect(FIXTURE) is agentgym


def test_episode_and_transition_counts(rollouts, raw):
    assert len(rollouts.trajectories) == len(raw["episodes"]) == 3
    assert len(rollouts.steps) == sum(len(e["transitions"]) for e in raw["episodes"])
    assert len(rollouts.steps) == raw["statistics"]["total_transitions"]
    assert tuple(rollouts.steps.columns) == STEP_FRAME_COLUMNS


def test_rewards_states_and_outcomes(rollouts, raw):
    for episode, (_, traj) in zip(raw["episodes"], rollouts.trajectories.iterrows(), strict=True):
        steps = rollouts.steps[rollouts.steps.traj_id == traj["traj_id"]]
        transitions = episode["transitions"]
        assert steps["reward"].tolist() == [t["reward"] for t in transitions]
        assert steps["action"].tolist() == [t["action"] for t in transitions]
        assert pd.isna(steps["state"].iloc[0])  # the first observation is not logged
        assert steps["state"].iloc[1:].tolist() == [t["observation"] for t in transitions[:-1]]
        assert traj["outcome"] == episode["total_reward"]
        meta = json.loads(traj["meta"])
        assert meta["success"] is episode["success"] and meta["final_observation"] == transitions[-1]["observation"]
        assert traj["group_id"] == f"data_idx:{episode['data_idx']}"
    assert rollouts.run_config["statistics"] == raw["statistics"]
    assert json.loads(rollouts.steps["extra"].iloc[0]) == {"step": 1, "done": False}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["episodes"][1]["transitions"][2].update(reward=float("nan")), "transitions[2].reward"),
        (lambda d: d["episodes"][1]["transitions"][0].update(action=["left"]), "transitions[0].action"),
        (lambda d: d["episodes"][1].pop("total_reward"), "total_reward"),
        (lambda d: d["episodes"][1].update(episode_id=0), "episode_id"),
    ],
)
def test_bad_episodes_are_located(tmp_path, raw, change, field):
    document = json.loads(json.dumps(raw))
    change(document)
    with pytest.raises(IngestError) as info:
        agentgym.read(_write(tmp_path, document), AdapterOptions())
    assert (info.value.record, info.value.field) == ("episodes[1]", field)
