"""PBRS — potential-based reward shaping (confidence M; Ng, Harada & Russell 1999, Robo-Dopamine-style potentials).

``r'_t = r_t + γ·Φ(s_{t+1}) − Φ(s_t)`` with the potential Φ taken from the run's active PRM scores or from a
logged critic value. The terminal potential is 0, so along any trajectory the shaped discounted return is
the unshaped one minus Φ(s_0): shaping moves credit between steps without changing which policy is
optimal (the policy-invariance theorem). Advantages are then computed on the shaped rewards:

- ``base="group_baseline"``: the shaped return-to-go of each step minus the group's mean shaped return of
  whole trajectories (singleton group: baseline 0), whitened per training batch: verl's
  REINFORCE++-baseline form of a GRPO group baseline. (GRPO proper sums each response's rewards into one
  score, on which shaping has no effect within a group that shares s_0; dividing step returns by the
  group's std would explode on groups with equal outcomes.)
- ``base="gae"``: verl's GAE on the shaped rewards with the logged critic (V = 0 when there is none),
  whitened per training batch;
- ``base="returns"``: the shaped return-to-go itself.

Potentials. ``value``: Φ(s_t) is the critic value logged on step t (the state the step acts in).
``prm``: the PRM scores the state *after* a step, so Φ(s_{t+1}) = prm_t; the empty prefix s_0 has no score
and gets the group's mean first-step score (on the PRM's own scale; any constant per group keeps the
invariance).
"""

from __future__ import annotations

import numpy as np

from core.credit.dense import complete_column, critic_values, gae_advantages
from core.credit.ops import discounted_reverse_sum, segment_count, segment_sum
from core.credit.outcome import group_advantage, whiten_batches
from core.credit.prepared import PreparedSteps


def potentials(prep: PreparedSteps, potential: str) -> tuple[np.ndarray, np.ndarray]:
    """Φ of the state before and after each step (after the last step: 0, the terminal potential)."""
    if potential == "value":
        before = complete_column(prep, "value", "pbrs")
        after = np.where(prep.is_last, 0.0, np.r_[before[1:], 0.0])
        return before, after
    scores = complete_column(prep, "prm", "pbrs")
    first = scores[prep.traj_start]
    root = segment_sum(first, prep.traj_group, prep.n_groups) / segment_count(prep.traj_group, prep.n_groups)
    before = np.where(prep.is_first, root[prep.group], np.r_[0.0, scores[:-1]])
    after = np.where(prep.is_last, 0.0, scores)
    return before, after


def shaped_rewards(prep: PreparedSteps, notes: list[str], *, potential: str, gamma: float) -> np.ndarray:
    """``r_t + γΦ(s_{t+1}) − Φ(s_t)`` per sorted row."""
    rewards, source = prep.step_rewards()
    notes.append(f"rewards from {source}; potential from column '{potential}' (terminal potential 0)")
    before, after = potentials(prep, potential)
    return rewards + gamma * after - before


def pbrs(prep: PreparedSteps, notes: list[str], *, potential: str, gamma: float, base: str, lam: float) -> np.ndarray:
    """PBRS advantage per sorted row (see the module docstring)."""
    shaped = shaped_rewards(prep, notes, potential=potential, gamma=gamma)
    if base == "gae":
        values = critic_values(prep, notes, "pbrs")
        return gae_advantages(prep, shaped, values, gamma=gamma, lam=lam, whiten_batches=True)
    to_go = discounted_reverse_sum(shaped, prep.levels, gamma)
    if base == "returns":
        return to_go
    whole = to_go[prep.traj_start]
    centred = group_advantage(prep, whole, std=False, stats_over="trajectories")  # per row: whole - group mean
    group_mean = whole[prep.traj] - centred  # 0 for a singleton group
    return whiten_batches(prep, to_go - group_mean)
