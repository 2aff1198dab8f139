"""Tree-based schemes: TreeRL (H, code and paper variants), TreePS-RAG (L) and PORTool (L).

All three read the rollout tree of :mod:`core.credit.prefix_tree` (logged node ids, or the prefix
tree derived from shared action prefixes). A node's Monte-Carlo value is the mean outcome of the
distinct trajectories passing through it; a group's virtual root averages all its trajectories.
"""

from __future__ import annotations

import numpy as np

from core.credit.ops import forward_fill_within, group_normalise, leave_one_out, segment_count, segment_sum
from core.credit.outcome import group_advantage
from core.credit.prefix_tree import build_tree
from core.credit.prepared import PreparedSteps

TREERL_FILL_TOL = 1e-8
"""TreeRL's ``fill_in_paths`` copies the previous node's value change when |v| is below this."""


def treeps(prep: PreparedSteps, notes: list[str], *, normalize: str, traj_weight: float) -> np.ndarray:
    """TreePS-RAG process advantage ``V(n) - V(parent(n))`` (reconstructed from the abstract, confidence L).

    ``normalize="tree"`` standardises the node advantages over all nodes of the group's tree;
    ``traj_weight`` adds that multiple of the trajectory's GRPO advantage.
    """
    tree = build_tree(prep)
    notes.extend(tree.notes)
    value = tree.reduce_over_trajectories(prep.traj_outcome, "mean")
    node_adv = value[: tree.n_nodes] - value[tree.node_parent]
    if normalize == "tree":
        node_adv = group_normalise(node_adv, tree.node_group, prep.n_groups, use_std=True, singleton="zero")
    out = node_adv[tree.node]
    if traj_weight:
        out = out + traj_weight * group_advantage(prep, prep.traj_outcome, std=True, stats_over="trajectories")
    return out


def treerl(prep: PreparedSteps, notes: list[str], *, variant: str) -> np.ndarray:
    """TreeRL segment advantage; ``variant="code"`` follows the official script path, ``"paper"`` the formula.

    Code (default, what the released training script runs): leave-one-out leaf rewards
    ``R' = R - mean(other leaves)``, ``state(n) = S(n)/sqrt(K(n))/C(n)`` with S the sum of R' under n
    and K = C the number of leaves (all leaves selected), ``v(n) = state(n) - state(parent)`` with
    near-zero v replaced by the previous node's, advantage ``v(n) + state(n)``.
    Paper: ``(2V(n) - V(parent) - V(root)) / sqrt(|L(n)|)`` with V the raw mean outcome.
    A group with a single trajectory has no comparison: the code asserts; here it yields 0.
    """
    tree = build_tree(prep)
    notes.extend(tree.notes)
    leaves = tree.reduce_over_trajectories(prep.traj_outcome, "count")
    if variant == "paper":
        value = tree.reduce_over_trajectories(prep.traj_outcome, "mean")
        root_value = value[tree.n_nodes + prep.group]
        return (2.0 * value[tree.node] - value[tree.parent] - root_value) / np.sqrt(leaves[tree.node])
    group_size = segment_count(prep.traj_group, prep.n_groups)
    normalised = leave_one_out(prep.traj_outcome, prep.traj_group, prep.n_groups)
    normalised = np.where(group_size[prep.traj_group] > 1, normalised, 0.0)
    total = tree.reduce_over_trajectories(normalised, "sum")
    state = total / np.sqrt(np.maximum(leaves, 1.0)) / np.maximum(leaves, 1.0)
    change = state[tree.node] - state[tree.parent]
    change = forward_fill_within(change, (np.abs(change) >= TREERL_FILL_TOL) | prep.is_first)
    return change + state[tree.node]


def portool(
    prep: PreparedSteps, notes: list[str], *, correctness: str, tool_bonus: float, fork_weight: float
) -> np.ndarray:
    """PORTool: trajectory GRPO advantage plus a weighted fork-relative advantage (reconstructed, confidence L).

    Step reward ``R(s) = max|mean outcome of trajectories through s + tool_bonus·1[valid]``; the fork
    advantage standardises R(s) among the children of s's parent (0 for an only child).
    """
    tree = build_tree(prep)
    notes.extend(tree.notes)
    reached = tree.reduce_over_trajectories(prep.traj_outcome, "max" if correctness == "max" else "mean")
    # A node's tool success: share of its rows whose action was valid (shared steps agree).
    tool_ok = segment_sum(prep.validity(), tree.node, tree.n_nodes) / segment_count(tree.node, tree.n_nodes)
    step_reward = reached[: tree.n_nodes] + tool_bonus * tool_ok
    fork = group_normalise(step_reward, tree.node_parent, tree.n_all, use_std=True, singleton="zero")
    trajectory = group_advantage(prep, prep.traj_outcome, std=True, stats_over="trajectories")
    return trajectory + fork_weight * fork[tree.node]
