"""Benchmark of the credit engine on ~1M steps, against straightforward per-group Python loops.

Run: ``.venv/bin/python bench/credit.py [--steps 1000000] [--loop-rows 100000]``

The frame is built from ``core.synth.generate_steps`` (arithmetic, tree and agent environments) and
replicated under new run ids until it reaches ``--steps`` rows; columns the sample environments do
not log (prm/value for the agent env, per-step log-probs, token counts) are filled synthetically so
every scheme can run. The loop baselines of grpo, gigpo and treeps run on whole groups covering the
first ``--loop-rows`` rows, are checked against the vectorised result on the same rows, and their
time is extrapolated linearly to the full frame (said so in the output).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import pandas as pd

from core.credit import SCHEMES, compute, prepare
from core.synth import generate_steps

GROUP_KEY = ["run_id", "iteration", "group_id"]


def build_frame(n_steps: int, seed: int = 0) -> pd.DataFrame:
    """About ``n_steps`` canonical rows mixing the three sample environments."""
    parts = [
        generate_steps(env, prompts=30, iterations=30, group_size=8, seed=seed)
        for env in ("arithmetic", "tree", "agent")
    ]
    base = pd.concat(parts, ignore_index=True)
    copies = int(np.ceil(n_steps / len(base)))
    frames = [base.assign(run_id=base["run_id"] + f"#{k}") for k in range(copies)]
    df = pd.concat(frames, ignore_index=True).iloc[:n_steps]
    # Cut at a group boundary so no group is truncated.
    last_group = df[GROUP_KEY].iloc[-1].tolist()
    df = df[~(df[GROUP_KEY] == last_group).all(axis=1)].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    label = df["label"].fillna(0.5).to_numpy()
    df["prm"] = df["prm"].fillna(pd.Series(np.clip(0.6 * label + rng.normal(0.2, 0.15, len(df)), 0, 1)))
    df["value"] = df["value"].fillna(pd.Series(rng.random(len(df))))
    df["logp_policy"] = rng.normal(-5, 1, len(df))
    df["logp_ref"] = df["logp_policy"] + rng.normal(0, 0.3, len(df))
    df["n_tokens"] = df["action"].str.len().clip(lower=1) // 4 + 1
    return df


def grpo_loop(df: pd.DataFrame) -> np.ndarray:
    """GRPO by iterating over groups and trajectories in Python."""
    out = np.zeros(len(df))
    for _, group in df.groupby(GROUP_KEY, sort=False):
        outcomes = group.groupby("traj_id", sort=False)["outcome"].first()
        values = outcomes.to_numpy()
        mean, std = (values.mean(), values.std(ddof=1)) if len(values) > 1 else (0.0, 1.0)
        adv = {t: (r - mean) / (std + 1e-6) for t, r in outcomes.items()}
        for position, traj in zip(group.index, group["traj_id"], strict=True):
            out[position] = adv[traj]
    return out


def gigpo_loop(df: pd.DataFrame, gamma: float = 0.95, omega: float = 1.0, penalty: float = 0.1) -> np.ndarray:
    """GiGPO (mean_norm, row-level episode stats, invalid penalty) with per-row Python loops."""
    out = np.zeros(len(df))
    for _, group in df.groupby(GROUP_KEY, sort=False):
        rows = []  # (position, outcome score, step return, state)
        for _, traj in group.sort_values("step_idx").groupby("traj_id", sort=False):
            running, returns = 0.0, []
            for reward in reversed(traj["reward"].fillna(0.0).tolist()):
                running = reward + gamma * running
                returns.append(running)
            for (position, row), ret in zip(traj.iterrows(), reversed(returns), strict=True):
                pen = penalty * (0.0 if pd.isna(row["valid"]) or row["valid"] else 1.0)
                rows.append((position, row["outcome"] - pen, ret - pen, row["state"]))
        scores = np.array([r[1] for r in rows])
        mean = scores.mean() if len(rows) > 1 else 0.0
        clusters = defaultdict(list)
        for r in rows:
            clusters[r[3]].append(r[2])
        cluster_mean = {state: np.mean(v) for state, v in clusters.items()}
        for position, score, ret, state in rows:
            out[position] = (score - mean) + omega * (ret - cluster_mean[state])
    return out


def treeps_loop(df: pd.DataFrame) -> np.ndarray:
    """TreePS V(node) - V(parent) with nodes from node_id, or from action prefixes, in Python."""
    out = np.zeros(len(df))
    for _, group in df.groupby(GROUP_KEY, sort=False):
        explicit = group["node_id"].notna().all()
        path_of: dict[str, list] = {}
        outcome_of: dict[str, float] = {}
        for traj_id, traj in group.sort_values("step_idx").groupby("traj_id", sort=False):
            keys, prefix = [], ()
            for position, row in traj.iterrows():
                prefix = prefix + (row["action"],)
                keys.append((position, row["node_id"] if explicit else prefix))
            path_of[traj_id], outcome_of[traj_id] = keys, row["outcome"]
        visitors: dict = defaultdict(set)
        for traj_id, keys in path_of.items():
            for _, key in keys:
                visitors[key].add(traj_id)
        value = {key: np.mean([outcome_of[t] for t in trajs]) for key, trajs in visitors.items()}
        root = np.mean(list(outcome_of.values()))
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
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--loop-rows", type=int, default=100_000)
    args = parser.parse_args()

    started = time.perf_counter()
    df = build_frame(args.steps)
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

    print("\n| scheme | seconds (1M steps, shared prepare) |\n|---|---:|")
    print(f"| prepare (sort + encode, once) | {prepare_s:.3f} |")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.3f} |")
    print(f"| **all {len(timings)} schemes** | **{total:.3f}** |")
    print(f"| **all schemes + prepare** | **{total + prepare_s:.3f}** |")

    subset = first_groups(df, args.loop_rows)
    scale = len(df) / len(subset)
    print(
        f"\nloop baselines on the first {len(subset):,} rows (whole groups), "
        f"extrapolated x{scale:.1f} to the full frame"
    )
    print(
        "| scheme | loop s (subset) | loop s (extrapolated) | vectorised s (full, scheme only) | "
        "vectorised s (full, incl. prepare) | speed-up | speed-up incl. prepare | max abs diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, loop in LOOPS.items():
        started = time.perf_counter()
        looped = loop(subset)
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
