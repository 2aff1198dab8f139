"""Benchmark of the credit engine on ~1M realistic steps, against plain per-group Python loops over dicts.

Run: ``.venv/bin/python bench/credit.py [--steps 1e6] [--loop-rows N] [--dir DIR]``

The frame is a whole run read back from the database :mod:`scale_data` builds (``creditscope synth``
arithmetic, tree and agent environments over 200 iterations, every prompt and transcript generated
afresh: no replicated frames, so costs that grow with text diversity show). Columns the sample
environments do not log (prm/value/log-probs for the agent env, token counts) are filled
synthetically so every scheme can run. The baselines are what one would write without the engine: one
pass putting each row's dict into its group, then per group plain Python over those dicts (no pandas
in the loop); they run on the first ``--loop-rows`` rows' whole groups (default: the whole frame), are
checked against the engine on the same rows, and the engine's side counts ``prepare`` (sorting and
encoding) as well as the scheme.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from scale_data import DEFAULT_DIR, build  # bench/ is the script's folder

from core.credit import SCHEMES, compute, prepare
from core.store import queries
from core.store.database import Store

GROUP_KEY = ["run_id", "iteration", "group_id"]
EPS = 1e-6


def build_frame(n_steps: int, root: Path, seed: int = 0) -> pd.DataFrame:
    """The ~``n_steps`` run of :func:`scale_data.build`, with every optional column filled."""
    store = Store.open(build(n_steps, root, quiet=True), read_only=True)
    try:
        df = queries.steps(store, run_id="mixed", with_token_stats=True)  # per-token log-prob summaries (scope)
    finally:
        store.close()
    rng = np.random.default_rng(seed)
    label = df["label"].fillna(0.5).to_numpy()
    df["prm"] = df["prm"].fillna(pd.Series(np.clip(0.6 * label + rng.normal(0.2, 0.15, len(df)), 0, 1)))
    df["value"] = df["value"].fillna(pd.Series(rng.random(len(df))))
    df["logp_policy"] = df["logp_policy"].fillna(pd.Series(rng.normal(-5, 1, len(df))))
    df["logp_ref"] = df["logp_ref"].fillna(df["logp_policy"] + rng.normal(0, 0.3, len(df)))
    df["n_tokens"] = df["action"].str.len().clip(lower=1) // 4 + 1
    return df


def by_group(records: list[dict]) -> dict[tuple, dict[str, list[tuple[int, dict]]]]:
    """Group -> trajectory -> [(row position, row)] in step order: the one pass every loop starts with."""
    groups: dict[tuple, dict[str, list[tuple[int, dict]]]] = defaultdict(lambda: defaultdict(list))
    for position, row in enumerate(records):
        groups[(row["run_id"], row["iteration"], row["group_id"])][row["traj_id"]].append((position, row))
    for trajs in groups.values():
        for steps in trajs.values():
            steps.sort(key=lambda item: item[1]["step_idx"])
    return groups


def grpo_loop(records: list[dict]) -> np.ndarray:
    """GRPO: (R - mean) / (std + eps) over each group's trajectories (singleton: mean 0, std 1)."""
    out = np.zeros(len(records))
    for trajs in by_group(records).values():
        outcomes = [steps[0][1]["outcome"] for steps in trajs.values()]
        n = len(outcomes)
        mean = sum(outcomes) / n if n > 1 else 0.0
        std = math.sqrt(sum((r - mean) ** 2 for r in outcomes) / (n - 1)) if n > 1 else 1.0
        for steps, r in zip(trajs.values(), outcomes, strict=True):
            adv = (r - mean) / (std + EPS)
            for position, _ in steps:
                out[position] = adv
    return out


def gigpo_loop(records: list[dict], gamma: float = 0.95, omega: float = 1.0, penalty: float = 0.1) -> np.ndarray:
    """GiGPO (mean_norm, row-level episode stats, invalid penalty): episode term plus anchor-state step term."""
    out = np.zeros(len(records))
    for trajs in by_group(records).values():
        rows = []  # (position, outcome score, step return, state)
        for steps in trajs.values():
            running, returns = 0.0, []
            for _, row in reversed(steps):
                reward = row["reward"]
                running = (0.0 if reward is None or reward != reward else reward) + gamma * running
                returns.append(running)
            for (position, row), ret in zip(steps, reversed(returns), strict=True):
                valid = row["valid"]
                pen = penalty * (0.0 if valid is None or valid is pd.NA or valid else 1.0)
                rows.append((position, row["outcome"] - pen, ret - pen, row["state"]))
        mean = sum(r[1] for r in rows) / len(rows) if len(rows) > 1 else 0.0
        clusters: dict[object, list[float]] = defaultdict(list)
        for r in rows:
            clusters[r[3]].append(r[2])
        cluster_mean = {state: sum(v) / len(v) for state, v in clusters.items()}
        for position, score, ret, state in rows:
            out[position] = (score - mean) + omega * (ret - cluster_mean[state])
    return out


def treeps_loop(records: list[dict]) -> np.ndarray:
    """TreePS V(node) - V(parent) with nodes from node_id, or from action prefixes."""
    out = np.zeros(len(records))
    for trajs in by_group(records).values():
        explicit = all(row["node_id"] is not None for steps in trajs.values() for _, row in steps)
        path_of: dict[str, list] = {}
        outcome_of: dict[str, float] = {}
        for traj_id, steps in trajs.items():
            keys, prefix = [], ()
            for position, row in steps:
                prefix = prefix + (row["action"],)
                keys.append((position, row["node_id"] if explicit else prefix))
            path_of[traj_id], outcome_of[traj_id] = keys, steps[0][1]["outcome"]
        visitors: dict = defaultdict(set)
        for traj_id, keys in path_of.items():
            for _, key in keys:
                visitors[key].add(traj_id)
        value = {key: sum(outcome_of[t] for t in ts) / len(ts) for key, ts in visitors.items()}
        root = sum(outcome_of.values()) / len(outcome_of)
        for keys in path_of.values():
            parent_value = root
            for position, key in keys:
                out[position] = value[key] - parent_value
                parent_value = value[key]
    return out


LOOPS = {"grpo": grpo_loop, "gigpo": gigpo_loop, "treeps": treeps_loop}


def first_groups(df: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """Whole groups covering about the first ``n_rows`` rows."""
    keys = df[GROUP_KEY].astype(str).agg("|".join, axis=1)
    chosen = keys.iloc[:n_rows].unique()
    return df[keys.isin(chosen)].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, default=1e6)
    parser.add_argument("--loop-rows", type=int, default=0, help="loop baselines on this many rows (0: all)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()

    started = time.perf_counter()
    df = build_frame(int(args.steps), args.dir)
    print(
        f"frame: {len(df):,} steps, {df.groupby(GROUP_KEY).ngroups:,} groups, "
        f"{df.groupby(['run_id', 'traj_id']).ngroups:,} trajectories "
        f"(built in {time.perf_counter() - started:.1f} s)"
    )

    started = time.perf_counter()
    prep = prepare(df)
    prepare_s = time.perf_counter() - started
    timings: dict[str, float] = {}
    results: dict[str, np.ndarray] = {}
    for name in SCHEMES:
        started = time.perf_counter()
        results[name] = compute(prep, name)
        timings[name] = time.perf_counter() - started
    total = sum(timings.values())

    print(f"\n| scheme | seconds ({len(df):,} steps, shared prepare) |\n|---|---:|")
    print(f"| prepare (sort + encode, once) | {prepare_s:.3f} |")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.3f} |")
    print(f"| **all {len(timings)} schemes** | **{total:.3f}** |")
    print(f"| **all schemes + prepare** | **{total + prepare_s:.3f}** |")

    subset = first_groups(df, args.loop_rows) if args.loop_rows else df
    scale = len(df) / len(subset)
    records = subset.astype(object).where(subset.notna(), None).to_dict("records")
    print(
        f"\nloop baselines (plain Python over row dicts, grouped in one pass) on {len(subset):,} rows"
        + (f" (whole groups), extrapolated x{scale:.1f} to the full frame" if scale > 1 else " (the whole frame)")
    )
    print(
        "| scheme | loop s (subset) | loop s (extrapolated) | vectorised s (full, scheme only) | "
        "vectorised s (full, incl. prepare) | speed-up | speed-up incl. prepare | max abs diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, loop in LOOPS.items():
        started = time.perf_counter()
        looped = loop(records)
        loop_s = time.perf_counter() - started
        diff = float(np.max(np.abs(looped - compute(subset, name))))
        assert diff < 1e-9, f"{name}: loop and vectorised results disagree by {diff}"
        started = time.perf_counter()
        compute(df, name)  # from the raw frame: includes sorting, encoding and (treeps) the tree
        full_s = time.perf_counter() - started
        extrapolated = loop_s * scale
        print(
            f"| {name} | {loop_s:.2f} | {extrapolated:.1f} | {timings[name]:.3f} | {full_s:.3f} | "
            f"{extrapolated / timings[name]:.0f}x | {extrapolated / full_s:.0f}x | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
