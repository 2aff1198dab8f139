"""Benchmark: build a 64 x 40 group's rollout tree, lay it out and draw it (target: under 1 s); merge similar states.

Run from the repo root:  .venv/bin/python bench/trees.py [--write FILE.md] [--baseline-wide]

State merging (``cluster_states``, target: 256 x 40 under 2 s) is timed on observation texts
(:func:`observation_group`), checked against the same greedy rule written independently (same clusters),
and the difflib loop it replaced is timed too (at 64 x 40 only unless ``--baseline-wide``: minutes), with
how many clusters its heuristic ratio makes.

The group is synthetic: each trajectory copies the first k actions of a random earlier one
(k uniform in [0, 40)) and then continues with fresh arithmetic-looking lines, so prefixes are
shared the way branching rollouts share them. Timings are best and median of 5 runs.
"""

from __future__ import annotations

import argparse
import difflib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz.distance import Indel

from core.schema import STEP_COLUMN_NAMES
from core.trees import cap_nodes, cluster_states, collapse_chains, prefix_tree, state_graph, tree_layout
from dashboard.figures.trees import state_graph_figure, tree_figure

N_TRAJS, N_STEPS, REPEATS, BUDGET_S = 64, 40, 5, 1.0


def branching_group(
    n_trajs: int = N_TRAJS, n_steps: int = N_STEPS, seed: int = 0, explicit: bool = False
) -> pd.DataFrame:
    """Return one canonical group whose trajectories share random prefixes (optionally with node ids)."""
    rng = np.random.default_rng(seed)
    paths: list[list[tuple[str, str]]] = []  # (node id, action) per step
    rows = []
    for index in range(n_trajs):
        shared = paths[rng.integers(len(paths))][: rng.integers(0, n_steps)] if paths else []
        fresh = [
            (f"n{index}.{k}", f"{rng.integers(1, 99)} * {rng.integers(2, 9)} = {rng.integers(1, 999)}")
            for k in range(len(shared), n_steps)
        ]
        path = shared + fresh
        paths.append(path)
        outcome = float(rng.random() < 0.4)
        for step_idx, (node, action) in enumerate(path):
            row = dict.fromkeys(STEP_COLUMN_NAMES)
            parent = path[step_idx - 1][0] if step_idx else None
            row.update(run_id="bench", iteration=0, group_id="g", traj_id=f"t{index:02d}", step_idx=step_idx)
            row.update(state=f"problem {seed}; line {step_idx}", action=action, outcome=outcome, reward=0.0)
            row.update(node_id=node if explicit else None, parent_id=parent if explicit else None)
            rows.append(row)
    return pd.DataFrame(rows, columns=list(STEP_COLUMN_NAMES))


def observation_group(n_trajs: int, n_steps: int, seed: int = 0) -> list[str]:
    """State texts of one group, in row order: a task line and the last lines of the transcript so far.

    Trajectories branch off earlier ones (shared prefixes, so identical states recur), and a state is
    the kind of observation agent logs carry: 100-400 characters, most of it shared with its
    neighbours, so near-identical states are common and every pair is worth comparing.
    """
    rng = np.random.default_rng(seed)
    task = "You are in the middle of a room. Looking quickly around you, you see a cabinet, a drawer and a shelf."
    paths: list[list[str]] = []
    states = []
    for _ in range(n_trajs):
        shared = paths[rng.integers(len(paths))][: rng.integers(0, n_steps)] if paths else []
        fresh = [
            f"> go to {rng.choice(['cabinet', 'drawer', 'shelf', 'desk'])} {rng.integers(1, 6)}: you see "
            f"a {rng.choice(['mug', 'pen', 'key', 'book', 'lamp'])} {rng.integers(1, 4)}"
            for _ in range(len(shared), n_steps)
        ]
        path = shared + fresh
        paths.append(path)
        states += [task + "\n" + "\n".join(path[max(0, t - 4) : t]) for t in range(n_steps)]
    return states


def pairwise_clusters(texts: list[str], similarity: float) -> list[int]:
    """The same greedy rule written independently (rapidfuzz's Indel similarity, no length bound): same clusters."""
    reps: list[str] = []
    seen: dict[str, int] = {}
    labels = []
    for text in texts:
        hit = seen.get(text)
        if hit is None:
            hit = next((i for i, rep in enumerate(reps) if _ratio(text, rep) >= similarity), None)
            if hit is None:
                hit = len(reps)
                reps.append(text)
            seen[text] = hit
        labels.append(hit)
    return labels


def _ratio(a: str, b: str) -> float:
    return Indel.normalized_similarity(a, b) if a or b else 1.0


def difflib_clusters(texts: list[str], similarity: float) -> int:
    """Clusters the difflib loop this replaced would make (its ratio drops popular characters of long texts)."""
    reps: list[str] = []
    for text in dict.fromkeys(texts):
        if not any(difflib.SequenceMatcher(None, text, rep).ratio() >= similarity for rep in reps):
            reps.append(text)
    return len(reps)


def merge_bench(baseline_wide: bool) -> list[str]:
    """State merging at similarity 0.9: batched rapidfuzz vs the same rule pair by pair, and the old difflib loop."""
    lines = []
    # 0.9 (the dashboard's default) merges most observations; 0.99 keeps nearly every text apart, the slow case.
    for n_trajs, similarity in ((N_TRAJS, 0.9), (4 * N_TRAJS, 0.9), (N_TRAJS, 0.99)):
        texts = observation_group(n_trajs, N_STEPS)
        best, median = time_it(lambda texts=texts, s=similarity: cluster_states(texts, similarity=s))
        labels, reps = cluster_states(texts, similarity=similarity)
        name = (f"merge similar states >= {similarity}, {n_trajs} x {N_STEPS} "
                f"({len(set(texts))} distinct -> {len(reps)} clusters)")  # fmt: skip
        line = f"{name:75s} best {best * 1000:8.1f} ms   median {median * 1000:8.1f} ms"
        started = time.perf_counter()
        same = pairwise_clusters(texts, similarity) == labels.tolist()
        pairwise = time.perf_counter() - started
        line += f" | reference loop {pairwise:6.2f} s, same clusters: {same}"
        if (n_trajs == N_TRAJS and similarity == 0.9) or baseline_wide:
            started = time.perf_counter()
            n_difflib = difflib_clusters(texts, similarity)
            line += f" | old difflib loop {time.perf_counter() - started:7.2f} s, {n_difflib} clusters"
        print(line)
        lines.append(line)
    return lines


def time_it(work: Callable[[], object]) -> tuple[float, float]:
    """Return (best, median) wall seconds of ``REPEATS`` runs of ``work``."""
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return min(seconds), statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="also write the results as Markdown to this file")
    parser.add_argument("--baseline-wide", action="store_true", help="also time pairwise difflib on 256 x 40 (minutes)")
    args = parser.parse_args()

    derived = branching_group()
    explicit = branching_group(explicit=True)
    advantages = np.random.default_rng(1).normal(size=len(derived))
    tree = prefix_tree(derived, quantity="advantage", values=advantages)
    positions = tree_layout(tree)
    # The first plotly figure of a process pays for importing plotly's validators; a page pays it once.
    start = time.perf_counter()
    tree_figure(tree, title="bench", colour_label="advantage", positions=positions)
    cold_figure = time.perf_counter() - start

    def full_pipeline(steps: pd.DataFrame) -> None:
        built = prefix_tree(steps, quantity="advantage", values=advantages)
        tree_figure(built, title="bench", colour_label="advantage", positions=tree_layout(built))

    def full_pipeline_of(steps: pd.DataFrame) -> None:
        built = prefix_tree(steps)
        tree_figure(built, title="bench", colour_label="value", positions=tree_layout(built))

    def display_pipeline() -> None:
        shown = collapse_chains(cap_nodes(prefix_tree(derived, quantity="advantage", values=advantages), 200))
        tree_figure(shown, title="bench", colour_label="advantage", positions=tree_layout(shown))

    wide = branching_group(n_trajs=4 * N_TRAJS, seed=2)
    agent = _agent_group()
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "prefix_tree (derived ids, with advantages)",
            lambda: prefix_tree(derived, quantity="advantage", values=advantages),
        ),
        ("tree_layout", lambda: tree_layout(tree)),
        ("tree_figure", lambda: tree_figure(tree, title="bench", colour_label="advantage", positions=positions)),
        ("**tree + layout + figure (derived ids)**", lambda: full_pipeline(derived)),
        ("**tree + layout + figure (explicit ids)**", lambda: full_pipeline(explicit)),
        ("tree + cap(200) + collapse + layout + figure", display_pipeline),
        (f"tree + layout + figure, {4 * N_TRAJS} x {N_STEPS} (scaling check)", lambda: full_pipeline_of(wide)),
    ]
    if agent is not None:
        cases += [
            (
                f"state_graph + figure (synth agent group, {len(agent)} rows)",
                lambda: state_graph_figure(state_graph(agent), title="a", colour_label="value"),
            ),
            ("state_graph(similarity=0.9) (same group)", lambda: state_graph(agent, similarity=0.9)),
        ]

    header = f"{N_TRAJS} trajectories x {N_STEPS} steps = {len(derived)} rows; tree has {len(tree)} nodes"
    lines = ["| case | best (ms) | median (ms) |", "|---|---:|---:|"]
    print(header)
    totals = {}
    for name, work in cases:
        best, median = time_it(work)
        totals[name] = best
        lines.append(f"| {name} | {best * 1000:.1f} | {median * 1000:.1f} |")
        print(f"{name:55s} best {best * 1000:8.1f} ms   median {median * 1000:8.1f} ms")
    lines.append(f"| first tree_figure of a fresh process (one-off plotly warm-up) | {cold_figure * 1000:.1f} | - |")
    print(f"{'first tree_figure of the process (plotly warm-up)':55s} once {cold_figure * 1000:8.1f} ms")
    worst = max(totals["**tree + layout + figure (derived ids)**"], totals["**tree + layout + figure (explicit ids)**"])
    verdict = (
        f"{'PASS' if worst < BUDGET_S else 'FAIL'}: tree + layout + figure best {worst * 1000:.0f} ms "
        f"(budget {BUDGET_S * 1000:.0f} ms)"
    )
    print(verdict)
    merges = merge_bench(args.baseline_wide)
    if args.write:
        python = sys.version.split()[0]
        machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, Python {python}"
        text = "\n".join(
            [
                "# Benchmark: trajectory trees (bench/trees.py)",
                "",
                "Command: `.venv/bin/python bench/trees.py --write FILE.md` (repo root)",
                f"Machine: {machine}; shared with other jobs, so treat as upper bounds.",
                f"Group: {header}. Best and median of {REPEATS} runs.",
                "",
                *lines,
                "",
                verdict,
                "",
                *merges,
                "",
            ]
        )
        args.write.write_text(text, encoding="utf-8")


def _agent_group() -> pd.DataFrame | None:
    """Return the largest group of the synthetic agent run, or None when core.synth is unavailable."""
    try:
        from core.synth import generate_steps
    except ImportError:
        return None
    steps = generate_steps("agent", prompts=2, iterations=1, group_size=16, seed=0)
    largest = steps.groupby(["run_id", "iteration", "group_id"]).size().idxmax()
    keys = steps.set_index(["run_id", "iteration", "group_id"]).index
    return steps[keys == largest].reset_index(drop=True)


if __name__ == "__main__":
    main()
