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


def _nested_rows(tmp_path: Path, rows: list[dict], name: str = "chat.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _chat(answer: str) -> list[dict]:
    return [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": answer}]


def test_a_reward_one_level_down_is_detected_when_unambiguous(tmp_path):
    rows = [
        {"messages": _chat("4"), "reward_info": {"reward": 1.0, "judge": "exact"}, "task": {"id": "t1"}},
        {"messages": _chat("5"), "reward_info": {"reward": 0.0, "judge": "exact"}, "task": {"id": "t1"}},
    ]
    path = _nested_rows(tmp_path, rows)
    assert registry.detect(path) is openai_messages
    rollouts = openai_messages.read(path, AdapterOptions())
    assert rollouts.trajectories["outcome"].tolist() == [1.0, 0.0]
    assert rollouts.run_config["reward_field"] == "reward_info.reward"
    assert json.loads(rollouts.trajectories["meta"].iloc[0])["reward_info"]["judge"] == "exact"  # nothing lost


def test_two_nested_rewards_are_ambiguous_and_refused_until_one_is_named(tmp_path):
    rows = [{"messages": _chat("4"), "reward_info": {"reward": 1.0}, "grader": {"score": 0.2}, "meta": {"g": "a"}}]
    path = _nested_rows(tmp_path, rows)
    with pytest.raises(Exception, match="reward_info.reward, grader.score"):
        registry.detect(path)
    with pytest.raises(IngestError, match="choose one with --reward-field"):
        openai_messages.read(path, AdapterOptions())
    rollouts = openai_messages.read(path, AdapterOptions(extra={"reward_field": "grader.score"}))
    assert rollouts.trajectories["outcome"].tolist() == [0.2]


def test_reward_group_and_id_fields_are_accepted_as_dotted_paths(tmp_path):
    rows = [
        {"messages": _chat("4"), "result": {"eval": {"r": 1}}, "info": {"prompt_uid": "p9", "uid": "a"}, "reward": 5},
        {"messages": _chat("5"), "result": {"eval": {"r": 0}}, "info": {"prompt_uid": "p9", "uid": "b"}, "reward": 5},
    ]
    path = _nested_rows(tmp_path, rows)
    options = AdapterOptions(
        extra={"reward_field": "result.eval.r", "group_field": "info.prompt_uid", "id_field": "info.uid"}
    )
    rollouts = openai_messages.read(path, options)
    assert rollouts.trajectories["outcome"].tolist() == [1.0, 0.0]
    assert rollouts.trajectories["group_id"].tolist() == ["p9", "p9"]
    assert rollouts.trajectories["traj_id"].tolist() == ["a", "b"]
    rows[1]["info"].pop("uid")
    broken = _nested_rows(tmp_path, rows, "broken.jsonl")
    with pytest.raises(IngestError, match="missing \\(named by --id-field\\)") as caught:
        openai_messages.read(broken, options)
    assert (caught.value.record, caught.value.field) == (2, "info.uid")


def test_the_cli_passes_the_field_options(tmp_path):
    from core.cli import main
    from core.store.database import Store

    rows = [{"messages": _chat("4"), "out": {"points": 0.5}, "reward_info": {"reward": 1.0}, "x": {"score": 1}}]
    path = _nested_rows(tmp_path, rows)
    db = tmp_path / "runs.duckdb"
    status = main(
        ["ingest", str(path), "--db", str(db), "--format", "openai_messages", "--reward-field", "out.points", "-q"]
    )
    assert status == 0
    store = Store.open(db, read_only=True)
    try:
        assert store.query_df("SELECT outcome FROM trajectories")["outcome"].tolist() == [0.5]
    finally:
        store.close()


def test_field_options_need_a_format_that_reads_them(tmp_path, capsys):
    from core.cli import main

    path = _nested_rows(tmp_path, [{"messages": _chat("4"), "reward": 1.0}])
    status = main(["ingest", str(path), "--db", str(tmp_path / "x.duckdb"), "--reward-field", "a.b", "-q"])
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--reward-field" in error and "--format openai_messages" in error
