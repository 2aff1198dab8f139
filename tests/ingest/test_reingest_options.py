"""Re-ingesting an unchanged file with other reading options re-reads it: the rows depend on the options."""

from __future__ import annotations

import json
from pathlib import Path

from core.ingest.base import AdapterOptions
from core.ingest.runner import ingest
from core.store import queries
from core.store.database import Store


def _board_file(tmp_path: Path) -> Path:
    folder = tmp_path / "board"
    folder.mkdir()
    path = folder / "data.jsonl"
    record = {"prompt": "Add 2 and 3.", "response": "2 + 3 = 5\n\nThe answer is 5.", "reward": 1.0, "step": 1}
    path.write_text(json.dumps(record) + "\n")
    return path


def test_a_forced_split_on_an_unchanged_file_is_applied(tmp_path: Path) -> None:
    path = _board_file(tmp_path)
    store = Store.open(":memory:")
    assert ingest(store, [str(path)]).sources[0].status == "loaded"
    again = ingest(store, [str(path)], options=AdapterOptions(split="val"))
    assert again.sources[0].status == "replaced"
    assert queries.trajectories(store, run_id="board")["split"].tolist() == ["val"]


def test_another_splitter_on_an_unchanged_file_is_applied(tmp_path: Path) -> None:
    path = _board_file(tmp_path)
    store = Store.open(":memory:")
    ingest(store, [str(path)], options=AdapterOptions(splitter="blank_lines"))
    assert len(queries.steps(store, run_id="board")) == 2
    ingest(store, [str(path)], options=AdapterOptions(splitter="regex:\\s*=\\s*"))
    assert queries.steps(store, run_id="board")["action"].tolist()[0] == "2 + 3"


def test_the_same_options_still_skip_an_unchanged_file(tmp_path: Path) -> None:
    path = _board_file(tmp_path)
    store = Store.open(":memory:")
    ingest(store, [str(path)], options=AdapterOptions(split="val"))
    assert ingest(store, [str(path)], options=AdapterOptions(split="val")).sources[0].status == "unchanged"
