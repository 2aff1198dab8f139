"""Uploads never replace another file's rows, and a dashboard served beyond loopback reads only its data roots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.serving import REMOTE_ENV, ROOTS_ENV
from core.store import queries
from dashboard.follower import get_follower
from dashboard.formatting import md_unescape
from dashboard.resources import get_store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def _native(run: str, n: int, outcome: float = 1.0) -> bytes:
    lines = [
        {"run": run, "trajectory": f"t{i}", "group": "g", "outcome": outcome, "prompt": "p", "steps": [{"action": "a"}]}
        for i in range(n)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _ingest_page(db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CREDITSCOPE_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("app_pages/ingest.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _submit(at: AppTest, files: list[tuple[str, bytes]] | None = None, paths: str = "") -> AppTest:
    at.text_area(key="ingest_paths").set_value(paths)
    at.file_uploader(key="ingest_uploads").set_value([(name, data, "application/json") for name, data in files or []])
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _trajectories(db: Path) -> dict[str, int]:
    summary = queries.runs_summary(get_store(str(db)))  # the page's own store: it holds the file
    return dict(zip(summary["run_id"], summary["trajectories"], strict=True))


def test_a_second_upload_with_the_same_name_keeps_the_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "u.duckdb"
    at = _ingest_page(db, monkeypatch)
    _submit(at, [("rollouts.jsonl", _native("first", 5))])
    assert at.success[0].value.startswith("Loaded 5 trajectories, 5 steps from 1 file(s)")
    _submit(at, [("rollouts.jsonl", _native("second", 3))])
    assert at.success[0].value.startswith("Loaded 3 trajectories, 3 steps from 1 file(s)")
    assert _trajectories(db) == {"first": 5, "second": 3}


def test_every_file_of_a_multi_file_upload_loads_even_with_one_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "u.duckdb"
    at = _ingest_page(db, monkeypatch)
    _submit(at, [("rollouts.jsonl", _native("a", 2)), ("rollouts.jsonl", _native("b", 4))])
    assert at.success[0].value.startswith("Loaded 6 trajectories, 6 steps from 2 file(s)")
    # The same bytes again are recognised as already loaded, and the message says nothing new came in.
    _submit(at, [("rollouts.jsonl", _native("a", 2))])
    assert not at.success and "1 file(s) unchanged" in at.info[-1].value
    assert "Loaded 0 trajectories" in at.info[-1].value
    assert _trajectories(db) == {"a": 2, "b": 4}


@pytest.mark.parametrize("name", ["..", "folder/..", "", "."])
def test_an_unusable_upload_name_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    db = tmp_path / "u.duckdb"
    at = _ingest_page(db, monkeypatch)
    _submit(at, [("ok.jsonl", _native("ok", 1)), (name, _native("bad", 1))])
    assert len(at.error) == 1 and md_unescape(at.error[0].value).startswith("Nothing was loaded: upload ")
    assert "\n" not in md_unescape(at.error[0].value) and "not a usable file name" in md_unescape(at.error[0].value)
    assert _trajectories(db) == {}
    assert not (tmp_path / "u_uploads").exists() or not any((tmp_path / "u_uploads").rglob("*.jsonl"))


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dashboard served with --allow-remote --data-root <tmp>/allowed; returns the allowed folder."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv(REMOTE_ENV, "1")
    monkeypatch.setenv(ROOTS_ENV, str(allowed.resolve()))
    return allowed


def test_remote_path_box_reads_only_under_the_data_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "private.jsonl").write_bytes(_native("private", 2))
    (remote / "escape.jsonl").symlink_to(secret / "private.jsonl")
    (remote / "mine.jsonl").write_bytes(_native("mine", 3))
    at = _ingest_page(tmp_path / "r.duckdb", monkeypatch)
    assert any(str(remote.resolve()) in t.value for t in at.text)

    for typed in (str(secret / "private.jsonl"), f"{remote}/../secret/private.jsonl", str(secret / "*.jsonl")):
        _submit(at, paths=typed)
        assert "outside the folders this dashboard may read" in md_unescape(at.error[0].value), typed
    _submit(at, paths=str(remote / "escape.jsonl"))
    assert f"escape.jsonl leads to {(secret / 'private.jsonl').resolve()}" in md_unescape(at.error[0].value)
    _submit(at, paths=str(remote))  # the folder holds the link too: refused as a whole
    assert at.error and "escape.jsonl" in md_unescape(at.error[0].value)
    (remote / "escape.jsonl").unlink()
    _submit(at, paths=str(remote))
    assert not at.error and at.success[0].value.startswith("Loaded 3 trajectories")
    # Uploads still work: the server wrote those files itself.
    _submit(at, [("up.jsonl", _native("up", 1))])
    assert at.success[0].value.startswith("Loaded 1 trajectories")
    assert _trajectories(tmp_path / "r.duckdb") == {"mine": 3, "up": 1}


def test_remote_follow_box_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    at = _ingest_page(tmp_path / "r.duckdb", monkeypatch)
    at.text_area(key="follow_paths").set_value(str(outside)).run()
    at.toggle(key="follow_on").set_value(True).run()
    assert any("outside the folders this dashboard may read" in md_unescape(w.value) for w in at.warning)
    assert at.toggle(key="follow_on").value is False
    assert not get_follower(str(tmp_path / "r.duckdb")).running


def test_remote_without_data_root_reads_no_typed_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: Path
) -> None:
    monkeypatch.setenv(ROOTS_ENV, "")
    (remote / "mine.jsonl").write_bytes(_native("mine", 3))
    at = _ingest_page(tmp_path / "r.duckdb", monkeypatch)
    _submit(at, paths=str(remote / "mine.jsonl"))
    assert "without --data-root" in md_unescape(at.error[0].value)
