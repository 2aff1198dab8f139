"""GiGPO — Group-in-Group Policy Optimization (confidence H; verl-agent ``gigpo/core_gigpo.py``).

``A = A^E + ω·A^S``: an episode advantage over the group's step rows plus a step advantage over
"anchor-state" clusters (rows of a group whose ``state`` text is identical), computed on discounted
step returns. See the spec's section 2 for the code-vs-paper choices exposed here.
"""

from __future__ import annotations

import difflib

import numpy as np

from core.credit.ops import EPS_STD, discounted_reverse_sum, group_normalise, segment_mean_std
from core.credit.prepared import PreparedSteps, combine_codes, dense_codes


def anchor_clusters(prep: PreparedSteps, similarity: float) -> tuple[np.ndarray, int]:
    """Cluster code per sorted row: same group and same (or, with ``similarity`` > 0, similar) state.

    Rows without a state get a cluster of their own (they can only match themselves).

    Args:
        prep: Prepared steps.
        similarity: 0 for exact matching (official default); otherwise the ``difflib`` ratio a state
            needs with a cluster's first member to join it, computed as
            ``SequenceMatcher(None, candidate, representative).ratio()`` with the candidate first, exactly
            as verl-agent's ``are_similar(obs, cluster["rep"])`` (the ratio is not symmetric). Greedy like the
            official code, but in canonical (trajectory, step) order rather than batch order, so the result
            does not depend on how rows were shuffled. This path loops in Python over distinct states and
            is slow on large frames.

    Returns:
        ``(codes, n_clusters)``.
    """
    state_codes, n_states = prep.codes("state")
    missing = prep.frame["state"].isna().to_numpy()[prep.order]
    if similarity > 0:
        state_codes, n_states = _similar_state_codes(prep, state_codes, similarity)
    # A unique code per state-less row keeps it out of every cluster.
    keyed = np.where(missing, n_states + np.arange(prep.n), state_codes)
    return combine_codes((prep.group, prep.n_groups), dense_codes(keyed))


def _similar_state_codes(prep: PreparedSteps, state_codes: np.ndarray, threshold: float) -> tuple[np.ndarray, int]:
    """Replace exact-state codes by greedy similarity-cluster codes, per group."""
    texts = prep.frame["state"].to_numpy()[prep.order]
    representative_of: dict[tuple[int, int], int] = {}
    reps_by_group: dict[int, list[tuple[str, int]]] = {}
    pairs = np.stack([prep.group, state_codes], axis=1)
    # First occurrences, visited in canonical row order (np.unique would visit them sorted by code).
    for row in np.sort(np.unique(pairs, axis=0, return_index=True)[1]).tolist():
        group, code = int(prep.group[row]), int(state_codes[row])
        text = str(texts[row])
        reps = reps_by_group.setdefault(group, [])
        # Candidate first, representative second: the order verl-agent's build_step_group uses.
        similar = (rep for rep_text, rep in reps if difflib.SequenceMatcher(None, text, rep_text).ratio() >= threshold)
        match = next(similar, None)
        if match is None:
            match = code
            reps.append((text, code))
        representative_of[(group, code)] = match
    mapped = np.array([representative_of[(int(g), int(c))] for g, c in zip(prep.group, state_codes, strict=True)])
    return mapped, int(state_codes.max(initial=-1)) + 1


def episode_advantage(prep: PreparedSteps, penalty: np.ndarray, *, use_std: bool, episode_stats: str) -> np.ndarray:
    """GiGPO's A^E per row: row score ``R - penalty`` normalised by the group's statistics.

    ``episode_stats="steps"`` takes mean/std over the group's step rows (verl-agent's default
    ``compute_mean_std_cross_steps=True``). ``"trajectories"`` is its ``compute_mean_std_cross_steps=False``
    branch (the paper's Eq. 3): one score per trajectory, the score of the trajectory's first row, which
    carries that row's invalid-action penalty like every row does. Taking the statistics over the raw
    outcomes instead would divide a penalised row of an all-equal group by ``0 + 1e-6``.
    """
    scores = prep.traj_outcome[prep.traj] - penalty
    if episode_stats == "steps":
        return group_normalise(scores, prep.group, prep.n_groups, use_std=use_std, singleton="raw")
    # verl-agent keeps the first row it meets of each trajectory; rows are in step order, so that is step 0.
    mean, std, count = segment_mean_std(scores[prep.traj_start], prep.traj_group, prep.n_groups)
    mean[count < 2], std[count < 2] = 0.0, 1.0
    centred = scores - mean[prep.group]
    return centred / (std[prep.group] + EPS_STD) if use_std else centred


def gigpo(
    prep: PreparedSteps,
    notes: list[str],
    *,
    gamma: float,
    omega: float,
    mode: str,
    episode_stats: str,
    invalid_penalty: float,
    similarity: float,
) -> np.ndarray:
    """GiGPO advantage per sorted row (see module docstring)."""
    rewards, source = prep.step_rewards()
    notes.append(f"step returns from {source}")
    use_std = mode == "mean_std_norm"
    penalty = invalid_penalty * (1.0 - prep.validity())
    episode = episode_advantage(prep, penalty, use_std=use_std, episode_stats=episode_stats)
    # The penalty hits the row's own return after discounting; it is not propagated backwards.
    returns = discounted_reverse_sum(rewards, prep.levels, gamma) - penalty
    clusters, n_clusters = anchor_clusters(prep, similarity)
    step = group_normalise(returns, clusters, n_clusters, use_std=use_std, singleton="zero")
    return episode + omega * step
