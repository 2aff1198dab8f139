"""SPA-RL — Stepwise Progress Attribution (confidence M; paper form by default, code quirks as options).

The paper trains a progress estimator whose per-step contributions ``ĉ_t`` sum to the outcome.
Here the estimator is fitted on the loaded data itself: a ridge regression of each trajectory's
outcome on the counts of its actions, so ``ĉ_t`` is the learned weight of step t's action text and
``Σ_t ĉ_t ≈ R`` in least squares. (The official estimator is an LM head on the last token of each
turn; an LM is out of scope for an offline recomputation, so action identity is the feature.)
The step reward is ``ĉ_t + grounding·g_t`` with g_t = 1 for a valid action and always 1 on the last
step, as in the code's reward assembly.

The paper trains on these rewards with step-level PPO; the released trainer (``ppo/step_ppotrainer.py``, a
TRL ``PPOTrainer``) puts each step's reward on its last token and runs TRL's GAE (γ = 1, λ = 0.95 by
default) with the value head, then whitens. ``output="advantage"`` (default) does the same with one
position per step and the logged critic values (V = 0 when the log has none); ``output="reward"`` stops
at the step rewards.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import lsqr
from threadpoolctl import threadpool_limits

from core.credit.dense import critic_values, gae_advantages
from core.credit.prepared import PreparedSteps

LSQR_ITERATIONS = 50
"""Cap on LSQR iterations. The ridge term bounds the condition number, so the fit converges within a
few dozen iterations; the achieved residual is reported in the notes."""
LSQR_TOLERANCE = 1e-6


def fit_contributions(prep: PreparedSteps, ridge: float) -> tuple[np.ndarray, float]:
    """Fit per-action contributions so that each trajectory's contributions sum to its outcome.

    Args:
        prep: Prepared steps.
        ridge: L2 penalty on the contributions (shrinks rare actions towards 0).

    Returns:
        ``(contribution per sorted row, relative residual ||Xw - R|| / ||R||)``.
    """
    actions, n_actions = prep.codes("action")
    design = sp.csr_matrix((np.ones(prep.n), (prep.traj, actions)), shape=(prep.n_traj, n_actions))
    target = prep.traj_outcome
    # LSQR's work is vector norms and sparse products: one BLAS thread is as fast, and threaded BLAS on a
    # busy machine (threads spinning against other processes) was measured 10x slower at 1M steps.
    with threadpool_limits(limits=1, user_api="blas"):
        solution = lsqr(
            design,
            target,
            damp=float(np.sqrt(ridge)),
            atol=LSQR_TOLERANCE,
            btol=LSQR_TOLERANCE,
            iter_lim=LSQR_ITERATIONS,
        )
    weights = solution[0]
    residual = float(np.linalg.norm(design @ weights - target) / max(np.linalg.norm(target), 1e-12))
    return weights[actions], residual


def spa(
    prep: PreparedSteps,
    notes: list[str],
    *,
    grounding: float,
    ridge: float,
    code_weighting: bool,
    output: str,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """SPA step reward ``ĉ_t + grounding·g_t`` (optionally × (T-t-1) like the code), or its GAE advantage."""
    contribution, residual = fit_contributions(prep, ridge)
    notes.append(f"progress estimator fitted on {prep.n_traj} trajectories; relative residual {residual:.3f}")
    remaining = prep.traj_len[prep.traj] - prep.pos - 1
    rewards = step_rewards_from_contributions(
        contribution, prep.validity(), prep.is_last, remaining, grounding=grounding, code_weighting=code_weighting
    )
    if output == "reward":
        return rewards
    values = critic_values(prep, notes, "spa")
    return gae_advantages(prep, rewards, values, gamma=gamma, lam=lam, whiten_batches=True)


def step_rewards_from_contributions(
    contribution: np.ndarray,
    valid: np.ndarray,
    is_last: np.ndarray,
    remaining: np.ndarray,
    *,
    grounding: float,
    code_weighting: bool,
) -> np.ndarray:
    """SPA's reward assembly ``ĉ_t + grounding·g_t`` (g = valid, and 1 on the last step).

    Args:
        contribution: Estimated contribution per step.
        valid: 1.0 where the action was executable.
        is_last: Whether the step is its trajectory's last.
        remaining: Steps after this one in its trajectory (T - t - 1).
        grounding: Weight of the grounding signal.
        code_weighting: Multiply by ``remaining`` like the released PPO trainer (the last step gets 0).
    """
    reward = contribution + grounding * np.where(is_last, 1.0, valid)
    return reward * remaining if code_weighting else reward
