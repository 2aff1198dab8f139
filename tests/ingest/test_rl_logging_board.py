import json
from collections import Counter
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import rl_logging_board
from core.ingest.split import split_steps

REAL = Path(__file__).parents[1] / "fixtures" / "rl_logging_board" / "eval_poem_task_data.jsonl"


@pytest.fixture(scope="module")
def real():
    records = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    return records, rl_logging_board.read(REAL, AdapterOptions())


def test_detected(tmp_path):
    assert registry.detect(REAL) is rl_logging_board


def test_counts_iterations_and_groups(real):
    records, rollouts = real
    # 3000 records: steps 0..2200 hold 128 each, step 2300 the remaining 56 (SOURCES.md)
    assert len(rollouts.trajectories) == len(records) == 3000
    per_iteration = rollouts.trajectories.groupby("iteration").size().to_dict()
    assert per_iteration == dict(Counter(r["step"] for r in records))
    assert per_iteration[2300] == 56 and per_iteration[0] == 128
    # the group key is (step, prompt); in this eval file every prompt occurs once per step
    expected_groups = Counter((r["step"], r["prompt"]) for r in records)
    assert rollouts.trajectories.groupby(["iteration", "group_id"]).size().tolist() == sorted(expected_groups.values())
    assert len(expected_groups) == rollouts.trajectories[["iteration", "group_id"]].drop_duplicates().shape[0]
    assert set(rollouts.trajectories["split"]) == {"val"}  # "eval_" in the file name


def test_steps_rewards_and_reference_kept(real):
    records, rollouts = real
    assert len(rollouts.steps) == sum(len(split_steps(r["response"])) for r in records)
    assert rollouts.trajectories["outcome"].tolist() == [r["reward"] for r in records]
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta["ref_response"] == records[0]["ref_response"]
    assert meta["ref_reward"] == records[0]["ref_reward"]
    first = rollouts.steps.iloc[0]
    assert first["state"] == records[0]["prompt"] + "\n"
    assert first["action"] == records[0]["response"]


def test_group_of_repeated_prompt_and_unknown_fields(tmp_path):
    lines = [
        {"prompt": "p", "response": "a\n\nb", "reward": 1.0, "step": 3, "values": [0.1, 0.2]},
        {"prompt": "p", "response": "c", "reward": 0.0, "step": 3},
        {"prompt": "p", "response": "c", "reward": 0.0, "step": 4},
    ]
    path = tmp_path / "train" / "data.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(json.dumps(line) for line in lines))
    rollouts = rl_logging_board.read(path, AdapterOptions())
    groups = rollouts.trajectories.groupby(["iteration", "group_id"]).size()
    assert groups.tolist() == [2, 1]
    assert rollouts.trajectories["split"].tolist() == ["train"] * 3
    assert json.loads(rollouts.trajectories["meta"].iloc[0])["values"] == [0.1, 0.2]
    assert rollouts.steps.loc[rollouts.steps["traj_id"] == "data/1", "action"].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ('{"prompt": "p", "response": "r", "reward": Infinity, "step": 0}', "reward", "finite"),
        ('{"prompt": "p", "response": "r", "reward": 1, "step": 1.5}', "step", "expected int"),
        ('{"prompt": "p", "response": "r", "step": 1}', "reward", "missing key"),
    ],
)
def test_bad_records_name_line_and_field(tmp_path, line, field, problem):
    path = tmp_path / "data.jsonl"
    path.write_text('{"prompt": "p", "response": "r", "reward": 1, "step": 0}\n' + line + "\n")
    with pytest.raises(IngestError, match=problem) as caught:
        rl_logging_board.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (2, field)


def test_per_token_arrays_are_cut_into_the_split_steps(tmp_path):
    response = "First add.\n\nThen answer 4."
    tokens = ["First", " add", ".", "\n\n", "Then", " answer", " 4", "."]
    record = {
        "prompt": "2+2?",
        "response": response,
        "reward": 1.0,
        "step": 3,
        "response_tokens": tokens,
        "logprobs": [-0.1, -0.2, -0.3, -0.4, -0.5, -0.6, -0.7, -0.8],
        "ref_logprobs": [-1.0] * 8,
        "values": [0.5] * 8,
    }
    folder = tmp_path / "rollout_samples" / "task"
    folder.mkdir(parents=True)
    path = folder / "data.jsonl"
    path.write_text(json.dumps(record) + "\n")
    rollouts = rl_logging_board.read(path, AdapterOptions())
    steps = rollouts.steps
    assert steps["action"].tolist() == ["First add.", "Then answer 4."]
    # the blank line between the steps belongs to the step before it
    assert steps["tokens"].tolist() == [["First", " add", ".", "\n\n"], ["Then", " answer", " 4", "."]]
    assert steps["token_logprobs"].tolist() == [[-0.1, -0.2, -0.3, -0.4], [-0.5, -0.6, -0.7, -0.8]]
    assert steps["token_ref_logprobs"].tolist() == [[-1.0] * 4, [-1.0] * 4]
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert "response_tokens" not in meta and meta["values"] == [0.5] * 8  # no column for critic values


def test_token_texts_that_do_not_spell_the_response_are_not_aligned(tmp_path):
    record = {
        "prompt": "q",
        "response": "a b",
        "reward": 0.0,
        "step": 0,
        "response_tokens": ["<s>", "a", "Ġb"],
        "logprobs": [0.0, -0.1, -0.2],
    }
    folder = tmp_path / "rollout_samples" / "task"
    folder.mkdir(parents=True)
    path = folder / "data.jsonl"
    path.write_text(json.dumps(record) + "\n")
    rollouts = rl_logging_board.read(path, AdapterOptions())
    assert "tokens" not in rollouts.steps.columns
    assert json.loads(rollouts.trajectories["meta"].iloc[0])["response_tokens"] == ["<s>", "a", "Ġb"]


def test_arrays_of_another_length_than_the_tokens_stay_in_meta(tmp_path):
    record = {
        "prompt": "q",
        "response": "a b",
        "reward": 0.0,
        "step": 0,
        "response_tokens": ["a", " b"],
        "logprobs": [-0.1, -0.2, 0.0, 0.0],  # padded to the batch's longest response
        "old_log_probs2_entropy": [0.3, 0.4],
    }
    folder = tmp_path / "rollout_samples" / "task"
    folder.mkdir(parents=True)
    path = folder / "data.jsonl"
    path.write_text(json.dumps(record) + "\n")
    rollouts = rl_logging_board.read(path, AdapterOptions())
    assert "token_logprobs" not in rollouts.steps.columns
    assert json.loads(rollouts.trajectories["meta"].iloc[0])["logprobs"] == [-0.1, -0.2, 0.0, 0.0]
    record["logprobs"] = [-0.1, -0.2]
    path.write_text(json.dumps(record) + "\n")
    steps = rl_logging_board.read(path, AdapterOptions()).steps
    assert steps["token_entropies"].tolist() == [[0.3, 0.4]] and steps["tokens"].tolist() == [["a", " b"]]
