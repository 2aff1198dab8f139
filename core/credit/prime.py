"""PRIME (confidence H): leave-one-out per reward source, weighted, discounted per source, then whitened.

Follows ``compute_rloo_returns`` of PRIME-RL/PRIME (``training/verl/trainer/ppo/core_algos.py`` @ 18ad596)
and its port ``compute_rloo_advantage_return`` in verl's ``recipe/prime/prime_core_algos.py`` (as vendored
in verl-agent @ d0b97244). Two reward sources per response:

- the implicit PRM reward ``β·(log π_φ − log π_ref)`` on every step (PRIME's ``rm_scores``, mask = all
  response tokens), optionally normalised like ``prime_norm="batch_norm"``: divided by the batch's largest
  ``|Σ_{t'≥t} r_t'|`` + 1e-6;
- the outcome on the last step (``acc`` / ``gt_scores``, mask = the last token).

Per source and per group of n samples, each masked reward becomes ``r·n/(n−1) − Σ_k mean_k/(n−1)`` (mean_k =
the mean masked reward of sample k, own sample included, exactly as the code writes it); each source is
discounted with its own γ (``reward_model_gamma`` / ``verifier_gamma``, both 1.0 in the released script),
weighted (verl recipe: ``reward_dpo_coef`` = ``reward_gt_coef`` = 5; the original function ignores the
coefficients, which is the same as equal weights), summed into returns, and the returns are whitened over
the training batch (``masked_whiten``).

Differences, by construction of a step table: each step stands for one token of PRIME's response (its
implicit reward is the per-step sum of token log-ratios), so the token-level placement details (the last
token's zero reward under ``prime_granularity=token``) do not arise. A group of one sample (PRIME's code
divides by n − 1 = 0) keeps its raw rewards, as RLOO does elsewhere in this package.
"""

from __future__ import annotations

import numpy as np

from core.credit.dense import complete_column
from core.credit.ops import discounted_reverse_sum, segment_count, segment_sum
from core.credit.outcome import whiten_batches
from core.credit.prepared import PreparedSteps

PRIME_NORM_EPS = 1e-6
"""``prime_norm="batch_norm"`` adds this to the largest absolute reverse cumulative reward of the batch."""


def implicit_rewards(prep: PreparedSteps, *, beta: float, normalise: bool, scheme: str) -> np.ndarray:
    """``β·(logp_policy − logp_ref)`` per step, divided by the batch's largest |reverse cumsum| + 1e-6 if asked."""
    policy = complete_column(prep, "logp_policy", scheme)
    reference = complete_column(prep, "logp_ref", scheme)
    rewards = beta * (policy - reference)
    if not normalise:
        return rewards
    to_go = np.abs(discounted_reverse_sum(rewards, prep.levels, 1.0))
    largest = np.zeros(prep.n_batches)
    np.maximum.at(largest, prep.batch, to_go)
    return rewards / (largest[prep.batch] + PRIME_NORM_EPS)


def masked_rloo(rewards: np.ndarray, mask: np.ndarray, prep: PreparedSteps) -> np.ndarray:
    """PRIME's ``masked_rloo``: per group, ``r·n/(n−1) − Σ_k mean_k/(n−1)`` on masked rows, 0 elsewhere.

    ``mean_k`` is the mean of sample k's masked rewards; the sum runs over all n samples of the group.
    Groups of one sample keep their masked rewards.
    """
    masked = np.where(mask, rewards, 0.0)
    per_traj_count = segment_sum(mask.astype(np.float64), prep.traj, prep.n_traj)
    per_traj_mean = segment_sum(masked, prep.traj, prep.n_traj) / np.maximum(per_traj_count, 1.0)
    n = segment_count(prep.traj_group, prep.n_groups)
    total = segment_sum(per_traj_mean, prep.traj_group, prep.n_groups)
    n_row, total_row = n[prep.group], total[prep.group]
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = masked * n_row / (n_row - 1.0) - total_row / (n_row - 1.0)
    return np.where(mask, np.where(n_row > 1, loo, masked), 0.0)


def prime(
    prep: PreparedSteps,
    notes: list[str],
    *,
    beta: float,
    normalise: bool,
    rm_weight: float,
    outcome_weight: float,
    rm_gamma: float,
    outcome_gamma: float,
    whiten_over: str,
) -> np.ndarray:
    """PRIME advantage per sorted row (see the module docstring)."""
    implicit = implicit_rewards(prep, beta=beta, normalise=normalise, scheme="prime")
    every_step = np.ones(prep.n, dtype=bool)
    outcome_on_last = np.where(prep.is_last, prep.outcome, 0.0)
    rm_part = masked_rloo(implicit, every_step, prep)
    outcome_part = masked_rloo(outcome_on_last, prep.is_last, prep)
    returns = rm_weight * discounted_reverse_sum(rm_part, prep.levels, rm_gamma) + outcome_weight * (
        discounted_reverse_sum(outcome_part, prep.levels, outcome_gamma)
    )
    if (segment_count(prep.traj_group, prep.n_groups) < 2).any():
        notes.append("groups with one sample keep their raw rewards (PRIME's leave-one-out needs n > 1)")
    return whiten_batches(prep, returns, "step", whiten_over)
