"""p50 / p95 of every query a dashboard page runs, on realistic databases of 1M and 10M steps.

Run: ``.venv/bin/python bench/queries.py [--steps 1e6 --steps 1e7] [--repeats 30] [--dir DIR]``

The databases come from :mod:`bench.scale_data` (one run mixing the three ``creditscope synth``
environments over 200 iterations; built once and cached in ``--dir``). Each query runs ``--repeats``
times, each time on a different iteration, group or trajectory drawn from the run (seeded), after one
untimed warm-up, in one process holding the database as the dashboard does. The table lists the
queries by page, with the goal (p95 < 300 ms at 10M steps) checked for the pages the issue names; the
Compare page's one-iteration read is listed for information.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scale_data import DEFAULT_DIR, build, label  # bench/ is the script's folder

from core.store import prm_cache, queries
from core.store.database import Store

GOAL_MS = 300.0
SEARCHES = ("garden", "take key", "17 * 3", "= 51", "start with 16", "sword")


def page_queries(store: Store, run: str, rng: np.random.Generator) -> list[tuple[str, str, Callable[[], object]]]:
    """(page, query, call) for every query the pages run; each call draws its own iteration/group/trajectory."""
    its = queries.iterations(store, run)
    groups = queries.groups(store, run)[["iteration", "group_id"]].to_numpy()
    trajs = store.query_df("SELECT traj_id, iteration, group_id FROM trajectories WHERE run_id = ?", [run])
    trajs = trajs.to_numpy()

    def any_it() -> int:
        return int(rng.choice(its))

    def any_group() -> tuple[int, str]:
        it, gid = groups[rng.integers(len(groups))]
        return int(it), str(gid)

    def any_traj() -> tuple[str, int, str]:
        traj, it, gid = trajs[rng.integers(len(trajs))]
        return str(traj), int(it), str(gid)

    def search() -> object:
        return queries.groups_page(store, run, None, str(rng.choice(SEARCHES)), limit=500)

    def scorers() -> object:
        with store.reader() as cur:
            return prm_cache.list_scorers(cur, run), prm_cache.logged_score_count(cur, run)

    return [
        ("every page", "runs_summary", lambda: queries.runs_summary(store)),
        ("Runs", "iteration_curves", lambda: queries.iteration_curves(store, [run])),
        ("Groups", "iterations", lambda: queries.iterations(store, run)),
        ("Groups", "groups_page (all iterations, page 1)", lambda: queries.groups_page(store, run, None, limit=500)),
        (
            "Groups",
            "groups_page (all iterations, by std, a later page)",
            lambda: queries.groups_page(
                store, run, None, sort="std_outcome", descending=True, limit=500, offset=500 * int(rng.integers(50))
            ),
        ),
        ("Groups", "groups_page (one iteration)", lambda: queries.groups_page(store, run, any_it(), limit=500)),
        ("Groups", f"search, all iterations ({len(SEARCHES)} texts)", search),
        ("Group", "groups (one iteration: the group picker)", lambda: queries.groups(store, run, any_it())),
        ("Group", "steps (one group)", lambda: queries.steps(store, run_id=run, iteration=(g := any_group())[0],
                                                             group_id=g[1])),
        ("Group", "trajectories (one group)", lambda: queries.trajectories(store, run_id=run,
                                                                            iteration=(g := any_group())[0],
                                                                            group_id=g[1])),
        ("Trajectory", "trajectory (row + steps)", lambda: queries.trajectory(store, run, any_traj()[0])),
        ("Trajectory", "step_tokens", lambda: queries.step_tokens(store, run, any_traj()[0])),
        ("Trajectory", "siblings + group steps", lambda: (
            queries.trajectories(store, run_id=run, iteration=(t := any_traj())[1], group_id=t[2]),
            queries.steps(store, run_id=run, iteration=t[1], group_id=t[2]))),
        ("Compare", "column_coverage", lambda: queries.column_coverage(store)),
        ("Rescore", "scorers + logged count", scorers),
        ("Rescore", "scope pickers (iterations, groups, trajectories)", lambda: (
            queries.iterations(store, run), queries.groups(store, run, (g := any_group())[0]),
            queries.trajectories(store, run_id=run, iteration=g[0], group_id=g[1]))),
        ("Rescore", "labelled_steps_sample (20,000 trajectories)",
         lambda: queries.labelled_steps_sample(store, run, 20_000)),
        ("Compare*", "steps (one iteration, for its credit)", lambda: queries.steps(store, run_id=run,
                                                                                    iteration=any_it())),
    ]  # fmt: skip


def measure(db: Path, repeats: int) -> list[tuple[str, str, float, float, float]]:
    """(page, query, first ms, p50 ms, p95 ms) per query."""
    store = Store.open(db, read_only=True)
    run = str(queries.runs_summary(store)["run_id"].iloc[0])
    rng = np.random.default_rng(0)
    rows = []
    for page, name, call in page_queries(store, run, rng):
        started = time.perf_counter()
        call()
        first = time.perf_counter() - started
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        times.sort()
        p95 = times[min(len(times) - 1, int(np.ceil(0.95 * len(times))) - 1)]
        rows.append((page, name, first * 1000, statistics.median(times) * 1000, p95 * 1000))
        print(f"  {page:11s} {name:52s} first {first * 1000:7.1f}  p50 {rows[-1][3]:7.1f}  p95 {p95 * 1000:7.1f} ms")
    store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, action="append", help="database sizes (default 1e6 and 1e7)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    sizes = list(dict.fromkeys(int(s) for s in (args.steps or [1e6, 1e7])))
    results = {}
    for steps in sizes:
        db = build(steps, args.dir)
        print(f"{db} ({steps:,} steps requested)")
        results[steps] = measure(db, args.repeats)
    header = "| page | query | " + " | ".join(f"{label(s)} p50 / p95 ms" for s in sizes) + " |"
    print("\n" + header + "\n" + "|---" * (2 + len(sizes)) + "|")
    worst = 0.0
    for i, (page, name, *_) in enumerate(results[sizes[0]]):
        cells = [f"{results[s][i][3]:.1f} / {results[s][i][4]:.1f}" for s in sizes]
        print(f"| {page} | {name} | " + " | ".join(cells) + " |")
        if not page.endswith("*"):
            worst = max(worst, results[sizes[-1]][i][4])
    verdict = "PASS" if worst < GOAL_MS else "FAIL"
    print(f"\n{verdict}: slowest p95 at {label(sizes[-1])} steps over the pages' queries: {worst:.0f} ms "
          f"(goal < {GOAL_MS:.0f} ms; * = not in the goal)")  # fmt: skip


if __name__ == "__main__":
    main()
