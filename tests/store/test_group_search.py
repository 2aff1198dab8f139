"""Group search matches the typed text literally and case-insensitively, in prompts and in step actions."""

from __future__ import annotations

import json
from pathlib import Path

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
