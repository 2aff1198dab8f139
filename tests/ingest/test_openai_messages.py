import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import openai_messages

FIXTURE = Path(__file__).parents[1] / "fixtures" / "openai_messages" / "rollouts.jsonl"


def _records() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_detected_and_counts_match_the_file():
    assert registry.detect(FIXTURE) is openai_messages
    records = _records()
    rollouts = openai_messages.read(FIXTURE, AdapterOptions())
    assert len(rollouts.trajectories) == len(records) == 4  # 2 prompts x 2 rollouts (make_fixture.py)
    assert rollouts.trajectories.groupby("group_id").size().tolist() == [2, 2]
    expected_steps = [sum(m["role"] == "assistant" for m in r["messages"]) for r in records]
    assert rollouts.steps.groupby("traj_id", sort=False).size().tolist() == expected_steps
    assert set(rollouts.trajectories["iteration"]) == {5}


def test_field_mapping_and_nothing_dropped():
    rollouts = openai_messages.read(FIXTURE, AdapterOptions())
    good = rollouts.steps[rollouts.steps["traj_id"] == "rollouts/1"]
    assert good["state"].iloc[0] == "system: Use the calc tool, then answer.\n\nuser: 6*7?"
    assert good["action"].iloc[0] == 'Computing.\n[tool_call] calc({"e": "6*7"})'
    assert good["state"].iloc[1] == "tool: 42"
    assert json.loads(good["extra"].iloc[1])["message_fields"] == {"reasoning_content": "tool said so"}
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta["reward_components"] == {"correct": 1.0, "format": 0.0}
    assert meta["sampler"] == {"temperature": 0.7}
    guess = rollouts.steps[rollouts.steps["traj_id"] == "rollouts/2"]
    assert guess["action"].iloc[0] == '[tool_call] calc({"e":"1+1"})'
    assert guess["state"].iloc[1] == "tool (calc): 2"
    assert guess["reward"].tolist() == [0.0, -0.5]
    assert json.loads(guess["extra"].iloc[1])["trailing_messages"] == [{"role": "user", "content": "Wrong."}]


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (lambda r: r.update(reward=float("nan")), "reward", "finite"),
        (lambda r: r.update(step_rewards=[1.0]), "step_rewards", "one per assistant turn"),
        (
            lambda r: r["messages"][2].update(tool_calls=[{"id": "x"}]),
            "messages[2].tool_calls[0].function.name",
            "no function name",
        ),
        (lambda r: r.update(step="7"), "step", "expected an integer"),
    ],
)
def test_bad_records_name_line_and_field(tmp_path, mutate, field, problem):
    records = _records()
    mutate(records[1])
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    with pytest.raises(IngestError, match=problem) as caught:
        openai_messages.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (2, field)


def test_own_ids_are_used_and_must_be_unique(tmp_path):
    row = {
        "id": "run-a",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "score": 0.5,
    }
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert openai_messages.read(path, AdapterOptions()).trajectories["traj_id"].tolist() == ["run-a"]
    path.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(IngestError, match="repeats") as caught:
        openai_messages.read(path, AdapterOptions())
    assert caught.value.record == 2
