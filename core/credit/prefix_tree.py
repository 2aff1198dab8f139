"""The rollout tree the tree-based schemes need: explicit node ids, or the prefix tree the data implies.

When a group's rows carry ``node_id`` the tree is taken from the log. Otherwise trajectories of a
group whose action sequences share a prefix share the nodes of that prefix (TreeRL/TreePS style),
identified by a 64-bit hash of (group, depth, actions so far). The hash is an order-sensitive sum
of per-(position, action) mixes, computed with one cumulative sum, so deriving the tree costs a
few vectorised passes. Every group also gets a virtual root node whose "trajectories" are all the
trajectories of the group; a step's parent is the node of the previous step, or that root.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.credit.prepared import PreparedSteps, dense_codes, unique_sorted

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads integer keys uniformly over 64 bits (uint64 arithmetic wraps)."""
    z = x.astype(np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def prefix_hashes(prep: PreparedSteps, action_codes: np.ndarray) -> np.ndarray:
    """Hash of each row's action prefix (its own action included) within its trajectory.

    Mixing the position into each term keeps the sum order-sensitive ([a, b] differs from [b, a]).

    Args:
        prep: Prepared steps (rows sorted by trajectory then step).
        action_codes: Dense action code per sorted row.

    Returns:
        uint64 hash per row; equal for two rows exactly when (barring a 2^-64 collision) their
        trajectories share the same actions up to and including that step.
    """
    pos = prep.pos.astype(np.uint64)
    terms = _mix64(action_codes.astype(np.uint64) * np.uint64(1_000_003) + pos)
    running = np.cumsum(terms, dtype=np.uint64)
    # Subtract the running sum before each trajectory's first row to restart at every trajectory.
    before_start = np.where(prep.traj_start > 0, running[prep.traj_start - 1], np.uint64(0))
    prefix = running - before_start[prep.traj]
    return _mix64(prefix ^ _mix64(prep.group.astype(np.uint64) * np.uint64(4_294_967_311) + pos))


@dataclass
class RolloutTree:
    """Nodes of every group's rollout tree, aligned with sorted rows.

    Node codes ``0..n_nodes-1`` are real nodes; ``n_nodes + g`` is group g's virtual root.

    Attributes:
        node: Node code per sorted row.
        n_nodes: Number of real nodes.
        parent: Parent node code per sorted row (previous step's node, or the group root).
        node_parent: Parent code per real node.
        node_group: Group code per real node.
        pair_node: Node (root included) of each distinct (node, trajectory) visit, sorted by node.
        pair_traj: Trajectory of each such visit.
        notes: What was derived (shown to the user).
    """

    node: np.ndarray
    n_nodes: int
    parent: np.ndarray
    node_parent: np.ndarray
    node_group: np.ndarray
    pair_node: np.ndarray
    pair_traj: np.ndarray
    n_groups: int
    notes: list[str] = field(default_factory=list)

    @property
    def n_all(self) -> int:
        """Number of node codes including the virtual roots."""
        return self.n_nodes + self.n_groups

    def reduce_over_trajectories(self, per_traj: np.ndarray, how: str = "mean") -> np.ndarray:
        """Reduce a per-trajectory value over the trajectories passing through each node.

        Args:
            per_traj: One value per trajectory.
            how: ``"mean"``, ``"sum"``, ``"max"`` or ``"count"``.

        Returns:
            One value per node code (roots included, length ``n_nodes + n_groups``).
        """
        size = self.n_all
        if how == "count":
            return np.bincount(self.pair_node, minlength=size).astype(np.float64)
        values = per_traj[self.pair_traj]
        if how == "max":
            out = np.full(size, -np.inf)
            starts = np.flatnonzero(np.r_[True, self.pair_node[1:] != self.pair_node[:-1]])
            out[self.pair_node[starts]] = np.maximum.reduceat(values, starts)
            return out
        total = np.bincount(self.pair_node, weights=values, minlength=size)
        if how == "sum":
            return total
        return total / np.maximum(np.bincount(self.pair_node, minlength=size), 1)


def build_tree(prep: PreparedSteps) -> RolloutTree:
    """Build (or reuse, cached on ``prep``) the rollout tree of every group.

    Groups whose rows all carry ``node_id`` use the logged ids; the others get the derived prefix tree.

    Args:
        prep: Prepared steps.

    Returns:
        The tree, with a note saying which groups were derived.
    """
    if "tree" in prep.cache:
        return prep.cache["tree"]
    action_codes, _ = prep.codes("action")
    derived_key = prefix_hashes(prep, action_codes)
    notes: list[str] = []
    if "node_id" in prep.frame.columns and prep.has("node_id"):
        node_codes, _ = prep.codes("node_id")
        null_rows = prep.frame["node_id"].isna().to_numpy()[prep.order]
        group_has_null = np.bincount(prep.group, weights=null_rows, minlength=prep.n_groups) > 0
        use_derived = group_has_null[prep.group]
        explicit_key = _mix64(node_codes.astype(np.uint64) * np.uint64(2_147_483_659) + prep.group.astype(np.uint64))
        key = np.where(use_derived, derived_key, explicit_key)
        if use_derived.any():
            notes.append(
                f"derived prefix tree for {int(group_has_null.sum())} of {prep.n_groups} groups without node_id"
            )
    else:
        key = derived_key
        notes.append("derived prefix tree: trajectories of a group with identical action prefixes share nodes")
    # Canonical row order makes first-appearance codes deterministic and avoids sorting 64-bit hashes.
    node, n_nodes = dense_codes(key, sort=False)
    root = n_nodes + prep.group
    previous = np.r_[0, node[:-1]]
    parent = np.where(prep.is_first, root, previous)
    node_parent = np.empty(n_nodes, dtype=np.int64)
    node_group = np.empty(n_nodes, dtype=np.int64)
    node_parent[node] = parent
    node_group[node] = prep.group
    # Each trajectory visits its group's root once, plus every node on its path.
    visit_node = np.concatenate([node, n_nodes + prep.traj_group])
    visit_traj = np.concatenate([prep.traj, np.arange(prep.n_traj)])
    unique = unique_sorted(visit_node * max(prep.n_traj, 1) + visit_traj)
    tree = RolloutTree(
        node=node,
        n_nodes=n_nodes,
        parent=parent,
        node_parent=node_parent,
        node_group=node_group,
        pair_node=unique // max(prep.n_traj, 1),
        pair_traj=unique % max(prep.n_traj, 1),
        n_groups=prep.n_groups,
        notes=notes,
    )
    prep.cache["tree"] = tree
    return tree
