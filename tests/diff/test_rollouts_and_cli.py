"""Best and worst rollouts aligned by step; `creditscope diff` prints the pairing and writes the per-prompt table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import cli
from core.diff import aligned_steps, best_and_worst
from core.ingest.runner import ingest
from core.store.database import Store


def test_best_and_worst_break_ties_by_length_then_id() -> None:
    trajs = pd.DataFrame(
        {"traj_id": ["r2", "r1", "r3", "r4"], "outcome": [1.0, 1.0, 0.0, 0.0], "n_steps": [3, 3, 2, 5]}
    )
    assert best_and_worst(trajs) == ("r1", "r4")
    with pytest.raises(ValueError):
        best_and_worst(trajs.iloc[:0])


def test_aligned_steps_mark_differences_and_missing_steps() -> None:
    a = pd.DataFrame({"traj_id": ["x", "x", "y"], "step_idx": [1, 0, 0], "action": ["b", "a", "other"]})
    b = pd.DataFrame({"traj_id": ["z"] * 3, "step_idx": [0, 1, 2], "action": ["a", "B", "c"]})
    out = aligned_steps(a, "x", b, "z", credit_a=np.array([0.5, 0.25, 9.0]), credit_b=np.array([1.0, 2.0, 3.0]))
    assert out["step"].tolist() == [0, 1, 2]
    assert out["a"].tolist() == ["a", "b", None] and out["b"].tolist() == ["a", "B", "c"]
    assert out["differs"].tolist() == [False, True, True]
    assert out["credit_a"].tolist()[:2] == [0.25, 0.5] and np.isnan(out["credit_a"].iloc[2])
    assert out["credit_b"].tolist() == [1.0, 2.0, 3.0]


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    def records(run: str, outcome: float) -> list[dict]:
        return [{"run": run, "iteration": it, "group": f"g{p}", "trajectory": f"{run}-{it}-{p}-{r}",
                 "prompt": f"task {p}", "outcome": outcome if p else 1.0 - outcome, "steps": [{"action": "a"}]}
                for it in range(3) for p in range(3) for r in range(2)]  # fmt: skip

    db = tmp_path / "runs.duckdb"
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records("a", 1.0) + records("b", 0.0)))
    store = Store.open(db)
    ingest(store, [str(path)])
    store.close()
    return db


def test_cli_diff_writes_the_per_prompt_table(two_runs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "pairs.parquet"
    assert cli.main(["diff", "--db", str(two_runs), "a", "b", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 in both, 0 only in A, 0 only in B" in printed and "in A but not in B: 2, in B but not in A: 1" in printed
    table = pd.read_parquet(out).set_index("prompt")
    assert sorted(table.index) == ["task 0", "task 1", "task 2"]
    assert table.loc["task 1", "flip"] == "lost" and table.loc["task 0", "flip"] == "gained"
    assert table.loc["task 1", "groups_a"] == 3 and table.loc["task 1", "d_outcome"] == -1.0
    csv = tmp_path / "early_late.csv"
    assert cli.main(["diff", "--db", str(two_runs), "a", "a", "--iterations", ":0", "1:", "--out", str(csv)]) == 0
    early_late = pd.read_csv(csv)
    assert (early_late["groups_a"] == 1).all() and (early_late["groups_b"] == 2).all()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["a", "nope"], "run 'nope' not found"),
        (["a", "b", "--iterations", "2:1", ":"], "first iteration comes after the last"),
        (["a", "b", "--out", "pairs.txt"], "write .parquet or .csv"),
        (["a", "b", "--scheme", "grpo_typo"], "grpo_typo"),
    ],
)
def test_cli_diff_errors_are_one_line(two_runs: Path, capsys, argv: list[str], message: str) -> None:
    assert cli.main(["diff", "--db", str(two_runs), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_diff_needs_an_existing_database(tmp_path: Path, capsys) -> None:
    assert cli.main(["diff", "--db", str(tmp_path / "missing.duckdb"), "a", "b"]) == 2
    assert "no such database file" in capsys.readouterr().err
    assert not (tmp_path / "missing.duckdb").exists()
