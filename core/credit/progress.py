"""Schemes built on the value of intermediate states: PAV (M), VSRM (H) and Math-Shepherd MC labels (M).

The value of the state after a step is the Monte-Carlo value of its rollout-tree node (the mean
outcome of the trajectories passing through it) or, with ``source="prm"``, the step's PRM score.
The value before the first step is the group's mean outcome (the virtual root), for both sources.
"""

from __future__ import annotations

import numpy as np

from core.credit.outcome import group_advantage
from core.credit.prefix_tree import build_tree
from core.credit.prepared import PreparedSteps

VSRM_TOLERANCE = 1e-5
"""VSRM treats accuracy changes below this as flat (hard-coded in the official code)."""


def state_values(prep: PreparedSteps, notes: list[str], source: str) -> tuple[np.ndarray, np.ndarray]:
    """Value of the state before and after each step.

    Args:
        prep: Prepared steps.
        notes: Messages for the user (tree derivation, value source).
        source: ``"tree"`` (Monte-Carlo values of the rollout tree) or ``"prm"`` (the ``prm`` column).

    Returns:
        ``(before, after)`` per sorted row.
    """
    tree = build_tree(prep)
    value = tree.reduce_over_trajectories(prep.traj_outcome, "mean")
    root = value[tree.n_nodes + prep.group]
    if source == "prm":
        prep.require("prm", "values from source='prm'")
        after = prep.floats("prm")
        if np.isnan(after).any():
            notes.append("steps without a prm score use their tree Monte-Carlo value")
            after = np.where(np.isnan(after), value[tree.node], after)
        before = np.where(prep.is_first, root, np.r_[0.0, after[:-1]])
        return before, after
    notes.extend(tree.notes)
    return value[tree.parent], value[tree.node]


def pav(prep: PreparedSteps, notes: list[str], *, alpha: float, source: str, outcome_term: str) -> np.ndarray:
    """PAV: outcome advantage plus ``α·(V(s_{h+1}) - V(s_h))``, the prover's progress (Setlur et al.).

    ``outcome_term`` is the trajectory part: ``"centred"`` (R minus the group mean, the Q^π estimate
    with a group baseline), ``"grpo"`` (std-normalised) or ``"none"`` (progress only).
    """
    before, after = state_values(prep, notes, source)
    progress = alpha * (after - before)
    if outcome_term == "none":
        return progress
    return group_advantage(prep, prep.traj_outcome, std=outcome_term == "grpo", stats_over="trajectories") + progress


def vsrm_rewards(
    before: np.ndarray, after: np.ndarray, prep: PreparedSteps, *, gamma: float, lookahead: int
) -> np.ndarray:
    """VSRM step reward from accuracy before/after each step, vectorised over all trajectories.

    A step with a non-flat change gets it; a flat step looks ahead over at most ``lookahead`` flat
    steps to the next change and takes it discounted by ``γ^distance``; reaching the end of the
    trajectory flat, it takes the discounted total change since its own start (0 when all flat).
    """
    change = after - before
    flat = np.abs(change) < VSRM_TOLERANCE
    index = np.arange(prep.n)
    end = (prep.traj_start + prep.traj_len)[prep.traj]
    # Smallest non-flat row index >= i; entries beyond the trajectory are clipped to its end below.
    candidates = np.where(flat, prep.n, index)
    next_change_from = np.minimum.accumulate(candidates[::-1])[::-1]
    next_change = np.minimum(np.r_[next_change_from[1:], prep.n], end)
    flat_run = next_change - index - 1
    last_after = after[end - 1]
    safe_next = np.minimum(next_change, prep.n - 1)
    reward = np.where(
        next_change < end,
        change[safe_next] * gamma ** (next_change - index).astype(np.float64),
        (last_after - before) * gamma ** (end - index - 1).astype(np.float64),
    )
    reward = np.where(flat_run >= lookahead, 0.0, reward)
    return np.where(flat, reward, change)


def vsrm(prep: PreparedSteps, notes: list[str], *, gamma: float, lookahead: int, source: str) -> np.ndarray:
    """VSRM stepwise reward per step, with accuracies from the tree's Monte-Carlo values (or PRM scores)."""
    before, after = state_values(prep, notes, source)
    return vsrm_rewards(before, after, prep, gamma=gamma, lookahead=lookahead)


def mc_value(prep: PreparedSteps, notes: list[str], *, estimate: str, success_threshold: float) -> np.ndarray:
    """Math-Shepherd label of each step from the trajectories continuing its prefix.

    ``soft`` is the share of those trajectories that succeed (outcome >= threshold); ``hard`` is 1
    when at least one does. The step's own trajectory counts as one of the completions.
    """
    tree = build_tree(prep)
    notes.extend(tree.notes)
    success = (prep.traj_outcome >= success_threshold).astype(np.float64)
    value = tree.reduce_over_trajectories(success, "max" if estimate == "hard" else "mean")
    return value[tree.node]
