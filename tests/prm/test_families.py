"""Each PRM family end to end on tiny random checkpoints, against each model card's own (naive) recipe."""

from __future__ import annotations

import math

import pytest
import torch
from prm_helpers import build_model, char_tokenizer

from core.prm.scorer import Scorer
from core.prm.types import FormatSettings, Trajectory

TRAJS = [
    Trajectory("Start with 3, then apply: + 4 * 2.", ("3 + 4 = 7", "7 * 2 = 14")),
    Trajectory("Q", ("a", "bb c", "ccc", "d")),
    Trajectory("Another problem with a longer prompt text", ("x = 1",)),
]
TOK = char_tokenizer()


def enc(text: str, tok=TOK) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def full_logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]))
    return (out.logits if hasattr(out, "logits") else out[0])[0].float()


def reference_token_cls(model: torch.nn.Module, tok, traj: Trajectory, sep: str = "\n") -> list[float]:
    """Per-prefix recipe: for step k run [bos]+prompt+Σ_{j≤k}(step_j+sep) and read the last position."""
    scores = []
    for k in range(len(traj.steps)):
        ids = (
            [tok.bos_token_id]
            + enc(traj.prompt, tok)
            + sum((enc(s, tok) + enc(sep, tok) for s in traj.steps[: k + 1]), [])
        )
        scores.append(torch.softmax(full_logits(model, ids)[-1], -1)[1].item())
    return scores


def reference_qwen(model: torch.nn.Module, tok, traj: Trajectory) -> list[float]:
    """The Qwen card: ChatML string, steps joined by <extra_0> plus a trailing one, softmax col 1 at the tags."""
    system = "Please reason step by step, and put your final answer within \\boxed{}."
    text = (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{traj.prompt}<|im_end|>\n"
        f"<|im_start|>assistant\n{'<extra_0>'.join(traj.steps)}<extra_0><|im_end|>\n"
    )
    ids = enc(text, tok)
    probs = torch.softmax(full_logits(model, ids), -1)[:, 1]
    tag = tok.convert_tokens_to_ids("<extra_0>")
    return [probs[i].item() for i, t in enumerate(ids) if t == tag]


def reference_shepherd(model: torch.nn.Module, tok, traj: Trajectory) -> list[float]:
    """The Math-Shepherd card: question + ' ' + 'step ки\\n...', softmax over [+,-] logits at each ки."""
    ids = tok(traj.prompt + " " + "\n".join(f"{s} ки" for s in traj.steps))["input_ids"]
    candidates = [tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")]
    probs = torch.softmax(full_logits(model, ids)[:, candidates], -1)[:, 0]
    tag = tok.convert_tokens_to_ids("ки")
    return [probs[i].item() for i, t in enumerate(ids) if t == tag]


def reference_rlhflow(model: torch.nn.Module, tok, traj: Trajectory) -> list[float]:
    """The official RLHFlow loop: re-encode the growing chat per step, read the logits predicting its last '+'."""
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    conversation, scores = [], []
    for k, step in enumerate(traj.steps):
        conversation.append({"role": "user", "content": f"{traj.prompt} {step}" if k == 0 else step})
        conversation.append({"role": "assistant", "content": "+"})
        ids = enc(tok.apply_chat_template(conversation, tokenize=False), tok)
        last_plus = max(i for i, t in enumerate(ids) if t == plus)
        logits = full_logits(model, ids)[last_plus - 1, [plus, minus]]
        scores.append(torch.softmax(logits, -1)[0].item())
    return scores


def reference_seqcls(model: torch.nn.Module, tok, traj: Trajectory) -> list[float]:
    texts = [traj.prompt + "\n" + "\n".join(traj.steps[: k + 1]) for k in range(len(traj.steps))]
    return [torch.sigmoid(full_logits(model, tok(t)["input_ids"])[0]).item() for t in texts]


def reference_implicit(
    policy: torch.nn.Module, ref: torch.nn.Module, tok, traj: Trajectory, beta: float
) -> list[float]:
    """β·Σ over each step's tokens (its trailing separator included) of log π − log π_ref."""
    ids = [tok.bos_token_id] + enc(traj.prompt + "\n", tok)
    spans = []
    for k, step in enumerate(traj.steps):
        piece = enc(step + ("\n" if k < len(traj.steps) - 1 else ""), tok)
        spans.append((len(ids), len(ids) + len(piece)))
        ids += piece
    lp = torch.log_softmax(full_logits(policy, ids), -1) - torch.log_softmax(full_logits(ref, ids), -1)
    per_token = [lp[t - 1, ids[t]].item() for t in range(len(ids))]
    return [beta * sum(per_token[a:b]) for a, b in spans]


CASES = [
    ("llama-tokcls", "token-cls", reference_token_cls),
    ("qwen2-tokcls", "token-cls", reference_token_cls),
    ("qwen2-tokcls", "qwen", reference_qwen),
    ("llama-causal", "shepherd", reference_shepherd),
    ("llama-causal", "rlhflow", reference_rlhflow),
    ("qwen2-seqcls", "seqcls", reference_seqcls),
]


@pytest.mark.parametrize(("kind", "family", "reference"), CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_single_pass_scores_match_the_model_card_recipe(save_checkpoint, kind, family, reference):
    folder = save_checkpoint(kind)
    scorer = Scorer.load(str(folder), family, device="cpu")
    results = scorer.score(TRAJS)
    for traj, result in zip(TRAJS, results, strict=True):
        expected = reference(scorer.model, scorer.tokenizer, traj)
        assert len(expected) == len(traj.steps)
        assert result.scores == pytest.approx(expected, abs=1e-5)
        assert result.truncated == [False] * len(traj.steps)
    # Random heads give different values per position, so equality above pins each score to its step.
    assert len({round(s, 6) for r in results for s in r.scores}) > len(TRAJS)
    assert scorer.stats.forward_passes == 1  # every sequence fits one 16k-token batch


def test_implicit_is_beta_times_log_ratio_summed_over_each_step(save_checkpoint):
    policy = save_checkpoint("llama-causal", seed=0)
    reference = save_checkpoint("llama-causal", seed=1)
    settings = FormatSettings(beta=0.05)
    scorer = Scorer.load(str(policy), "implicit", device="cpu", ref_model=str(reference), settings=settings)
    results = scorer.score(TRAJS)
    for traj, result in zip(TRAJS, results, strict=True):
        expected = reference_implicit(scorer.model, scorer.ref_model, scorer.tokenizer, traj, beta=0.05)
        assert result.scores == pytest.approx(expected, abs=1e-5)
    assert scorer.stats.forward_passes == 2  # policy and reference, one batch each


def test_bidirectional_token_classifier_scores_every_step_in_one_pass(save_checkpoint):
    scorer = Scorer.load(str(save_checkpoint("bert-tokcls")), "token-cls", device="cpu")
    results = scorer.score(TRAJS)
    model, tok = scorer.model, scorer.tokenizer
    for traj, result in zip(TRAJS, results, strict=True):
        ids = [tok.bos_token_id] + enc(traj.prompt, tok) + sum((enc(s, tok) + enc("\n", tok) for s in traj.steps), [])
        probs = torch.softmax(full_logits(model, ids), -1)[:, 1]
        newline = tok.convert_tokens_to_ids("\n")
        expected = [probs[i].item() for i, t in enumerate(ids) if t == newline]
        assert result.scores == pytest.approx(expected, abs=1e-5)


def hand_set_classifier(score_at_separator: float) -> torch.nn.Module:
    """A Llama token classifier whose score is ``score_at_separator`` exactly at '\\n' and different elsewhere.

    Attention and MLP outputs are zeroed, so the final hidden state is RMSNorm(embedding) of the token
    itself. The separator's embedding is all ones; the head maps mean(hidden) to the logit of class 1.
    """
    model = build_model("llama-tokcls", seed=3)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        newline = TOK.convert_tokens_to_ids("\n")
        model.model.embed_tokens.weight[newline] = 1.0
        model.score.weight.zero_()
        model.score.weight[1] = math.log(score_at_separator / (1 - score_at_separator)) / 32
        if model.score.bias is not None:
            model.score.bias.zero_()
    return model


def test_hand_set_head_puts_the_known_score_on_every_step(save_checkpoint):
    folder = save_checkpoint("llama-tokcls", name="handset", model=hand_set_classifier(0.75))
    scorer = Scorer.load(str(folder), "token-cls", device="cpu")
    results = scorer.score(TRAJS)
    for traj, result in zip(TRAJS, results, strict=True):
        assert result.scores == pytest.approx([0.75] * len(traj.steps), abs=1e-6)
    # Any other position gives another value, so an off-by-one read would fail the check above.
    with torch.no_grad():
        ids = torch.tensor([[TOK.bos_token_id] + enc("ab 12")])
        probs = torch.softmax(scorer.model(input_ids=ids).logits[0], -1)[:, 1]
    assert all(abs(p - 0.75) > 1e-3 for p in probs.tolist())


def test_truncation_is_reported_per_step_and_never_silent(save_checkpoint):
    folder = save_checkpoint("llama-tokcls", name="handset", model=hand_set_classifier(0.75))
    traj = Trajectory("Q", ("aaaa", "bbbb", "cccc", "dddd"))  # [bos] Q + 4 × (4 chars + \n): seps at 6, 11, 16, 21
    scorer = Scorer.load(str(folder), "token-cls", device="cpu", settings=FormatSettings(max_length=15))
    [result] = scorer.score([traj])
    assert result.truncated == [False, False, True, True]
    assert result.scores[:2] == pytest.approx([0.75, 0.75], abs=1e-6)
    assert all(math.isnan(s) for s in result.scores[2:])
    assert result.n_tokens == 22 and result.was_truncated


def test_seqcls_drops_prefixes_longer_than_the_limit(save_checkpoint):
    folder = save_checkpoint("qwen2-seqcls")
    first_prefix = len(char_tokenizer()("Q\naaaa")["input_ids"])
    settings = FormatSettings(max_length=first_prefix + 1)  # the next prefix is 5 characters longer
    scorer = Scorer.load(str(folder), "seqcls", device="cpu", settings=settings)
    [result] = scorer.score([Trajectory("Q", ("aaaa", "bbbb", "cccc"))])
    assert result.truncated == [False, True, True]
    assert not math.isnan(result.scores[0]) and math.isnan(result.scores[1])
