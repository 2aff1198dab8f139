"""tinker-cookbook adapter, on a fixture built from the documented layout (no public real log exists)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import tinker

RUN = Path(__file__).parent.parent / "fixtures" / "tinker" / "run"
TRAIN0 = RUN / "iteration_000000" / "train_rollout_summaries.jsonl"
TRAIN1 = RUN / "iteration_000001" / "train_rollout_summaries.jsonl"
EVAL0 = RUN / "iteration_000000" / "eval_test_rollout_summaries.jsonl"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_folder_plan_detects_summaries_and_skips_the_logtree_companion() -> None:
    plan = registry.plan_sources([str(RUN)])
    assert [path.name for path, _ in plan] == [
        "eval_test_rollout_summaries.jsonl",
        "train_rollout_summaries.jsonl",
        "train_rollout_summaries.jsonl",
    ]
    assert all(module is tinker for _, module in plan)


@pytest.mark.parametrize("path", [TRAIN0, TRAIN1, EVAL0], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_counts_and_outcomes_match_the_records(path: Path) -> None:
    records = _records(path)
    rollouts = tinker.read(path, AdapterOptions())
    assert len(rollouts.trajectories) == len(records)
    assert len(rollouts.steps) == sum(len(r["steps"]) for r in records)
    by_id = rollouts.trajectories.set_index("traj_id")
    for record in records:
        base = path.name.removesuffix("_rollout_summaries.jsonl")
        row = by_id.loc[f"{base}/it{record['iteration']}/g{record['group_idx']}/t{record['traj_idx']}"]
        assert row["outcome"] == record["total_reward"]
        assert row["group_id"] == f"{base}/g{record['group_idx']}"
        meta = json.loads(row["meta"])
        assert meta["reward_components"]["final_reward"] == record["final_reward"]
        assert meta["tags"] == record["tags"]  # unmapped fields kept
    step_rewards = [s["reward"] for r in records for s in r["steps"]]
    assert rollouts.steps["reward"].tolist() == step_rewards
    assert rollouts.default_run == "run"


def test_splits_follow_the_record_split() -> None:
    assert set(tinker.read(TRAIN0, AdapterOptions()).trajectories["split"]) == {"train"}
    assert set(tinker.read(EVAL0, AdapterOptions()).trajectories["split"]) == {"val"}


def test_logtree_text_is_matched_by_reward_not_by_log_order() -> None:
    rollouts = tinker.read(TRAIN0, AdapterOptions())
    steps = rollouts.steps.set_index("traj_id")
    # The logtree lists group 0's trajectories in the order 2, 0, 1; rewards 1.0/0.0/0.5 tell them apart.
    assert steps.loc["train/it0/g0/t0", "action"] == "36"
    assert steps.loc["train/it0/g0/t1", "action"] == "35"
    assert steps.loc["train/it0/g0/t2", "action"] == "thirty-six?"
    assert steps.loc["train/it0/g0/t0", "state"] == "user: What is 12 * 3?"
    # Group 1 was not logged: no text, the lengths remain in extra.
    assert steps.loc["train/it0/g1/t0", "action"] == ""
    assert steps.loc["train/it0/g1/t0", "state"] is None
    assert json.loads(steps.loc["train/it0/g1/t0", "extra"])["ac_len"] == 12


def test_bad_inputs_name_line_and_field(tmp_path: Path) -> None:
    records = _records(TRAIN0)
    path = tmp_path / "train_rollout_summaries.jsonl"
    broken = [dict(r) for r in records]
    broken[2] = {**broken[2], "steps": [{**broken[2]["steps"][0], "reward": float("nan")}]}
    path.write_text("".join(json.dumps(r) + "\n" for r in broken))
    with pytest.raises(IngestError) as caught:
        tinker.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (3, "steps[0].reward")

    missing = [dict(r) for r in records]
    del missing[1]["group_idx"]
    path.write_text("".join(json.dumps(r) + "\n" for r in missing))
    with pytest.raises(IngestError) as caught:
        tinker.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (2, "group_idx")


def test_partial_last_line_only_with_allow_partial_tail(tmp_path: Path) -> None:
    path = tmp_path / "train_rollout_summaries.jsonl"
    path.write_text(TRAIN0.read_text() + '{"schema_version": 1, "split": "tr')
    with pytest.raises(IngestError) as caught:
        tinker.read(path, AdapterOptions())
    assert caught.value.record == 7
    rollouts = tinker.read(path, AdapterOptions(extra={"allow_partial_tail": True}))
    assert len(rollouts.trajectories) == 6
    assert len(rollouts.skipped) == 1 and ":7:" in rollouts.skipped[0]
