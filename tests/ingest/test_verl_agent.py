import json
import re
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import verl_agent

FIXTURE = Path(__file__).parents[1] / "fixtures" / "verl_agent" / "4.jsonl"
ACTION = re.compile(r"<action>(.*?)</action>")


def _records() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def test_detected_before_plain_verl():
    assert registry.detect(FIXTURE) is verl_agent
    verl_file = Path(__file__).parents[1] / "fixtures" / "verl" / "2.jsonl"
    assert "not a verl-agent env prompt" in verl_agent.detect(verl_file, verl_file.read_bytes()[:65536])


def test_rows_are_rethreaded_into_the_three_episodes():
    records = _records()
    rollouts = verl_agent.read(FIXTURE, AdapterOptions())
    # make_fixture.py: 3 environments with 3, 2 and 3 turns = 8 rows, all in one group
    assert len(records) == len(rollouts.steps) == 8
    assert len(rollouts.trajectories) == 3
    assert rollouts.trajectories["group_id"].nunique() == 1
    actions = {
        traj: [ACTION.search(output).group(1) for output in group["action"]]
        for traj, group in rollouts.steps.groupby("traj_id")
    }
    assert sorted(actions.values()) == sorted(
        [
            ["go to countertop 1", "take mug 1 from countertop 1", "clean mug 1 with sinkbasin 1"],
            ["go to sinkbasin 1", "go to countertop 1"],
            ["go to countertop 1", "go to sinkbasin 1", "go to countertop 1"],
        ]
    )
    # every step's prompt announces its own turn number in order
    for _, group in rollouts.steps.groupby("traj_id"):
        turns = [json.loads(extra)["threading"]["turn"] for extra in group["extra"]]
        assert turns == list(range(1, len(turns) + 1))


def test_rewards_and_outcome_sum():
    rollouts = verl_agent.read(FIXTURE, AdapterOptions())
    winner = rollouts.trajectories.loc[rollouts.trajectories["outcome"] == 10.0, "traj_id"]
    assert len(winner) == 1
    steps = rollouts.steps[rollouts.steps["traj_id"] == winner.iloc[0]]
    assert steps["reward"].tolist() == [0.0, 0.0, 10.0]
    assert set(rollouts.steps["iteration"]) == {4}
    # the two episodes that took the same first action from the same state are flagged
    threading = [json.loads(meta)["threading"] for meta in rollouts.trajectories["meta"]]
    assert sorted(threading) == ["ambiguous", "matched", "matched"]


def test_orphan_row_starts_its_own_trajectory(tmp_path):
    records = _records()
    later = next(r for r in records if "You are now at step 3" in r["input"])
    path = tmp_path / "1.jsonl"
    path.write_text(json.dumps(later) + "\n")
    rollouts = verl_agent.read(path, AdapterOptions())
    assert json.loads(rollouts.trajectories["meta"].iloc[0])["threading"] == "orphan"


def test_bad_score_names_line(tmp_path):
    records = _records()
    records[2]["score"] = float("nan")
    path = tmp_path / "4.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    with pytest.raises(IngestError, match="finite") as caught:
        verl_agent.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (3, "score")
