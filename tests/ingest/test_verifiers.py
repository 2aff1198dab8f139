import json
from collections import Counter
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import verifiers

FIXTURES = Path(__file__).parents[1] / "fixtures" / "verifiers"
WORDLE = FIXTURES / "wordle--gpt-5-mini--019a631c.results.jsonl"
MATH = FIXTURES / "math-python--gpt-4.1-mini--578769a7.results.jsonl"
WIKI = FIXTURES / "wiki-search--gpt-5-mini--78fe3ac3.results.jsonl"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_plan_sources_finds_results_and_skips_metadata_companions():
    plan = registry.plan_sources([str(FIXTURES)])
    assert [(path.name, module.NAME) for path, module in plan] == [
        (MATH.name, "verifiers"),
        (WIKI.name, "verifiers"),
        (WORDLE.name, "verifiers"),
    ]


@pytest.mark.parametrize(("path", "group_key"), [(WORDLE, "example_id"), (MATH, "id"), (WIKI, "id")])
def test_counts_groups_and_steps_match_the_source(path, group_key):
    records = _records(path)
    rollouts = verifiers.read(path, AdapterOptions())
    assert len(rollouts.trajectories) == len(records)
    # group sizes: rollouts per example as counted from the source's own group key
    expected_sizes = sorted(Counter(r[group_key] for r in records).values())
    assert sorted(rollouts.trajectories.groupby("group_id").size()) == expected_sizes
    # one step per assistant message in the completion
    expected_steps = [sum(m["role"] == "assistant" for m in r["completion"]) for r in records]
    assert rollouts.steps.groupby("traj_id", sort=False).size().tolist() == expected_steps
    assert rollouts.trajectories["outcome"].tolist() == [r["reward"] for r in records]
    assert set(rollouts.trajectories["split"]) == {"val"}  # vf-eval results are evaluations


def test_known_totals_from_sources_md():
    # SOURCES.md: wordle 15 rows = 5 examples x 3; wiki-search 50 rows with 149 assistant messages
    wordle = verifiers.read(WORDLE, AdapterOptions())
    assert len(wordle.trajectories) == 15 and wordle.trajectories["group_id"].nunique() == 5
    assert len(verifiers.read(WIKI, AdapterOptions()).steps) == 149


def test_wordle_env_feedback_becomes_next_state_and_components_are_kept():
    records = _records(WORDLE)
    rollouts = verifiers.read(WORDLE, AdapterOptions())
    first = rollouts.steps[rollouts.steps["traj_id"] == f"{WORDLE.stem}/1"]
    assert first["state"].iloc[0].startswith("system: You are a competitive game player.")
    assert first["action"].iloc[0] == records[0]["completion"][0]["content"]
    assert first["state"].iloc[1] == "user: " + records[0]["completion"][1]["content"]
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta["reward_components"] == {
        key: records[0][key]
        for key in (
            "check_answer_reward_func",
            "partial_credit_reward_func",
            "count_turns_reward_func",
            "format_reward_func",
        )
    }
    assert meta["answer"] == "story" and meta["metrics"]["scoring_ms"] == records[0]["scoring_ms"]
    assert rollouts.run_config["verifiers_metadata"]["rollouts_per_example"] == 3


def test_math_python_tool_calls_render_and_stay_structured():
    rollouts = verifiers.read(MATH, AdapterOptions())
    first = rollouts.steps.iloc[0]
    assert first["action"].startswith("[tool_call] python(")
    extra = json.loads(first["extra"])
    assert extra["tool_calls"][0]["function"]["name"] == "python"
    assert rollouts.steps.iloc[1]["state"].startswith("tool: Traceback")
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta["metrics"]["total_tool_calls"] == 2.0
    assert "oai_tools" in meta["info"]


def test_prime_rl_legacy_rollout_with_trajectory_tokens(tmp_path):
    record = {
        "example_id": 7,
        "prompt": [{"role": "user", "content": "2+2?"}],
        "completion": [
            {"role": "assistant", "content": "calc", "tool_calls": [{"id": "a", "name": "calc", "arguments": "{}"}]},
            {"role": "tool", "tool_call_id": "a", "content": "4"},
            {"role": "assistant", "content": "4"},
        ],
        "reward": 1.0,
        "metrics": {"correct": 1.0},
        "is_truncated": False,
        "trajectory": [
            {"prompt": [], "completion": [], "tokens": {"completion_logprobs": [-0.1]}, "advantage": 0.5},
            {"prompt": [], "completion": [], "tokens": {"completion_logprobs": [-0.2]}, "advantage": 0.5},
        ],
    }
    path = tmp_path / "rollouts" / "step_12" / "train_rollouts.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record) + "\n")
    assert registry.detect(path) is verifiers
    rollouts = verifiers.read(path, AdapterOptions())
    assert rollouts.trajectories["iteration"].tolist() == [12]
    assert rollouts.trajectories["split"].tolist() == ["train"]
    assert rollouts.trajectories["group_id"].tolist() == ["train:7"]
    extras = [json.loads(text) for text in rollouts.steps["extra"]]
    # completion log-probs are the token_logprobs column; the scalar per-call advantage stays in extra
    assert rollouts.steps["token_logprobs"].tolist() == [[-0.1], [-0.2]]
    assert [e["trajectory"]["advantage"] for e in extras] == [0.5, 0.5]
    assert all("completion_logprobs" not in e["trajectory"]["tokens"] for e in extras)
    record["trajectory"][1]["tokens"]["completion_logprobs"] = [float("nan")]
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(IngestError, match="finite") as caught:
        verifiers.read(path, AdapterOptions())
    assert caught.value.field == "trajectory[1].tokens.token_logprobs[0]"
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta["reward_components"] == {"correct": 1.0} and meta["is_truncated"] is False


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (lambda r: r.update(reward=float("nan")), "reward", "finite"),
        (lambda r: r["completion"][0].pop("role"), "completion[0].role", "role"),
        (lambda r: r.pop("completion"), "completion", "missing key"),
        (lambda r: r.update(check_answer_reward_func=float("inf")), "check_answer_reward_func", "finite"),
    ],
)
def test_bad_records_name_line_and_field(tmp_path, mutate, field, problem):
    records = _records(WORDLE)[:3]
    mutate(records[2])
    path = tmp_path / "bad.results.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(IngestError, match=problem) as caught:
        verifiers.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (3, field)


def test_broken_companion_metadata_is_reported(tmp_path):
    path = tmp_path / "x.results.jsonl"
    path.write_text(WORDLE.read_text(encoding="utf-8"))
    (tmp_path / "x.metadata.json").write_text("{not json")
    with pytest.raises(IngestError, match="companion metadata") as caught:
        verifiers.read(path, AdapterOptions())
    assert caught.value.path.endswith("x.metadata.json")
