"""Ctrl-C: a one-shot ingest that was interrupted must not exit as a success; stopping --follow is the normal end."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import cli
from core.cli import main
from core.ingest import follow, runner
from core.synth import write_jsonl


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def test_interrupted_ingest_exits_non_zero_and_says_nothing_landed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "arith.jsonl"
    write_jsonl(source, "arithmetic", prompts=1, iterations=1, group_size=2, seed=0)
    monkeypatch.setattr(runner, "ingest", _interrupt)
    db = tmp_path / "x.duckdb"
    assert main(["ingest", str(source), "--db", str(db), "--quiet"]) == cli.INTERRUPTED
    assert "interrupted" in capsys.readouterr().err
    assert not db.exists()  # the command created the database, and nothing landed in it


def test_stopping_follow_with_ctrl_c_is_a_normal_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow.Follower, "run", _interrupt)
    assert main(["ingest", str(tmp_path), "--db", str(tmp_path / "x.duckdb"), "--follow", "--quiet"]) == 0
