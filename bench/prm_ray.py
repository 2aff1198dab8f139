"""PRM rescoring on Ray vs the local engine: steps/s of whole `creditscope rescore` processes, side by side.

Run: ``.venv/bin/python bench/prm_ray.py [--iterations 60] [--large-iterations 3] [--json out.json]``

Each measurement is one cold `creditscope rescore` process (imports, model loading, Ray start-up and all) on a
fresh copy of the same database, so every engine does the whole job and produces the same cache rows; the
script checks that (max abs score difference against the local engine, identical cache keys). Engines: local
(this process scores, torch on every core), and Ray with 1 and 2 workers (a local Ray instance, default
fractional CPUs: each actor's torch gets 1 thread). Models: the demo PRM, and a larger random-initialised Llama
token classifier saved to a temporary folder with the demo tokenizer. Data: one run of the three sample
environments (arithmetic chains, rollout trees, the text agent), every trajectory generated afresh.

Reported: wall seconds of the process, end-to-end steps/s (steps / wall), the scoring steps/s the rescore
report gives (Ray: from the first block sent to the last cached, actor start-up included), and the scaling
efficiency of 2 workers over 1 (rate2 / (2 x rate1)).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sample_data" / "models" / "demo-prm"
RUN = "mixed"
_SCORING = re.compile(r"scoring ([\d.]+)s")


def write_run(folder: Path, iterations: int, seed: int) -> Path:
    """One native JSONL file per environment, ids prefixed by the environment so they share one run."""
    from core.synth import ENVS, records

    for env in ENVS:
        with open(folder / f"{env}.jsonl", "w", encoding="utf-8") as fh:
            for rec in records(env, prompts=2, iterations=iterations, group_size=8, seed=seed, run=RUN):
                rec["group"], rec["trajectory"] = f"{env}/{rec['group']}", f"{env}/{rec['trajectory']}"
                for step in rec["steps"]:
                    for key in ("node", "parent"):
                        if step.get(key):
                            step[key] = f"{env}/{step[key]}"
                fh.write(json.dumps(rec) + "\n")
    db = folder / "runs.duckdb"
    cli = [sys.executable, "-m", "core.cli"]
    files = [str(folder / f"{env}.jsonl") for env in ENVS]
    subprocess.run([*cli, "ingest", *files, "--db", str(db), "--run", RUN, "--quiet"], check=True, cwd=ROOT)
    return db


def larger_model(folder: Path) -> Path:
    """A Llama token classifier of ~25M parameters with the demo tokenizer (random weights, saved whole)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(DEMO)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForTokenClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def cache_rows(db: Path) -> dict[str, float]:
    from core.store.database import Store

    store = Store.open(db, read_only=True)
    try:
        rows = store.query_df("SELECT content_hash, score FROM prm_cache")
    finally:
        store.close()
    return dict(zip(rows["content_hash"], rows["score"].astype(float), strict=True))


def one_run(db: Path, model: Path, engine: str, workers: int | None, work: Path) -> dict[str, Any]:
    """A cold `creditscope rescore` on a fresh copy of ``db``; returns timings and the cache rows."""
    copy = work / f"{engine}-{workers or 0}.duckdb"
    shutil.copy(db, copy)
    argv = [sys.executable, "-m", "core.cli", "rescore", "--db", str(copy), "--run", RUN, "--model", str(model)]
    argv += ["--family", "token-cls", "--device", "cpu"]
    if engine == "ray":
        argv += ["--engine", "ray", "--workers", str(workers)]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    summary = done.stdout.strip().splitlines()[-1]
    steps = int(re.search(r": (\d+) steps in", summary).group(1))
    scoring = float(_SCORING.search(summary).group(1))
    return {
        "engine": engine if engine == "local" else f"ray x{workers}",
        "steps": steps,
        "wall_s": wall,
        "steps_per_s_end_to_end": steps / wall,
        "scoring_s": scoring,
        "steps_per_s_scoring": steps / scoring if scoring else float("nan"),
        "cache": cache_rows(copy),
    }


def compare(name: str, db: Path, model: Path, work: Path) -> list[dict[str, Any]]:
    results = [one_run(db, model, "local", None, work)]
    results += [one_run(db, model, "ray", n, work) for n in (1, 2)]
    reference = results[0]["cache"]
    for result in results:
        cache = result.pop("cache")
        assert cache.keys() == reference.keys(), f"{result['engine']}: different cache keys"
        result["max_abs_diff_vs_local"] = max(abs(cache[k] - reference[k]) for k in reference)
        result["model"] = name
    one, two = results[1]["steps_per_s_end_to_end"], results[2]["steps_per_s_end_to_end"]
    results[2]["scaling_efficiency_end_to_end"] = two / (2 * one)
    one, two = results[1]["steps_per_s_scoring"], results[2]["steps_per_s_scoring"]
    results[2]["scaling_efficiency_scoring"] = two / (2 * one)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60, help="training iterations of the demo-PRM run")
    parser.add_argument("--large-iterations", type=int, default=3, help="iterations of the larger model's run")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prm-ray-bench-") as tmp:
        work = Path(tmp)
        (work / "demo").mkdir()
        (work / "large").mkdir()
        demo_db = write_run(work / "demo", args.iterations, seed=11)
        large_db = write_run(work / "large", args.large_iterations, seed=12)
        model = larger_model(work / "large-model")
        results = compare("demo-prm", demo_db, DEMO, work) + compare("llama-6x512 (random)", large_db, model, work)
    print(f"{os.cpu_count()} CPUs, load average before the last run {os.getloadavg()[0]:.1f}")
    header = f"{'model':22} {'engine':8} {'steps':>7} {'wall s':>7} {'steps/s':>8} {'scoring s':>9} {'steps/s':>8}"
    print(header + "  max|diff|  scaling (e2e / scoring)")
    for r in results:
        scaling = ""
        if "scaling_efficiency_scoring" in r:
            scaling = f"{r['scaling_efficiency_end_to_end']:.2f} / {r['scaling_efficiency_scoring']:.2f}"
        print(
            f"{r['model']:22} {r['engine']:8} {r['steps']:>7} {r['wall_s']:>7.1f} {r['steps_per_s_end_to_end']:>8.0f} "
            f"{r['scoring_s']:>9.1f} {r['steps_per_s_scoring']:>8.0f}  {r['max_abs_diff_vs_local']:.1e}  {scaling}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
