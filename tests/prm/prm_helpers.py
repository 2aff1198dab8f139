"""Tiny offline PRM checkpoints (random weights, hidden size 32) and a character tokenizer for the PRM tests."""

from __future__ import annotations

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForTokenClassification,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForTokenClassification,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForSequenceClassification,
    Qwen2ForTokenClassification,
)

SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
MARKERS = ["<extra_0>", "<|im_start|>", "<|im_end|>", "ки"]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character, plus the family markers as single tokens; BOS prepended on request."""
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {t: i for i, t in enumerate(SPECIALS + MARKERS + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
    tok.add_special_tokens(SPECIALS + MARKERS)
    tok.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="[BOS]", eos_token="[EOS]", pad_token="[PAD]", unk_token="[UNK]"
    )
    fast.chat_template = CHATML
    return fast


VOCAB_SIZE = len(SPECIALS) + len(MARKERS) + 96

_TINY = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    pad_token_id=0,
    bos_token_id=2,
    eos_token_id=3,
)


def build_model(kind: str, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised tiny model of ``kind`` (fixed seed, so two builds are identical)."""
    torch.manual_seed(seed)
    if kind == "llama-causal":
        return LlamaForCausalLM(LlamaConfig(**_TINY))
    if kind == "llama-tokcls":
        return LlamaForTokenClassification(LlamaConfig(**_TINY, num_labels=2))
    if kind == "qwen2-tokcls":
        return Qwen2ForTokenClassification(Qwen2Config(**_TINY, num_labels=2))
    if kind == "qwen2-seqcls":
        return Qwen2ForSequenceClassification(Qwen2Config(**_TINY, num_labels=1))
    if kind == "bert-tokcls":
        return BertForTokenClassification(
            BertConfig(
                vocab_size=VOCAB_SIZE,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=512,
                num_labels=2,
                pad_token_id=0,
            )
        )
    raise ValueError(kind)


PRM_DDL = """
CREATE TABLE prm_scorers(scorer_id VARCHAR PRIMARY KEY, spec JSON, created_at TIMESTAMP);
CREATE TABLE prm_cache(scorer_id VARCHAR, content_hash VARCHAR, score DOUBLE, truncated BOOLEAN,
                       PRIMARY KEY (scorer_id, content_hash));
CREATE TABLE prm_step_scores(run_id VARCHAR, traj_id VARCHAR, step_idx INTEGER, scorer_id VARCHAR, score DOUBLE,
                             truncated BOOLEAN, PRIMARY KEY (run_id, traj_id, step_idx, scorer_id));
CREATE TABLE prm_active(run_id VARCHAR PRIMARY KEY, scorer_id VARCHAR);
"""
