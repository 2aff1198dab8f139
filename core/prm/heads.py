"""Reading step scores out of one padded batch, per family (torch is imported by the caller's process).

Every function takes a right-padded batch (with its attention mask, or None where padding cannot
change the outputs that are read) and ``(row, position)`` index tensors and returns one score per
read. Causal-LM families never materialise full-vocabulary logits for the whole batch: they take the
final hidden states and project only the rows (and, for ``+``/``-``, only the two vocabulary columns)
that a score needs. For a 150k-token vocabulary that is the difference between a few kB and
gigabytes per batch.
"""

from __future__ import annotations

from typing import Any

import torch

_LOGPROB_CHUNK_ROWS = 2048

PaddingMask = torch.Tensor | None  # None: no padding the read outputs could see


def _logits_of(output: Any) -> torch.Tensor:
    """Logits from a ModelOutput or from a custom model's plain tuple (Qwen PRM remote code returns one)."""
    return output.logits if hasattr(output, "logits") else output[0]


def _positive_probability(logits: torch.Tensor) -> torch.Tensor:
    """One label → sigmoid; two or more → softmax probability of label 1 (the "correct" class)."""
    logits = logits.float()
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits[..., 0])
    return torch.softmax(logits, dim=-1)[..., 1]


def token_classifier_scores(
    model: Any, input_ids: torch.Tensor, attention_mask: PaddingMask, rows: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """``token-cls`` and ``qwen``: class-1 probability at each separator position."""
    logits = _logits_of(model(input_ids=input_ids, attention_mask=attention_mask))
    return _positive_probability(logits[rows, positions])


def sequence_classifier_scores(model: Any, input_ids: torch.Tensor, attention_mask: PaddingMask) -> torch.Tensor:
    """``seqcls``: class-1 probability (or sigmoid of a single logit) per sequence."""
    return _positive_probability(_logits_of(model(input_ids=input_ids, attention_mask=attention_mask)))


def _final_hidden(model: Any, input_ids: torch.Tensor, attention_mask: PaddingMask) -> torch.Tensor:
    # base_model is the decoder stack without the LM head; its output already has the final norm applied.
    return model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def good_bad_scores(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: PaddingMask,
    rows: torch.Tensor,
    positions: torch.Tensor,
    good_id: int,
    bad_id: int,
) -> torch.Tensor:
    """``shepherd`` and ``rlhflow``: softmax over the ``+``/``-`` logits at each read position, take ``+``.

    Equivalent to ``model(...).logits[rows, positions][:, [good, bad]].softmax(-1)[:, 0]`` for LMs whose
    logits are ``lm_head(last_hidden)``, but projects only two vocabulary rows at the read positions.
    """
    hidden = _final_hidden(model, input_ids, attention_mask)[rows, positions]
    head = model.get_output_embeddings()
    weight = head.weight[[good_id, bad_id]]
    logits = hidden.float() @ weight.float().T
    if getattr(head, "bias", None) is not None:
        logits = logits + head.bias[[good_id, bad_id]].float()
    return torch.softmax(logits, dim=-1)[:, 0]


def token_logprobs(
    model: Any, input_ids: torch.Tensor, attention_mask: PaddingMask, rows: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """Log π(y_t | y_<t) for the tokens at ``(rows, positions)``, read from the outputs at ``positions - 1``.

    The full-vocabulary projection is done in chunks of rows so memory stays bounded on long responses.
    """
    hidden = _final_hidden(model, input_ids, attention_mask)[rows, positions - 1]
    targets = input_ids[rows, positions]
    head = model.get_output_embeddings()
    pieces = []
    for start in range(0, hidden.shape[0], _LOGPROB_CHUNK_ROWS):
        logits = head(hidden[start : start + _LOGPROB_CHUNK_ROWS]).float()
        chosen = logits.gather(1, targets[start : start + _LOGPROB_CHUNK_ROWS, None])[:, 0]
        pieces.append(chosen - torch.logsumexp(logits, dim=-1))
    return torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
