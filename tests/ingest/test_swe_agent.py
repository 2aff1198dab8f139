import json
import shutil
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import STEP_FRAME_COLUMNS, AdapterOptions
from core.ingest.formats import swe_agent

FIXTURE = Path(__file__).parent.parent / "fixtures" / "agent_trajectories" / "swe-agent_pydicom__pydicom-1458.traj"


@pytest.fixture(scope="module")
def raw():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rollouts():
    return swe_agent.read(FIXTURE, AdapterOptions())


def test_auto_detection_picks_swe_agent():
    assert registry.detect(FIXTURE) is swe_agent


def test_one_step_per_trajectory_entry(rollouts, raw):
    assert len(rollouts.trajectories) == 1
    assert len(rollouts.steps) == len(raw["trajectory"]) == 12
    assert tuple(rollouts.steps.columns) == STEP_FRAME_COLUMNS
    assert rollouts.steps["action"].tolist() == [step["action"] for step in raw["trajectory"]]


def test_observation_of_a_step_is_the_next_state(rollouts, raw):
    steps = rollouts.steps
    issue = next(m["content"] for m in raw["history"] if m["role"] == "user" and m.get("is_demo") is None)
    assert steps["state"].iloc[0] == issue
    for t in range(len(raw["trajectory"]) - 1):
        previous = raw["trajectory"][t]
        assert steps["state"].iloc[t + 1].startswith(previous["observation"].rstrip())
        assert previous["state"].strip() in steps["state"].iloc[t + 1]


def test_outcome_meta_and_extra(rollouts, raw):
    traj = rollouts.trajectories.iloc[0]
    assert raw["info"]["exit_status"] == "submitted"
    assert traj["outcome"] == 1.0
    assert traj["group_id"] == FIXTURE.stem
    meta = json.loads(traj["meta"])
    assert meta["info"]["submission"] == raw["info"]["submission"]
    assert meta["final_observation"] == raw["trajectory"][-1]["observation"]
    assert len(meta["history"]) == len(raw["history"])
    extra = json.loads(rollouts.steps["extra"].iloc[2])
    assert extra["thought"] == raw["trajectory"][2]["thought"]
    assert extra["response"] == raw["trajectory"][2]["response"]


def test_unsubmitted_run_has_outcome_zero(tmp_path, raw):
    changed = dict(raw, info=dict(raw["info"], exit_status="exit_cost"))
    source = tmp_path / "run" / "x.traj"
    source.parent.mkdir()
    source.write_text(json.dumps(changed), encoding="utf-8")
    result = swe_agent.read(source, AdapterOptions())
    assert result.trajectories["outcome"].tolist() == [0.0]
    assert result.trajectories["traj_id"].tolist() == ["run/x"]


def test_truncated_file_and_bad_step(tmp_path, raw):
    source = tmp_path / "cut.traj"
    shutil.copy(FIXTURE, source)
    text = source.read_text(encoding="utf-8")
    source.write_text(text[: len(text) // 3], encoding="utf-8")
    with pytest.raises(IngestError) as info:
        swe_agent.read(source, AdapterOptions())
    assert info.value.record == text[: len(text) // 3].count("\n") + 1

    broken = json.loads(json.dumps(raw))
    broken["trajectory"][4]["observation"] = None
    source.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(IngestError) as info:
        swe_agent.read(source, AdapterOptions())
    assert info.value.field == "trajectory[4].observation"


def test_native_jsonl_with_agent_like_step_keys_is_not_taken():
    native_line = (
        b'{"run":"r","trajectory":"t0","outcome":1,"steps":[{"action":"ls","observation":"a","thought":"b"}]}\n'
    )
    assert swe_agent.detect(Path("rollouts.jsonl"), native_line) is not None
