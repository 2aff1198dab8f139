"""The duplicate-trajectory error names the other file only when the clash really is with another file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest.follow import poll_once
from core.ingest.runner import ingest
from core.store.database import Store


def _write(path: Path, trajectory_ids: list[str]) -> Path:
    records = [{"run": "r", "trajectory": t, "outcome": 1.0, "steps": [{"action": "a"}]} for t in trajectory_ids]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_a_clash_with_another_file_names_that_file(tmp_path: Path) -> None:
    store = Store.open(":memory:")
    first = _write(tmp_path / "first.jsonl", ["t0"])
    ingest(store, [str(first)])
    second = _write(tmp_path / "second.jsonl", ["t0"])
    with pytest.raises(IngestError, match=r"'t0' occurs more than once in its run \(already ingested from .*first"):
        ingest(store, [str(second)])


def test_a_repeat_inside_a_reingested_file_does_not_blame_the_file_itself(tmp_path: Path) -> None:
    store = Store.open(":memory:")
    path = _write(tmp_path / "log.jsonl", ["t0"])
    ingest(store, [str(path)])
    _write(path, ["t0", "t0x", "t0"])
    with pytest.raises(IngestError) as caught:
        ingest(store, [str(path)])
    assert "'t0' occurs more than once in its run;" in str(caught.value)
    assert "already ingested" not in str(caught.value)


def test_a_repeat_appended_to_a_followed_file_is_named_as_a_repeat(tmp_path: Path) -> None:
    store = Store.open(":memory:")
    path = _write(tmp_path / "log.jsonl", ["t0", "t1"])
    assert poll_once(store, [str(path)]).sources[0].status == "loaded"
    with path.open("a") as handle:  # the appended t0 makes the new rows' step counts disagree with the old
        handle.write(json.dumps({"run": "r", "trajectory": "t0", "outcome": 0.0, "steps": [{"action": "b"}]}) + "\n")
    report = poll_once(store, [str(path)])
    assert "'t0' occurs more than once in its run" in report.errors[str(path)]
    assert store.query_df("SELECT traj_id, n_steps FROM trajectories ORDER BY traj_id").values.tolist() == [
        ["t0", 1],
        ["t1", 1],
    ]
