"""`creditscope rescore` mistakes end in one clear error line and exit status 2, never a traceback or a silent no-op."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import main
from core.errors import CreditscopeError
from core.prm.loading import check_model_reference


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    """A database with one small synthetic run, ``arith``."""
    from core.ingest.runner import ingest
    from core.store.database import Store
    from core.synth import write_jsonl

    source = tmp_path / "arithmetic.jsonl"
    write_jsonl(source, "arithmetic", prompts=2, iterations=1, group_size=2, seed=1)
    db = tmp_path / "runs.duckdb"
    store = Store.open(db)
    ingest(store, [str(source)], run="arith")
    store.close()
    return db


def _rescore(db: Path | str, run: str, model: str, *extra: str) -> list[str]:
    options = ["--db", str(db), "--run", run, "--model", model, "--family", "token-cls", "--device", "cpu"]
    return ["rescore", *options, *extra]


def test_missing_model_folder_is_named_instead_of_a_hub_traceback(db_file, tmp_path, capsys):
    missing = str(tmp_path / "no-such-prm")
    assert main(_rescore(db_file, "arith", missing)) == 2
    err = capsys.readouterr().err
    assert f"model folder {missing!r} does not exist" in err
    assert "Traceback" not in err and "HFValidationError" not in err


@pytest.mark.parametrize("reference", ["/nonexistent", "./models/prm", "../prm", "runs/models/prm", "~/prm"])
def test_path_like_references_that_do_not_exist_are_refused(reference):
    with pytest.raises(CreditscopeError, match="does not exist"):
        check_model_reference(reference)


@pytest.mark.parametrize("reference", ["Qwen/Qwen2.5-Math-PRM-7B", "gpt2"])
def test_hub_ids_pass_through_to_the_hub_client(reference):
    check_model_reference(reference)  # no error: resolving them is the hub client's job


def test_an_existing_folder_passes_and_a_file_is_called_a_file(tmp_path):
    check_model_reference(str(tmp_path))
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(CreditscopeError, match="is a file"):
        check_model_reference(str(weights))


DEMO = str(Path(__file__).resolve().parents[2] / "sample_data" / "models" / "demo-prm")


def test_unknown_run_is_an_error_not_an_empty_success(db_file, capsys):
    # A real checkpoint, so the run check (before any model load) is what fails.
    assert main(_rescore(db_file, "nope", DEMO)) == 2
    assert "no steps to rescore: run 'nope' has none" in capsys.readouterr().err


def test_unknown_trajectory_scope_is_an_error(db_file, capsys):
    assert main(_rescore(db_file, "arith", DEMO, "--scope", "trajectory", "t-missing")) == 2
    assert "trajectory 't-missing' of run 'arith' has none" in capsys.readouterr().err


def test_a_mistyped_database_path_is_not_created(tmp_path, capsys):
    db = tmp_path / "typo.duckdb"
    assert main(_rescore(db, "arith", str(tmp_path))) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not db.exists()


@pytest.mark.parametrize(
    "signal_seen_as", [KeyboardInterrupt, lambda: RuntimeError("Query interrupted")], ids=["python", "duckdb"]
)
def test_ctrl_c_during_a_local_rescore_exits_130_and_says_nothing_was_written(
    db_file, monkeypatch, capsys, signal_seen_as
):
    import core.prm.rescore as rescore_module

    def interrupted(*args, **kwargs):
        raise signal_seen_as()  # DuckDB turns a Ctrl-C during a statement into its own error

    monkeypatch.setattr(rescore_module, "rescore", interrupted)
    assert main(_rescore(db_file, "arith", DEMO)) == 130
    assert capsys.readouterr().err.strip() == ("creditscope: interrupted; nothing was written, rerun to score the rest")
