"""Train the demo PRM: a tiny Llama token classifier on the arithmetic environment, Math-Shepherd style.

Step labels come from Monte-Carlo completions, not from ground truth: from each prefix of a sampled
solution the scripted policy finishes the problem ``mc_completions`` times, and the label is the
fraction of completions that reach the right answer (Math-Shepherd's soft estimate). The ground-truth
step labels are used only to evaluate the trained model on held-out problems.

The result is a standard Hugging Face folder (``config.json``, ``model.safetensors``, tokenizer files)
that the ``token-cls`` family loads offline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.prm.formats import encode_token_cls
from core.prm.types import FormatSettings, Trajectory
from core.synth import arithmetic


@dataclass(frozen=True)
class DemoConfig:
    """Knobs of the demo training run (defaults train in a few minutes on two shared CPU cores).

    Attributes:
        seed: Seeds problems, rollouts, completions and the model init.
        train_problems: Problems (one sampled solution each) in the training set.
        eval_problems: Held-out problems for the ROC-AUC.
        mc_completions: Completions per prefix for the Monte-Carlo label.
        policy_error: Range of per-step slip rates of the sampled solutions.
        completer_error: Slip rate of the completer policy.
        hidden_size: Model width.
        layers: Transformer blocks.
        heads: Attention heads.
        train_steps: Optimiser steps.
        batch_size: Solutions per step.
        learning_rate: Peak AdamW learning rate (cosine decay).
    """

    seed: int = 0
    train_problems: int = 3000
    eval_problems: int = 500
    mc_completions: int = 8
    policy_error: tuple[float, float] = (0.05, 0.4)
    completer_error: float = 0.05
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    train_steps: int = 800
    batch_size: int = 32
    learning_rate: float = 3e-3


@dataclass
class Example:
    """One solution with its Monte-Carlo labels and (for evaluation only) its ground-truth labels."""

    trajectory: Trajectory
    mc_labels: list[float]
    true_labels: list[float]
    prefix_ok: list[float] = field(default_factory=list)


@dataclass
class DemoReport:
    """What training produced, for ``DEMO_PRM.md``.

    Attributes:
        auc_vs_label: ROC-AUC of the model's step scores against the ground-truth step labels (held out).
        auc_vs_prefix_ok: ROC-AUC against "no error so far" (ProcessBench's first-error view).
        mc_auc_vs_label: ROC-AUC of the Monte-Carlo labels themselves against the ground truth (training
            set): the ceiling a model fitting its labels perfectly would reach.
        n_train_steps: Labelled training steps.
        n_eval_steps: Held-out steps.
        train_seconds: Wall time of the optimisation.
        folder_bytes: Size of the saved folder.
        config: The run's configuration.
    """

    auc_vs_label: float
    auc_vs_prefix_ok: float
    mc_auc_vs_label: float
    n_train_steps: int
    n_eval_steps: int
    train_seconds: float
    folder_bytes: int
    config: dict


def monte_carlo_labels(
    problem: arithmetic.Problem, lines: list[str], rng: np.random.Generator, completions: int, error: float
) -> list[float]:
    """Math-Shepherd soft labels: per prefix, the share of scripted completions that end on the right answer."""
    labels = []
    for k in range(len(lines)):
        prefix = lines[: k + 1]
        wins = sum(
            arithmetic.outcome(problem, arithmetic.policy_lines(problem, rng, error, prefix))
            for _ in range(completions)
        )
        labels.append(wins / completions)
    return labels


def make_examples(n_problems: int, config: DemoConfig, rng: np.random.Generator) -> list[Example]:
    """Sample problems and one solution each, and label every step by Monte-Carlo completion."""
    examples = []
    for _ in range(n_problems):
        problem = arithmetic.make_problem(rng)
        lines = arithmetic.policy_lines(problem, rng, float(rng.uniform(*config.policy_error)))
        truth = [float(x) for x in arithmetic.step_labels(problem, lines)]
        prefix_ok = list(np.cumprod(truth).astype(float))
        mc = monte_carlo_labels(problem, lines, rng, config.mc_completions, config.completer_error)
        examples.append(Example(Trajectory(problem.text, tuple(lines)), mc, truth, prefix_ok))
    return examples


def _encode_batch(tokenizer, examples: list[Example]) -> tuple:  # type: ignore[no-untyped-def]
    """Right-padded ids, mask, and (row, position, target) triples of the separator reads."""
    import torch

    settings = FormatSettings()
    encoded = [encode_token_cls(tokenizer, ex.trajectory, i, settings)[0] for i, ex in enumerate(examples)]
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    rows, positions, targets = [], [], []
    for row, (enc, ex) in enumerate(zip(encoded, examples, strict=True)):
        ids[row, : len(enc.input_ids)] = torch.tensor(enc.input_ids)
        mask[row, : len(enc.input_ids)] = 1
        for read in enc.reads:
            rows.append(row)
            positions.append(read.position)
            targets.append(ex.mc_labels[read.step])
    return ids, mask, torch.tensor(rows), torch.tensor(positions), torch.tensor(targets)


def _roc_auc(labels: list[float], scores: list[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(labels) >= 0.5, scores))


def train_demo_prm(out: str | Path, config: DemoConfig | None = None, log: Callable[[str], None] = print) -> DemoReport:
    """Train the demo PRM, save it to ``out`` and evaluate it through the ``token-cls`` scorer path.

    Args:
        out: Destination folder (created; existing files are overwritten).
        config: Training configuration.
        log: Where progress lines go.

    Returns:
        A :class:`DemoReport` with held-out ROC-AUCs.
    """
    import torch
    from transformers import LlamaConfig, LlamaForTokenClassification

    from core.prm.demo_tokenizer import build_demo_tokenizer
    from core.prm.scorer import Scorer

    config = config or DemoConfig()
    out = Path(out)
    rng = np.random.default_rng([config.seed, 7])
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    train = make_examples(config.train_problems, config, rng)
    held_out = make_examples(config.eval_problems, config, rng)
    log(f"labelled {sum(len(e.mc_labels) for e in train)} steps by Monte-Carlo in {time.perf_counter() - started:.1f}s")

    tokenizer = build_demo_tokenizer()
    model = LlamaForTokenClassification(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=config.hidden_size,
            intermediate_size=2 * config.hidden_size,
            num_hidden_layers=config.layers,
            num_attention_heads=config.heads,
            num_key_value_heads=config.heads,
            max_position_embeddings=256,
            num_labels=2,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=None,
            tie_word_embeddings=False,
        )
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.learning_rate, total_steps=config.train_steps)
    train_started = time.perf_counter()
    model.train()
    for step in range(config.train_steps):
        picks = rng.choice(len(train), size=config.batch_size, replace=False)
        ids, mask, rows, positions, targets = _encode_batch(tokenizer, [train[i] for i in picks])
        logits = model(input_ids=ids, attention_mask=mask).logits[rows, positions]
        log_probs = torch.log_softmax(logits, dim=-1)
        # Soft-label cross-entropy: the Monte-Carlo fraction is the target probability of "good".
        loss = -(targets * log_probs[:, 1] + (1 - targets) * log_probs[:, 0]).mean()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if step % 250 == 0 or step == config.train_steps - 1:
            log(f"step {step:5d}  loss {loss.item():.4f}")
    train_seconds = time.perf_counter() - train_started

    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    check_tokenizer_reload(out, tokenizer)
    (out / "README.md").write_text(_model_card(config), encoding="utf-8")
    scorer = Scorer.load(str(out), "token-cls", device="cpu")
    results = scorer.score([e.trajectory for e in held_out])
    scores = [s for r in results for s in r.scores]
    report = DemoReport(
        auc_vs_label=_roc_auc([y for e in held_out for y in e.true_labels], scores),
        auc_vs_prefix_ok=_roc_auc([y for e in held_out for y in e.prefix_ok], scores),
        mc_auc_vs_label=_roc_auc([y for e in train for y in e.true_labels], [y for e in train for y in e.mc_labels]),
        n_train_steps=sum(len(e.mc_labels) for e in train),
        n_eval_steps=len(scores),
        train_seconds=train_seconds,
        folder_bytes=sum(p.stat().st_size for p in out.iterdir() if p.is_file()),
        config=asdict(config),
    )
    (out / "training_report.json").write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    log(
        f"held-out ROC-AUC vs step labels {report.auc_vs_label:.3f}, vs no-error-so-far "
        f"{report.auc_vs_prefix_ok:.3f}; trained in {train_seconds:.0f}s; {report.folder_bytes / 1e6:.1f} MB"
    )
    return report


def check_tokenizer_reload(out: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Check that AutoTokenizer, given the saved folder (config included), encodes exactly like the built tokenizer.

    transformers may swap in a model-specific tokenizer class chosen from ``config.json``; that class
    must not change the pre-tokenization the model was trained with.
    """
    from transformers import AutoTokenizer

    sample = arithmetic.make_problem(np.random.default_rng(0)).text + "\n17 * 3 = -51\n2 - 5 = ?\n"
    reloaded = AutoTokenizer.from_pretrained(out)
    if reloaded(sample)["input_ids"] != tokenizer(sample)["input_ids"]:
        raise RuntimeError("the saved demo tokenizer does not reload identically through AutoTokenizer")


def _model_card(config: DemoConfig) -> str:
    return (
        "# creditscope demo PRM\n\n"
        "A tiny Llama token classifier (TRL stepwise format, `\\n` separator, label 1 = good step) trained by "
        "`creditscope train-demo-prm` on the synthetic arithmetic environment with Math-Shepherd Monte-Carlo "
        f"labels ({config.mc_completions} completions per prefix). Load it with `--family token-cls`. "
        "Random-init research toy; see core/prm/DEMO_PRM.md for its evaluation.\n"
    )
