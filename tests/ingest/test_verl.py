import json
from collections import Counter
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import STEP_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS, AdapterOptions
from core.ingest.formats import verl
from core.ingest.split import split_steps

REAL = Path(__file__).parents[1] / "fixtures" / "verl" / "2.jsonl"


@pytest.fixture(scope="module")
def real():
    records = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    return records, verl.read(REAL, AdapterOptions())


def _write(folder: Path, name: str, records: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_real_dump_is_detected_as_verl():
    assert registry.detect(REAL) is verl


def test_real_dump_has_one_trajectory_per_line_in_42_groups_of_16(real):
    records, rollouts = real
    # 672 lines = 42 prompts x 16 rollouts (SOURCES.md); groups are identical inputs
    assert len(records) == 672
    assert list(rollouts.trajectories.columns) == list(TRAJ_FRAME_COLUMNS)
    assert list(rollouts.steps.columns) == list(STEP_FRAME_COLUMNS)
    assert len(rollouts.trajectories) == 672
    assert rollouts.trajectories["traj_id"].is_unique
    group_sizes = rollouts.trajectories.groupby("group_id").size()
    assert sorted(group_sizes) == sorted(Counter(r["input"] for r in records).values()) == [16] * 42
    assert set(rollouts.trajectories["iteration"]) == {2}
    assert set(rollouts.trajectories["split"]) == {"train"}


def test_real_dump_steps_follow_tool_turns(real):
    records, rollouts = real
    # each environment turn hands control back with an "assistant" role line, so an output with k such
    # lines has k + 1 assistant turns. One rule per group: in a group where any output has a turn, every
    # output is cut into turns (none: one step); groups without any are split into paragraphs instead.
    role_lines = [record["output"].split("\n").count("assistant") for record in records]
    group_has_turns: dict[str, bool] = {}
    for record, lines in zip(records, role_lines, strict=True):
        group_has_turns[record["input"]] = group_has_turns.get(record["input"], False) or lines > 0
    expected = [
        lines + 1 if group_has_turns[record["input"]] else len(split_steps(record["output"]))
        for record, lines in zip(records, role_lines, strict=True)
    ]
    assert sum(group_has_turns.values()) == 42  # every prompt's group has tool-using rollouts
    rules = rollouts.trajectories["meta"].map(lambda meta: json.loads(meta)["step_split"])
    assert (rules.groupby(rollouts.trajectories["group_id"]).nunique() == 1).all()  # one rule per group
    per_traj = rollouts.steps.groupby("traj_id", sort=False).size()
    assert [per_traj[f"train/2/{line}"] for line in range(1, 673)] == expected
    assert len(rollouts.steps) == sum(expected)
    first = rollouts.steps[rollouts.steps["traj_id"] == "train/2/1"]
    assert first["state"].iloc[0] == records[0]["input"]
    assert first["action"].iloc[0].startswith("<tool_call>")
    assert first["state"].iloc[1].startswith("user: <tool_response>")
    assert "</tool_response>" not in "".join(first["action"])


def test_real_dump_outcome_and_kept_fields(real):
    records, rollouts = real
    assert rollouts.trajectories["outcome"].tolist() == [r["score"] for r in records]
    meta = json.loads(rollouts.trajectories["meta"].iloc[5])
    assert meta["request_id"] == records[5]["request_id"]
    assert rollouts.steps["reward"].isna().all()
    assert rollouts.steps["outcome"].dtype == "float64" and rollouts.steps["iteration"].dtype == "int64"


def test_single_turn_split_and_prefix_states(tmp_path):
    record = {"input": "user\nQ?\nassistant\n", "output": "Step 1: a\nStep 2: b", "score": 1, "acc": True}
    rollouts = verl.read(_write(tmp_path, "5.jsonl", [record]), AdapterOptions())
    assert rollouts.steps["action"].tolist() == ["Step 1: a", "Step 2: b"]
    assert rollouts.steps["state"].tolist() == ["user\nQ?\nassistant\n", "user\nQ?\nassistant\nStep 1: a"]
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta == {"acc": True, "step_split": "step_k"}
    assert rollouts.trajectories["iteration"].iloc[0] == 5  # from the file name when no step key


def test_validation_split_from_folder_or_reward_key(tmp_path):
    record = {"input": "q", "output": "a", "score": 0.0, "step": 0}
    val_folder = verl.read(_write(tmp_path / "validation_data_dir", "0.jsonl", [record]), AdapterOptions())
    assert val_folder.trajectories["split"].tolist() == ["val"]
    assert val_folder.trajectories["traj_id"].tolist() == ["val/0/1"]
    with_reward = verl.read(_write(tmp_path / "dump", "0.jsonl", [{**record, "reward": 0.0}]), AdapterOptions())
    assert with_reward.trajectories["split"].tolist() == ["val"]
    forced = verl.read(_write(tmp_path / "dump2", "0.jsonl", [record]), AdapterOptions(split="val"))
    assert forced.trajectories["split"].tolist() == ["val"]


@pytest.mark.parametrize(
    ("lines", "record", "field", "problem"),
    [
        (
            ['{"input": "q", "output": "a", "score": 1}', '{"input": "q", "output": "a", "score": NaN}'],
            2,
            "score",
            "finite",
        ),
        (['{"input": "q", "output": "a", "score": 1}', '{"input": "q", "score": 1}'], 2, "output", "missing key"),
        (['{"input": "q", "output": 3, "score": 1}'], 1, "output", "expected str"),
        (['{"input": "q", "output": "a", "score": "high"}'], 1, "score", "expected a number"),
        (['{"input": "q", "output": "a", "score": 1, "step": "x"}'], 1, "step", "expected an integer"),
        (['{"input": "q", "output": "a", "score": 1}', '{"input": "q", "outp'], 2, None, "invalid JSON"),
        (["[1, 2]"], 1, None, "expected a JSON object"),
    ],
)
def test_bad_input_names_line_and_field(tmp_path, lines, record, field, problem):
    path = _write(tmp_path, "3.jsonl", lines)
    with pytest.raises(IngestError, match=problem) as caught:
        verl.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (record, field)


def test_partial_tail_is_skipped_only_when_allowed(tmp_path):
    path = _write(tmp_path, "3.jsonl", ['{"input": "q", "output": "a", "score": 1}', '{"input": "q", "out'])
    rollouts = verl.read(path, AdapterOptions(extra={"allow_partial_tail": True}))
    assert len(rollouts.trajectories) == 1
    assert rollouts.skipped and ":2:" in rollouts.skipped[0]
    middle = _write(tmp_path, "4.jsonl", ['{"input": "q", "out', '{"input": "q", "output": "a", "score": 1}'])
    with pytest.raises(IngestError) as caught:
        verl.read(middle, AdapterOptions(extra={"allow_partial_tail": True}))
    assert caught.value.record == 1


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "1.jsonl"
    path.write_bytes(b'{"input": "q", "output": "a", "score": 1}\n{"input": "\xff", "output": "a", "score": 1}\n')
    with pytest.raises(IngestError, match="UTF-8") as caught:
        verl.read(path, AdapterOptions())
    assert caught.value.record == 2


def test_detect_declines_other_jsonl(tmp_path):
    other = _write(tmp_path, "x.jsonl", [{"prompt": "q", "response": "a", "reward": 1.0}])
    assert "lacks keys input/output/score" in verl.detect(other, other.read_bytes())


def test_one_step_rule_per_group_even_when_rollouts_differ(tmp_path):
    prompt = "user\nAdd 2 and 3.\nassistant\n"
    tool_using = "<tool_call>add(2, 3)</tool_call>\nuser\n<tool_response>5</tool_response>\nassistant\nIt is 5."
    plain = "First I think.\n\nThen I answer 5."
    other_prompt = "user\nSay hi.\nassistant\n"
    rows = [
        {"input": prompt, "output": tool_using, "score": 1},
        {"input": prompt, "output": plain, "score": 1},
        {"input": other_prompt, "output": "Step 1: wave\n\nmore\nStep 2: say hi", "score": 1},
        {"input": other_prompt, "output": "hi\n\nthere", "score": 0},
    ]
    path = _write(tmp_path, "7.jsonl", rows)
    rollouts = verl.read(path, AdapterOptions())
    steps = rollouts.steps.groupby("traj_id", sort=False)["action"].apply(list)
    # the plain rollout is one assistant turn like the tool-using one's turns, not two paragraphs
    assert steps["train/7/1"] == ["<tool_call>add(2, 3)</tool_call>", "It is 5."]
    assert steps["train/7/2"] == [plain]
    # the group without tools resolves `auto` once: Step k markers in one output decide for both
    assert steps["train/7/3"] == ["Step 1: wave\n\nmore", "Step 2: say hi"]
    assert steps["train/7/4"] == ["hi\n\nthere"]
    splits = [json.loads(meta)["step_split"] for meta in rollouts.trajectories["meta"]]
    assert splits == ["turns", "turns", "step_k", "step_k"]
