"""Ingest benchmark: `creditscope ingest` against the one-row-per-step floor, as whole processes.

Usage: python bench/ingest.py [--steps 1000000 5000000] [--repeats 5] [--small-files 3000] [--skip-large]

The floor is the fastest raw DuckDB statement that produces one row per step from the same file and
keeps everything the file holds: a fresh Python process that opens a new DuckDB file, runs
``CREATE TABLE steps AS SELECT * EXCLUDE (steps), unnest(steps, recursive := true) FROM read_json(...)``
with every column's type given (detected beforehand, outside the timing), and closes the file. A second
baseline keeps only the step fields and the record keys (no prompt, meta or split), for reference.

``creditscope ingest FILE --db NEW.duckdb --quiet`` is timed the same way: interpreter start, imports,
checks, canonical tables, summaries and the search index, commit and close. Runs alternate (floor,
reference, ingest, floor, ...) so machine noise hits all alike; the headline is the ratio of medians.
Peak memory is each process's own maximum resident set (``/usr/bin/time``), the median over the runs.

Data: ``creditscope synth`` records of all three environments (arithmetic, tree, agent) interleaved
record by record, one file with the per-token arrays the environments log and one without them.
``--small-files N`` also splits the first size's file into N files holding the same records and
compares ingesting that folder with ingesting the single file (goal: within 3x).

``--free-text STEPS`` adds a file whose actions are free text (100 words each, drawn from a 20,000-word
vocabulary with Zipf frequencies, with varied separators). Such a file is left out of the search's term index
(whose cost grows with the terms of the actions) and its search reads the actions instead.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from core.schema import TOKEN_COLUMN_NAMES
from core.synth import records

CACHE = Path(tempfile.gettempdir()) / "creditscope-bench"
ENVS = ("arithmetic", "tree", "agent")
STEPS_PER_TRAJECTORY = 5.4  # measured over the three environments' default sizes, to size the prompts
CREDITSCOPE = str(Path(sys.executable).with_name("creditscope"))

FLOOR = """
import sys, duckdb
path, db, columns, keep = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
con = duckdb.connect(db)
picked = "* EXCLUDE (steps)" if keep == "all" else 'run, iteration, "group", trajectory, outcome'
con.execute(f"CREATE TABLE steps AS SELECT {picked}, unnest(steps, recursive := true) "
            f"FROM read_json(?, format = 'newline_delimited', columns = {columns})", [path])
con.close()
"""


def synth_file(steps: int, tokens: bool) -> tuple[Path, int]:
    """A native JSONL file of about ``steps`` steps, all three environments interleaved (cached)."""
    CACHE.mkdir(exist_ok=True)
    prompts = max(1, round(steps / (len(ENVS) * 90 * 8 * STEPS_PER_TRAJECTORY)))
    path = CACHE / f"mixed-{prompts}x90x8{'-tokens' if tokens else ''}.jsonl"
    count = path.with_suffix(".count")
    if not count.exists():
        n = 0
        with open(path, "w", encoding="utf-8") as fh:
            streams = [records(env, prompts=prompts, iterations=90, group_size=8, seed=0) for env in ENVS]
            for rec in itertools.chain.from_iterable(itertools.zip_longest(*streams)):
                if rec is None:
                    continue
                if not tokens:
                    for step in rec["steps"]:
                        for name in TOKEN_COLUMN_NAMES:
                            step.pop(name, None)
                fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
                n += len(rec["steps"])
        count.write_text(str(n))
    return path, int(count.read_text())


def free_text_file(steps: int) -> tuple[Path, int]:
    """A native JSONL file of about ``steps`` steps whose actions are 100 words of free text each (cached)."""
    CACHE.mkdir(exist_ok=True)
    groups = max(1, steps // 64)  # 8 rollouts of 8 steps per group
    path = CACHE / f"free-text-{groups}x8x8.jsonl"
    count = path.with_suffix(".count")
    if not count.exists():
        rng = random.Random(0)
        vocab = [f"w{i}" for i in range(20_000)]
        weights = [1 / (i + 1) for i in range(len(vocab))]
        separators = [" "] * 4 + [", ", ". ", " = ", "(", ") ", "\n"]

        def text(words: int) -> str:
            return "".join(w + rng.choice(separators) for w in rng.choices(vocab, weights, k=words))

        with open(path, "w", encoding="utf-8") as fh:
            for g in range(groups):
                prompt = f"Task {g}: " + text(30)
                for r in range(8):
                    steps_ = [{"state": prompt, "action": text(100), "reward": 0.0} for _ in range(8)]
                    record = {"run": "free-text", "iteration": g // 250, "group": f"g{g}", "trajectory": f"g{g}-r{r}",
                              "prompt": prompt, "outcome": float(r % 2), "steps": steps_}  # fmt: skip
                    fh.write(json.dumps(record) + "\n")
        count.write_text(str(groups * 64))
    return path, int(count.read_text())


def explicit_columns(path: Path) -> str:
    """The file's layout detected over every record, written as read_json's ``columns`` (the floor's head start)."""
    con = duckdb.connect()
    relation = con.sql(f"SELECT * FROM read_json('{path}', format = 'newline_delimited', sample_size = -1)")
    return "{" + ", ".join(f"'{n}': '{t}'" for n, t in zip(relation.columns, relation.types, strict=True)) + "}"


def run(command: list[str], tmp: Path) -> tuple[float, float]:
    """Run a whole process under ``/usr/bin/time``; return its wall seconds and its own peak RSS in MiB.

    The peak comes from ``/usr/bin/time``, not from this process's wait4: Linux carries a (v)forked
    child's peak over from its parent, and this parent is large.
    """
    report = tmp / "time.txt"
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report), *command], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed: {done.stderr.strip()[-500:]}")
    return wall, int(report.read_text().split()[-1]) / 1024


def compare(commands: dict[str, list[str]], repeats: int, tmp: Path) -> dict[str, tuple[float, float]]:
    """Median wall seconds and peak MiB of each command, run alternately ``repeats`` times on fresh databases."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            db = tmp / "bench.duckdb"
            db.unlink(missing_ok=True)
            times[name].append(run([part.replace("{db}", str(db)) for part in command], tmp))
            db.unlink(missing_ok=True)
    return {
        name: (statistics.median(w for w, _ in runs), statistics.median(m for _, m in runs))
        for name, runs in times.items()
    }


def bench_file(path: Path, n_steps: int, repeats: int, tmp: Path) -> None:
    columns = explicit_columns(path)
    commands = {
        "floor (all fields)": [sys.executable, "-c", FLOOR, str(path), "{db}", columns, "all"],
        "reference (steps+keys)": [sys.executable, "-c", FLOOR, str(path), "{db}", columns, "keys"],
        "creditscope ingest": [CREDITSCOPE, "ingest", str(path), "--db", "{db}", "--quiet"],
    }
    result = compare(commands, repeats, tmp)
    print(f"\nfile: {path.name} ({path.stat().st_size / 1e6:.0f} MB, {n_steps:,} steps), median of {repeats}")
    for name, (wall, peak) in result.items():
        print(f"  {name:24} {wall:7.2f} s  {peak:7.0f} MiB  ({n_steps / wall / 1e6:.2f}M steps/s)")
    ours = result["creditscope ingest"]
    for name, goal in (("floor (all fields)", " (goal <= 1.5x)"), ("reference (steps+keys)", "")):
        base = result[name]
        print(f"  ratio to {name:22} time {ours[0] / base[0]:.2f}x, peak memory {ours[1] / base[1]:.2f}x{goal}")


def bench_small_files(path: Path, n_files: int, repeats: int, tmp: Path) -> None:
    """Ingest the same records as one file and as ``n_files`` files in one folder."""
    folder = tmp / "small"
    folder.mkdir(exist_ok=True)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    per_file = -(-len(lines) // n_files)
    for index in range(n_files):
        (folder / f"part-{index:05d}.jsonl").write_text("".join(lines[index * per_file : (index + 1) * per_file]))
    commands = {
        "one file": [CREDITSCOPE, "ingest", str(path), "--db", "{db}", "--quiet"],
        f"{n_files} files": [CREDITSCOPE, "ingest", str(folder), "--db", "{db}", "--quiet"],
    }
    result = compare(commands, repeats, tmp)
    print(f"\nsame {len(lines):,} records as one file and as {n_files} files, median of {repeats}")
    for name, (wall, peak) in result.items():
        print(f"  {name:24} {wall:7.2f} s  {peak:7.0f} MiB")
    ratio = result[f"{n_files} files"][0] / result["one file"][0]
    print(f"  ratio many / one: {ratio:.2f}x (goal <= 3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small-files", type=int, default=3000)
    parser.add_argument("--small-steps", type=int, default=120_000, help="steps of the many-small-files check")
    parser.add_argument("--skip-large", action="store_true", help="only the many-small-files check")
    parser.add_argument("--free-text", type=int, default=0, help="steps of a file of free-text actions (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="creditscope-bench-") as tmp:
        if not args.skip_large:
            for steps in args.steps:
                for tokens in (True, False):
                    bench_file(*synth_file(steps, tokens), args.repeats, Path(tmp))
        if args.free_text:
            bench_file(*free_text_file(args.free_text), args.repeats, Path(tmp))
        if args.small_files:
            bench_small_files(synth_file(args.small_steps, True)[0], args.small_files, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
