"""PRM scoring throughput: the demo PRM on the sample run, and single-pass vs per-step-prefix scoring.

CPU (runs anywhere):
    .venv/bin/python bench/prm.py
GPU (random-init Qwen2.5-1.5B architecture, bf16, SDPA):
    .venv/bin/python bench/prm.py --device cuda --arch qwen2.5-1.5b

Single-pass = every step of a trajectory scored from one sequence (separator positions);
per-prefix = one sequence per step (the prefix up to that step's separator), the naive recipe.
Both go through the same token-budget batching, so the ratio isolates the recipe.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from core.prm.batching import token_budget_batches, truncate
from core.prm.formats import EncodedSequence, StepRead
from core.prm.scorer import Scorer
from core.prm.types import ScorerSpec, Trajectory
from core.synth import generate_steps

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "models" / "demo-prm"
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "4090": 165.0}

ARCHS = {
    "tiny": dict(
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1000,
    ),
    "small": dict(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        vocab_size=8000,
    ),
    "qwen2.5-1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
    ),
}


def sample_trajectories() -> list[Trajectory]:
    steps = generate_steps("arithmetic").sort_values(["traj_id", "step_idx"])
    out = []
    for _, rows in steps.groupby("traj_id", sort=False):
        prompt = str(rows["state"].iloc[0]).split("\n")[0]
        out.append(Trajectory(prompt, tuple(rows["action"].astype(str))))
    return out


def bench_demo(device: str, batch_tokens: int) -> None:
    trajs = sample_trajectories()
    scorer = Scorer.load(str(DEMO), "token-cls", device=device)
    scorer.score(trajs[:8])  # warm-up
    scorer.stats.tokens = 0
    started = time.perf_counter()
    scorer.score(trajs, batch_tokens=batch_tokens)
    seconds = time.perf_counter() - started
    n_steps = sum(len(t.steps) for t in trajs)
    print(
        f"demo PRM on the sample arithmetic run ({len(trajs)} trajectories, {n_steps} steps, {device}): "
        f"{n_steps / seconds:,.0f} steps/s, {scorer.stats.tokens / seconds:,.0f} tokens/s ({seconds:.2f}s)"
    )


def synthetic_sequences(n: int, steps: int, step_len: int, prompt_len: int, vocab: int, seed: int = 0):
    """Random-token trajectories: a prompt, then ``steps`` steps each ending in a separator token."""
    rng = np.random.default_rng(seed)
    single, prefixes = [], []
    for i in range(n):
        ids = rng.integers(10, vocab, size=prompt_len).tolist()
        reads = []
        for k in range(steps):
            ids += rng.integers(10, vocab, size=step_len).tolist() + [1]
            reads.append(StepRead(k, len(ids) - 1, len(ids) - 1, len(ids) - 1))
            prefixes.append(EncodedSequence(i, list(ids), [StepRead(k, len(ids) - 1, len(ids) - 1, len(ids) - 1)]))
        single.append(EncodedSequence(i, ids, reads))
    return single, prefixes


def run(scorer: Scorer, sequences: list[EncodedSequence], batch_tokens: int, device: str) -> tuple[float, int]:
    batches = token_budget_batches([truncate(s, 10**9) for s in sequences], batch_tokens)
    tokens = sum(len(s.input_ids) for b in batches for s in b)
    scorer._run_batch(batches[-1])  # warm-up (kernels, allocator)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in batches:
        scorer._run_batch(batch)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - started, tokens


def bench_single_vs_prefix(args: argparse.Namespace) -> None:
    from transformers import Qwen2Config, Qwen2ForTokenClassification

    cfg = Qwen2Config(**ARCHS[args.arch], num_labels=2, max_position_embeddings=32768)
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    model = Qwen2ForTokenClassification._from_config(cfg, dtype=dtype, attn_implementation="sdpa")
    model.to(args.device).eval()
    params = sum(p.numel() for p in model.parameters())
    tokenizer = SimpleNamespace(pad_token_id=0, eos_token_id=None, bos_token_id=None, model_max_length=32768)
    spec = ScorerSpec("token-cls", f"random-{args.arch}", "random")
    scorer = Scorer(spec, model, tokenizer, args.device)
    single, prefixes = synthetic_sequences(args.n, args.steps, args.step_len, args.prompt_len, cfg.vocab_size)
    n_steps = args.n * args.steps
    t_single, tok_single = run(scorer, single, args.batch_tokens, args.device)
    t_prefix, tok_prefix = run(scorer, prefixes, args.batch_tokens, args.device)
    print(
        f"arch {args.arch} ({params / 1e6:.1f}M params, {dtype}, {args.device}); {args.n} trajectories x "
        f"{args.steps} steps x {args.step_len} tokens + {args.prompt_len}-token prompt; "
        f"batch_tokens {args.batch_tokens}"
    )
    for name, seconds, tokens in (("single-pass", t_single, tok_single), ("per-prefix", t_prefix, tok_prefix)):
        tflops = 2 * params * tokens / seconds / 1e12
        print(
            f"  {name:11s}: {seconds:8.3f}s  {n_steps / seconds:10,.0f} steps/s  {tokens / seconds:12,.0f} tokens/s"
            f"  {tokens:>10,} tokens  {tflops:7.2f} TFLOP/s (2·params·tokens/s)"
        )
    print(f"  single-pass is {t_prefix / t_single:.1f}x faster per step ({tok_prefix / tok_single:.1f}x fewer tokens)")
    if args.device.startswith("cuda"):
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
        if peak:
            achieved = 2 * params * tok_single / t_single / 1e12
            print(
                f"  {name}: single-pass {achieved:.0f} TFLOP/s = {100 * achieved / peak:.0f}% of {peak:.0f} bf16 peak"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arch", default="tiny", choices=sorted(ARCHS))
    parser.add_argument("--n", type=int, default=32, help="trajectories")
    parser.add_argument("--steps", type=int, default=12, help="steps per trajectory")
    parser.add_argument("--step-len", type=int, default=24, help="tokens per step")
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--batch-tokens", type=int, default=16384)
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    if not args.device.startswith("cuda"):
        torch.set_num_threads(max(1, torch.get_num_threads()))
    if not args.skip_demo and DEMO.joinpath("model.safetensors").exists():
        bench_demo(args.device, args.batch_tokens)
    bench_single_vs_prefix(args)


if __name__ == "__main__":
    main()
