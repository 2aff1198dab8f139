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
    # per-token arrays are columns of their own (ids stay in extra: they are not text)
    assert branch_a["token_logprobs"].iloc[0] == [-0.5, -0.25]
    assert branch_a["token_advantages"].iloc[0] == [-0.5, -0.5]
    assert "logprobs" not in extra and "advantages" not in extra and extra["token_ids"]


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


def test_token_arrays_of_unequal_length_name_the_node(tmp_path):
    record = json.loads(FIXTURE.read_text().splitlines()[0])
    node = next(n for n in record["traces"][0]["nodes"] if n.get("sampled"))
    node["advantages"] = [0.5]
    node["reference_logprobs"] = [-0.4, -0.2]
    source = tmp_path / "rollouts" / "step_3" / "train" / "all" / "traces.jsonl"
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps(record) + "\n")
    with pytest.raises(IngestError, match="traces\\[0\\].nodes\\[1\\]") as caught:
        prime_rl.read(source, AdapterOptions())
    assert caught.value.record == 1
    node["advantages"] = [0.5, 0.5]
    source.write_text(json.dumps(record) + "\n")
    steps = prime_rl.read(source, AdapterOptions()).steps
    assert steps["token_ref_logprobs"].iloc[0] == [-0.4, -0.2]


def test_token_arrays_land_in_the_store(store):
    from core.ingest.runner import ingest
    from core.store import queries

    ingest(store, [str(FIXTURE)])
    coverage = queries.token_coverage(store).iloc[0]
    sampled = len(prime_rl.read(FIXTURE, AdapterOptions()).steps)
    assert coverage["token_logprobs"] == coverage["token_advantages"] == sampled and coverage["tokens"] == 0
    run = coverage["run_id"]
    tokens = queries.step_tokens(store, run, "g-1-e2/t0/b0")
    assert tokens["token_logprobs"].tolist()[0] == [-0.5, -0.25]
