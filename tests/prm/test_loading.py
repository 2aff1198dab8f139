"""Loading: remote code is never implied, custom-code checkpoints ask for the flag, batching is invisible."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import transformers

from core.prm.batching import (
    DEFAULT_BATCH_TOKENS,
    GPU_BATCH_TOKENS,
    default_batch_tokens,
    token_budget_batches,
    truncate,
)
from core.prm.loading import build_spec, fingerprint
from core.prm.scorer import Scorer
from core.prm.types import FormatSettings, Trajectory

TRAJS = [
    Trajectory(f"problem {i}", tuple("step " * (1 + (i * 7) % 5) + str(k) for k in range(1 + i % 4))) for i in range(9)
]

CUSTOM_MODEL_CODE = '''
from transformers import Qwen2ForTokenClassification


class Qwen2ForProcessRewardModel(Qwen2ForTokenClassification):
    """Stand-in for Qwen's remote code: same weights, returns a plain tuple like the real one."""

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        return (super().forward(input_ids=input_ids, attention_mask=attention_mask).logits,)
'''


class _Refused(Exception):
    pass


@pytest.mark.parametrize("family", ["token-cls", "shepherd", "seqcls", "qwen"])
def test_trust_remote_code_defaults_to_false_in_every_from_pretrained_call(save_checkpoint, monkeypatch, family):
    folder = save_checkpoint("llama-causal")
    seen: list[dict] = []

    def record(cls, *args, **kwargs):
        seen.append(kwargs)
        raise _Refused

    for auto in (
        "AutoModel",
        "AutoModelForTokenClassification",
        "AutoModelForCausalLM",
        "AutoModelForSequenceClassification",
    ):
        monkeypatch.setattr(getattr(transformers, auto), "from_pretrained", classmethod(record))
    with pytest.raises(_Refused):
        Scorer.load(str(folder), family, device="cpu")
    assert seen and seen[0]["trust_remote_code"] is False


def _custom_code_checkpoint(save_checkpoint):
    folder = save_checkpoint("qwen2-tokcls", name="qwen-prm-remote")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["Qwen2ForProcessRewardModel"]
    config["auto_map"] = {"AutoModel": "modeling_qwen2_rm.Qwen2ForProcessRewardModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_qwen2_rm.py").write_text(CUSTOM_MODEL_CODE)
    return folder


def test_custom_code_checkpoint_asks_for_the_flag_instead_of_loading_a_random_head(save_checkpoint):
    folder = _custom_code_checkpoint(save_checkpoint)
    with pytest.raises(ValueError, match="--trust-remote-code"):
        Scorer.load(str(folder), "qwen", device="cpu")


def test_custom_code_runs_only_with_the_flag_and_matches_the_native_head(save_checkpoint):
    native = Scorer.load(str(save_checkpoint("qwen2-tokcls", name="native")), "qwen", device="cpu")
    remote = Scorer.load(str(_custom_code_checkpoint(save_checkpoint)), "qwen", device="cpu", trust_remote_code=True)
    assert type(remote.model).__name__ == "Qwen2ForProcessRewardModel"
    for a, b in zip(native.score(TRAJS[:3]), remote.score(TRAJS[:3]), strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-6)


@pytest.mark.parametrize(
    ("kind", "family"),
    [
        ("llama-tokcls", "token-cls"),
        ("llama-causal", "shepherd"),
        ("qwen2-seqcls", "seqcls"),
        ("bert-tokcls", "token-cls"),
    ],
)
def test_batching_by_token_budget_gives_the_same_scores_as_one_by_one(save_checkpoint, kind, family):
    scorer = Scorer.load(str(save_checkpoint(kind)), family, device="cpu")
    batched = scorer.score(TRAJS, batch_tokens=4096)
    passes_batched = scorer.stats.forward_passes
    one_by_one = [scorer.score([t], batch_tokens=1)[0] for t in TRAJS]
    assert passes_batched < len(TRAJS) <= scorer.stats.forward_passes - passes_batched
    for a, b in zip(batched, one_by_one, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)
    assert scorer.stats.padded_tokens >= scorer.stats.tokens


def test_progress_counts_steps_and_ends_at_every_step(save_checkpoint):
    scorer = Scorer.load(str(save_checkpoint("llama-tokcls")), "token-cls", device="cpu")
    calls: list[tuple[int, int]] = []
    scorer.score(TRAJS, batch_tokens=64, progress=lambda done, total: calls.append((done, total)))
    n_steps = sum(len(t.steps) for t in TRAJS)
    assert len(calls) > 1 and calls[-1] == (n_steps, n_steps)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_scorer_id_tracks_weights_family_and_settings(save_checkpoint, tmp_path):
    folder = save_checkpoint("llama-tokcls")
    base = build_spec(str(folder), "token-cls").scorer_id
    assert build_spec(str(folder), "token-cls").scorer_id == base
    assert build_spec(str(folder), "shepherd").scorer_id != base
    assert build_spec(str(folder), "token-cls", settings=FormatSettings(separator=" ки")).scorer_id != base
    retrained = save_checkpoint("llama-tokcls", seed=1)
    assert fingerprint(str(retrained)) != fingerprint(str(folder))
    with pytest.raises(ValueError, match="reference model"):
        build_spec(str(folder), "implicit")
    with pytest.raises(ValueError, match="unknown PRM family"):
        build_spec(str(folder), "magic")


@pytest.mark.parametrize(
    ("kind", "family", "mask_expected"),
    [("llama-tokcls", "token-cls", False), ("bert-tokcls", "token-cls", True), ("qwen2-seqcls", "seqcls", True)],
)
def test_padded_batches_drop_the_mask_only_where_padding_cannot_be_attended(
    save_checkpoint, monkeypatch, kind, family, mask_expected
):
    # Right padding after a causal decoder's tokens is invisible to them; dropping the mask lets SDPA use
    # its is_causal (flash) kernel. The equality with one-by-one scoring is checked above.
    scorer = Scorer.load(str(save_checkpoint(kind)), family, device="cpu")
    masks: list[object] = []
    forward = scorer.model.forward

    def spy(*args, **kwargs):
        masks.append(kwargs.get("attention_mask"))
        return forward(*args, **kwargs)

    monkeypatch.setattr(scorer.model, "forward", spy)
    scorer.score(TRAJS, batch_tokens=4096)
    assert scorer.stats.padded_tokens > scorer.stats.tokens  # the batch really was padded
    assert masks and all((m is not None) is mask_expected for m in masks)


def test_compiled_scorer_traces_the_decoder_and_gives_the_eager_scores(save_checkpoint):
    # The "eager" backend runs TorchDynamo's real graph capture (with dynamic shapes) but no code
    # generation, so this checks the wiring and that ragged batches score the same, in seconds on CPU.
    folder = str(save_checkpoint("llama-tokcls"))
    eager = Scorer.load(folder, "token-cls", device="cpu", compile="off")
    compiled = Scorer.load(folder, "token-cls", device="cpu", compile="on")
    assert compiled.compiled and not eager.compiled
    assert compiled.model.base_model._compiled_call_impl is not None
    assert eager.model.base_model._compiled_call_impl is None
    compiled_eager_backend = Scorer(
        eager.spec, eager.model, eager.tokenizer, "cpu", compile=True, compile_backend="eager"
    )
    assert compiled_eager_backend.compiled
    got = compiled_eager_backend.score(TRAJS, batch_tokens=256)
    for a, b in zip(Scorer.load(folder, "token-cls", device="cpu").score(TRAJS, batch_tokens=256), got, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)
    assert compiled.scorer_id == eager.scorer_id  # same weights, same scores: the cache is shared
    with pytest.raises(ValueError, match="compile must be"):
        Scorer(eager.spec, eager.model, eager.tokenizer, "cpu", compile="sometimes")


def test_auto_compile_waits_for_a_job_big_enough_to_repay_it(save_checkpoint):
    scorer = Scorer.load(str(save_checkpoint("llama-tokcls")), "token-cls", device="cpu")
    scorer.compile_backend = "eager"
    assert scorer.compile_mode == "auto" and scorer.auto_compile_min_tokens is None  # never on CPU
    scorer.score(TRAJS)
    assert not scorer.compiled
    scorer.auto_compile_min_tokens = 10**6  # as on a GPU, with a threshold this job is under
    before = scorer.score(TRAJS)
    assert not scorer.compiled
    scorer.auto_compile_min_tokens = 100
    after = scorer.score(TRAJS)
    assert scorer.compiled and scorer.model.base_model._compiled_call_impl is not None
    for a, b in zip(before, after, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)


def test_the_default_batch_budget_depends_on_the_device(save_checkpoint):
    scorer = Scorer.load(str(save_checkpoint("llama-tokcls")), "token-cls", device="cpu")
    assert scorer.batch_tokens == DEFAULT_BATCH_TOKENS and default_batch_tokens("cuda:1") == GPU_BATCH_TOKENS
    scorer.batch_tokens = 64  # score() without a budget follows the scorer's own
    scorer.score(TRAJS)
    assert scorer.stats.forward_passes > 2


def test_the_fast_causality_table_agrees_with_transformers():
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    from core.prm import loading

    for model_type in loading._KNOWN_DECODERS:
        assert model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        assert loading.is_causal({"model_type": model_type})
    assert loading.is_causal({"model_type": "falcon"})  # not in the table: transformers' mappings decide


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "bert"},
        {"model_type": "camembert"},  # masked-LM head
        {"model_type": "deberta-v2"},  # no causal-LM head
        {"model_type": "t5", "is_encoder_decoder": True},
        {"model_type": "t5"},  # a token classifier on T5's encoder: no causal-LM head either
        {"model_type": "xlnet"},  # causal-LM head, bidirectional attention
        {"model_type": "gemma3_text", "use_bidirectional_attention": True},  # EmbeddingGemma-style
        {"model_type": "no-such-model"},
    ],
)
def test_anything_not_known_to_be_a_decoder_counts_as_bidirectional(config):
    from core.prm.loading import is_causal
    from core.prm.scorer import _padding_mask_needed

    assert not is_causal(config)
    model = SimpleNamespace(config=SimpleNamespace(to_dict=lambda: config))
    assert _padding_mask_needed("token-cls", model)  # so padded batches keep their attention mask


def test_a_local_checkpoint_is_identified_by_its_content_not_its_path(save_checkpoint, tmp_path, monkeypatch):
    import shutil

    folder = save_checkpoint("llama-tokcls")
    monkeypatch.chdir(folder.parent)
    copy = shutil.copytree(folder, tmp_path / "elsewhere" / "copy")
    ids = {build_spec(str(path), "token-cls").scorer_id for path in (folder, folder.name, f"./{folder.name}", copy)}
    assert len(ids) == 1
    assert build_spec(str(save_checkpoint("llama-tokcls", seed=1)), "token-cls").scorer_id not in ids


def test_the_reference_model_is_pinned_by_its_own_revision(save_checkpoint, monkeypatch):
    from core.prm import loading
    from core.prm import scorer as scorer_module

    policy, reference = str(save_checkpoint("llama-causal")), str(save_checkpoint("llama-causal", seed=1))
    fingerprinted: dict[str, str | None] = {}
    loaded: dict[str, str | None] = {}
    real_fingerprint, real_load = loading.fingerprint, scorer_module.load_model

    def record_fingerprint(model, revision=None):
        fingerprinted[model] = revision
        return real_fingerprint(model)

    def record_load(family, model, **kwargs):
        loaded[model] = kwargs["revision"]
        return real_load(family, model, **{**kwargs, "revision": None})  # local folders have no revisions

    monkeypatch.setattr(loading, "fingerprint", record_fingerprint)
    monkeypatch.setattr(scorer_module, "load_model", record_load)
    Scorer.load(policy, "implicit", device="cpu", ref_model=reference, revision="v2", ref_revision="base-1")
    assert fingerprinted == loaded == {policy: "v2", reference: "base-1"}


def _failing_backend(graph_module, example_inputs):
    raise RuntimeError("no Triton on this machine")


def test_a_failing_compiler_falls_back_to_eager_scores_with_a_warning(save_checkpoint):
    folder = str(save_checkpoint("llama-tokcls"))
    expected = Scorer.load(folder, "token-cls", device="cpu", compile="off").score(TRAJS, batch_tokens=256)
    scorer = Scorer.load(folder, "token-cls", device="cpu", compile="off")
    scorer.compile_backend = _failing_backend
    scorer.set_compile_mode("on")
    assert scorer.compiled
    with pytest.warns(RuntimeWarning, match="torch.compile failed, scoring eagerly"):
        got = scorer.score(TRAJS, batch_tokens=256)
    assert not scorer.compiled and scorer.compile_mode == "off" and "no Triton" in scorer.compile_error
    assert scorer.model.base_model._compiled_call_impl is None
    passes = scorer.stats.forward_passes
    assert passes == len(token_budget_batches([truncate(s, 10**9) for s in scorer.encode(TRAJS)], 256))
    for a, b in zip(expected, got, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-6)


def test_compile_mode_can_change_on_a_loaded_scorer(save_checkpoint):
    scorer = Scorer.load(str(save_checkpoint("llama-tokcls")), "token-cls", device="cpu", compile="off")
    scorer.compile_backend = "eager"
    scorer.set_compile_mode("on")
    assert scorer.compiled and scorer.model.base_model._compiled_call_impl is not None
    scorer.set_compile_mode("off")
    assert not scorer.compiled and scorer.model.base_model._compiled_call_impl is None
    with pytest.raises(ValueError, match="compile must be"):
        scorer.set_compile_mode("sometimes")


def test_scoring_builds_no_kv_cache_and_refuses_a_useless_budget(save_checkpoint):
    import torch

    scorer = Scorer.load(str(save_checkpoint("llama-causal")), "shepherd", device="cpu")
    with torch.inference_mode():
        out = scorer.model.base_model(input_ids=torch.tensor([[5, 6, 7, 8]]))
    assert out.past_key_values is None  # a cache of the whole batch would be memory for nothing
    with pytest.raises(ValueError, match="batch_tokens must be a positive number"):
        scorer.score(TRAJS, batch_tokens=0)


def test_large_weight_files_are_fingerprinted_across_their_whole_length(tmp_path, monkeypatch):
    from core.prm import loading

    monkeypatch.setattr(loading, "_FULL_HASH_LIMIT", 1 << 20)  # treat a 4 MiB file as a "large" shard
    monkeypatch.setattr(loading, "_SAMPLE_BYTES", 1 << 16)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    data = bytearray(4 << 20)
    (folder / "model.safetensors").write_bytes(bytes(data))
    before = loading.fingerprint(str(folder))
    data[len(data) // 2 : len(data) // 2 + (256 << 10)] = b"\x01" * (256 << 10)  # a middle layer changed
    (folder / "model.safetensors").write_bytes(bytes(data))
    assert len(data) == 4 << 20  # same size, same head and tail: only the spread slices can tell
    assert loading.fingerprint(str(folder)) != before
