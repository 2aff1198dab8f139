"""Group search matches the typed text literally and case-insensitively, in prompts and in step actions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.ingest.runner import ingest
from core.store import queries
from core.store.database import Store

PROMPTS = {"pct": "What is 50% of 8?", "five_hundred": "What is 500 of 8?", "under": "Name a_b.", "x": "Name axb."}


def _store(tmp_path: Path) -> Store:
    records = [
        {"run": "r", "group": group, "prompt": prompt, "trajectory": group, "outcome": 1.0,
         "steps": [{"action": "ANSWER " + group.upper()}]}
        for group, prompt in PROMPTS.items()
    ]  # fmt: skip
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    store = Store.open(":memory:")
    ingest(store, [str(path)])
    return store


def test_percent_and_underscore_are_literal(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert queries.groups(store, "r", search="50%")["group_id"].tolist() == ["pct"]
    assert queries.groups(store, "r", search="a_b")["group_id"].tolist() == ["under"]


def test_search_is_case_insensitive_and_reaches_actions(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert queries.groups(store, "r", search="answer five")["group_id"].tolist() == ["five_hundred"]
    assert len(queries.groups(store, "r", search="")) == len(PROMPTS)


def test_search_keeps_every_rollout_of_a_matching_group_and_says_where_it_matched(tmp_path: Path) -> None:
    # Issue 11 item 3: only one rollout of the eight says "17 * 3"; the group's statistics still cover all eight.
    outcomes = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    records = [
        {"run": "r", "group": "g", "prompt": "Start with 17.", "trajectory": f"t{i}", "outcome": outcome,
         "steps": [{"action": "think"}, {"action": "17 * 3 = 51" if i == 5 else "17 + 3 = 20"}]}
        for i, outcome in enumerate(outcomes)
    ] + [{"run": "r", "group": "other", "prompt": "Start with 2.", "trajectory": "o", "outcome": 1.0,
          "steps": [{"action": "2 * 3 = 6"}]}]  # fmt: skip
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    store = Store.open(":memory:")
    ingest(store, [str(path)])
    found = queries.groups(store, "r", search="17 * 3")
    assert found["group_id"].tolist() == ["g"]
    row = found.iloc[0]
    assert row["n"] == 8
    assert row["mean_outcome"] == pytest.approx(0.5)
    assert row["std_outcome"] == pytest.approx(np.std(outcomes, ddof=1))
    assert not row["zero_variance"]
    assert row["matched_in"] == "t5 step 1"
    assert row["match"] == "17 * 3 = 51"
    # A prompt match is reported as such.
    assert queries.groups(store, "r", search="start with 17")["matched_in"].tolist() == ["prompt"]


def test_search_across_files_and_runs(tmp_path: Path) -> None:
    # Group g's rollouts come from two files; "take key" occurs only in b.jsonl, and "key take" nowhere,
    # though both words are in both files. Run "other" says "take key" too but is not searched.
    def rollout(run: str, traj: str, action: str) -> dict:
        return {"run": run, "group": "g", "prompt": "p", "trajectory": traj, "outcome": 1.0,
                "steps": [{"action": action}]}  # fmt: skip

    (tmp_path / "a.jsonl").write_text(
        json.dumps(rollout("r", "t1", "key then take")) + "\n" + json.dumps(rollout("other", "o1", "take key")) + "\n"
    )
    (tmp_path / "b.jsonl").write_text(json.dumps(rollout("r", "t2", "take key, then key")) + "\n")
    store = Store.open(":memory:")
    ingest(store, [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    found = queries.groups(store, "r", search="take key")
    assert found[["group_id", "n", "matched_in"]].values.tolist() == [["g", 2, "t2 step 0"]]
    assert queries.groups(store, "r", search="key take").empty
    assert queries.groups(store, "r", search="then take")["matched_in"].tolist() == ["t1 step 0"]
    assert queries.groups(store, "other", search="take key")["group_id"].tolist() == ["g"]
    assert queries.groups(store, "other", search="then key").empty


def test_a_prompt_match_is_reported_before_an_action_match_and_actions_by_trajectory_then_step(tmp_path: Path) -> None:
    def rollout(group: str, prompt: str, traj: str, actions: list[str]) -> dict:
        return {"run": "r", "group": group, "prompt": prompt, "trajectory": traj, "outcome": 1.0,
                "steps": [{"action": a} for a in actions]}  # fmt: skip

    records = [
        rollout("both", "go to the garden", "b1", ["garden gate"]),
        rollout("acts", "a room", "a2", ["look", "the garden"]),
        rollout("acts", "a room", "a1", ["walk", "garden", "garden"]),
        rollout("none", "a hall", "n1", ["look"]),
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    store = Store.open(":memory:")
    ingest(store, [str(path)])
    found = queries.groups(store, "r", search="Garden")
    assert found[["group_id", "matched_in", "match"]].values.tolist() == [
        ["acts", "a1 step 1", "garden"],
        ["both", "prompt", "go to the garden"],
    ]
