"""Rollout (prefix) trees of one group: which trajectories share which steps.

A node is one step node of the rollout tree. When the log carries explicit ``node_id`` /
``parent_id`` (TreeRL-style branching rollouts) those define the tree. Otherwise the tree is
derived from the actions: two trajectories share a node for as long as their action sequences are
identical, so rollouts that began the same way share their first nodes. Either way there is one
extra root node standing for the prompt.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from core.trees.common import (
    NodeAccumulator,
    check_one_group,
    group_key,
    node_statistics,
    ordered_rows,
    positional_columns,
    resolve_quantity,
    short_hash,
    text_or_empty,
    trajectory_outcomes,
)

ROOT_ID = "root"
"""Preferred id of the prompt node; a suffix is added if the log itself uses this id."""


def prefix_tree(steps: pd.DataFrame, *, quantity: str | None = None, values: np.ndarray | None = None) -> nx.DiGraph:
    """Build the rollout tree of one group.

    Args:
        steps: Canonical step rows of ONE (run_id, iteration, group_id), in any order.
        quantity: Name of a step column to aggregate per node (e.g. ``"prm"``, ``"label"``), or,
            together with ``values``, the display name of that array (e.g. ``"advantage (GRPO)"``).
        values: A per-step quantity aligned with the positional rows of ``steps`` (e.g. advantages
            from the credit engine). Takes precedence over reading the ``quantity`` column.

    Returns:
        A directed tree (edges parent -> child) whose node attributes are ``kind`` (``"root"`` or
        ``"step"``), ``step_idx`` (-1 for the root), ``depth``, ``action``, ``state``, ``visits``
        (trajectories through the node), ``leaves`` (trajectories ending there), ``value`` (mean
        outcome of the trajectories through it: the Monte-Carlo value), ``trajs`` (sorted ids),
        ``rows`` (positions in ``steps`` of the rows in the node), ``members`` (original node ids,
        one here; more after :func:`core.trees.collapse_chains`), ``n_steps`` and the quantity's
        ``q_mean``, ``q_count``, ``q_min``, ``q_max``. Graph attributes: ``root``, ``group``,
        ``quantity``, ``node_source`` (``"explicit"`` or ``"derived"``), ``n_rows``,
        ``n_trajectories``, ``outcomes`` (trajectory id -> outcome) and ``orphan_parents`` (parent
        ids referenced but absent; such nodes hang under the root).

    Raises:
        MissingInput: A required column is missing.
        ValueError: The rows span several groups, or explicit ids do not form a tree.
    """
    check_one_group(steps, "prefix_tree")
    quantity_name, quantity_values = resolve_quantity(steps, quantity, values)
    ordered = ordered_rows(steps)
    outcomes = trajectory_outcomes(ordered)

    # Explicit ids are trusted only when every row has one; a partly filled column would mix two
    # notions of node identity in one tree.
    explicit = "node_id" in ordered.columns and bool(ordered["node_id"].notna().all())
    if explicit:
        row_nodes, parents = _explicit_structure(ordered)
    else:
        row_nodes, parents = _derived_structure(ordered)

    root = ROOT_ID
    while root in parents:
        root += "_"
    orphans = sorted({p for p in parents.values() if p is not None and p not in parents})

    accumulators: dict[str, NodeAccumulator] = {}
    last_node_of_traj: dict[str, str] = {}
    for position, traj in zip(ordered.index, ordered["traj_id"].astype(str), strict=True):
        node = row_nodes[position]
        acc = accumulators.setdefault(node, NodeAccumulator(first_row=position))
        acc.trajs.add(traj)
        acc.rows.append(position)
        last_node_of_traj[traj] = node  # rows are in step order, so the last assignment wins
    for node in last_node_of_traj.values():
        accumulators[node].leaves += 1

    graph = nx.DiGraph(
        root=root,
        group=group_key(steps),
        quantity=quantity_name,
        node_source="explicit" if explicit else "derived",
        n_rows=len(steps),
        n_trajectories=len(outcomes),
        orphan_parents=orphans,
        outcomes=outcomes,
    )
    columns = positional_columns(steps, ("step_idx", "action", "state"))
    root_acc = NodeAccumulator(first_row=-1, trajs=set(outcomes))
    first_states = ordered.drop_duplicates("traj_id")["state"] if "state" in ordered.columns else pd.Series()
    graph.add_node(
        root,
        kind="root",
        step_idx=-1,
        action="",
        state=text_or_empty(first_states.iloc[0]) if len(first_states) else "",
        members=[root],
        n_steps=0,
        **node_statistics(root_acc, outcomes, quantity_values),
    )
    for node, acc in accumulators.items():
        graph.add_node(
            node,
            kind="step",
            step_idx=int(columns["step_idx"][acc.first_row]),
            action=text_or_empty(columns["action"][acc.first_row]),
            state=text_or_empty(columns["state"][acc.first_row]),
            members=[node],
            n_steps=1,
            **node_statistics(acc, outcomes, quantity_values),
        )
    for node in accumulators:
        parent = parents[node]
        graph.add_edge(root if parent is None or parent not in parents else parent, node)

    if not nx.is_arborescence(graph):
        raise ValueError(
            "node_id/parent_id do not form a tree (a cycle among the parent links); "
            f"group {group_key(steps)}. Check the adapter that produced the ids."
        )
    for node, depth in nx.single_source_shortest_path_length(graph, root).items():
        graph.nodes[node]["depth"] = depth
    return graph


def _explicit_structure(ordered: pd.DataFrame) -> tuple[dict[int, str], dict[str, str | None]]:
    """Map rows to their logged node ids and nodes to their logged parents (None = under the root)."""
    row_nodes: dict[int, str] = {}
    parents: dict[str, str | None] = {}
    parent_column = ordered["parent_id"] if "parent_id" in ordered.columns else pd.Series(None, index=ordered.index)
    for position, node_id, parent_id in zip(ordered.index, ordered["node_id"], parent_column, strict=True):
        node = str(node_id)
        parent = text_or_empty(parent_id) or None
        if node in parents and parents[node] != parent:
            raise ValueError(
                f"node_id {node!r} has two parents ({parents[node]!r} and {parent!r}); a tree node has one"
            )
        parents[node] = parent
        row_nodes[position] = node
    return row_nodes, parents


def _derived_structure(ordered: pd.DataFrame) -> tuple[dict[int, str], dict[str, str | None]]:
    """Derive node ids from identical action prefixes.

    A node's id hashes its parent's id with its own action, so equal prefixes give equal ids
    (and the same ids on every rebuild, which keeps a dashboard selection valid across reruns).
    """
    row_nodes: dict[int, str] = {}
    parents: dict[str, str | None] = {}
    previous_traj: str | None = None
    parent: str | None = None
    for position, traj, action in zip(ordered.index, ordered["traj_id"].astype(str), ordered["action"], strict=True):
        if traj != previous_traj:
            parent, previous_traj = None, traj
        node = "p" + short_hash(f"{parent or ''}\x1f{text_or_empty(action)}")
        parents.setdefault(node, parent)
        row_nodes[position] = node
        parent = node
    return row_nodes, parents


def node_of_rows(graph: nx.DiGraph) -> np.ndarray:
    """Return, for each input row of the builder (by position), the id of the node holding it.

    Works on trees from :func:`prefix_tree` and graphs from :func:`core.trees.state_graph`, also
    after :func:`core.trees.collapse_chains` (rows of a collapsed chain map to the merged node).
    Rows hidden by :func:`core.trees.cap_nodes` map to None.

    Args:
        graph: A graph built by this package.

    Returns:
        An object array of length ``graph.graph["n_rows"]``.
    """
    mapping = np.full(graph.graph["n_rows"], None, dtype=object)
    for node, rows in graph.nodes(data="rows"):
        if rows:
            mapping[rows] = node
    return mapping
