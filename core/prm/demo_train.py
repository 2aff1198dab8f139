"""Train the demo PRM: a tiny Llama token classifier on the arithmetic environment, with Monte-Carlo progress labels.

Step labels come from Monte-Carlo completions, never from ground truth. From every prefix of a sampled
solution (the empty one included) the scripted policy finishes the problem ``mc_completions`` times;
the success rate is a Math-Shepherd soft estimate of the prefix's value ``V(s_h)``. A step is then
labelled by its *progress* ``V(s_{h+1}) - V(s_h)`` (Setlur et al., 2024, "Rewarding Progress: Scaling
Automated Process Verifiers", arXiv 2410.08146; spec ``credit-schemes.md`` §7): it is bad when the
success rate falls sharply across it. Why progress and not the raw success rate: after a slip every
later line has ``V ≈ 0`` although its own arithmetic is right, so raw Math-Shepherd labels brand
every line after the first error bad. Progress marks the slip only. Steps whose prefix already has
(almost) no chance carry no progress signal either way (``0 - 0``), so they get no training weight.

The ground-truth step labels are used only to evaluate the trained model on held-out problems. The
result is a standard Hugging Face folder (``config.json``, ``model.safetensors``, tokenizer files)
that the ``token-cls`` family loads offline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
        mc_completions: Completions per prefix for the Monte-Carlo value estimate.
        policy_error: Range of per-step slip rates of the sampled solutions.
        completer_error: Slip rate of the completer policy.
        drop_threshold: A step is labelled bad when the success rate falls by more than this across it.
        min_prefix_value: Steps whose prefix succeeds less often than this get no training weight
            (a drop cannot be measured from there).
        balance_classes: Weight bad steps up so both classes carry equal total weight.
        hidden_size: Model width.
        layers: Transformer blocks.
        heads: Attention heads.
        train_steps: Optimiser steps.
        batch_size: Solutions per step.
        learning_rate: Peak AdamW learning rate (one-cycle schedule).
    """

    seed: int = 0
    train_problems: int = 3000
    eval_problems: int = 500
    mc_completions: int = 16
    policy_error: tuple[float, float] = (0.05, 0.4)
    completer_error: float = 0.05
    drop_threshold: float = 0.5
    min_prefix_value: float = 0.25
    balance_classes: bool = True
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    train_steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 3e-3


@dataclass
class Example:
    """One solution with its Monte-Carlo labels and (for evaluation only) its ground-truth labels.

    Attributes:
        trajectory: Prompt and step lines.
        prefix_values: Monte-Carlo success rate from each prefix, ``len(steps) + 1`` values (empty prefix first).
        targets: Progress label per step (1 = good).
        weights: Training weight per step (0 where the prefix carries no progress signal).
        true_labels: Ground-truth step labels (evaluation only).
        prefix_ok: Ground truth "no error so far" (evaluation only).
    """

    trajectory: Trajectory
    prefix_values: list[float]
    targets: list[float]
    weights: list[float]
    true_labels: list[float]
    prefix_ok: list[float] = field(default_factory=list)


@dataclass
class DemoReport:
    """What training produced, for ``DEMO_PRM.md``.

    Attributes:
        auc_vs_label: ROC-AUC of the model's step scores against the ground-truth step labels (held out).
        auc_vs_prefix_ok: ROC-AUC against "no error so far" (ProcessBench's first-error view).
        mc_auc_vs_label: ROC-AUC of the raw Math-Shepherd soft labels (success rate after the step)
            against the ground truth, all training steps: the ceiling of the old labelling.
        progress_auc_vs_label: ROC-AUC of the progress labels against the ground truth on the weighted
            training steps (the ones the model learns from).
        weighted_share: Share of training steps with non-zero weight.
        n_train_steps: Training steps (weighted or not).
        n_eval_steps: Held-out steps.
        label_seconds: Wall time of the Monte-Carlo labelling.
        train_seconds: Wall time of the optimisation.
        folder_bytes: Size of the saved folder.
        config: The run's configuration.
    """

    auc_vs_label: float
    auc_vs_prefix_ok: float
    mc_auc_vs_label: float
    progress_auc_vs_label: float
    weighted_share: float
    n_train_steps: int
    n_eval_steps: int
    label_seconds: float
    train_seconds: float
    folder_bytes: int
    config: dict


def prefix_values(
    problem: arithmetic.Problem, lines: list[str], rng: np.random.Generator, completions: int, error: float
) -> list[float]:
    """Math-Shepherd soft estimates ``V(s_0..s_H)``: per prefix (empty first), the share of completions that succeed."""
    values = []
    for k in range(len(lines) + 1):
        wins = sum(
            arithmetic.outcome(problem, arithmetic.policy_lines(problem, rng, error, lines[:k]))
            for _ in range(completions)
        )
        values.append(wins / completions)
    return values


def progress_labels(
    values: list[float], drop_threshold: float, min_prefix_value: float
) -> tuple[list[float], list[float]]:
    """Per-step targets and weights from prefix values: bad where ``V(s_{h+1}) - V(s_h) < -drop_threshold``.

    Args:
        values: ``V(s_0..s_H)`` from :func:`prefix_values`.
        drop_threshold: Size of the fall in success rate that marks a step bad.
        min_prefix_value: Below this ``V(s_h)`` the step gets weight 0: from a prefix that already
            fails, a correct and a wrong step both leave the rate at ~0, so the label would be noise.

    Returns:
        ``(targets, weights)``, one entry per step.
    """
    targets, weights = [], []
    for before, after in zip(values[:-1], values[1:], strict=True):
        targets.append(0.0 if after - before < -drop_threshold else 1.0)
        weights.append(1.0 if before >= min_prefix_value else 0.0)
    return targets, weights


def make_examples(n_problems: int, config: DemoConfig, rng: np.random.Generator) -> list[Example]:
    """Sample problems and one solution each, and label every step by Monte-Carlo progress."""
    examples = []
    for _ in range(n_problems):
        problem = arithmetic.make_problem(rng)
        lines = arithmetic.policy_lines(problem, rng, float(rng.uniform(*config.policy_error)))
        truth = [float(x) for x in arithmetic.step_labels(problem, lines)]
        values = prefix_values(problem, lines, rng, config.mc_completions, config.completer_error)
        targets, weights = progress_labels(values, config.drop_threshold, config.min_prefix_value)
        examples.append(
            Example(
                Trajectory(problem.text, tuple(lines)),
                values,
                targets,
                weights,
                truth,
                list(np.cumprod(truth).astype(float)),
            )
        )
    return examples


@dataclass
class _Encoded:
    """One training example as token ids plus, per step, the separator position, target and weight."""

    ids: list[int]
    positions: list[int]
    targets: list[float]
    weights: list[float]


def _encode_examples(tokenizer: Any, examples: list[Example], bad_weight: float) -> list[_Encoded]:
    """Tokenize every example once (the scorer's own ``token-cls`` recipe, so training matches inference)."""
    settings = FormatSettings()
    encoded = []
    for index, example in enumerate(examples):
        sequence = encode_token_cls(tokenizer, example.trajectory, index, settings)[0]
        steps = [read.step for read in sequence.reads]
        weights = [example.weights[s] * (bad_weight if example.targets[s] == 0.0 else 1.0) for s in steps]
        targets = [example.targets[s] for s in steps]
        encoded.append(_Encoded(sequence.input_ids, [r.position for r in sequence.reads], targets, weights))
    return encoded


def _batch(encoded: list[_Encoded], pad_id: int) -> tuple:  # type: ignore[type-arg]
    """Right-padded ids and mask, and flat (row, position, target, weight) tensors of the separator reads."""
    import torch

    width = max(len(e.ids) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    rows, positions, targets, weights = [], [], [], []
    for row, example in enumerate(encoded):
        ids[row, : len(example.ids)] = torch.tensor(example.ids)
        mask[row, : len(example.ids)] = 1
        rows += [row] * len(example.positions)
        positions += example.positions
        targets += example.targets
        weights += example.weights
    return ids, mask, torch.tensor(rows), torch.tensor(positions), torch.tensor(targets), torch.tensor(weights)


def _roc_auc(labels: list[float], scores: list[float]) -> float:
    from core.credit import roc_auc

    return roc_auc(np.asarray(scores, dtype=float), np.asarray(labels, dtype=float))


def _bad_step_weight(train: list[Example], balance: bool) -> float:
    """Weight of a bad step so both classes weigh the same in total (bad steps are the minority)."""
    pairs = [(t, w) for e in train for t, w in zip(e.targets, e.weights, strict=True) if w > 0]
    bad = sum(1 for t, _ in pairs if t == 0.0)
    return (len(pairs) - bad) / bad if balance and bad else 1.0


def _build_model(tokenizer: Any, config: DemoConfig) -> Any:
    from transformers import LlamaConfig, LlamaForTokenClassification

    return LlamaForTokenClassification(
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


def _fit(model: Any, encoded: list[_Encoded], pad_id: int, config: DemoConfig, rng: np.random.Generator, log) -> None:  # type: ignore[no-untyped-def]
    """Weighted cross-entropy on the progress targets at each separator, AdamW with a one-cycle schedule."""
    import torch

    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.learning_rate, total_steps=config.train_steps)
    model.train()
    for step in range(config.train_steps):
        picks = rng.choice(len(encoded), size=config.batch_size, replace=False)
        ids, mask, rows, positions, targets, weights = _batch([encoded[i] for i in picks], pad_id)
        logits = model(input_ids=ids, attention_mask=mask).logits[rows, positions]
        log_probs = torch.log_softmax(logits, dim=-1)
        per_step = -(targets * log_probs[:, 1] + (1 - targets) * log_probs[:, 0])
        loss = (weights * per_step).sum() / weights.sum().clamp(min=1.0)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if step % 250 == 0 or step == config.train_steps - 1:
            log(f"step {step:5d}  loss {loss.item():.4f}")
    model.eval()


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

    from core.prm.demo_tokenizer import build_demo_tokenizer
    from core.prm.scorer import Scorer

    config = config or DemoConfig()
    out = Path(out)
    rng = np.random.default_rng([config.seed, 7])
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    train = make_examples(config.train_problems, config, rng)
    held_out = make_examples(config.eval_problems, config, rng)
    label_seconds = time.perf_counter() - started
    log(f"labelled {sum(len(e.targets) for e in train)} steps by Monte-Carlo in {label_seconds:.1f}s")

    tokenizer = build_demo_tokenizer()
    model = _build_model(tokenizer, config)
    encoded = _encode_examples(tokenizer, train, _bad_step_weight(train, config.balance_classes))
    train_started = time.perf_counter()
    _fit(model, encoded, tokenizer.pad_token_id, config, rng, log)
    train_seconds = time.perf_counter() - train_started

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    check_tokenizer_reload(out, tokenizer)
    (out / "README.md").write_text(_model_card(config), encoding="utf-8")
    scorer = Scorer.load(str(out), "token-cls", device="cpu")
    scores = [s for r in scorer.score([e.trajectory for e in held_out]) for s in r.scores]
    weighted = [(y, t) for e in train for y, t, w in zip(e.true_labels, e.targets, e.weights, strict=True) if w > 0]
    report = DemoReport(
        auc_vs_label=_roc_auc([y for e in held_out for y in e.true_labels], scores),
        auc_vs_prefix_ok=_roc_auc([y for e in held_out for y in e.prefix_ok], scores),
        mc_auc_vs_label=_roc_auc(
            [y for e in train for y in e.true_labels], [v for e in train for v in e.prefix_values[1:]]
        ),
        progress_auc_vs_label=_roc_auc([y for y, _ in weighted], [t for _, t in weighted]),
        weighted_share=len(weighted) / sum(len(e.targets) for e in train),
        n_train_steps=sum(len(e.targets) for e in train),
        n_eval_steps=len(scores),
        label_seconds=label_seconds,
        train_seconds=train_seconds,
        folder_bytes=sum(p.stat().st_size for p in out.iterdir() if p.is_file()),
        config=asdict(config),
    )
    (out / "training_report.json").write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    log(
        f"held-out ROC-AUC vs step labels {report.auc_vs_label:.3f}, vs no-error-so-far "
        f"{report.auc_vs_prefix_ok:.3f}; trained in {train_seconds:.0f}s; {report.folder_bytes / 1e6:.2f} MB"
    )
    return report


def check_tokenizer_reload(out: Path, tokenizer: Any) -> None:
    """Check that AutoTokenizer, given the saved folder (config included), encodes exactly like the built tokenizer.

    transformers may swap in a model-specific tokenizer class chosen from ``config.json``; that class
    must not change the normalisation and pre-tokenization the model was trained with.
    """
    from transformers import AutoTokenizer

    sample = arithmetic.make_problem(np.random.default_rng(0)).text + "\n17 * 3 = -51\n2 - 5 = ?\n-108 + 27 = -81\n"
    reloaded = AutoTokenizer.from_pretrained(out)
    if reloaded(sample)["input_ids"] != tokenizer(sample)["input_ids"]:
        raise RuntimeError("the saved demo tokenizer does not reload identically through AutoTokenizer")


def _model_card(config: DemoConfig) -> str:
    return (
        "# creditscope demo PRM\n\n"
        "A tiny Llama token classifier (TRL stepwise format, `\\n` separator, label 1 = good step) trained by "
        "`creditscope train-demo-prm` on the synthetic arithmetic environment with Monte-Carlo progress labels "
        f"({config.mc_completions} completions per prefix; a step is bad when the success rate falls by more than "
        f"{config.drop_threshold} across it). The tokenizer tags each digit with its place value. Load it with "
        "`--family token-cls`. Random-init research toy; see core/prm/DEMO_PRM.md for its evaluation.\n"
    )
