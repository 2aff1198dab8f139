"""Realistic databases for the scale benchmarks, built from ``creditscope synth`` output.

Run: ``.venv/bin/python bench/scale_data.py --steps 1e7 [--dir DIR]``

One run, ``mixed``, holds all three sample environments (arithmetic chains, rollout trees, the text
agent) over the same 200 training iterations, like a multi-task agent run: every prompt, problem and
transcript is generated afresh (no replicated frames). Each environment's records get their
environment as an id prefix (``tree/it3-p1-r2``) so the three can share one run, and go to one native
JSONL file per environment, which ``creditscope ingest`` then loads (a whole process, as a user
would). Files and databases are cached in ``--dir`` under names that encode the size, so later
benchmark runs reuse them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from core.store.database import Store
from core.synth import ENVS, records

DEFAULT_DIR = Path(os.environ.get("CREDITSCOPE_BENCH_DIR", Path(tempfile.gettempdir()) / "creditscope-bench"))
"""Where databases are cached (``CREDITSCOPE_BENCH_DIR`` overrides; they take GBs at 10M steps)."""
ITERATIONS = 200
GROUP_SIZE = 8
RUN = "mixed"
PROBE_PROMPTS = 2


def steps_per_prompt(env: str, iterations: int = ITERATIONS) -> float:
    """Average steps one prompt contributes over the whole run (measured on a small probe run)."""
    total = sum(len(r["steps"]) for r in records(env, prompts=PROBE_PROMPTS, iterations=iterations, seed=99))
    return total / PROBE_PROMPTS


def write_env(env: str, prompts: int, path: Path, seed: int) -> int:
    """Write one environment's share of the run; returns its step count."""
    n_steps = 0
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in records(env, prompts=prompts, iterations=ITERATIONS, group_size=GROUP_SIZE, seed=seed, run=RUN):
            rec["group"] = f"{env}/{rec['group']}"
            rec["trajectory"] = f"{env}/{rec['trajectory']}"
            for step in rec["steps"]:
                for key in ("node", "parent"):
                    if step.get(key):
                        step[key] = f"{env}/{step[key]}"
            fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
            n_steps += len(rec["steps"])
    tmp.rename(path)
    return n_steps


def label(steps: int) -> str:
    return f"{steps / 1e6:g}M" if steps >= 1_000_000 else f"{steps / 1e3:g}k"


def build(steps: int, root: Path = DEFAULT_DIR, seed: int = 0, quiet: bool = False) -> Path:
    """The database of about ``steps`` steps (built once, then reused); returns its path."""
    folder = root / f"mixed-{label(steps)}"
    db = root / f"mixed-{label(steps)}.duckdb"
    if db.exists():
        Store.open(db).close()  # a database from an older creditscope is migrated (summaries built) once
        return db
    folder.mkdir(parents=True, exist_ok=True)
    share = steps / len(ENVS)
    plan = {env: max(1, round(share / steps_per_prompt(env))) for env in ENVS}
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=len(ENVS)) as pool:
        jobs = {
            env: pool.submit(write_env, env, prompts, folder / f"{env}.jsonl", seed)
            for env, prompts in plan.items()
            if not (folder / f"{env}.jsonl").exists()
        }
        for env, job in jobs.items():
            n = job.result()
            if not quiet:
                print(f"{env}: {plan[env]} prompts x {ITERATIONS} iterations x {GROUP_SIZE} rollouts = {n:,} steps")
    if not quiet:
        print(f"generated in {time.perf_counter() - started:.0f} s; ingesting into {db}")
    tmp_db = db.with_suffix(".building.duckdb")
    tmp_db.unlink(missing_ok=True)
    creditscope = Path(sys.executable).with_name("creditscope")
    subprocess.run([str(creditscope), "ingest", str(folder), "--db", str(tmp_db), "--run", RUN, "--quiet"], check=True)
    tmp_db.rename(db)
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, default=1e6, help="about this many steps (e.g. 1e7)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    print(build(int(args.steps), args.dir))


if __name__ == "__main__":
    main()
