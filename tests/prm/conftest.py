"""Fixtures for the PRM tests: tiny checkpoints saved to a temp folder and an in-memory DuckDB with the PRM tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
import torch
from prm_helpers import PRM_DDL, build_model, char_tokenizer


@pytest.fixture
def save_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """``save_checkpoint(kind, name=..., seed=..., model=...)`` → folder with the model and the char tokenizer."""

    def _save(kind: str, name: str | None = None, seed: int = 0, model: torch.nn.Module | None = None) -> Path:
        folder = tmp_path / (name or f"{kind}-{seed}")
        (model or build_model(kind, seed)).save_pretrained(folder)
        char_tokenizer().save_pretrained(folder)
        return folder

    return _save


@pytest.fixture
def prm_db() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the four PRM tables the store's migration creates."""
    con = duckdb.connect()
    con.execute(PRM_DDL)
    yield con
    con.close()
