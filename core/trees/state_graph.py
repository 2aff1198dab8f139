"""State graphs of one group: GiGPO anchor states and the transitions observed between them.

Unlike a prefix tree, a state graph merges steps by *what the agent saw* (the ``state`` column),
regardless of the history that led there. Two trajectories that reach the same room by different
routes meet in one node, and a trajectory that walks in a circle draws a cycle. This is exactly
the grouping GiGPO uses for its step-level advantages (anchor-state groups).
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
import pandas as pd
from rapidfuzz.distance import LCSseq

from core.errors import MissingInput
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

SIMILARITY_METHOD = (
    "rapidfuzz Indel similarity 2·LCS / (len(a) + len(b)) against each cluster's first member "
    "(GiGPO's rule with difflib's ratio computed exactly, without its heuristics)"
)
"""How near-identical states are merged; shown in the dashboard next to the threshold."""


def cluster_states(states: Sequence[str], similarity: float | None = None) -> tuple[np.ndarray, list[str]]:
    """Group state texts into anchor clusters, greedily in the given order.

    Identical texts always share a cluster. With ``similarity`` a text joins the *first* cluster
    whose representative (first member) is at least ``similarity`` similar to it, GiGPO's
    ``are_similar`` rule (order-dependent, like the original). Similarity is ``2·LCS / (len(a) +
    len(b))`` with LCS the longest common subsequence: the ratio difflib's ``SequenceMatcher``
    approximates (it counts greedily found matching blocks, and above 200 characters it ignores every
    character that occurs in more than 1 % of the text, so long observations almost never merge). On
    short texts the two agree; rapidfuzz computes the LCS exactly and bit-parallel in C++, so a
    256 x 40 group merges in well under a second instead of minutes.

    Args:
        states: State texts in row order.
        similarity: Threshold in (0, 1], or None for exact matching only.

    Returns:
        ``(labels, representatives)``: the cluster index of each input and each cluster's first text.

    Raises:
        ValueError: ``similarity`` is outside (0, 1].
    """
    if similarity is not None and not 0.0 < similarity <= 1.0:
        raise ValueError(f"similarity must be in (0, 1], got {similarity}")
    labels = np.empty(len(states), dtype=np.int64)
    representatives: list[str] = []
    lengths: list[int] = []
    cluster_of_text: dict[str, int] = {}
    for index, text in enumerate(states):
        # A repeated text would repeat the same comparisons in the same order, so caching it is exact.
        cluster = cluster_of_text.get(text)
        if cluster is None:
            if similarity is not None and representatives:
                cluster = _first_similar(text, representatives, lengths, similarity)
            if cluster is None:
                cluster = len(representatives)
                representatives.append(text)
                lengths.append(len(text))
            cluster_of_text[text] = cluster
        labels[index] = cluster
    return labels, representatives


def _first_similar(text: str, representatives: list[str], lengths: list[int], threshold: float) -> int | None:
    """Index of the first representative at least ``threshold`` similar to ``text``, or None.

    One rapidfuzz call per representative, in order, stopping at the first match: the first match usually
    comes early, which beats batching every representative into one call (measured in bench/trees.py).
    """
    for index, (rep, size) in enumerate(zip(representatives, lengths, strict=True)):
        total = len(text) + size
        if total == 0:
            return index  # two empty texts are identical
        # The LCS is at most the shorter text: lengths alone rule most pairs out at high thresholds.
        if 2.0 * min(size, len(text)) < threshold * total:
            continue
        # Integer LCS, compared exactly (rapidfuzz's own score_cutoff can round a tie away).
        if 2.0 * LCSseq.similarity(text, rep) / total >= threshold:
            return index
    return None


def state_graph(
    steps: pd.DataFrame,
    *,
    similarity: float | None = None,
    quantity: str | None = None,
    values: np.ndarray | None = None,
    success_above: float = 0.0,
    terminals: bool = False,
) -> nx.DiGraph:
    """Build the state-transition graph of one group.

    Args:
        steps: Canonical step rows of ONE (run_id, iteration, group_id). A missing ``state`` at a
            trajectory's first step joins the shared node ``"s:initial"`` (the prompt, left out by
            many adapters); a missing state later on gets a node of its own.
        similarity: Merge near-identical states (see :func:`cluster_states`); None merges identical
            texts only.
        quantity: Column to aggregate per node, or the display name of ``values``.
        values: Per-step quantity aligned with the positional rows of ``steps``.
        success_above: A trajectory counts as a success when its outcome is greater than this.
        terminals: Also add one ``"end: success"`` / ``"end: fail"`` node per kind of ending, so the
            last action of each trajectory shows as an edge.

    Returns:
        A directed graph (may contain cycles and self-loops). State nodes have ``kind="state"``,
        ``state`` (the cluster's first text), ``n_variants`` (distinct texts merged), ``step_idx``
        (first step index it was seen at), ``visits``, ``occurrences`` (rows, counting revisits),
        ``leaves`` (trajectories whose last step was taken there), ``value``, ``n_success``,
        ``n_fail``, ``trajs``, ``rows`` and ``q_mean``/``q_count``/``q_min``/``q_max``. Edges carry
        ``count`` (transitions), ``actions`` (action text -> count) and ``trajs``. Graph attributes:
        ``starts`` (nodes where trajectories begin), ``group``, ``quantity``, ``n_rows``,
        ``n_trajectories``, ``outcomes``, ``similarity`` and ``similarity_method``.

    Raises:
        MissingInput: A required column is missing or no row has a state.
        ValueError: The rows span several groups, or ``similarity`` is out of range.
    """
    check_one_group(steps, "state_graph", extra_columns=("state",))
    if bool(steps["state"].isna().all()):
        raise MissingInput(
            f"state_graph needs states, but none of the {len(steps)} rows has one. "
            "Use the prefix tree for this group, or ingest with an adapter that records observations."
        )
    quantity_name, quantity_values = resolve_quantity(steps, quantity, values)
    ordered = ordered_rows(steps)
    outcomes = trajectory_outcomes(ordered)
    row_nodes, text_of_node = _anchor_nodes(ordered, similarity)

    accumulators: dict[str, NodeAccumulator] = {}
    variants: dict[str, set[str]] = {}
    edges: dict[tuple[str, str], dict[str, object]] = {}
    starts: list[str] = []
    previous: tuple[str, str, str] | None = None  # (traj, node, action) of the previous row
    for position, traj, text, action, node in zip(
        ordered.index,
        ordered["traj_id"].astype(str),
        ordered["state"].map(text_or_empty),
        ordered["action"].map(text_or_empty),
        row_nodes,
        strict=True,
    ):
        acc = accumulators.setdefault(node, NodeAccumulator(first_row=position))
        acc.trajs.add(traj)
        acc.rows.append(position)
        variants.setdefault(node, set()).add(text)
        if previous is not None and previous[0] == traj:
            _count_transition(edges, previous[1], node, previous[2], traj)
        else:
            if previous is not None:
                _end_trajectory(accumulators, edges, previous, outcomes, success_above, terminals)
            if node not in starts:
                starts.append(node)
        previous = (traj, node, action)
    _end_trajectory(accumulators, edges, previous, outcomes, success_above, terminals)

    graph = nx.DiGraph(
        starts=starts,
        group=group_key(steps),
        quantity=quantity_name,
        n_rows=len(steps),
        n_trajectories=len(outcomes),
        similarity=similarity,
        outcomes=outcomes,
        similarity_method=SIMILARITY_METHOD if similarity is not None else "identical text",
    )
    columns = positional_columns(steps, ("step_idx", "action"))
    for node, acc in accumulators.items():
        stats = node_statistics(acc, outcomes, None if node.startswith("end:") else quantity_values)
        n_success = sum(outcomes[t] > success_above for t in acc.trajs)
        if node.startswith("end:"):
            attrs = {"kind": "terminal", "state": node, "n_variants": 0, "step_idx": -1, "action": ""}
        else:
            attrs = {
                "kind": "state",
                "state": text_of_node[node],
                "n_variants": len(variants[node]),
                "step_idx": int(min(columns["step_idx"][r] for r in acc.rows)),
                "action": "",
                "first_action": text_or_empty(columns["action"][acc.first_row]),
            }
        graph.add_node(
            node,
            **attrs,
            **stats,
            occurrences=len(acc.rows),
            n_success=int(n_success),
            n_fail=len(acc.trajs) - int(n_success),
            members=[node],
            n_steps=1,
        )
    for (source, target), data in edges.items():
        graph.add_edge(source, target, count=data["count"], actions=data["actions"], trajs=sorted(data["trajs"]))
    return graph


INITIAL_UNLOGGED = "s:initial"
"""Node of trajectories whose first state was not logged (typically the prompt, shared by the group)."""


def _anchor_nodes(ordered: pd.DataFrame, similarity: float | None) -> tuple[list[str], dict[str, str]]:
    """Return the node id of each ordered row and the display text of each node.

    Logged states are clustered (:func:`cluster_states`) and named by a hash of the cluster's
    first text, so ids are stable across rebuilds. A missing state at a trajectory's first step
    is taken to be the group's shared initial observation (adapters often leave the prompt out);
    a missing state later on is unknown, so it gets a node of its own rather than a guessed match.
    """
    texts = ordered["state"].tolist()
    logged = [i for i, text in enumerate(texts) if not pd.isna(text)]
    labels, representatives = cluster_states([str(texts[i]) for i in logged], similarity)
    cluster_ids = ["s" + short_hash(text) for text in representatives]
    text_of_node = dict(zip(cluster_ids, representatives, strict=True))
    first_steps = (~ordered["traj_id"].duplicated()).tolist()
    row_nodes: list[str] = []
    for index, position in enumerate(ordered.index):
        if first_steps[index]:
            row_nodes.append(INITIAL_UNLOGGED)
        else:
            row_nodes.append(f"s:unlogged:{position}")
    for index, label in zip(logged, labels, strict=True):
        row_nodes[index] = cluster_ids[label]
    for node in row_nodes:
        if node == INITIAL_UNLOGGED:
            text_of_node[node] = "(initial state not logged)"
        elif node.startswith("s:unlogged:"):
            text_of_node[node] = "(state not logged)"
    return row_nodes, text_of_node


def _count_transition(
    edges: dict[tuple[str, str], dict[str, object]], source: str, target: str, action: str, traj: str
) -> None:
    """Record one observed transition ``source --action--> target`` of trajectory ``traj``."""
    data = edges.setdefault((source, target), {"count": 0, "actions": {}, "trajs": set()})
    data["count"] += 1
    data["actions"][action] = data["actions"].get(action, 0) + 1
    data["trajs"].add(traj)


def _end_trajectory(
    accumulators: dict[str, NodeAccumulator],
    edges: dict[tuple[str, str], dict[str, object]],
    last: tuple[str, str, str] | None,
    outcomes: dict[str, float],
    success_above: float,
    terminals: bool,
) -> None:
    """Close a trajectory: count its last state as a leaf and optionally link it to a terminal node."""
    if last is None:
        return
    traj, node, action = last
    accumulators[node].leaves += 1
    if terminals:
        terminal = "end: success" if outcomes[traj] > success_above else "end: fail"
        acc = accumulators.setdefault(terminal, NodeAccumulator(first_row=-1))
        acc.trajs.add(traj)
        acc.leaves += 1
        _count_transition(edges, node, terminal, action, traj)
