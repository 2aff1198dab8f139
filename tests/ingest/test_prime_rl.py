import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import prime_rl

FIXTURE = Path(__file__).parents[1] / "fixtures" / "prime_rl" / "rollouts" / "step_3" / "train" / "all" / "traces.jsonl"


def _records() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def _leaves(nodes: list[dict]) -> int:
    parents = {node["parent"] for node in nodes if node["parent"] is not None}
    return sum(index not in parents for index in range(len(nodes)))


def test_detected_and_one_trajectory_per_branch():
    assert registry.detect(FIXTURE) is prime_rl
    records = _records()
    rollouts = prime_rl.read(FIXTURE, AdapterOptions())
    expected = sum(_leaves(trace["nodes"]) for record in records for trace in record["traces"])
    assert len(rollouts.trajectories) == expected == 6  # 4 episodes, two of them forked in two
    assert rollouts.trajectories.groupby("group_id").size().to_dict() == {"g-1": 3, "g-2": 3}
    assert set(rollouts.trajectories["iteration"]) == {3} and set(rollouts.trajectories["split"]) == {"train"}


def test_branches_share_their_prefix_node_and_carry_tokens():
    rollouts = prime_rl.read(FIXTURE, AdapterOptions())
    steps = rollouts.steps
    branch_a = steps[steps["traj_id"] == "g-1-e2/t0/b0"]
    branch_b = steps[steps["traj_id"] == "g-1-e2/t0/b1"]
    assert branch_a["node_id"].tolist() == ["g-1-e2/t0/n1", "g-1-e2/t0/n3"]
    assert branch_b["node_id"].tolist() == ["g-1-e2/t0/n1", "g-1-e2/t0/n4"]
    assert branch_a["parent_id"].isna().tolist() == [True, False]
    assert branch_a["parent_id"].iloc[1] == "g-1-e2/t0/n1"
    assert branch_a["state"].tolist() == ["user: What is 5+5?", "user: Continue."]
    assert branch_b["action"].iloc[1] == "Answer B (compacted branch)."
    extra = json.loads(branch_a["extra"].iloc[0])
    assert extra["logprobs"] == [-0.5, -0.25] and extra["advantages"] == [-0.5, -0.5]


def test_tool_turn_outcome_and_components():
    rollouts = prime_rl.read(FIXTURE, AdapterOptions())
    linear = rollouts.steps[rollouts.steps["traj_id"] == "g-1-e1/t0"]
    assert linear["action"].iloc[0] == 'Let me calculate.\n[tool_call] calc({"e": "x"})'
    assert linear["state"].iloc[1] == "tool: ok"
    outcomes = dict(zip(rollouts.trajectories["traj_id"], rollouts.trajectories["outcome"], strict=True))
    assert outcomes["g-1-e1/t0"] == pytest.approx(1.0 * 1.0 + 1.0 * 0.1)
    assert outcomes["g-1-e2/t0/b0"] == pytest.approx(0.1)
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta["reward_components"]["format"] == {"score": 1.0, "weight": 0.1}
    assert meta["env"] == {"id": "gsm8k", "name": "gsm8k"} and meta["trace"]["metrics"] == {"turns": 2}


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (
            lambda r: r["traces"][0]["rewards"]["correct"].update(score=float("nan")),
            "traces[0].rewards.correct.score",
            "finite",
        ),
        (lambda r: r["traces"][0]["nodes"][1].update(parent=5), "traces[0].nodes[1].parent", "earlier node"),
        (lambda r: r["group"].pop("id"), "group.id", "missing group id"),
        (
            lambda r: r["traces"][0]["nodes"][3]["message"].update(tool_calls=[{"id": 1}]),
            "traces[0].nodes[3].message.tool_calls[0].function.name",
            "no function name",
        ),
    ],
)
def test_bad_records_name_line_and_field(tmp_path, mutate, field, problem):
    records = _records()
    mutate(records[1])
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    with pytest.raises(IngestError, match=problem) as caught:
        prime_rl.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (2, field)


def test_eval_split_from_run_type(tmp_path):
    record = _records()[0]
    record["run"]["type"] = "eval"
    del record["run"]["work"]
    path = tmp_path / "step_7" / "traces.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps(record))
    rollouts = prime_rl.read(path, AdapterOptions())
    assert rollouts.trajectories["split"].tolist() == ["val"] and rollouts.trajectories["iteration"].tolist() == [7]
