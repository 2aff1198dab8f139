"""AppTest helpers: point the app at a database, clear Streamlit's process-global caches between tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()  # also drops the cached Store, closing nothing: each test's db is its own
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def open_page(sample_db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """Open ``page`` (e.g. "app_pages/group.py") with the given URL query parameters."""
    monkeypatch.setenv("CREDITSCOPE_DB", str(sample_db_path))

    def _open(page: str | None = None, db: Path | None = None, **query: str) -> AppTest:
        if db is not None:
            monkeypatch.setenv("CREDITSCOPE_DB", str(db))
        at = AppTest.from_file(APP, default_timeout=60)
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        if page is not None:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open
