"""Ingest benchmark: `creditscope ingest` of 1M native JSONL steps vs DuckDB's own read_json, same run.

Usage: python bench/ingest.py [--steps 1000000] [--repeats 3]

Both sides load the same file into a fresh DuckDB file and close it (so both pay the checkpoint).
Runs alternate (baseline, ours, baseline, ours, ...) so machine noise hits both alike; the ratio of
the best times is the headline, medians are printed too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from core.ingest.runner import ingest
from core.store.database import Store
from core.synth import write_jsonl

CACHE = Path(tempfile.gettempdir()) / "creditscope-bench"


def sample_file(steps: int) -> tuple[Path, int]:
    """A native JSONL file of about ``steps`` arithmetic steps (cached between runs)."""
    CACHE.mkdir(exist_ok=True)
    prompts = max(1, round(steps / (8 * 90 * 4.5)))  # about 4.5 steps per trajectory, 90 iterations, groups of 8
    path = CACHE / f"arithmetic-{prompts}x90x8.jsonl"
    if not path.exists():
        n = write_jsonl(path, "arithmetic", prompts=prompts, iterations=90, group_size=8, seed=0)
        path.with_suffix(".count").write_text(str(n))
    return path, int(path.with_suffix(".count").read_text())


def baseline(path: Path, db: Path) -> float:
    """DuckDB alone: read_json (auto-detected) straight into a table."""
    started = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE raw AS SELECT * FROM read_json(?, format = 'newline_delimited')", [str(path)])
    con.close()
    return time.perf_counter() - started


def creditscope(path: Path, db: Path) -> float:
    """The ingest command's code path: validation, canonical tables, bookkeeping, one transaction."""
    started = time.perf_counter()
    store = Store.open(db)
    report = ingest(store, [str(path)])
    store.close()
    assert report.sources[0].fast_path, "benchmark file should take the DuckDB fast path"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    path, n_steps = sample_file(args.steps)
    print(f"file: {path} ({path.stat().st_size / 1e6:.0f} MB, {n_steps} steps)")
    times: dict[str, list[float]] = {"duckdb read_json": [], "creditscope ingest": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for name, fn in (("duckdb read_json", baseline), ("creditscope ingest", creditscope)):
                db = Path(tmp) / f"{name.split()[0]}-{i}.duckdb"
                times[name].append(fn(path, db))
                db.unlink()
    for name, ts in times.items():
        rate = n_steps / min(ts) / 1e6
        print(f"{name:20} best {min(ts):6.2f}s  median {statistics.median(ts):6.2f}s  ({rate:.2f}M steps/s)")
    ratio = min(times["creditscope ingest"]) / min(times["duckdb read_json"])
    med = statistics.median(times["creditscope ingest"]) / statistics.median(times["duckdb read_json"])
    print(f"ratio creditscope / duckdb: best {ratio:.2f}x, median {med:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
