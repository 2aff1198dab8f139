import json
import math
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import STEP_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS, AdapterOptions
from core.ingest.formats import prm800k

FIXTURE = Path(__file__).parent.parent / "fixtures" / "prm800k" / "samples_prm800k.jsonl"


def _lines() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _expected_step_count(record: dict) -> int:
    # A label step yields a row when a completion was chosen or a human wrote one; a final step without
    # either yields the erroneous completion only when labelling stopped because an error was found.
    steps = record["label"]["steps"]
    count = sum(1 for s in steps if s["chosen_completion"] is not None or s["human_completion"] is not None)
    last = steps[-1]
    if last["chosen_completion"] is None and last["human_completion"] is None:
        if record["label"]["finish_reason"] == "found_error":
            count += 1
    return count


@pytest.fixture(scope="module")
def rollouts():
    return prm800k.read(FIXTURE, AdapterOptions())


def test_auto_detection_picks_prm800k():
    assert registry.detect(FIXTURE) is prm800k


def test_frames_have_the_contract_columns(rollouts):
    assert tuple(rollouts.steps.columns) == STEP_FRAME_COLUMNS
    assert tuple(rollouts.trajectories.columns) == TRAJ_FRAME_COLUMNS
    assert rollouts.steps["iteration"].dtype == "int64"
    assert rollouts.steps["label"].dtype == "float64"


def test_one_trajectory_per_line_with_independently_counted_steps(rollouts):
    records = _lines()
    assert len(rollouts.trajectories) == len(records) == 6
    sizes = rollouts.steps.groupby("traj_id", sort=False).size()
    for line_no, record in enumerate(records, start=1):
        assert sizes[f"samples_prm800k:{line_no}"] == _expected_step_count(record)


def test_found_error_trajectory_ends_at_the_error(rollouts):
    record = _lines()[1]
    assert record["label"]["finish_reason"] == "found_error"
    steps = rollouts.steps[rollouts.steps.traj_id == "samples_prm800k:2"]
    last = steps.iloc[-1]
    assert last["label"] == 0.0
    extra = json.loads(last["extra"])
    assert extra["source"] == "found_error" and extra["rating"] == -1
    assert last["action"] == record["label"]["steps"][-1]["completions"][0]["text"]
    traj = rollouts.trajectories.set_index("traj_id").loc["samples_prm800k:2"]
    assert traj["outcome"] == 0.0


def test_neutral_rating_maps_to_good_and_raw_rating_is_kept(rollouts):
    record = _lines()[1]
    assert record["label"]["steps"][1]["completions"][0]["rating"] == 0
    step = rollouts.steps[rollouts.steps.traj_id == "samples_prm800k:2"].iloc[1]
    assert step["label"] == 1.0
    assert json.loads(step["extra"])["rating"] == 0


def test_human_completion_is_a_step_with_unknown_label_and_alternatives_kept(rollouts):
    raw_step = _lines()[0]["label"]["steps"][1]
    step = rollouts.steps[rollouts.steps.traj_id == "samples_prm800k:1"].iloc[1]
    assert step["action"] == raw_step["human_completion"]["text"]
    assert math.isnan(step["label"])
    extra = json.loads(step["extra"])
    assert extra["source"] == "human"
    assert [c["text"] for c in extra["alternatives"]] == [c["text"] for c in raw_step["completions"]]


def test_state_is_problem_plus_previous_steps(rollouts):
    record = _lines()[0]
    steps = rollouts.steps[rollouts.steps.traj_id == "samples_prm800k:1"]
    first_text = record["label"]["steps"][0]["completions"][0]["text"]
    assert steps.iloc[0]["state"] == record["question"]["problem"]
    assert steps.iloc[1]["state"] == record["question"]["problem"] + "\n" + first_text


def test_outcome_from_answer_match_and_meta_keeps_every_other_field(rollouts):
    trajs = rollouts.trajectories.set_index("traj_id")
    meta = json.loads(trajs.loc["samples_prm800k:1", "meta"])
    assert meta["outcome_source"] == "answer_match" and meta["final_answer"] == "29"
    assert trajs.loc["samples_prm800k:1", "outcome"] == 1.0
    assert meta["labeler"] == _lines()[0]["labeler"]
    assert meta["question"]["ground_truth_answer"] == "29"
    assert meta["finish_reason"] == "solution" and "total_time" in meta
    give_up = json.loads(trajs.loc["samples_prm800k:5", "meta"])
    assert give_up["finish_reason"] == "give_up"
    assert "unchosen_final_step" in give_up and trajs.loc["samples_prm800k:5", "outcome"] == 0.0


def test_same_problem_shares_a_group(tmp_path):
    line = FIXTURE.read_text(encoding="utf-8").splitlines()[0]
    other = FIXTURE.read_text(encoding="utf-8").splitlines()[2]
    source = tmp_path / "dup.jsonl"
    source.write_text("\n".join([line, other, line]) + "\n", encoding="utf-8")
    trajs = prm800k.read(source, AdapterOptions()).trajectories
    assert trajs.group_id.iloc[0] == trajs.group_id.iloc[2] != trajs.group_id.iloc[1]
    assert trajs.traj_id.is_unique


def _write_modified(tmp_path: Path, change) -> Path:
    records = _lines()[:2]
    change(records[1])
    source = tmp_path / "bad.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return source


def test_bad_rating_is_reported_with_line_and_field(tmp_path):
    def change(record):
        record["label"]["steps"][3]["completions"][0]["rating"] = 2

    with pytest.raises(IngestError) as info:
        prm800k.read(_write_modified(tmp_path, change), AdapterOptions())
    assert info.value.record == 2
    assert info.value.field == "label.steps[3].completions[0].rating"


def test_missing_problem_and_bad_chosen_index(tmp_path):
    with pytest.raises(IngestError) as info:
        prm800k.read(_write_modified(tmp_path, lambda r: r["question"].pop("problem")), AdapterOptions())
    assert (info.value.record, info.value.field) == (2, "question.problem")

    def change(record):
        record["label"]["steps"][0]["chosen_completion"] = 9

    with pytest.raises(IngestError) as info:
        prm800k.read(_write_modified(tmp_path, change), AdapterOptions())
    assert (info.value.record, info.value.field) == (2, "label.steps[0].chosen_completion")


def test_truncated_tail_errors_unless_allowed(tmp_path):
    text = FIXTURE.read_text(encoding="utf-8")
    source = tmp_path / "partial.jsonl"
    source.write_text(text + text.splitlines()[0][:100], encoding="utf-8")
    with pytest.raises(IngestError) as info:
        prm800k.read(source, AdapterOptions())
    assert info.value.record == 7
    allowed = prm800k.read(source, AdapterOptions(extra={"allow_partial_tail": True}))
    assert len(allowed.trajectories) == 6
    assert len(allowed.skipped) == 1 and ":7:" in allowed.skipped[0]


def test_non_utf8_bytes_name_the_line(tmp_path):
    lines = FIXTURE.read_bytes().split(b"\n")
    lines[2] = lines[2][:50] + b"\xff" + lines[2][50:]
    source = tmp_path / "latin.jsonl"
    source.write_bytes(b"\n".join(lines))
    with pytest.raises(IngestError) as info:
        prm800k.read(source, AdapterOptions())
    assert info.value.record == 3


def test_detect_declines_other_jsonl():
    assert prm800k.detect(Path("x.jsonl"), b'{"input": "a", "label": "b"}\n') is not None
