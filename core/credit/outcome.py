"""Outcome-only group baselines (confidence H): GRPO, Dr.GRPO, RLOO, REINFORCE++ (with/without baseline), G-RA.

All work on one score per trajectory and broadcast the trajectory's advantage to its steps.
Formulas follow verl's ``core_algos.py`` as summarised in the spec's section 1.
"""

from __future__ import annotations

import numpy as np

from core.credit.ops import EPS_STD, discounted_reverse_sum, group_normalise, leave_one_out, segment_sum, whiten
from core.credit.prepared import PreparedSteps


def group_advantage(
    prep: PreparedSteps, traj_scores: np.ndarray, *, std: bool, stats_over: str, eps: float = EPS_STD
) -> np.ndarray:
    """GRPO-style advantage per row from one score per trajectory.

    Args:
        prep: Prepared steps.
        traj_scores: One score per trajectory.
        std: Divide by ``std + 1e-6`` (GRPO) or only centre (Dr.GRPO).
        stats_over: ``"trajectories"`` (one member per trajectory, the paper) or ``"steps"``
            (every step row is a member, verl-agent's ``compute_mean_std_cross_steps=True``).
        eps: Added to the std before dividing.

    Returns:
        Advantage per sorted row. Singleton groups keep the raw score (mean 0, std 1).
    """
    if stats_over == "steps":
        rows = traj_scores[prep.traj]
        return group_normalise(rows, prep.group, prep.n_groups, use_std=std, singleton="raw", eps=eps)
    per_traj = group_normalise(traj_scores, prep.traj_group, prep.n_groups, use_std=std, singleton="raw", eps=eps)
    return per_traj[prep.traj]


def grpo(prep: PreparedSteps, notes: list[str], *, std: bool, eps: float, stats_over: str) -> np.ndarray:
    """GRPO: ``(R - mean_group) / (std_group + eps)``, broadcast to the trajectory's steps."""
    return group_advantage(prep, prep.traj_outcome, std=std, stats_over=stats_over, eps=eps)


def drgrpo(prep: PreparedSteps, notes: list[str], *, stats_over: str) -> np.ndarray:
    """Dr.GRPO: ``R - mean_group`` (no std division)."""
    return group_advantage(prep, prep.traj_outcome, std=False, stats_over=stats_over)


def rloo(prep: PreparedSteps, notes: list[str]) -> np.ndarray:
    """RLOO: ``R_i - mean_{k != i} R_k`` per group of trajectories; a singleton keeps R."""
    return leave_one_out(prep.traj_outcome, prep.traj_group, prep.n_groups)[prep.traj]


def _unit_weights(prep: PreparedSteps, unit: str) -> np.ndarray:
    """Whitening weight per row: 1 per step, 1/len per step (one per trajectory) or the step's token count."""
    if unit == "trajectory":
        return 1.0 / prep.traj_len[prep.traj]
    if unit == "token":
        prep.require("n_tokens", "whitening with unit='token'")
        return prep.floats("n_tokens", fill=0.0)
    return np.ones(prep.n)


def whiten_batches(
    prep: PreparedSteps, values: np.ndarray, unit: str = "step", whiten_over: str = "iteration"
) -> np.ndarray:
    """Whiten per training batch (run, iteration) or over everything loaded."""
    codes, n = (prep.batch, prep.n_batches) if whiten_over == "iteration" else (np.zeros(prep.n, np.int64), 1)
    return whiten(values, codes, n, _unit_weights(prep, unit))


def reinforce_pp(prep: PreparedSteps, notes: list[str], *, gamma: float, unit: str, whiten_over: str) -> np.ndarray:
    """REINFORCE++ (no baseline): outcome on the last step, discounted returns, whitened per batch."""
    returns = discounted_reverse_sum(np.where(prep.is_last, prep.outcome, 0.0), prep.levels, gamma)
    return whiten_batches(prep, returns, unit, whiten_over)


def reinforce_pp_baseline(prep: PreparedSteps, notes: list[str], *, unit: str, whiten_over: str) -> np.ndarray:
    """REINFORCE++-baseline: ``R - mean_group`` (singleton: mean 0), whitened per batch."""
    centred = group_advantage(prep, prep.traj_outcome, std=False, stats_over="trajectories")
    return whiten_batches(prep, centred, unit, whiten_over)


def accumulated_reward(outcome: np.ndarray, immediate_sum: np.ndarray, *, threshold: float, gated: bool) -> np.ndarray:
    """G-RA total ``R_out + 1[R_out >= τ]·Σ r_imm`` (gated) or D-RA ``R_out + Σ r_imm``.

    Args:
        outcome: Outcome per trajectory.
        immediate_sum: Sum of the immediate (per-step) rewards per trajectory.
        threshold: τ, the outcome level that opens the gate (``>=``, "meets the threshold").
        gated: G-RA when True, direct accumulation (D-RA) when False.
    """
    gate = (outcome >= threshold) if gated else np.ones_like(outcome, dtype=bool)
    return outcome + np.where(gate, immediate_sum, 0.0)


TERMINAL_MATCH_TOLERANCE = 1e-9
"""A last-step reward within this of the outcome counts as the outcome logged again."""


def immediate_rewards(prep: PreparedSteps, notes: list[str], terminal: str) -> np.ndarray:
    """The per-step rewards G-RA gates, with the terminal reward taken out where it is the outcome.

    Logs such as the sample arithmetic and agent runs write the verifier's or the goal's reward on the last
    step *and* as the outcome. Counting it among the immediate rewards would add the outcome twice.

    Args:
        prep: Prepared steps.
        notes: Receives how many trajectories had their terminal reward excluded.
        terminal: ``"auto"`` drops the last step's reward where it equals the trajectory's outcome (a
            terminal reward that differs, e.g. an invalid-action penalty on a failed last step, is an
            immediate reward and stays); ``"exclude"`` always drops it; ``"include"`` keeps every reward.
    """
    rewards = prep.floats("reward", fill=0.0)
    if terminal == "include":
        return rewards
    drop = prep.is_last.copy()
    if terminal == "auto":
        drop &= np.abs(rewards - prep.outcome) <= TERMINAL_MATCH_TOLERANCE
    dropped = int(drop.sum())
    if dropped:
        notes.append(
            f"terminal reward excluded from the immediate rewards on {dropped} of {prep.n_traj} trajectories "
            f"({'where it equals the outcome' if terminal == 'auto' else 'always'}; terminal='include' keeps it)"
        )
    return np.where(drop, 0.0, rewards)


def gra(
    prep: PreparedSteps, notes: list[str], *, threshold: float, gated: bool, std: bool, terminal: str
) -> np.ndarray:
    """G-RA: accumulate immediate step rewards only when the outcome meets τ, then GRPO over the totals."""
    immediate = segment_sum(immediate_rewards(prep, notes, terminal), prep.traj, prep.n_traj)
    totals = accumulated_reward(prep.traj_outcome, immediate, threshold=threshold, gated=gated)
    return group_advantage(prep, totals, std=std, stats_over="trajectories")
