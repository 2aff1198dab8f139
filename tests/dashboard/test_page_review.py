"""Page behaviour fixed after the end-to-end review: chat prompts read as text, useful default curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.ingest.runner import ingest
from core.store.database import Store
from dashboard.formatting import md_unescape

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
    assert expected in [t.value for t in group.text]  # plain text, never a Markdown caption


def test_runs_page_plots_multi_iteration_runs_by_default(open_page) -> None:
    at = open_page()
    chosen = at.multiselect(key="runs_plot").value
    # agent, arithmetic and tree have 10 iterations; arithmetic-seed1 6; the real logs one each.
    assert chosen == ["agent", "arithmetic", "tree"]


def test_rescore_with_a_missing_model_folder_shows_the_reason_without_a_traceback(tmp_path: Path, open_page) -> None:
    db = _chat_db(tmp_path)
    at = open_page("app_pages/rescore.py", db=db, run="chat")
    missing = str(tmp_path / "no-such-prm")
    at.text_input(key="prm_model").set_value(missing)
    at.button(key="prm_rescore").click().run()
    assert not at.exception, [e.value for e in at.exception]  # st.exception would print a stack trace
    assert at.status[0].label == "Rescoring failed"
    assert any(f"model folder {missing!r} does not exist" in md_unescape(e.value) for e in at.error)


def test_what_if_steps_are_category_ticks_and_reliability_counts_are_neutral() -> None:
    import pandas as pd

    from dashboard.figures.prm import NEUTRAL, reliability_figure, what_if_figure

    comparison = pd.DataFrame(
        {"step_idx": [0, 1, 2], "old_prm": [0.9, 0.8, 0.7], "new_prm": [0.9, 0.1, 0.7], "edited": [False, True, False]}
    )
    assert what_if_figure(comparison).layout.xaxis.type == "category"
    calibration = pd.DataFrame(
        {
            "bin_low": [0.0, 0.5],
            "bin_high": [0.5, 1.0],
            "count": [3, 5],
            "mean_score": [0.2, 0.8],
            "mean_label": [0.3, 0.9],
        }
    )
    bars = [t for t in reliability_figure(calibration).data if t.type == "bar"]
    assert bars[0].marker.color == NEUTRAL and list(bars[0].y) == [3, 5]


def test_a_re_uploaded_file_is_recognised_as_unchanged_and_a_changed_one_never_replaces_it(tmp_path: Path) -> None:
    from core.errors import IngestError
    from dashboard.ingest_panel import save_uploads, uploads_folder

    db = tmp_path / "runs.duckdb"
    folder = uploads_folder(str(db))
    assert folder == tmp_path / "runs_uploads"
    record = {"trajectory": "t0", "group": "g", "outcome": 1.0, "steps": [{"action": "a"}]}
    content = (json.dumps(record) + "\n").encode()
    store = Store.open(db)
    try:
        paths = save_uploads([("some/dir/chat.jsonl", content)], folder)
        assert Path(paths[0]).name == "chat.jsonl" and Path(paths[0]).is_relative_to(folder)
        assert ingest(store, paths).sources[0].status == "loaded"
        again = save_uploads([("chat.jsonl", content)], folder)
        assert again == paths and ingest(store, again).sources[0].status == "unchanged"
        # Changed bytes under the same name are another source: they cannot take the first one's rows.
        changed = save_uploads([("chat.jsonl", (json.dumps({**record, "outcome": 0.0}) + "\n").encode())], folder)
        assert changed != paths
        with pytest.raises(IngestError, match="t0"):
            ingest(store, changed)
        with store.reader() as cur:
            assert cur.execute("select outcome from trajectories where run_id = 'chat'").fetchall() == [(1.0,)]
    finally:
        store.close()
