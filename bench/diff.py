"""Diff benchmark: every query of the Diff pages on two runs of 5M steps each; goal p95 < 500 ms per query.

Run: ``.venv/bin/python bench/diff.py [--steps 5e6] [--repeats 3] [--queries 10] [--dir DIR] [--json FILE]``

Data: two runs written by ``creditscope synth --env arithmetic --prompt-pool 40000`` with seeds 1 and 2
(``--steps`` each, 90 iterations, groups of 8, prompts drawn from one pool of 40,000 problems, so the runs
share most prompts and differ in every rollout) and loaded by ``creditscope ingest``, both as whole
processes; the files and the database are kept in ``--dir`` (default ``$CREDITSCOPE_BENCH_DIR`` or the
temp folder) and reused.

Each repeat is a fresh worker process, as a freshly started dashboard: it opens the database, pays the
first open (prompt keys, then each run's group table), then runs every query the Diff and Diff pair
pages issue, ``--queries`` times each, with Streamlit's caches out of the way: two run-vs-run sides and
an early-vs-late pair of ranges of one run. p50/p95/max are over all repeats.

The baseline computes the same per-prompt table, summary and outcome histogram in one DuckDB statement
each, straight from the ``trajectories`` table (the prompt keys given), without the group tables; the
worker checks that both give the same numbers and reports the ratio. ``creditscope diff --out`` is also
timed as a whole process (wall time and peak memory from ``/usr/bin/time -v``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ITERATIONS, GROUP_SIZE, POOL, STEPS_PER_TRAJ = 90, 8, 40_000, 4.5
DEFAULT_DIR = Path(os.environ.get("CREDITSCOPE_BENCH_DIR", Path(tempfile.gettempdir()) / "creditscope-bench"))
CLI = [sys.executable, "-m", "core.cli"]


def build(folder: Path, steps: float) -> Path:
    """The two-run database (built with the CLI as whole processes on first use)."""
    prompts = max(1, round(steps / (ITERATIONS * GROUP_SIZE * STEPS_PER_TRAJ)))
    db = folder / f"diff-{prompts}x{ITERATIONS}x{GROUP_SIZE}-pool{POOL}.duckdb"
    if db.exists():
        return db
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for seed in (1, 2):
        name = f"pool-s{seed}"
        files.append(folder / f"{name}-{prompts}.jsonl")
        if not files[-1].exists():
            subprocess.run([*CLI, "synth", "--out", str(folder), "--env", "arithmetic", "--prompts", str(prompts),
                            "--iterations", str(ITERATIONS), "--group-size", str(GROUP_SIZE), "--prompt-pool",
                            str(POOL), "--seed", str(seed), "--run", name], check=True)  # fmt: skip
            (folder / f"{name}.jsonl").rename(files[-1])
    subprocess.run([*CLI, "ingest", *map(str, files), "--db", str(db), "--quiet"], check=True)
    return db


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN201 - any query
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def direct_sql(keep_both: bool) -> str:
    """Baseline: per-prompt sums straight from the trajectories (GRPO credit as ``core.credit`` computes it)."""
    side = """SELECT t.iteration, t.group_id, k.prompt_key, t.outcome, t.n_steps,
                     CASE WHEN count(*) OVER g < 2 THEN t.outcome / (1 + 1e-6)
                          ELSE (t.outcome - avg(t.outcome) OVER g) / (stddev_samp(t.outcome) OVER g + 1e-6) END AS adv
              FROM trajectories t LEFT JOIN (SELECT DISTINCT ph, prompt_key FROM keys) k ON k.ph = hash(t.prompt)
              WHERE t.run_id = $run_{x} AND ($lo_{x} IS NULL OR t.iteration >= $lo_{x})
                AND ($hi_{x} IS NULL OR t.iteration <= $hi_{x})
              WINDOW g AS (PARTITION BY t.iteration, t.group_id)"""
    per_prompt = """SELECT prompt_key, count(DISTINCT (iteration, group_id)) AS groups, count(*) AS n,
                           sum(outcome) / count(*) AS outcome, bool_or(outcome > 0) AS solved,
                           sum(n_steps) / count(*) AS steps, sum(n_steps * abs(adv)) / sum(n_steps) AS credit
                    FROM s_{x} WHERE prompt_key IS NOT NULL GROUP BY prompt_key"""
    both = "WHERE a.prompt_key IS NOT NULL AND b.prompt_key IS NOT NULL" if keep_both else ""
    return f"""WITH s_a AS ({side.format(x="a")}), s_b AS ({side.format(x="b")}),
                p_a AS ({per_prompt.format(x="a")}), p_b AS ({per_prompt.format(x="b")})
        SELECT coalesce(a.prompt_key, b.prompt_key) AS prompt_key, b.outcome - a.outcome AS d_outcome,
               a.outcome AS outcome_a, b.outcome AS outcome_b, a.steps AS steps_a, b.steps AS steps_b,
               a.credit AS credit_a, b.credit AS credit_b, a.groups AS groups_a, b.groups AS groups_b
        FROM p_a a FULL JOIN p_b b USING (prompt_key) {both}
        ORDER BY abs(d_outcome) DESC NULLS LAST, prompt_key LIMIT 500"""


def worker(db: Path, queries_per: int) -> dict:
    """One fresh process: first open, then every page query; returns seconds per query name."""
    import numpy as np

    from core.diff import Side, prompt_keys, sides
    from core.store import diff_queries as dq
    from core.store import queries
    from core.store.database import Store

    out: dict[str, list[float]] = {}

    def record(name: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        seconds, result = timed(fn, *args, **kwargs)
        out.setdefault(name, []).append(seconds)
        return result

    store = record("open the database", Store.open, db, read_only=True)
    pairs_of = {"runs": (Side("pool-s1"), Side("pool-s2")), "ranges": (Side("pool-s1", None, 44), Side("pool-s1", 45))}
    first = True
    for label, (a, b) in pairs_of.items():
        name = "first open: prompt keys + group tables (grpo)" if first else "first open of a range pair (tables kept)"
        both = record(name, sides, store, a, b, "grpo")
        first = False
        keys = prompt_keys(store)
        for _ in range(queries_per):
            record("sides again (a rerun's overhead)", sides, store, a, b, "grpo")
            record("summary, prompts in both", dq.summary, store, both)
            record("summary, all prompts", dq.summary, store, both, scope="all")
            table, _ = record("table: all, by outcome change", dq.pairs, store, both, keys)
            record("table: flipped, by length change", dq.pairs, store, both, keys, show="flipped",
                   order="length change")  # fmt: skip
            record("table: only in B, by credit change", dq.pairs, store, both, keys, show="only in B",
                   order="credit change")  # fmt: skip
            record("scatter: 3,000 prompts in both", dq.pairs, store, both, keys, show="in both", order="prompt key",
                   limit=3000)  # fmt: skip
            for what in dq.HISTOGRAMS:
                record(f"histogram: {what}", dq.histogram, store, both, what)
            key = str(table["prompt_key"].iloc[0])
            record("pair: its row", dq.pairs, store, both, keys, limit=1, prompt_key=key)
            groups = record("pair: groups of the prompt in A", dq.prompt_groups, store, both.a, key, a.lo, a.hi)
            it, gid = int(groups["iteration"].iloc[0]), str(groups["group_id"].iloc[0])
            record("pair: group steps", queries.steps, store, run_id=a.run, iteration=it, group_id=gid)
            record("pair: group trajectories", queries.trajectories, store, run_id=a.run, iteration=it, group_id=gid)
            # Baseline: the same table straight from the trajectories; the numbers must agree.
            params = {"run_a": a.run, "lo_a": a.lo, "hi_a": a.hi, "run_b": b.run, "lo_b": b.lo, "hi_b": b.hi}

            def direct(sql: str = direct_sql(False), params: dict = params, keys=keys):  # noqa: ANN001, ANN202
                with store.reader() as cur:
                    cur.register("keys", keys)
                    return cur.execute(sql, params).df()

            base = record(f"BASELINE table from trajectories ({label})", direct)
            mine = table[["prompt_key", "d_outcome", "outcome_a", "outcome_b", "credit_a", "credit_b"]]
            assert list(base["prompt_key"]) == list(mine["prompt_key"]), "baseline and diff rank prompts differently"
            for column in ("d_outcome", "outcome_a", "outcome_b", "credit_a", "credit_b"):
                assert np.allclose(base[column], mine[column], equal_nan=True, atol=1e-9), column
            out.setdefault(f"_table ({label})", []).append(out["table: all, by outcome change"][-1])
    record("scheme change: rloo group tables", sides, store, *pairs_of["runs"], "rloo")
    store.close()
    return out


def cli_diff(db: Path, folder: Path) -> tuple[float, int]:
    """``creditscope diff --out`` as a whole process: wall seconds and peak RSS (KiB) from /usr/bin/time -v."""
    out = folder / "pairs.parquet"
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *CLI, "diff", "--db", str(db), "pool-s1", "pool-s2", "--out",
                           str(out)], capture_output=True, text=True, check=True)  # fmt: skip
    wall = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return wall, int(rss.group(1)) if rss else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, default=5e6, help="steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="fresh worker processes")
    parser.add_argument("--queries", type=int, default=10, help="times each query runs per worker and side pair")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--json", type=Path, help="write the raw timings here")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.queries)))
        return
    db = build(args.dir, args.steps)
    print(f"database: {db} ({db.stat().st_size / 1e6:.0f} MB)")
    runs = subprocess.run([*CLI, "runs", "--db", str(db)], capture_output=True, text=True, check=True).stdout
    print(runs.rstrip())
    timings: dict[str, list[float]] = {}
    walls, rss = [], []
    for _ in range(args.repeats):
        done = subprocess.run([sys.executable, __file__, "--worker", str(db), "--queries", str(args.queries)],
                              capture_output=True, text=True, check=True)  # fmt: skip
        for name, values in json.loads(done.stdout.strip().splitlines()[-1]).items():
            timings.setdefault(name, []).extend(values)
        wall, peak = cli_diff(db, args.dir)
        walls.append(wall)
        rss.append(peak)
    print(f"\n{'query':52} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    worst = 0.0
    for name, values in timings.items():
        if name.startswith("_"):
            continue
        ms = sorted(v * 1000 for v in values)
        p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
        page_query = not name.startswith(("first open", "scheme change", "open the", "BASELINE"))
        worst = max(worst, p95) if page_query else worst
        print(f"{name:52} {len(ms):4d} {statistics.median(ms):8.1f} {p95:8.1f} {ms[-1]:8.1f}")
    for label in ("runs", "ranges"):
        base = statistics.median(timings[f"BASELINE table from trajectories ({label})"])
        mine = statistics.median(timings[f"_table ({label})"])
        print(f"per-prompt table ({label}): baseline / diff = {base / mine:.1f}x (medians {base * 1000:.0f} / "
              f"{mine * 1000:.0f} ms, same numbers)")  # fmt: skip
    print(f"creditscope diff --out, whole process: median {statistics.median(walls):.2f}s, peak RSS "
          f"{max(rss) / 1024:.0f} MiB")  # fmt: skip
    print(f"slowest page query p95: {worst:.0f} ms ({'PASS' if worst < 500 else 'FAIL'}: goal < 500 ms)")
    if args.json:
        args.json.write_text(json.dumps({"timings": timings, "cli_wall": walls, "cli_rss_kib": rss}, indent=1))


if __name__ == "__main__":
    main()
