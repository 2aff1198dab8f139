"""A PRM that does not fit, and every bad rescore option, is refused in one line with exit 2, and nothing changes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch
from prm_helpers import build_model, char_tokenizer
from transformers import LlamaConfig, LlamaForTokenClassification

from core.cli import main
from core.prm import hub
from core.prm.checks import PROBE, PrmRefused
from core.prm.scorer import Scorer

DEMO = str(Path(__file__).resolve().parents[2] / "sample_data" / "models" / "demo-prm")
RUN = "arith"


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    """A database with one small synthetic run (with logged PRM scores)."""
    from core.ingest.runner import ingest
    from core.store.database import Store
    from core.synth import write_jsonl

    source = tmp_path / "arithmetic.jsonl"
    write_jsonl(source, "arithmetic", prompts=2, iterations=1, group_size=2, seed=1)
    db = tmp_path / "runs.duckdb"
    store = Store.open(db)
    ingest(store, [str(source)], run=RUN)
    store.close()
    return db


def _snapshot(db: Path) -> tuple:
    """Everything a rescore could change: the PRM tables and the shown ``prm`` column."""
    from core.store.database import Store

    store = Store.open(db, read_only=True)
    try:
        with store.reader() as cur:
            return tuple(
                cur.execute(sql).fetchall()
                for sql in (
                    "SELECT * FROM prm_scorers ORDER BY ALL",
                    "SELECT * FROM prm_cache ORDER BY ALL",
                    "SELECT * FROM prm_step_scores ORDER BY ALL",
                    "SELECT * FROM prm_active ORDER BY ALL",
                    "SELECT traj_id, step_idx, prm FROM steps ORDER BY ALL",
                )
            )
    finally:
        store.close()


def _refused(db: Path, capsys, model: str, family: str = "token-cls", *extra: str) -> str:
    before = _snapshot(db)
    capsys.readouterr()  # what building the fixtures printed
    argv = ["rescore", "--db", str(db), "--run", RUN, "--model", model, "--family", family, *extra]
    assert main([*argv, *([] if "--device" in extra else ["--device", "cpu"])]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("creditscope: error: "), err
    assert "Traceback" not in err
    assert _snapshot(db) == before  # nothing changed
    return lines[0]


def _checkpoint(folder: Path, model: torch.nn.Module) -> Path:
    model.save_pretrained(folder)
    char_tokenizer().save_pretrained(folder)
    return folder


def test_a_bert_config_beside_llama_weights_is_refused_naming_the_missing_weights(db_file, tmp_path, capsys):
    folder = _checkpoint(tmp_path / "mixed", build_model("llama-tokcls"))
    build_model("bert-tokcls").config.save_pretrained(folder)  # the config now says bert, the weights are llama
    line = _refused(db_file, capsys, str(folder))
    assert "does not fit the token-cls family as BertForTokenClassification" in line
    assert "weights missing from the checkpoint (bert.embeddings" in line and "randomly initialised" in line


def test_shepherd_on_a_token_classifier_is_refused_naming_its_lm_head(db_file, tmp_path, capsys):
    folder = _checkpoint(tmp_path / "tokcls", build_model("llama-tokcls"))
    line = _refused(db_file, capsys, str(folder), "shepherd")
    assert "1 weights missing from the checkpoint (lm_head.weight)" in line
    assert "LlamaForCausalLM" in line


def test_allow_random_init_lets_a_benchmark_score_anyway(db_file, tmp_path, capsys):
    folder = _checkpoint(tmp_path / "tokcls", build_model("llama-tokcls"))
    with pytest.raises(PrmRefused):
        Scorer.load(str(folder), "shepherd", device="cpu")
    scorer = Scorer.load(str(folder), "shepherd", device="cpu", allow_random_init=True)
    assert len(scorer.score([PROBE])[0].scores) == len(PROBE.steps)
    argv = ["rescore", "--db", str(db_file), "--run", RUN, "--model", str(folder), "--family", "shepherd"]
    assert main([*argv, "--device", "cpu", "--allow-random-init"]) == 0


def test_the_demo_prm_and_a_matching_checkpoint_load_without_complaint(save_checkpoint):
    Scorer.load(DEMO, "token-cls", device="cpu")
    Scorer.load(str(save_checkpoint("llama-causal")), "shepherd", device="cpu")


def test_an_empty_folder_is_refused(db_file, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "is empty: it is not a transformers checkpoint" in _refused(db_file, capsys, str(tmp_path / "empty"))


def test_a_folder_with_a_broken_config_is_refused(db_file, tmp_path, capsys):
    folder = Path(shutil.copytree(DEMO, tmp_path / "broken-config"))
    (folder / "config.json").write_text("{not json")
    assert "config.json: unreadable config" in _refused(db_file, capsys, str(folder))


def test_a_folder_with_truncated_weights_is_refused(db_file, tmp_path, capsys):
    folder = Path(shutil.copytree(DEMO, tmp_path / "broken-weights"))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert f"cannot load {folder} as a token-cls PRM" in _refused(db_file, capsys, str(folder))


def test_a_folder_without_weights_is_refused(db_file, tmp_path, capsys):
    folder = Path(shutil.copytree(DEMO, tmp_path / "no-weights"))
    (folder / "model.safetensors").unlink()
    assert f"cannot load {folder} as a token-cls PRM" in _refused(db_file, capsys, str(folder))


def test_a_family_whose_format_the_tokenizer_cannot_express_is_refused(db_file, capsys):
    # The demo PRM's tokenizer has no chat template, which the qwen format is built from.
    line = _refused(db_file, capsys, DEMO, "qwen")
    assert "the qwen family does not fit" in line and "chat template" in line


def test_a_tokenizer_from_a_bigger_vocabulary_is_refused(db_file, tmp_path, capsys):
    small = LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    small.num_attention_heads, small.num_key_value_heads, small.num_labels = 4, 2, 2
    folder = _checkpoint(tmp_path / "small-vocab", LlamaForTokenClassification(small))
    assert "beyond the model's 40-row embedding table" in _refused(db_file, capsys, str(folder))


def test_implicit_without_a_reference_model_is_refused(db_file, tmp_path, capsys):
    folder = _checkpoint(tmp_path / "causal", build_model("llama-causal"))
    assert "needs a reference model" in _refused(db_file, capsys, str(folder), "implicit")


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        (["epoch", "3"], "--scope must be one of run, iteration, group, trajectory, got 'epoch'"),
        (["iteration", "abc"], "--scope iteration needs an integer, got 'abc'"),
        (["group"], "scopes need one"),
        (["run", "x"], "--scope run takes no value"),
        (["group", "a", "b"], "--scope takes a kind and at most one value"),
    ],
)
def test_a_bad_scope_is_refused(db_file, capsys, scope, message):
    assert message in _refused(db_file, capsys, DEMO, "token-cls", "--scope", *scope)


@pytest.mark.parametrize(("option", "value"), [("--batch-tokens", "0"), ("--max-length", "0"), ("--max-length", "-5")])
def test_zero_or_negative_token_limits_are_refused(db_file, capsys, option, value):
    assert f"{option} must be a positive number of tokens, got {value}" in _refused(
        db_file, capsys, DEMO, "token-cls", option, value
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused_before_anything_loads(db_file, capsys):
    line = _refused(db_file, capsys, DEMO, "token-cls", "--device", "cuda")
    assert "--device cuda: CUDA is not available here" in line


@pytest.fixture
def unreachable_hub(monkeypatch):
    """The hub endpoint points at a closed loopback port (no traffic leaves the machine)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    hub.forget_probe()
    yield
    hub.forget_probe()


def test_a_hub_id_while_offline_fails_fast(db_file, capsys, unreachable_hub):
    started = time.perf_counter()
    line = _refused(db_file, capsys, "creditscope-tests/no-such-prm")
    assert time.perf_counter() - started < 5
    assert "the hub (http://127.0.0.1:9) cannot be reached" in line and "not in the local Hugging Face cache" in line


def test_hf_hub_offline_is_honoured_without_a_connection(db_file, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "_connects", lambda *a: pytest.fail("no connection may be tried when offline is set"))
    assert "HF_HUB_OFFLINE is set" in _refused(db_file, capsys, "creditscope-tests/no-such-prm")
