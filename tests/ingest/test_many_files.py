"""Many small native files load in one set of statements, with the same rows and errors as one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest import runner
from core.ingest.runner import ingest
from core.store import queries
from core.store.database import Store
from core.synth import write_jsonl

KEY = ["run_id", "traj_id", "step_idx"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """One run's 240 trajectories split over 60 files (some carry an extra key the others lack)."""
    whole = tmp_path / "whole.jsonl"
    write_jsonl(whole, "tree", prompts=3, iterations=10, group_size=8)
    lines = whole.read_text().splitlines()
    root = tmp_path / "parts"
    root.mkdir()
    for index in range(60):
        part = [json.loads(line) for line in lines[index * 4 : (index + 1) * 4]]
        if index % 7 == 0:
            part[0]["steps"][0]["tool"] = {"name": "calc"}
        (root / f"part-{index:03d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return root


def _everything(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    steps = queries.steps(store, with_extra=True).sort_values(KEY).reset_index(drop=True)
    trajs = store.query_df("SELECT * EXCLUDE (source_id) FROM trajectories ORDER BY run_id, traj_id")
    return steps, trajs


def test_a_folder_of_small_files_loads_in_one_batch_with_the_rows_of_one_by_one(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    load = runner.load_native_jsonl

    def counting(cur, files, **kwargs):  # noqa: ANN001, ANN003, ANN202 - spy with the real signature
        calls.append(len(files))
        return load(cur, files, **kwargs)

    monkeypatch.setattr(runner, "load_native_jsonl", counting)
    batched = Store.open(":memory:")
    report = ingest(batched, [str(folder)])
    assert calls == [60] and all(s.fast_path for s in report.sources) and report.n_trajectories == 240
    one_by_one = Store.open(":memory:")
    for path in sorted(folder.glob("*.jsonl")):
        ingest(one_by_one, [str(path)])
    for got, expected in zip(_everything(batched), _everything(one_by_one), strict=True):
        pd.testing.assert_frame_equal(got, expected)
    sources = batched.query_df("SELECT path, n_trajectories, n_steps FROM sources ORDER BY path")
    assert len(sources) == 60 and sources["n_trajectories"].tolist() == [4] * 60
    assert ingest(batched, [str(folder)]).n_trajectories == 0  # all unchanged


def test_a_bad_file_in_a_batch_is_named_and_nothing_lands(folder: Path, store: Store) -> None:
    bad = folder / "part-031.jsonl"
    records = [json.loads(line) for line in bad.read_text().splitlines()]
    records[2]["steps"][1]["label"] = 3
    bad.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(IngestError, match=r"part-031\.jsonl:3: steps\[1\]\.label: expected a label in \[0, 1\]"):
        ingest(store, [str(folder)])
    assert queries.runs_summary(store).empty


def test_a_repeated_trajectory_across_files_of_a_batch_names_both(folder: Path, store: Store) -> None:
    first = (folder / "part-000.jsonl").read_text().splitlines()[0]
    with open(folder / "part-059.jsonl", "a") as fh:
        fh.write(first + "\n")
    with pytest.raises(IngestError, match=r"occurs more than once in its run \(already ingested from .*part-0"):
        ingest(store, [str(folder)])
