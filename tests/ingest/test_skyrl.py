"""SkyRL adapter, on a fixture built from the documented eval-dump layout (no public real dump exists)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import skyrl

EXPORT = Path(__file__).parent.parent / "fixtures" / "skyrl" / "export"
GSM8K = EXPORT / "dumped_evals" / "global_step_10_evals" / "openai_gsm8k.jsonl"
AIME = EXPORT / "dumped_evals" / "global_step_20_evals" / "aime.jsonl"


def test_folder_plan_skips_aggregated_results() -> None:
    plan = registry.plan_sources([str(EXPORT)])
    assert [(p.name, m) for p, m in plan] == [("openai_gsm8k.jsonl", skyrl), ("aime.jsonl", skyrl)]


def test_counts_groups_and_steps_match_the_lines() -> None:
    lines = [json.loads(line) for line in GSM8K.read_text().splitlines()]
    rollouts = skyrl.read(GSM8K, AdapterOptions())
    assert len(rollouts.trajectories) == len(lines) == 4
    # 2 prompts x 2 samples: identical input_prompt -> one group.
    assert rollouts.trajectories.groupby("group_id").size().tolist() == [2, 2]
    # "Step k:" responses split at markers (2 steps each); the others at blank lines (2 and 3 steps).
    assert rollouts.steps.groupby("traj_id").size().to_dict() == {
        f"global_step_10_evals/openai_gsm8k:{n}": k for n, k in ((1, 2), (2, 2), (3, 2), (4, 3))
    }
    assert (rollouts.steps["iteration"] == 10).all()
    assert rollouts.trajectories["outcome"].tolist() == [line["score"] for line in lines]
    assert (rollouts.trajectories["split"] == "val").all()
    first = rollouts.steps[rollouts.steps["traj_id"].str.endswith(":1")]
    assert first["state"].iloc[1] == lines[0]["input_prompt"] + "Step 1: 6 * 7 = 42."
    meta = json.loads(rollouts.trajectories["meta"].iloc[0])
    assert meta["env_extras"] == {"reward_spec": {"ground_truth": "42"}}
    assert rollouts.run_config["aggregated_results"] == [{"eval/openai_gsm8k/avg_score": 0.5}]
    assert rollouts.default_run == "export"


def test_token_level_score_list_is_summed_and_kept() -> None:
    rollouts = skyrl.read(AIME, AdapterOptions(splitter="none"))
    assert rollouts.trajectories["outcome"].tolist() == [1.0]
    assert json.loads(rollouts.trajectories["meta"].iloc[0])["score"] == [0.0, 0.0, 1.0]
    assert rollouts.run_config["splitter"] == "none"


def test_bad_lines_name_the_line_and_field(tmp_path: Path) -> None:
    lines = GSM8K.read_text().splitlines()
    path = tmp_path / "ds.jsonl"
    bad = json.loads(lines[1])
    bad["score"] = "high"
    path.write_text("\n".join([lines[0], json.dumps(bad), *lines[2:]]) + "\n")
    with pytest.raises(IngestError) as caught:
        skyrl.read(path, AdapterOptions())
    assert (caught.value.record, caught.value.field) == (2, "score")
    path.write_bytes(lines[0].encode() + b"\n" + b'{"input_prompt": "\xff"}\n')
    with pytest.raises(IngestError, match="UTF-8") as caught:
        skyrl.read(path, AdapterOptions())
    assert caught.value.record == 2
