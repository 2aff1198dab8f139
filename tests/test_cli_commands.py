"""The creditscope command line, end to end on temp databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.credit import compute
from core.store import queries
from core.store.database import Store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    out = tmp_path / "runs"
    assert main(["synth", "--out", str(out), "--env", "tree", "--prompts", "2", "--iterations", "2"]) == 0
    path = tmp_path / "x.duckdb"
    assert main(["ingest", str(out), "--db", str(path), "--quiet"]) == 0
    return path


def test_synth_ingest_runs(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "tree" in out and "native" in out
    row = [line for line in out.splitlines() if line.strip().startswith("tree")][0].split()
    assert row[2:5] == ["2", "4", "32"]  # iterations, groups, trajectories


def test_ingest_twice_reports_unchanged(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "runs"), "--db", str(db), "--quiet"]) == 0
    assert "0 file(s) loaded, 1 unchanged" in capsys.readouterr().out


def test_bad_file_exits_non_zero_with_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"trajectory": "t", "outcome": 1, "steps": [{"action": "a", "reward": "abc"}]}\n')
    assert main(["ingest", str(bad), "--db", str(tmp_path / "y.duckdb"), "--quiet"]) == 2
    assert 'bad.jsonl:1: steps[0].reward: expected number, got "abc"' in capsys.readouterr().err


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_advantages_export_matches_the_api(db: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"adv.{suffix}"
    args = ["advantages", "--db", str(db), "--run", "tree", "--scheme", "treerl", "--param", "variant=paper"]
    assert main([*args, "--out", str(out)]) == 0
    got = pd.read_parquet(out) if suffix == "parquet" else pd.read_csv(out, dtype={"group_id": str, "traj_id": str})
    store = Store.open(db, read_only=True)
    steps = queries.steps(store, run_id="tree")
    store.close()
    expected = compute(steps, "treerl", variant="paper")
    merged = got.merge(steps.assign(expected=expected), on=["traj_id", "step_idx"])
    assert len(merged) == len(steps)
    assert np.allclose(merged["advantage"], merged["expected"])


def test_advantages_rejects_unknown_params_and_runs(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "a.csv")
    assert (
        main(["advantages", "--db", str(db), "--run", "tree", "--scheme", "gigpo", "--param", "gama=1", "--out", out])
        == 2
    )
    assert "gamma" in capsys.readouterr().err
    assert main(["advantages", "--db", str(db), "--run", "nope", "--scheme", "grpo", "--out", out]) == 2
    assert "run 'nope' not found" in capsys.readouterr().err


def test_formats_lists_every_adapter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats"]) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert {"native", "verl", "trl", "inspect", "prm800k", "treerl", "swe_agent"} <= names


def test_locked_database_message(db: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        done = subprocess.run(
            [sys.executable, "-m", "core.cli", "runs", "--db", str(db)], capture_output=True, text=True
        )
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2
    assert f"process {holder.pid}" in done.stderr and "Ingest page" in done.stderr
