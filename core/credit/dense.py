"""Dense per-step signals: PRM scores (H), GAE with a critic (H), Monte-Carlo returns (H), implicit PRM (H).

Returns and GAE use per-step rewards from the ``reward`` column, or the outcome placed on the last
step when the log has none (see :meth:`PreparedSteps.step_rewards`).
"""

from __future__ import annotations

import numpy as np

from core.credit.ops import discounted_reverse_sum, leave_one_out, segment_count, segment_sum, whiten
from core.credit.outcome import group_advantage
from core.credit.prepared import PreparedSteps
from core.errors import MissingInput

IMPLICIT_NORM_EPS = 1e-6
"""iStar/PRIME ``batch_norm`` adds this to the largest absolute reward of the batch."""


def complete_column(prep: PreparedSteps, column: str, scheme: str) -> np.ndarray:
    """A float column that must have a value on every step (partial scores would bias the result)."""
    prep.require(column, scheme)
    values = prep.floats(column)
    missing = int(np.isnan(values).sum())
    if missing:
        raise MissingInput(f"scheme '{scheme}' needs column '{column}' on every step; {missing} steps have none")
    return values


def aggregate_prm(scores: np.ndarray, prep: PreparedSteps, how: str) -> np.ndarray:
    """Trajectory score from step PRM scores: ``min``, ``last``, ``prod`` or ``mean`` (one value per trajectory)."""
    if how == "min":
        return np.minimum.reduceat(scores, prep.traj_start)
    if how == "last":
        return scores[prep.traj_start + prep.traj_len - 1]
    if how == "prod":
        return np.multiply.reduceat(scores, prep.traj_start)
    return segment_sum(scores, prep.traj, prep.n_traj) / prep.traj_len


def prm(prep: PreparedSteps, notes: list[str], *, dense: str, aggregate: str) -> np.ndarray:
    """PRM credit: dense step rewards, or an aggregated trajectory score.

    ``dense="score"`` gives p_i, ``"delta"`` the telescoping p_i - p_{i-1} (p_{-1} = 0); ``"none"`` gives
    the trajectory's aggregated score centred on its group mean, on every step.
    """
    scores = complete_column(prep, "prm", "prm")
    if dense == "score":
        return scores.copy()
    if dense == "delta":
        return scores - np.where(prep.is_first, 0.0, np.r_[0.0, scores[:-1]])
    traj_scores = aggregate_prm(scores, prep, aggregate)
    return group_advantage(prep, traj_scores, std=False, stats_over="trajectories")


def mc_return(prep: PreparedSteps, notes: list[str], *, gamma: float) -> np.ndarray:
    """Discounted return ``G_t = Σ_k γ^k r_{t+k}`` of each step (no baseline)."""
    rewards, source = prep.step_rewards()
    notes.append(f"returns from {source}")
    return discounted_reverse_sum(rewards, prep.levels, gamma)


def gae(
    prep: PreparedSteps, notes: list[str], *, gamma: float, lam: float, value_source: str, whiten_batches: bool
) -> np.ndarray:
    """GAE with one critic value per step: ``δ_t = r_t + γV_{t+1} - V_t``, ``A_t = δ_t + γλA_{t+1}``.

    Whitened per training batch (run, iteration) with unit = step when ``whiten_batches``, like verl.
    """
    values = complete_column(prep, value_source, "gae")
    rewards, source = prep.step_rewards()
    notes.append(f"rewards from {source}; values from column '{value_source}'")
    return gae_advantages(prep, rewards, values, gamma=gamma, lam=lam, whiten_batches=whiten_batches)


def gae_advantages(
    prep: PreparedSteps, rewards: np.ndarray, values: np.ndarray, *, gamma: float, lam: float, whiten_batches: bool
) -> np.ndarray:
    """GAE as verl's ``compute_gae_advantage_return``, one position per step (V after the last step is 0)."""
    next_values = np.where(prep.is_last, 0.0, np.r_[values[1:], 0.0])
    deltas = rewards + gamma * next_values - values
    advantages = discounted_reverse_sum(deltas, prep.levels, gamma * lam)
    return whiten(advantages, prep.batch, prep.n_batches) if whiten_batches else advantages


def critic_values(prep: PreparedSteps, notes: list[str], scheme: str) -> np.ndarray:
    """The ``value`` column when the log has one (complete), else zeros and a note saying so.

    With V = 0, GAE with λ = 1 is the plain discounted return-to-go (REINFORCE++ without a baseline).
    """
    if prep.has("value"):
        notes.append("critic values from column 'value'")
        return complete_column(prep, "value", scheme)
    notes.append("no critic values in the log (column 'value'): V = 0, GAE reduces to discounted returns")
    return np.zeros(prep.n)


def implicit_step_rewards(prep: PreparedSteps, *, beta: float, normalise: bool) -> np.ndarray:
    """``β·(logp_policy - logp_ref)`` per step, divided by the batch's largest |reward| + 1e-6 when ``normalise``."""
    policy = complete_column(prep, "logp_policy", "implicit_prm")
    reference = complete_column(prep, "logp_ref", "implicit_prm")
    rewards = beta * (policy - reference)
    if not normalise:
        return rewards
    largest = np.zeros(prep.n_batches)
    np.maximum.at(largest, prep.batch, np.abs(rewards))
    return rewards / (largest[prep.batch] + IMPLICIT_NORM_EPS)


def implicit_prm(
    prep: PreparedSteps,
    notes: list[str],
    *,
    beta: float,
    weight: float,
    normalise: bool,
    step_baseline: str,
    process_only: bool,
) -> np.ndarray:
    """OPRL/iStar ``istar_rloo``: RLOO outcome advantage plus ``weight`` × RLOO-style implicit step advantage.

    The implicit reward needs per-step *sums* of token log-probabilities under the policy
    (column ``logp_policy``) and the reference (``logp_ref``; iStar uses the rollout policy's old
    log-probs, PRIME a frozen reference). ``step_baseline="first_step"`` is the official code's
    baseline made deterministic: the mean over the group's trajectories of their first step's
    reward (the code takes whichever row of a trajectory comes first in a shuffled batch).
    ``"all_steps"`` is the leave-one-out over all step rows that the code's docstring describes.
    """
    rewards = implicit_step_rewards(prep, beta=beta, normalise=normalise)
    if step_baseline == "all_steps":
        step_adv = leave_one_out(rewards, prep.group, prep.n_groups)
    else:
        n = segment_count(prep.traj_group, prep.n_groups)[prep.group]
        first = rewards[prep.traj_start]
        baseline = (segment_sum(first, prep.traj_group, prep.n_groups) / segment_count(prep.traj_group, prep.n_groups))[
            prep.group
        ]
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = rewards * n / (n - 1.0) - baseline * n / (n - 1.0)
        step_adv = np.where(n > 1, scaled, rewards)
    if process_only:
        return weight * step_adv
    episode = leave_one_out(prep.traj_outcome, prep.traj_group, prep.n_groups)[prep.traj]
    return episode + weight * step_adv
