"""SALT — step-level advantages from a trajectory graph (reconstructed from the abstract, confidence L).

Steps that several trajectories of a group share are merged into one node; a node's advantage is
the mean of the base (GRPO or RLOO) advantages of the distinct trajectories that contain it, so a
step shared by successes and failures is pulled towards 0 while distinct decisive steps keep their
trajectory's sign. Node identity, the base estimator and a mix-back weight are parameters because
the paper's exact choices were not verified.
"""

from __future__ import annotations

import numpy as np

from core.credit.ops import leave_one_out
from core.credit.outcome import group_advantage
from core.credit.prefix_tree import build_tree
from core.credit.prepared import PreparedSteps, combine_codes, unique_sorted


def salt(prep: PreparedSteps, notes: list[str], *, base: str, node: str, mix: float) -> np.ndarray:
    """SALT advantage per sorted row.

    Args:
        prep: Prepared steps.
        notes: Messages for the user.
        base: ``"grpo"`` or ``"rloo"`` trajectory advantage.
        node: ``"state_action"`` merges steps with the same (state, action) anywhere in the group;
            ``"prefix"`` merges only steps with the same history (the rollout/prefix tree).
        mix: Weight of the step's own trajectory advantage mixed back in (0 = pure graph average).
    """
    if base == "rloo":
        traj_adv = leave_one_out(prep.traj_outcome, prep.traj_group, prep.n_groups)
    else:
        traj_adv = group_advantage(prep, prep.traj_outcome, std=True, stats_over="trajectories")[prep.traj_start]
    if node == "prefix":
        tree = build_tree(prep)
        notes.extend(tree.notes)
        keys, n_keys = tree.node, tree.n_nodes
    else:
        keys, n_keys = combine_codes((prep.group, prep.n_groups), prep.codes("state"), prep.codes("action"))
    # Each trajectory counts once per node, however often it revisits the node.
    pairs = unique_sorted(keys * max(prep.n_traj, 1) + prep.traj)
    pair_key, pair_traj = pairs // max(prep.n_traj, 1), pairs % max(prep.n_traj, 1)
    node_sum = np.bincount(pair_key, weights=traj_adv[pair_traj], minlength=n_keys)
    node_mean = node_sum / np.maximum(np.bincount(pair_key, minlength=n_keys), 1)
    return (1.0 - mix) * node_mean[keys] + mix * traj_adv[prep.traj]
