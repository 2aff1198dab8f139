"""`advantages --out`: CSV for .csv, Parquet for .parquet, anything else or a missing folder is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.cli import main


@pytest.fixture
def db(tmp_path: Path) -> Path:
    out = tmp_path / "runs"
    assert main(["synth", "--out", str(out), "--env", "arithmetic", "--prompts", "2", "--iterations", "3"]) == 0
    path = tmp_path / "x.duckdb"
    assert main(["ingest", str(out), "--db", str(path), "--quiet"]) == 0
    return path


def _export(db: Path, out: Path) -> int:
    return main(["advantages", "--db", str(db), "--run", "arithmetic", "--scheme", "grpo", "--out", str(out)])


@pytest.mark.parametrize("name", ["adv.txt", "adv", "adv.parq", "adv.json"])
def test_an_extension_it_does_not_write_is_refused(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    capsys.readouterr()
    assert _export(db, tmp_path / name) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "name a .csv or .parquet file" in err[0] and name in err[0]
    assert not (tmp_path / name).exists()


def test_a_missing_folder_is_one_line(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    out = tmp_path / "no" / "such" / "adv.parquet"
    assert _export(db, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"creditscope: error: --out {out}: folder {out.parent} does not exist"]
    assert not out.parent.exists()


def test_csv_and_parquet_are_what_their_names_say(db: Path, tmp_path: Path) -> None:
    assert _export(db, tmp_path / "adv.csv") == 0
    assert _export(db, tmp_path / "ADV.PARQUET") == 0
    assert (tmp_path / "adv.csv").read_text().startswith("run_id,iteration,group_id,traj_id,step_idx,advantage\n")
    assert (tmp_path / "ADV.PARQUET").read_bytes()[:4] == b"PAR1"
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "adv.csv"), pd.read_parquet(tmp_path / "ADV.PARQUET"),
                                  check_dtype=False)  # fmt: skip
