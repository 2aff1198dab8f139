import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import trl
from core.ingest.split import split_steps

FIXTURE = Path(__file__).parents[1] / "fixtures" / "trl" / "completions" / "completions_00010.parquet"


@pytest.fixture(scope="module")
def source():
    return pd.read_parquet(FIXTURE)


def test_detected_by_schema():
    assert registry.detect(FIXTURE) is trl


def test_counts_groups_and_outcomes(source):
    rollouts = trl.read(FIXTURE, AdapterOptions())
    assert len(rollouts.trajectories) == len(source) == 12
    assert set(rollouts.trajectories["iteration"]) == {10}
    # by identical prompt: prompt A x 4, prompt B x 8 (it repeats in a second block)
    assert sorted(rollouts.trajectories.groupby("group_id").size()) == sorted(source.groupby("prompt").size())
    expected_outcome = source[["accuracy_reward", "format_reward"]].sum(axis=1, skipna=True)
    assert rollouts.trajectories["outcome"].tolist() == expected_outcome.tolist()
    assert rollouts.default_run == "trl"


def test_num_generations_blocks(source):
    rollouts = trl.read(FIXTURE, AdapterOptions(extra={"num_generations": 4}))
    assert rollouts.trajectories.groupby("group_id", sort=False).size().tolist() == [4, 4, 4]
    with pytest.raises(IngestError, match="positive integer"):
        trl.read(FIXTURE, AdapterOptions(extra={"num_generations": 0}))


def test_steps_components_and_kept_columns(source):
    rollouts = trl.read(FIXTURE, AdapterOptions())
    per_traj = rollouts.steps.groupby("traj_id", sort=False).size()
    tool_row = 5  # 0-based index of the flattened tool turn in make_fixture.py
    for index, completion in enumerate(source["completion"]):
        expected = 2 if index == tool_row else len(split_steps(completion))
        assert per_traj[f"completions_00010/{index + 1}"] == expected
    meta = [json.loads(text) for text in rollouts.trajectories["meta"]]
    assert meta[3]["reward_components"] == {"accuracy_reward": 1.0, "format_reward": None}  # NaN -> null
    assert meta[0]["advantage"] == source["advantage"][0] and meta[0]["difficulty"] == "easy"
    assert rollouts.run_config["trl_reward_columns"] == ["accuracy_reward", "format_reward"]
    tool_steps = rollouts.steps[rollouts.steps["traj_id"] == "completions_00010/6"]
    assert tool_steps["state"].iloc[1] == "user: <tool_response>\n3\n</tool_response>"


def test_reward_weights_and_explicit_columns():
    rollouts = trl.read(
        FIXTURE, AdapterOptions(extra={"reward_columns": ["accuracy_reward"], "reward_weights": {"accuracy_reward": 2}})
    )
    assert rollouts.trajectories["outcome"].tolist()[:3] == [2.0, 0.0, 2.0]
    with pytest.raises(IngestError, match="reward_columns not in the file"):
        trl.read(FIXTURE, AdapterOptions(extra={"reward_columns": ["nope"]}))


def _write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "completions_00001.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(
    ("frame", "row", "field", "problem"),
    [
        (
            pd.DataFrame({"step": [1, 1], "prompt": ["p", "p"], "completion": ["a", "b"], "r": [1.0, np.inf]}),
            2,
            "r",
            "finite",
        ),
        (
            pd.DataFrame({"step": [1, 1], "prompt": ["p", "p"], "completion": ["a", "b"], "r": [1.0, np.nan]}),
            2,
            "reward columns",
            "NaN",
        ),
        (
            pd.DataFrame({"step": [1, 1], "prompt": ["p", "p"], "completion": ["a", None], "r": [1.0, 0.0]}),
            2,
            "completion",
            "expected text",
        ),
    ],
)
def test_bad_rows_name_row_and_column(tmp_path, frame, row, field, problem):
    with pytest.raises(IngestError, match=problem) as caught:
        trl.read(_write(tmp_path, frame), AdapterOptions())
    assert (caught.value.record, caught.value.field) == (row, field)


def test_other_parquet_is_declined_and_corrupt_parquet_reported(tmp_path):
    other = tmp_path / "x.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(other)
    assert "lacks columns step/prompt/completion" in trl.detect(other, other.read_bytes()[:100])
    corrupt = tmp_path / "completions_00002.parquet"
    corrupt.write_bytes(FIXTURE.read_bytes()[:200])
    assert trl.detect(corrupt, b"").startswith("unreadable parquet")
    with pytest.raises(IngestError, match="cannot read parquet"):
        trl.read(corrupt, AdapterOptions())
