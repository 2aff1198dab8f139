"""Shared fixtures: a database loaded from sample_data, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ingest.runner import ingest
from core.store.database import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RUNS = ROOT / "sample_data" / "runs"
SAMPLE_REAL = ROOT / "sample_data" / "real"


@pytest.fixture(scope="session")
def sample_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file holding every run in sample_data/ (synthetic and real), closed after loading."""
    path = tmp_path_factory.mktemp("db") / "sample.duckdb"
    store = Store.open(path)
    ingest(store, [str(SAMPLE_RUNS), str(SAMPLE_REAL)])
    store.close()
    return path


@pytest.fixture
def store() -> Store:
    """A fresh in-memory store."""
    s = Store.open(":memory:")
    yield s
    s.close()
