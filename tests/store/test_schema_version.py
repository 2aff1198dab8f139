"""A database written by a newer creditscope is refused, read-write or read-only, with a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import main
from core.errors import CreditscopeError
from core.store import database
from core.store.database import Store
from core.store.migrations import SCHEMA_VERSION


def _newer_database(tmp_path: Path) -> Path:
    path = tmp_path / "future.duckdb"
    store = Store.open(path)
    with store.writer() as cur:
        cur.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    store.close()
    return path


@pytest.mark.parametrize("read_only", [False, True])
def test_newer_schema_is_refused(tmp_path: Path, read_only: bool) -> None:
    path = _newer_database(tmp_path)
    with pytest.raises(CreditscopeError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        Store.open(path, read_only=read_only)
    # The refused connection was closed: opening the file the other way fails for the schema, not with
    # DuckDB's "different configuration than existing connections".
    with pytest.raises(CreditscopeError):
        Store.open(path, read_only=not read_only)


def test_read_only_commands_report_a_newer_schema_as_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _newer_database(tmp_path)
    assert main(["runs", "--db", str(path)]) == 2
    assert "newer than this creditscope" in capsys.readouterr().err


def test_current_databases_open_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "now.duckdb"
    Store.open(path).close()
    Store.open(path, read_only=True).close()
    Store.open(path).close()


def test_a_failed_migration_leaves_the_old_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.duckdb"
    monkeypatch.setattr(database, "SCHEMA_VERSION", 2)
    Store.open(path).close()  # a database written by a creditscope with two migrations
    monkeypatch.setattr(database, "SCHEMA_VERSION", SCHEMA_VERSION)
    broken = (*database.MIGRATIONS[: SCHEMA_VERSION - 1], "CREATE TABLE runs (x INTEGER)")  # fails: runs exists
    monkeypatch.setattr(database, "MIGRATIONS", broken)
    with pytest.raises(CreditscopeError):
        Store.open(path)
    monkeypatch.undo()
    store = Store.open(path, read_only=True)  # nothing of the failed upgrade stayed: still version 2
    assert store.schema_version == 2
    store.close()
    Store.open(path).close()  # and the real migrations still apply
    assert Store.open(path, read_only=True).schema_version == SCHEMA_VERSION
