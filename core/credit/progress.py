"""Schemes built on the value of intermediate states: PAV (M), VSRM (H) and Math-Shepherd MC labels (M).

VSRM: the value of the state after a step is the Monte-Carlo value of its rollout-tree node (the mean
outcome of the trajectories passing through it) or, with ``source="prm"``, the step's PRM score; the value
before the first step is the group's mean outcome (the virtual root), which is VSRM's accuracy of the
untruncated prompt. PAV's provers are in :func:`prover_values`.
"""

from __future__ import annotations

import numpy as np

from core.credit.dense import critic_values, gae_advantages
from core.credit.ops import segment_count, segment_sum
from core.credit.outcome import group_advantage
from core.credit.prefix_tree import build_tree
from core.credit.prepared import PreparedSteps
from core.errors import MissingInput

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


def prover_values(
    prep: PreparedSteps, notes: list[str], prover: str, *, k: int, success_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """PAV prover's value of the state before and after each step, all on one scale: P(success) in [0, 1].

    Args:
        prep: Prepared steps.
        notes: Messages for the user (which prover was used and how the tree was obtained).
        prover: ``"auto"`` (a PRM's scores when the log has any, else best-of-K), ``"prm"`` (the ``prm``
            column: a distinct prover's estimate of success), ``"best_of_k"`` (Best-of-K of the policy, the
            paper's complementary prover: ``1 - (1 - p)^K`` with p the policy's Monte-Carlo success rate from
            the state) or ``"policy"`` (μ = π: the policy's own Monte-Carlo success rate, which the paper
            argues carries no signal beyond the outcome).
        k: K of the Best-of-K prover.
        success_threshold: Outcome (>=) that counts as a success for the tree-based provers.

    Returns:
        ``(before, after)`` per sorted row. For the ``prm`` prover the value before a trajectory's first
        step is the group's mean first-step score (the PRM has no score for the empty prefix; this average
        is the policy's expected next value under the prover, on the PRM's own scale).
    """
    if prover == "auto":
        prover = "prm" if prep.has("prm") else "best_of_k"
    if prover == "prm":
        prep.require("prm", "pav with a PRM prover (source='prm')")
        after = prep.floats("prm")
        missing = int(np.isnan(after).sum())
        if missing:
            # Partial scores would mix two provers within one trajectory.
            raise MissingInput(
                f"scheme 'pav' with source='prm' needs column 'prm' on every step; {missing} steps have none "
                "(rescore the run, or use source='best_of_k')"
            )
        first = after[prep.traj_start]
        root = segment_sum(first, prep.traj_group, prep.n_groups) / segment_count(prep.traj_group, prep.n_groups)
        notes.append("prover: the PRM's step scores (V before the first step: the group's mean first-step score)")
        return np.where(prep.is_first, root[prep.group], np.r_[0.0, after[:-1]]), after
    tree = build_tree(prep)
    notes.extend(tree.notes)
    success = (prep.traj_outcome >= success_threshold).astype(np.float64)
    rate = tree.reduce_over_trajectories(success, "mean")
    if prover == "best_of_k":
        notes.append(f"prover: Best-of-{k} of the policy, 1 - (1 - p)^{k} with p the tree's Monte-Carlo success rate")
        rate = 1.0 - (1.0 - rate) ** k
    else:
        notes.append("prover: the policy itself (mu = pi), the tree's Monte-Carlo success rate")
    return rate[tree.parent], rate[tree.node]


def pav(
    prep: PreparedSteps,
    notes: list[str],
    *,
    alpha: float,
    source: str,
    k: int,
    success_threshold: float,
    outcome_term: str,
) -> np.ndarray:
    """PAV: outcome advantage plus ``α·(V^μ(s_{h+1}) - V^μ(s_h))``, the prover's progress (Setlur et al.).

    ``source`` picks the prover μ (see :func:`prover_values`); the default uses a distinct prover whenever
    one is available, as the paper requires. ``outcome_term`` is the trajectory part: ``"centred"`` (R minus
    the group mean, the Q^π estimate with a group baseline), ``"grpo"`` (std-normalised) or ``"none"``.
    """
    before, after = prover_values(prep, notes, source, k=k, success_threshold=success_threshold)
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


def vsrm(
    prep: PreparedSteps,
    notes: list[str],
    *,
    gamma: float,
    lookahead: int,
    source: str,
    output: str,
    ppo_gamma: float,
    lam: float,
) -> np.ndarray:
    """VSRM per step: the stepwise reward, or (default) the advantage the paper trains on it.

    ``output="reward"`` is ``compute_step_reward`` alone. ``output="advantage"`` adds the official training
    path: the outcome overwrites the last step's reward (``reward_tensor[i, L-1] = R`` in the reward
    manager), then verl's GAE (``adv_estimator=gae``, γ = λ = 1 in ``run_ppo_ju.sh``) with the logged critic
    values (V = 0 when the log has none, i.e. discounted returns), whitened per training batch.
    """
    before, after = state_values(prep, notes, source)
    rewards = vsrm_rewards(before, after, prep, gamma=gamma, lookahead=lookahead)
    if output == "reward":
        return rewards
    rewards = np.where(prep.is_last, prep.outcome, rewards)
    values = critic_values(prep, notes, "vsrm")
    return gae_advantages(prep, rewards, values, gamma=ppo_gamma, lam=lam, whiten_batches=True)


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
