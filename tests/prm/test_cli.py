"""The rescore command on a database file, with the shipped demo PRM (which must load offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import main
from core.prm.cli import parse_scope

DEMO = Path(__file__).resolve().parents[2] / "sample_data" / "models" / "demo-prm"


@pytest.fixture
def db_file(tmp_path):
    from core.ingest.runner import ingest
    from core.store.database import Store
    from core.synth import write_jsonl

    source = tmp_path / "arithmetic.jsonl"
    write_jsonl(source, "arithmetic", prompts=2, iterations=2, group_size=4, seed=1)
    db = tmp_path / "runs.duckdb"
    store = Store.open(db)
    ingest(store, [str(source)], run="arith")
    store.close()
    return db


@pytest.mark.skipif(not (DEMO / "model.safetensors").exists(), reason="demo PRM not trained")
def test_rescore_command_scores_then_hits_the_cache(db_file, capsys):
    args = [
        "rescore",
        "--db",
        str(db_file),
        "--run",
        "arith",
        "--model",
        str(DEMO),
        "--family",
        "token-cls",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "scored by the model, 0 from cache" in first and " 0 scored by the model" not in first
    assert main([*args, "--scope", "iteration", "1"]) == 0
    second = capsys.readouterr().out
    assert "0 scored by the model" in second and "load 0.0s" in second


def test_scope_words_parse():
    assert parse_scope(["run"]).kind == "run"
    assert parse_scope(["iteration", "3"]).value == 3
    assert parse_scope(["trajectory", "t7"]).value == "t7"
    with pytest.raises(ValueError):
        parse_scope(["group"])


def test_rescore_command_passes_compile_and_budget_through(db_file, monkeypatch):
    from core.prm import rescore as rescore_module

    seen: list[dict] = []

    def record(store, **kwargs):
        seen.append(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(rescore_module, "rescore", record)
    base = ["rescore", "--db", str(db_file), "--run", "arith", "--model", "m", "--family", "token-cls"]
    for extra in ([], ["--compile", "on", "--batch-tokens", "4096"]):
        with pytest.raises(SystemExit):
            main([*base, *extra])
    assert (seen[0]["compile"], seen[0]["batch_tokens"]) == ("auto", None)
    assert (seen[1]["compile"], seen[1]["batch_tokens"]) == ("on", 4096)
