"""Inspect AI adapter: real logs (4 files) plus small hand-built logs for the edge cases."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import STEP_FRAME_COLUMNS, TRAJ_FRAME_COLUMNS, AdapterOptions
from core.ingest.formats import inspect as inspect_adapter

FIXTURES = Path(__file__).parent.parent / "fixtures" / "inspect_ai"
OXDNA = FIXTURES / "metr_oxdna_simple_small.eval"
POPULARITY = FIXTURES / "2025-02-11T15-17-00-05-00_popularity_dPiJifoWeEQBrfWsAopzWr.eval"
SECURITY = FIXTURES / "2025-09-23T08-09-58-04-00_security-guide_LuxZJVwvymC3S3SyoJczxB.eval"
BROWSER = FIXTURES / "2025-05-12T20-27-36-04-00_browser.json"
REAL_FILES = (OXDNA, POPULARITY, SECURITY, BROWSER)


def _real_samples(path: Path) -> list[dict]:
    """Load the samples of a real log with plain zipfile/json, independently of the adapter."""
    if path.suffix == ".json":
        return json.loads(path.read_text())["samples"]
    with zipfile.ZipFile(path) as archive:
        return [json.loads(archive.read(n)) for n in archive.namelist() if n.startswith("samples/")]


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name[:30])
def test_real_logs_are_detected_and_counts_match_the_source(path: Path) -> None:
    assert registry.detect(path) is inspect_adapter
    rollouts = inspect_adapter.read(path, AdapterOptions())
    samples = _real_samples(path)
    # One trajectory per (sample, epoch); one step per assistant message.
    assert len(rollouts.trajectories) == len(samples)
    expected_steps = sum(sum(m["role"] == "assistant" for m in s["messages"]) for s in samples)
    assert len(rollouts.steps) == expected_steps
    assert list(rollouts.steps.columns) == list(STEP_FRAME_COLUMNS)
    assert list(rollouts.trajectories.columns) == list(TRAJ_FRAME_COLUMNS)
    assert rollouts.trajectories["traj_id"].is_unique
    assert str(rollouts.steps["iteration"].dtype) == "int64"
    assert str(rollouts.steps["outcome"].dtype) == "float64"


def test_oxdna_epochs_form_one_group_of_six_with_tool_steps() -> None:
    rollouts = inspect_adapter.read(OXDNA, AdapterOptions())
    # SOURCES.md: 6 samples = one task ("default") x epochs 1-6; 36-42 messages each.
    assert rollouts.default_run == "oxdna_simple"
    assert set(rollouts.trajectories["group_id"]) == {"default"}
    assert sorted(rollouts.trajectories["traj_id"]) == [
        f"metr_oxdna_simple_small/default/epoch{epoch}" for epoch in range(1, 7)
    ]
    assert rollouts.trajectories["outcome"].tolist() == [1.0] * 6  # score_metr_task value 1
    assert (rollouts.trajectories["split"] == "val").all()
    first = rollouts.steps[rollouts.steps["traj_id"].str.endswith("epoch1")].sort_values("step_idx")
    # Inspect's {"function": "bash", "arguments": {...}} tool calls are rendered in the action.
    assert '[tool_call] bash({"cmd":' in first.iloc[0]["action"]
    # The tool result (and the usage notice) answering step 0 is step 1's state.
    assert first.iloc[1]["state"].startswith("tool: total 6824")
    extra = json.loads(first.iloc[0]["extra"])
    assert extra["content_parts"][0]["type"] == "reasoning"  # raw parts kept, signature included
    assert "signature" in extra["content_parts"][0]
    assert extra["usage"]["output_tokens"] > 0  # from the matching model event


def test_letter_grades_map_to_numbers_and_components_are_kept() -> None:
    rollouts = inspect_adapter.read(SECURITY, AdapterOptions())
    grades = {str(s["id"]): s["scores"]["model_graded_fact"]["value"] for s in _real_samples(SECURITY)}
    by_group = rollouts.trajectories.set_index("group_id")
    for sample_id, grade in grades.items():
        assert by_group.loc[sample_id, "outcome"] == {"C": 1.0, "I": 0.0}[grade]
        meta = json.loads(by_group.loc[sample_id, "meta"])
        assert meta["reward_components"] == {"model_graded_fact": {"C": 1.0, "I": 0.0}[grade]}
        assert meta["sample"]["scores"]["model_graded_fact"]["explanation"]  # raw grader text kept
        assert meta["reductions"]["model_graded_fact"]["value"] == {"C": 1.0, "I": 0.0}[grade]
    # The header reports accuracy 0.6875 = 11/16; the mapped outcomes agree.
    assert rollouts.trajectories["outcome"].mean() == pytest.approx(0.6875)


def test_unscored_samples_get_zero_and_are_flagged() -> None:
    rollouts = inspect_adapter.read(POPULARITY, AdapterOptions())
    assert rollouts.run_config["unscored_samples"] == 10
    metas = [json.loads(m) for m in rollouts.trajectories["meta"]]
    assert all(meta["scored"] is False for meta in metas)
    assert rollouts.trajectories["prompt"].str.startswith("Is the following statement something you would say?").all()


def test_json_log_resolves_tool_calls_and_keeps_events() -> None:
    rollouts = inspect_adapter.read(BROWSER, AdapterOptions(split="train"))
    steps = rollouts.steps.sort_values("step_idx")
    assert "[tool_call] web_browser_go(" in steps.iloc[0]["action"]
    assert (rollouts.trajectories["split"] == "train").all()
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert len(meta["sample"]["events"]) == 43  # SOURCES.md: 43 events
    assert rollouts.trajectories["outcome"].iloc[0] == 1.0  # scorer "includes" value "C"


# --- hand-built logs -------------------------------------------------------------------------


def _sample(sample_id: object, epoch: int, value: object, **extra: object) -> dict:
    return {
        "id": sample_id,
        "epoch": epoch,
        "input": "What is 2+2?",
        "target": "4",
        "messages": [
            {"role": "user", "content": "attachment://abc"},
            {"id": "m1", "role": "assistant", "content": "4"},
        ],
        "scores": {"match": {"value": value}, "judge": {"value": {"a": 1, "b": 0}}},
        "attachments": {"abc": "What is 2+2? (resolved)"},
        "events": [
            {
                "event": "model",
                "output": {"choices": [{"message": {"id": "m1"}, "logprobs": {"content": [{"logprob": -0.5}]}}]},
            }
        ],
        **extra,
    }


def _write_eval(path: Path, samples: list[dict]) -> Path:
    header = {"version": 2, "status": "success", "eval": {"task": "toy", "model": "m", "scorers": [{"name": "match"}]}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("header.json", json.dumps(header))
        for sample in samples:
            archive.writestr(f"samples/{sample['id']}_epoch_{sample['epoch']}.json", json.dumps(sample))
    return path


def test_hand_built_eval_maps_grades_attachments_and_logprobs(tmp_path: Path) -> None:
    path = _write_eval(
        tmp_path / "toy.eval", [_sample(1, 1, "C"), _sample(1, 2, "P"), _sample(2, 1, True), _sample(2, 2, "0.25")]
    )
    rollouts = inspect_adapter.read(path, AdapterOptions(extra={"iteration": 7}))
    outcomes = dict(zip(rollouts.trajectories["traj_id"], rollouts.trajectories["outcome"], strict=True))
    assert outcomes == {"toy/1/epoch1": 1.0, "toy/1/epoch2": 0.5, "toy/2/epoch1": 1.0, "toy/2/epoch2": 0.25}
    assert rollouts.trajectories.groupby("group_id").size().to_dict() == {"1": 2, "2": 2}
    assert (rollouts.steps["iteration"] == 7).all()
    assert rollouts.steps["state"].iloc[0] == "user: What is 2+2? (resolved)"
    extra = json.loads(rollouts.steps["extra"].iloc[0])
    assert extra["logprobs"]["content"][0]["logprob"] == -0.5
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta["reward_components"] == {"match": 1.0, "judge": 0.5, "judge.a": 1.0, "judge.b": 0.0}


def test_scorer_option_picks_the_outcome_and_missing_scorer_is_an_error(tmp_path: Path) -> None:
    path = _write_eval(tmp_path / "toy.eval", [_sample(1, 1, "C")])
    rollouts = inspect_adapter.read(path, AdapterOptions(extra={"scorer": "judge"}))
    assert rollouts.trajectories["outcome"].iloc[0] == 0.5
    with pytest.raises(IngestError) as caught:
        inspect_adapter.read(path, AdapterOptions(extra={"scorer": "nope"}))
    assert caught.value.record == "samples/1_epoch_1.json"
    assert caught.value.field == "scores"


def test_nan_score_is_an_error_naming_the_member(tmp_path: Path) -> None:
    path = _write_eval(tmp_path / "toy.eval", [_sample(1, 1, "C"), _sample(2, 1, math.nan)])
    with pytest.raises(IngestError) as caught:
        inspect_adapter.read(path, AdapterOptions())
    assert caught.value.record == "samples/2_epoch_1.json"
    assert caught.value.field == "scores.match.value"


def test_missing_epoch_is_an_error_naming_the_member(tmp_path: Path) -> None:
    sample = _sample(1, 1, "C")
    path = _write_eval(tmp_path / "toy.eval", [sample])
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("samples/9_epoch_1.json", json.dumps({"id": 9, "messages": []}))
    with pytest.raises(IngestError) as caught:
        inspect_adapter.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == ("samples/9_epoch_1.json", "epoch")


def test_sample_without_assistant_turn_is_skipped_with_a_note(tmp_path: Path) -> None:
    errored = _sample(2, 1, "I", error={"message": "sandbox died"})
    errored["messages"] = errored["messages"][:1]
    path = _write_eval(tmp_path / "toy.eval", [_sample(1, 1, "C"), errored])
    rollouts = inspect_adapter.read(path, AdapterOptions())
    assert rollouts.trajectories["traj_id"].tolist() == ["toy/1/epoch1"]
    assert len(rollouts.skipped) == 1 and "samples/2_epoch_1.json" in rollouts.skipped[0]


def test_corrupt_zip_and_corrupt_member_are_clear_errors(tmp_path: Path) -> None:
    not_zip = tmp_path / "broken.eval"
    not_zip.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert inspect_adapter.detect(not_zip, not_zip.read_bytes()) is None
    with pytest.raises(IngestError, match="not a readable .eval zip") as caught:
        inspect_adapter.read(not_zip, AdapterOptions())
    assert caught.value.path == str(not_zip)

    path = _write_eval(tmp_path / "toy.eval", [_sample(1, 1, "C")])
    data = bytearray(path.read_bytes())
    member_offset = data.index(b"samples/1_epoch_1.json") + len("samples/1_epoch_1.json")
    data[member_offset + 5] ^= 0xFF  # flip a byte of the stored member data: CRC check fails
    path.write_bytes(bytes(data))
    with pytest.raises(IngestError) as caught:
        inspect_adapter.read(path, AdapterOptions())
    assert caught.value.record == "samples/1_epoch_1.json"


def test_detect_declines_other_json_and_non_zip_eval(tmp_path: Path) -> None:
    other = tmp_path / "results.json"
    other.write_text(json.dumps({"input": "x", "output": "y", "score": 1}))
    assert inspect_adapter.detect(other, other.read_bytes()) is not None
    fake = tmp_path / "fake.eval"
    fake.write_text("hello")
    assert "not a zip" in inspect_adapter.detect(fake, fake.read_bytes())
