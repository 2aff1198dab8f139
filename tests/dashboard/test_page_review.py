"""Page behaviour fixed after the end-to-end review: chat prompts read as text, useful default curves."""

from __future__ import annotations

import json
from pathlib import Path

from core.ingest.runner import ingest
from core.store.database import Store

CHAT_PROMPT = [
    {"role": "system", "content": "Play Wordle.\nGuess inside <guess> tags."},
    {"role": "user", "content": "Enter your guess."},
]


def _chat_db(tmp_path: Path) -> Path:
    """One native trajectory whose prompt is a chat message list serialised as JSON (as verifiers logs it)."""
    source = tmp_path / "chat.jsonl"
    record = {"trajectory": "t0", "group": "g", "outcome": 1.0, "prompt": json.dumps(CHAT_PROMPT),
              "steps": [{"action": "<guess>crane</guess>"}]}  # fmt: skip
    source.write_text(json.dumps(record) + "\n")
    db = tmp_path / "chat.duckdb"
    store = Store.open(db)
    ingest(store, [str(source)], run="chat")
    store.close()
    return db


def test_trajectory_and_group_pages_show_a_chat_prompt_as_messages(tmp_path: Path, open_page) -> None:
    db = _chat_db(tmp_path)
    expected = "system: Play Wordle.\nGuess inside <guess> tags.\n\nuser: Enter your guess."
    traj = open_page("app_pages/trajectory.py", db=db, run="chat", traj="t0")
    assert "Prompt:\n" + expected in [t.value for t in traj.text]
    assert not any('"role"' in t.value for t in traj.text)
    group = open_page("app_pages/group.py", db=db, run="chat", iteration="0", group="g")
    assert expected in [c.value for c in group.caption]


def test_runs_page_plots_multi_iteration_runs_by_default(open_page) -> None:
    at = open_page()
    chosen = at.multiselect(key="runs_plot").value
    # agent, arithmetic and tree have 10 iterations; arithmetic-seed1 6; the real logs one each.
    assert chosen == ["agent", "arithmetic", "tree"]
