import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import STEP_FRAME_COLUMNS, AdapterOptions
from core.ingest.formats import math_shepherd

FIXTURE = Path(__file__).parent.parent / "fixtures" / "math_shepherd" / "samples_math-shepherd.jsonl"
TAG = "\u043a\u0438"  # the Cyrillic "ки" step tag


def _records() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(tmp_path: Path, records: list[dict]) -> Path:
    source = tmp_path / "shepherd.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return source


@pytest.fixture(scope="module")
def rollouts():
    return math_shepherd.read(FIXTURE, AdapterOptions())


def test_auto_detection_picks_math_shepherd():
    assert registry.detect(FIXTURE) is math_shepherd


def test_one_step_per_tag_and_one_trajectory_per_line(rollouts):
    records = _records()
    assert len(rollouts.trajectories) == len(records) == 7
    assert tuple(rollouts.steps.columns) == STEP_FRAME_COLUMNS
    sizes = rollouts.steps.groupby("traj_id", sort=False).size().tolist()
    assert sizes == [r["input"].count(TAG) for r in records]


def test_labels_follow_plus_minus_in_label_text(rollouts):
    for line_no, record in enumerate(_records(), start=1):
        # the label text holds one "+"/"-" right where each step line ends
        marks = [piece.rstrip()[-1] for piece in record["label"].split("\n") if piece.strip()]
        expected = [1.0 if mark == "+" else 0.0 for mark in marks]
        got = rollouts.steps[rollouts.steps.traj_id == f"samples_math-shepherd:{line_no}"]["label"].tolist()
        assert got == expected


def test_question_becomes_prompt_and_steps_drop_the_tag(rollouts):
    record = _records()[0]
    question = record["input"].split(" Step 1:")[0]
    traj = rollouts.trajectories.iloc[0]
    assert traj["prompt"] == question
    steps = rollouts.steps[rollouts.steps.traj_id == traj["traj_id"]]
    assert steps.iloc[0]["action"].startswith("Step 1:") and TAG not in "".join(steps["action"])
    assert steps.iloc[0]["state"] == question
    assert steps.iloc[1]["state"] == question + "\n" + steps.iloc[0]["action"]
    assert json.loads(traj["meta"]) == {"task": "GSM8K"}


def test_outcome_is_the_last_step_label(rollouts, tmp_path):
    assert (rollouts.trajectories["outcome"] == 0.0).all()  # every sample line ends with "-"
    good = {
        "input": f"What is 2+3? Step 1: 2+3=5. The answer is: 5 {TAG}",
        "label": "What is 2+3? Step 1: 2+3=5. The answer is: 5 +",
    }
    result = math_shepherd.read(_write(tmp_path, [good]), AdapterOptions())
    assert result.trajectories["outcome"].tolist() == [1.0]
    assert result.steps["label"].tolist() == [1.0]


def test_same_question_shares_group(tmp_path):
    record = _records()[0]
    result = math_shepherd.read(_write(tmp_path, [record, _records()[1], record]), AdapterOptions())
    groups = result.trajectories["group_id"].tolist()
    assert groups[0] == groups[2] != groups[1]


def test_label_text_that_does_not_mirror_input_is_rejected(tmp_path):
    record = _records()[0]
    broken = dict(record, label=record["label"].replace("Step 3: She", "Step 3: He"))
    with pytest.raises(IngestError) as info:
        math_shepherd.read(_write(tmp_path, [record, broken]), AdapterOptions())
    assert (info.value.record, info.value.field) == (2, "label")
    assert "step tag 3" in info.value.problem

    wrong_mark = dict(record, label=record["label"].replace("lessons. +", "lessons. ?", 1))
    with pytest.raises(IngestError) as info:
        math_shepherd.read(_write(tmp_path, [wrong_mark]), AdapterOptions())
    assert "got '?'" in info.value.problem


def test_missing_keys_and_wrong_types(tmp_path):
    with pytest.raises(IngestError) as info:
        math_shepherd.read(_write(tmp_path, [{"input": f"q Step 1: a {TAG}"}]), AdapterOptions())
    assert (info.value.record, info.value.field) == (1, "label")
    with pytest.raises(IngestError) as info:
        math_shepherd.read(_write(tmp_path, [{"input": 3, "label": "x"}]), AdapterOptions())
    assert info.value.field == "input" and "expected str" in info.value.problem
    with pytest.raises(IngestError) as info:
        math_shepherd.read(_write(tmp_path, [{"input": "no tag", "label": "no tag"}]), AdapterOptions())
    assert info.value.field == "input"


def test_detect_reasons():
    assert math_shepherd.detect(Path("a.jsonl"), b'{"input": "no tag", "label": "x"}\n') is not None
    assert math_shepherd.detect(Path("a.jsonl"), b'{"prompt": "x"}\n').startswith("first record lacks")
