"""PRM scoring throughput: the demo PRM on the sample run, and single-pass vs per-step-prefix scoring.

CPU (runs anywhere; tiny random model):
    .venv/bin/python bench/prm.py
GPU (random-init Qwen2.5-1.5B architecture, bf16, SDPA; throughput does not depend on the weights):
    python bench/prm.py --device cuda --arch qwen2.5-1.5b --n 512 --sweep 16384,32768,65536 --json out.json

Single-pass = every step of a trajectory scored from one sequence (separator positions), creditscope's
recipe; per-prefix = one sequence per step (the prefix up to that step's separator), the naive recipe.
The batched per-prefix baseline goes through the same token-budget batching, so that ratio isolates the
recipe; the one-by-one baseline is one forward pass per step, as RLHFlow's evaluation script runs it.

Trajectories are random tokens with lengths drawn per trajectory (prompt, step count, step length), so
batches are ragged and padded the way real logs are. FLOPs are model FLOPs of the real (unpadded)
tokens: 2 x the non-embedding parameters per token, plus causal attention (4 x layers x width x
position, summed over positions); padding and recomputation are not counted as useful work.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from core.prm.batching import DEFAULT_BATCH_TOKENS, PreparedSequence, token_budget_batches, truncate
from core.prm.formats import EncodedSequence, StepRead
from core.prm.scorer import Scorer
from core.prm.types import ScorerSpec, Trajectory
from core.synth import generate_steps

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "models" / "demo-prm"
# Dense bf16 tensor-core peaks from NVIDIA's datasheets (TFLOP/s, no sparsity); the first match wins.
BF16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("4090", 165.0),
)

ARCHS = {
    "tiny": dict(
        hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    ),
    "small": dict(
        hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2
    ),
    # Qwen2.5-1.5B's config (tied embeddings), with a 2-label token-classification head like Qwen2.5-Math-PRM.
    "qwen2.5-1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
    ),
}


def sample_trajectories() -> list[Trajectory]:
    steps = generate_steps("arithmetic").sort_values(["traj_id", "step_idx"])
    out = []
    for _, rows in steps.groupby("traj_id", sort=False):
        prompt = str(rows["state"].iloc[0]).split("\n")[0]
        out.append(Trajectory(prompt, tuple(rows["action"].astype(str))))
    return out


def bench_demo(device: str, batch_tokens: int) -> dict[str, Any]:
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
    return {"steps": n_steps, "seconds": seconds, "tokens": scorer.stats.tokens}


def _span(text: str) -> tuple[int, int]:
    low, _, high = text.partition(":")
    return int(low), int(high or low)


def synthetic_sequences(args: argparse.Namespace, vocab: int) -> tuple[list[EncodedSequence], list[EncodedSequence]]:
    """Random-token trajectories, each step ending in separator token 1; returns (single, per-prefix)."""
    rng = np.random.default_rng(args.seed)
    steps_span, step_len_span, prompt_span = _span(args.steps), _span(args.step_len), _span(args.prompt_len)
    single, prefixes = [], []
    for i in range(args.n):
        ids = rng.integers(10, vocab, size=int(rng.integers(prompt_span[0], prompt_span[1] + 1))).tolist()
        reads = []
        for k in range(int(rng.integers(steps_span[0], steps_span[1] + 1))):
            ids += rng.integers(10, vocab, size=int(rng.integers(step_len_span[0], step_len_span[1] + 1))).tolist()
            ids.append(1)
            read = StepRead(k, len(ids) - 1, len(ids) - 1, len(ids) - 1)
            reads.append(read)
            prefixes.append(EncodedSequence(i, list(ids), [read]))
        single.append(EncodedSequence(i, ids, reads))
    return single, prefixes


def model_flops(cfg: Any, matmul_params: int, lengths: list[int]) -> float:
    """Forward FLOPs of the real tokens: 2·params per token plus causal attention (QKᵀ and AV)."""
    width = cfg.num_attention_heads * (getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    tokens = sum(lengths)
    attended = sum(n * (n + 1) / 2 for n in lengths)  # keys seen, summed over query positions
    return 2.0 * matmul_params * tokens + 4.0 * cfg.num_hidden_layers * width * attended


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(scorer: Scorer, batches: list[list[PreparedSequence]], device: str, warmups: int = 1) -> tuple[float, float]:
    """Seconds to score ``batches`` (host-side batch building included) and seconds of warm-up before."""
    started = time.perf_counter()
    for batch in batches[:warmups]:  # the widest first: kernels, allocator (and compilation, if any)
        scorer._run_batch(batch)
    _sync(device)
    warm = time.perf_counter()
    for batch in batches:
        scorer._run_batch(batch)
    _sync(device)
    return time.perf_counter() - warm, warm - started


def measure(
    name: str, scorer: Scorer, sequences: list[EncodedSequence], budget: int, ctx: SimpleNamespace, warmups: int = 1
) -> dict[str, Any]:
    prepared = [truncate(s, 10**9) for s in sequences]
    batches = token_budget_batches(prepared, budget)
    lengths = [len(s.input_ids) for b in batches for s in b]
    padded = sum(len(b) * max(len(s.input_ids) for s in b) for b in batches)
    steps = sum(len(s.reads) for s in prepared)
    seconds, warmup = timed(scorer, batches, ctx.device, warmups)
    flops = model_flops(ctx.cfg, ctx.matmul_params, lengths)
    row = {
        "name": name,
        "batch_tokens": budget,
        "batches": len(batches),
        "steps": steps,
        "tokens": sum(lengths),
        "padded_tokens": padded,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "steps_per_s": steps / seconds,
        "tokens_per_s": sum(lengths) / seconds,
        "tflops": flops / seconds / 1e12,
    }
    if ctx.device.startswith("cuda"):
        row["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    print(
        f"  {name:34s} budget {budget:>6}  {seconds:8.3f}s  {row['steps_per_s']:>10,.0f} steps/s"
        f"  {row['tokens_per_s']:>11,.0f} tok/s  {row['tflops']:7.3g} TFLOP/s  "
        f"pad {padded / max(1, sum(lengths)) - 1:5.1%}",
        flush=True,
    )
    return row


def matmul_tflops(device: str, size: int = 8192, repeats: int = 20) -> float:
    """Achieved bf16 TFLOP/s of one large square matrix product on random data (the measured ceiling)."""
    a, b = (torch.randn(size, size, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * size**3 * repeats / (start.elapsed_time(end) / 1e3) / 1e12


def build_scorer(args: argparse.Namespace) -> tuple[Scorer, SimpleNamespace]:
    from transformers import Qwen2Config, Qwen2ForTokenClassification

    vocab = 1000 if args.arch == "tiny" else 8000
    cfg = Qwen2Config(**{"vocab_size": vocab, **ARCHS[args.arch]}, num_labels=2, max_position_embeddings=32768)
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    with torch.device(args.device):  # initialise on the device: a 1.5B model initialises slowly on the host
        model = Qwen2ForTokenClassification._from_config(cfg, dtype=dtype, attn_implementation="sdpa")
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    matmul_params = params - model.get_input_embeddings().weight.numel()  # a lookup, not a matmul
    tokenizer = SimpleNamespace(pad_token_id=0, eos_token_id=None, bos_token_id=None, model_max_length=32768)
    spec = ScorerSpec("token-cls", f"random-{args.arch}", "random")
    scorer = Scorer(spec, model, tokenizer, args.device, compile="off")
    ctx = SimpleNamespace(device=args.device, cfg=cfg, matmul_params=matmul_params, dtype=dtype, params=params)
    return scorer, ctx


def same_scores(scorer: Scorer, single: list[EncodedSequence], prefixes: list[EncodedSequence], n: int) -> float:
    """Largest gap between single-pass and per-prefix scores of the first ``n`` trajectories (a sanity check)."""

    def scores(sequences: list[EncodedSequence]) -> dict[tuple[int, int], float]:
        prepared = [truncate(s, 10**9) for s in sequences if s.traj_index < n]
        out = {}
        for batch in token_budget_batches(prepared, 10**9):
            for seq, values in zip(batch, scorer._run_batch(batch), strict=True):
                out.update({(seq.traj_index, read.step): v for read, v in zip(seq.reads, values, strict=True)})
        return out

    one, pre = scores(single), scores(prefixes)
    assert one.keys() == pre.keys()
    return max(abs(one[key] - pre[key]) for key in one)


def bench_single_vs_prefix(args: argparse.Namespace) -> dict[str, Any]:
    scorer, ctx = build_scorer(args)
    single, prefixes = synthetic_sequences(args, ctx.cfg.vocab_size)
    report: dict[str, Any] = {"arch": args.arch, "params": ctx.params, "matmul_params": ctx.matmul_params}
    report.update(dtype=str(ctx.dtype), device=args.device, trajectories=args.n)
    report.update(steps=args.steps, step_len=args.step_len, prompt_len=args.prompt_len)
    print(
        f"arch {args.arch} ({ctx.params / 1e6:.1f}M params, {ctx.matmul_params / 1e6:.1f}M in matmuls, {ctx.dtype}, "
        f"{args.device}, SDPA); {args.n} trajectories, steps {args.steps}, step tokens {args.step_len}, "
        f"prompt tokens {args.prompt_len}"
    )
    gap = report["max_score_gap_single_vs_prefix"] = same_scores(scorer, single, prefixes, min(8, args.n))
    print(f"  single-pass vs per-prefix scores, max |gap| on 8 trajectories: {gap:.2e}")
    rows = [measure("single-pass", scorer, single, budget, ctx) for budget in args.sweep]
    best = max(rows, key=lambda r: r["tokens_per_s"])
    dropped, scorer._padding_mask_needed = scorer._padding_mask_needed, True  # what it cost before
    rows.append(measure("single-pass, padding mask kept", scorer, single, best["batch_tokens"], ctx))
    scorer._padding_mask_needed = dropped
    prefix = measure("per-prefix, batched", scorer, prefixes, best["batch_tokens"], ctx)
    rows.append(prefix)
    subset = [s for s in prefixes if s.traj_index < args.one_by_one]
    one_by_one = measure(f"per-prefix, one by one ({args.one_by_one} traj.)", scorer, subset, 1, ctx)
    rows.append(one_by_one)
    if args.compile:
        # Scorer(compile="on") compiles the decoder in place, so this comes last; warm-up = compilation.
        try:
            compiled = Scorer(scorer.spec, scorer.model, scorer.tokenizer, args.device, compile="on")
            row = measure("single-pass, compile=on", compiled, single, best["batch_tokens"], ctx, warmups=3)
            print(f"  (compilation and warm-up on 3 batches: {row['warmup_seconds']:.0f}s)")
            rows.append(row)
        except Exception as exc:
            print(f"  torch.compile failed: {type(exc).__name__}: {exc}")
    report["runs"] = rows
    report["ratio_vs_batched_prefix"] = best["steps_per_s"] / prefix["steps_per_s"]
    report["ratio_vs_one_by_one"] = best["steps_per_s"] / one_by_one["steps_per_s"]
    print(
        f"  single-pass is {report['ratio_vs_batched_prefix']:.1f}x the batched per-prefix baseline per step "
        f"({prefix['tokens'] / best['tokens']:.1f}x fewer tokens) and {report['ratio_vs_one_by_one']:.1f}x "
        "the one-by-one baseline"
    )
    if args.device.startswith("cuda"):
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in BF16_PEAK_TFLOPS if k in name), None)
        measured = matmul_tflops(args.device)
        report.update(gpu=name, datasheet_peak_tflops=peak, matmul_tflops=measured)
        print(f"  {name}: a 8192³ bf16 matmul runs at {measured:.0f} TFLOP/s; datasheet dense bf16 peak {peak}")
        for row in (best, *(r for r in rows if "compile" in r["name"])):
            share = f"{100 * row['tflops'] / peak:.0f}% of peak, " if peak else ""
            print(
                f"  {row['name']} at {row['batch_tokens']}: {row['tflops']:.0f} TFLOP/s = {share}"
                f"{100 * row['tflops'] / measured:.0f}% of the measured matmul"
            )
            row["fraction_of_peak"] = row["tflops"] / peak if peak else None
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arch", default="tiny", choices=sorted(ARCHS))
    parser.add_argument("--n", type=int, default=32, help="trajectories")
    parser.add_argument("--steps", default="4:20", help="steps per trajectory, LOW:HIGH (uniform)")
    parser.add_argument("--step-len", default="16:80", help="tokens per step, LOW:HIGH")
    parser.add_argument("--prompt-len", default="64:256", help="prompt tokens, LOW:HIGH")
    parser.add_argument("--sweep", default=str(DEFAULT_BATCH_TOKENS), help="comma-separated token budgets")
    parser.add_argument("--one-by-one", type=int, default=4, help="trajectories for the one-forward-per-step run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also time single-pass under torch.compile")
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args()
    args.sweep = [int(x) for x in args.sweep.split(",")]
    report: dict[str, Any] = {"torch": torch.__version__}
    if not args.skip_demo and DEMO.joinpath("model.safetensors").exists():
        try:
            report["demo"] = bench_demo(args.device, args.sweep[0])
        except Exception as exc:  # the demo is a side show here; never lose the main measurement to it
            print(f"demo PRM skipped: {type(exc).__name__}: {exc}")
    report.update(bench_single_vs_prefix(args))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
