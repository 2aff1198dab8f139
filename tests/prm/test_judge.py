"""The ``judge`` family (generative verifier: P(Yes) / (P(Yes) + P(No)) at "Is step k correct?") end to end on a
tiny causal LM built from a config and a tokenizer built here, through the real loading and scoring path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from prm_helpers import char_tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

from core.cli import main
from core.prm.checks import PrmRefused
from core.prm.loading import build_spec
from core.prm.scorer import Scorer
from core.prm.types import FormatSettings, ScorerSpec, Trajectory

TRAJS = [
    Trajectory("Start with 3, then apply: + 4 * 2.", ("3 + 4 = 7", "7 * 2 = 14")),
    Trajectory("Q", ("a", "bb c", "ccc")),
    Trajectory("Another problem", ("x = 1",)),
]


def judge_tokenizer(chat: bool = True):
    """The PRM tests' character tokenizer plus "Yes" and "No" as single tokens (as in real judge vocabularies)."""
    tok = char_tokenizer()
    tok.add_tokens(["Yes", "No"])
    if not chat:
        tok.chat_template = None
    return tok


def save_judge(folder: Path, chat: bool = True, seed: int = 0) -> Path:
    tok = judge_tokenizer(chat)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
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
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def naive_judge(folder: Path, traj: Trajectory, question, prefill: str = "", yes="Yes", no="No") -> list[float]:
    """Per step: render the question by hand, run the whole model, softmax over the two answers' last logits."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder).eval()
    yes_id, no_id = tok.convert_tokens_to_ids(yes), tok.convert_tokens_to_ids(no)
    scores = []
    for k in range(len(traj.steps)):
        text = question(traj, k)
        if tok.chat_template is not None:
            rendered = f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n" + prefill
            ids = tok(rendered, add_special_tokens=False)["input_ids"]
        else:
            ids = tok(text + prefill)["input_ids"]  # the post-processor prepends [BOS]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        scores.append(torch.softmax(logits[[yes_id, no_id]], -1)[0].item())
    return scores


def default_question(traj: Trajectory, k: int) -> str:
    listed = "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(traj.steps[: k + 1]))
    return f"{traj.prompt}\n\n{listed}\n\nIs step {k + 1} correct? Answer Yes or No."


@pytest.mark.parametrize("chat", [True, False])
def test_judge_matches_the_naive_recipe_in_one_batch_or_many(tmp_path, chat):
    folder = save_judge(tmp_path / "judge", chat=chat)
    scorer = Scorer.load(str(folder), "judge", device="cpu")
    assert scorer.spec.settings.judge_template is not None  # defaults written into the identity
    one_batch = scorer.score(TRAJS, batch_tokens=1 << 16)
    many = scorer.score(TRAJS, batch_tokens=64)
    assert scorer.stats.forward_passes > 2  # the small budget really split the inputs
    for traj, a, b in zip(TRAJS, one_batch, many, strict=True):
        expected = naive_judge(folder, traj, default_question)
        assert a.scores == pytest.approx(expected, abs=1e-5)
        assert b.scores == pytest.approx(expected, abs=1e-5)
        assert all(0.0 < s < 1.0 for s in a.scores) and not a.was_truncated


def test_template_prefill_and_answer_tokens_are_configurable(tmp_path):
    folder = save_judge(tmp_path / "judge")
    settings = FormatSettings(
        judge_template="Problem: {problem}\nCheck: {step}\nStep {k} ok?",
        judge_prefill="A:",
        yes_token="Y",
        no_token="N",
    )
    scorer = Scorer.load(str(folder), "judge", device="cpu", settings=settings)
    default = build_spec(str(folder), "judge")
    assert scorer.spec.scorer_id != default.scorer_id
    got = scorer.score(TRAJS[:2])

    def question(traj: Trajectory, k: int) -> str:
        return f"Problem: {traj.prompt}\nCheck: {traj.steps[k]}\nStep {k + 1} ok?"

    for traj, result in zip(TRAJS[:2], got, strict=True):
        assert result.scores == pytest.approx(naive_judge(folder, traj, question, "A:", "Y", "N"), abs=1e-5)


def test_judge_refuses_what_it_cannot_read(tmp_path):
    folder = save_judge(tmp_path / "judge")
    with pytest.raises(PrmRefused, match=r"--yes-token 'Yes!' encodes to 2 tokens") as info:
        Scorer.load(str(folder), "judge", device="cpu", settings=FormatSettings(yes_token="Yes!"))
    assert "\n" not in str(info.value)
    with pytest.raises(PrmRefused, match="unknown placeholder"):
        build_spec(str(folder), "judge", settings=FormatSettings(judge_template="{question} step {k}?"))


def test_judge_truncates_steps_whose_question_does_not_fit(tmp_path):
    folder = save_judge(tmp_path / "judge")
    scorer = Scorer.load(
        str(folder), "judge", device="cpu", settings=FormatSettings(max_length=85)
    )  # inputs of 66, 79, 91 tokens
    result = scorer.score([TRAJS[1]])[0]
    # Inputs grow with k: the first question fits, the last one does not and is reported, never guessed.
    assert result.truncated[0] is False and result.truncated[-1] is True
    assert result.scores[-1] != result.scores[-1]  # NaN


def test_other_families_keep_their_scorer_ids():
    # Computed before the judge settings existed: cached scores of every other family stay addressable.
    assert ScorerSpec(family="token-cls", model="/x", fingerprint="local:abc").scorer_id == "token-cls:d0a8e17b16123042"
    shepherd = ScorerSpec(
        family="shepherd", model="org/prm", fingerprint="hub:123", settings=FormatSettings(step_tag="ки")
    )
    assert shepherd.scorer_id == "shepherd:3cb6d58814fde785"


def test_rescore_command_with_the_judge_family(tmp_path, capsys):
    from core.ingest.runner import ingest
    from core.store import queries
    from core.store.database import Store
    from core.synth import write_jsonl

    source = tmp_path / "arithmetic.jsonl"
    write_jsonl(source, "arithmetic", prompts=1, iterations=1, group_size=2, seed=1)
    db = tmp_path / "runs.duckdb"
    store = Store.open(db)
    ingest(store, [str(source)], run="arith")
    store.close()
    folder = save_judge(tmp_path / "judge")
    args = ["rescore", "--db", str(db), "--run", "arith", "--model", str(folder), "--family", "judge"]
    assert (
        main(
            [
                *args,
                "--device",
                "cpu",
                "--yes-token",
                "Yes",
                "--judge-template",
                r"{problem}\n{steps}\nIs step {k} correct?",
            ]
        )
        == 0
    )
    assert "0 from cache" in capsys.readouterr().out
    store = Store.open(db)
    steps = queries.steps(store, run_id="arith")
    store.close()
    assert steps["prm"].between(0.0, 1.0).all()
    # The same question again is answered from the cache; the default question is another scorer.
    assert main([*args, "--device", "cpu", "--judge-template", r"{problem}\n{steps}\nIs step {k} correct?"]) == 0
    assert " 0 scored by the model" in capsys.readouterr().out
