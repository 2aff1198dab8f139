"""Line-oriented adapters read JSONL, pretty-printed JSON values one after another, and JSON arrays (issue 11.14),
and detection reads a whole first record even past the usual 64 KiB head (issue 11.7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import native

FIXTURES = Path(__file__).parent.parent / "fixtures"

# (format, fixture folder to copy, the record file inside it)
LINE_ORIENTED = [
    ("verl", "verl", "2.jsonl"),
    ("verl_agent", "verl_agent", "4.jsonl"),
    ("rl_logging_board", "rl_logging_board", "eval_poem_task_data.jsonl"),
    ("verifiers", "verifiers", "wordle--gpt-5-mini--019a631c.results.jsonl"),
    ("prime_rl", "prime_rl", "rollouts/step_3/train/all/traces.jsonl"),
    ("openai_messages", "openai_messages", "rollouts.jsonl"),
    ("tinker", "tinker", "run/iteration_000000/train_rollout_summaries.jsonl"),
    ("skyrl", "skyrl", "export/dumped_evals/global_step_10_evals/openai_gsm8k.jsonl"),
    ("areal", "areal", "logs/user/gsm8k-grpo/trial0/rollout/3/q17.jsonl"),
    ("roll", "roll", "rlvr/rollout_dump_data.step_7.jsonl"),
    ("prm800k", "prm800k", "samples_prm800k.jsonl"),
    ("math_shepherd", "math_shepherd", "samples_math-shepherd.jsonl"),
    ("omegaprm", "omegaprm", "samples_math-aps.jsonl"),
    ("treerl", "treerl", "output_8_4_2_2.jsonl"),
]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _summary(rollouts) -> tuple:
    """What must not depend on the layout: counts, outcomes, step texts (ids may carry line numbers)."""
    trajectories = rollouts.trajectories
    steps = rollouts.steps
    return (
        len(trajectories),
        sorted(trajectories["outcome"].tolist()),
        sorted(steps["action"].tolist()),
        len(set(trajectories["group_id"])),
    )


@pytest.mark.parametrize(("fmt", "folder", "name"), LINE_ORIENTED, ids=[case[0] for case in LINE_ORIENTED])
@pytest.mark.parametrize("layout", ["pretty", "array"])
def test_every_line_oriented_adapter_reads_pretty_printed_values_and_arrays(tmp_path, fmt, folder, name, layout):
    copy = tmp_path / folder
    shutil.copytree(FIXTURES / folder, copy)
    target = copy / name
    records = _records(target)
    adapter = registry.get(fmt)
    expected = _summary(adapter.read(target, AdapterOptions()))
    if layout == "pretty":
        target.write_text("".join(json.dumps(r, indent=2, ensure_ascii=False) + "\n" for r in records))
    else:
        target.write_text(json.dumps(records, indent=1, ensure_ascii=False))
    assert _summary(adapter.read(target, AdapterOptions())) == expected


PRM800K_RECORD = {
    "labeler": "l1",
    "timestamp": "2022-07-17T16:47:33",
    "generation": 9,
    "is_quality_control_question": False,
    "is_initial_screening_question": False,
    "question": {"problem": "What is 1+1?", "ground_truth_answer": "2"},
    "label": {
        "steps": [
            {"completions": [{"text": "1+1 = 2.", "rating": 1, "flagged": None}], "chosen_completion": 0},
            {"completions": [{"text": "# Answer\n\n2", "rating": 1, "flagged": None}], "chosen_completion": 0},
        ],
        "total_time": 100,
        "finish_reason": "solution",
    },
}


def test_pretty_printed_prm800k_is_auto_detected_like_the_repository_examples(tmp_path):
    second = json.loads(json.dumps(PRM800K_RECORD))
    second["question"]["problem"] = "What is 2+2?"
    path = tmp_path / "prm800k-train-example.json"
    path.write_text(json.dumps(PRM800K_RECORD, indent=4) + "\n" + json.dumps(second, indent=4) + "\n")
    adapter = registry.detect(path)
    assert adapter.NAME == "prm800k"
    rollouts = adapter.read(path, AdapterOptions())
    assert len(rollouts.trajectories) == 2 and len(rollouts.steps) == 4


def test_errors_in_pretty_printed_records_name_the_record_line_and_the_exact_spot(tmp_path):
    good = json.dumps(PRM800K_RECORD, indent=2)
    bad = good.replace('"generation": 9', '"generation": 9,,', 1)
    path = tmp_path / "labels.jsonl"
    path.write_text(good + "\n" + bad + "\n")
    first_line_of_bad = good.count("\n") + 2
    bad_line = first_line_of_bad + bad[: bad.index(",,")].count("\n")
    with pytest.raises(IngestError) as caught:
        registry.get("prm800k").read(path, AdapterOptions())
    assert caught.value.record == first_line_of_bad
    assert f"line {bad_line} column" in caught.value.problem


def test_a_wrong_record_type_names_its_line(tmp_path):
    path = tmp_path / "3.jsonl"
    path.write_text('{"input": "q", "output": "a", "score": 1}\n\n[\n  1\n]\n')
    with pytest.raises(IngestError, match="expected a JSON object per record, got list") as caught:
        registry.get("verl").read(path, AdapterOptions())
    assert caught.value.record == 3


def test_two_records_on_one_line_are_refused_rather_than_given_colliding_ids(tmp_path):
    path = tmp_path / "3.jsonl"
    record = '{"input": "q", "output": "a", "score": 1}'
    path.write_text(record + "\n" + record + record + "\n")
    with pytest.raises(IngestError, match="second JSON record starts on this line") as caught:
        registry.get("verl").read(path, AdapterOptions())
    assert caught.value.record == 2


def test_a_cut_off_pretty_printed_last_record_is_a_partial_tail(tmp_path):
    text = json.dumps(PRM800K_RECORD, indent=2) + "\n" + json.dumps(PRM800K_RECORD, indent=2)[:200]
    path = tmp_path / "labels.jsonl"
    path.write_text(text)
    with pytest.raises(IngestError, match="looks truncated"):
        registry.get("prm800k").read(path, AdapterOptions())
    rollouts = registry.get("prm800k").read(path, AdapterOptions(extra={"allow_partial_tail": True}))
    assert len(rollouts.trajectories) == 1 and "partial last record" in rollouts.skipped[0]


def test_an_unclosed_array_and_data_after_an_array_are_errors(tmp_path):
    record = '{"input": "q", "output": "a", "score": 1}'
    unclosed, trailing = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    unclosed.write_text(f"[\n{record},\n{record}\n")
    (tmp_path / "3.jsonl").write_text(f"[\n{record},\n")
    trailing.write_text(f"[\n{record}\n]\n{record}\n")
    with pytest.raises(IngestError, match="not closed"):
        registry.get("verl").read(unclosed, AdapterOptions())
    with pytest.raises(IngestError, match="not closed"):
        registry.get("verl").read(tmp_path / "3.jsonl", AdapterOptions())
    with pytest.raises(IngestError, match="after the JSON array") as caught:
        registry.get("verl").read(trailing, AdapterOptions())
    assert caught.value.record == 4


def _native_line(trajectory: str, transcript_chars: int) -> str:
    record = {
        "trajectory": trajectory,
        "outcome": 1.0,
        "prompt": "p" * transcript_chars,
        "steps": [{"action": "a" * transcript_chars, "state": "s"}],
    }
    return json.dumps(record)


@pytest.mark.parametrize("chars", [40_000, 300_000, 3_000_000])
def test_native_jsonl_with_a_first_line_longer_than_the_head_is_detected(tmp_path, chars):
    path = tmp_path / "long.jsonl"
    path.write_text(_native_line("t0", chars) + "\n" + _native_line("t1", 10) + "\n")
    assert path.stat().st_size > registry.HEAD_BYTES
    assert registry.detect(path) is native
    assert b"\n" in registry.read_head(path)  # the whole first line, never a cut-off record


def test_detection_reads_on_only_for_a_cut_off_one_line_record(tmp_path):
    pretty = tmp_path / "doc.json"
    pretty.write_text(json.dumps({"version": 2, "samples": ["x" * 100] * 2000}, indent=2))
    assert len(registry.read_head(pretty)) == registry.HEAD_BYTES  # a pretty-printed document is not read on
    text = tmp_path / "notes.txt"
    text.write_text("y" * (registry.HEAD_BYTES * 3))
    assert len(registry.read_head(text)) == registry.HEAD_BYTES
