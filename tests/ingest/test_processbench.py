import json
import math
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import STEP_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS, AdapterOptions
from core.ingest.formats import processbench

FIXTURE = Path(__file__).parent.parent / "fixtures" / "processbench" / "gsm8k_sample.json"


def _records() -> list[dict]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def _write_jsonl(tmp_path: Path, records: list[dict]) -> Path:
    source = tmp_path / "pb.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return source


@pytest.fixture(scope="module")
def rollouts():
    return processbench.read(FIXTURE, AdapterOptions())


def test_auto_detection_for_array_and_jsonl(tmp_path):
    assert registry.detect(FIXTURE) is processbench
    assert registry.detect(_write_jsonl(tmp_path, _records())) is processbench


def test_counts_match_the_records(rollouts):
    records = _records()
    assert tuple(rollouts.steps.columns) == STEP_FRAME_COLUMNS
    assert tuple(rollouts.trajectories.columns) == TRAJ_FRAME_COLUMNS
    assert rollouts.trajectories["traj_id"].tolist() == [r["id"] for r in records]
    assert len(rollouts.steps) == sum(len(r["steps"]) for r in records)


def test_labels_good_before_first_error_bad_at_it_unknown_after(rollouts):
    for record in _records():
        labels = rollouts.steps[rollouts.steps.traj_id == record["id"]]["label"].tolist()
        first_error = record["label"]
        for index, label in enumerate(labels):
            if first_error == -1 or index < first_error:
                assert label == 1.0
            elif index == first_error:
                assert label == 0.0
            else:
                assert math.isnan(label)


def test_outcome_groups_and_meta(rollouts):
    trajs = rollouts.trajectories.set_index("traj_id")
    records = {r["id"]: r for r in _records()}
    for traj_id, record in records.items():
        assert trajs.loc[traj_id, "outcome"] == (1.0 if record["final_answer_correct"] else 0.0)
        meta = json.loads(trajs.loc[traj_id, "meta"])
        assert meta["generator"] == record["generator"] and meta["label"] == record["label"]
    # the right final answer after a wrong step keeps both facts
    assert trajs.loc["gsm8k-4", "outcome"] == 1.0
    assert 0.0 in rollouts.steps[rollouts.steps.traj_id == "gsm8k-4"]["label"].tolist()
    assert trajs.loc["gsm8k-0", "group_id"] == trajs.loc["gsm8k-1", "group_id"] != trajs.loc["gsm8k-2", "group_id"]


def test_jsonl_reads_the_same_as_the_array(rollouts, tmp_path):
    again = processbench.read(_write_jsonl(tmp_path, _records()), AdapterOptions())
    assert again.steps.drop(columns="extra").equals(rollouts.steps.drop(columns="extra"))


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda r: r.update(label=4), "label", "below 4"),
        (lambda r: r.update(label=True), "label", "True"),
        (lambda r: r.update(steps=[]), "steps", "no steps"),
        (lambda r: r["steps"].__setitem__(2, 7), "steps[2]", "expected str"),
        (lambda r: r.update(final_answer_correct="yes"), "final_answer_correct", "expected bool"),
        (lambda r: r.update(id="gsm8k-0"), "id", "appears twice"),
        (lambda r: r.pop("problem"), "problem", "missing"),
    ],
)
def test_bad_records_name_line_and_field(tmp_path, change, field, words):
    records = _records()[:2]
    change(records[1])
    with pytest.raises(IngestError) as info:
        processbench.read(_write_jsonl(tmp_path, records), AdapterOptions())
    assert (info.value.record, info.value.field) == (2, field)
    assert words in info.value.problem


def test_array_errors_use_index_locators(tmp_path):
    records = _records()
    records[3]["label"] = -2
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(IngestError) as info:
        processbench.read(source, AdapterOptions())
    assert (info.value.record, info.value.field) == ("[3]", "label")


def test_truncated_array_points_at_the_end(tmp_path):
    text = FIXTURE.read_text(encoding="utf-8")
    source = tmp_path / "cut.json"
    source.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(IngestError) as info:
        processbench.read(source, AdapterOptions())
    assert info.value.record == text[: len(text) // 2].count("\n") + 1
