"""Make big trees and graphs readable: collapse single-child chains, cap the node count.

Both functions return a new graph and leave their input untouched, so a page can keep the full
structure (for the credit engine) and show a simplified copy.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

import networkx as nx
import numpy as np

from core.trees.common import start_nodes

MORE_SUFFIX = "::more"
"""Suffix of placeholder node ids: ``"<parent id>::more"`` stands for the parent's hidden successors."""


def collapse_chains(graph: nx.DiGraph) -> nx.DiGraph:
    """Merge every chain of single-child step nodes of a tree into one node.

    A node is merged with its only child when no trajectory ends at it (``leaves == 0``), so the
    merge loses no branching or ending. The root is never merged. The merged node keeps the
    head's id, lists every original id in ``members`` (in order), joins the actions with newlines,
    sums ``n_steps`` and the rows, takes the tail's ``leaves``, and combines the quantity
    statistics (count-weighted mean, overall min and max).

    Args:
        graph: A tree from :func:`core.trees.prefix_tree` (possibly capped).

    Returns:
        A new tree with the same root; ``graph.graph`` is copied.

    Raises:
        ValueError: ``graph`` is not a tree (e.g. a state graph).
    """
    if not nx.is_arborescence(graph):
        raise ValueError("collapse_chains works on trees (prefix_tree); state graphs may have cycles")
    root = graph.graph["root"]
    collapsed = nx.DiGraph(**graph.graph)

    def continues(node: str) -> bool:
        # A chain goes on through nodes with exactly one step child that no trajectory stops at.
        if node == root or graph.nodes[node].get("kind") != "step" or graph.nodes[node]["leaves"]:
            return False
        children = list(graph.successors(node))
        return len(children) == 1 and graph.nodes[children[0]].get("kind") == "step"

    head_of: dict[str, str] = {root: root}
    collapsed.add_node(root, **graph.nodes[root])
    for parent, head in nx.bfs_edges(graph, root):
        if head in head_of:  # already absorbed into a chain started above it
            continue
        chain = [head]
        while continues(chain[-1]):
            chain.append(next(iter(graph.successors(chain[-1]))))
        for member in chain:
            head_of[member] = head
        collapsed.add_node(head, **_merge_chain(graph, chain))
        collapsed.add_edge(head_of[parent], head)
    for node, depth in nx.single_source_shortest_path_length(collapsed, root).items():
        collapsed.nodes[node]["depth"] = depth
    return collapsed


def _merge_chain(graph: nx.DiGraph, chain: list[str]) -> dict[str, object]:
    """Return the attributes of the node that replaces ``chain`` (one or more nodes, top first)."""
    head, tail = graph.nodes[chain[0]], graph.nodes[chain[-1]]
    if len(chain) == 1:
        return dict(head)
    parts = [graph.nodes[n] for n in chain]
    counts = np.array([p["q_count"] for p in parts], dtype=float)
    total = counts.sum()
    means = np.array([p["q_mean"] if p["q_count"] else 0.0 for p in parts], dtype=float)
    merged = dict(head)
    merged.update(
        action="\n".join(p["action"] for p in parts),
        members=[m for p in parts for m in p["members"]],
        n_steps=sum(p["n_steps"] for p in parts),
        last_step_idx=tail.get("last_step_idx", tail["step_idx"]),
        leaves=tail["leaves"],
        rows=sorted(r for p in parts for r in p["rows"]),
        q_count=int(total),
        q_mean=float((counts * means).sum() / total) if total else math.nan,
        q_min=float(np.nanmin([p["q_min"] for p in parts])) if total else math.nan,
        q_max=float(np.nanmax([p["q_max"] for p in parts])) if total else math.nan,
    )
    return merged


def cap_nodes(graph: nx.DiGraph, max_nodes: int, *, expand: Iterable[str] = ()) -> nx.DiGraph:
    """Keep at most ``max_nodes`` nodes, the most visited first, with "N more nodes" placeholders.

    Nodes are taken greedily from the start(s) outward in order of ``visits``, so what is kept is
    always connected to the root (tree) or a start state (graph). Every kept node whose successors
    were not all kept gets one placeholder child ``"<id>::more"`` (``kind="placeholder"``) whose
    ``action`` reads ``"N more nodes"`` (N = hidden nodes reachable through it) and whose
    ``visits``/``value`` describe the trajectories that continue into the hidden part.
    Placeholders count towards ``max_nodes``.

    Args:
        graph: A graph from this package (tree or state graph).
        max_nodes: Node budget, placeholders included (at least 1).
        expand: Node ids to open: each is shown with its path from the start and all its direct
            successors, even beyond the budget. A placeholder id opens its parent, so a page can
            pass the id of a clicked placeholder straight back; the id of a node merged away by
            :func:`collapse_chains` opens the merged node. Unknown ids are ignored (a stale
            selection after the data changed).

    Returns:
        A new graph; ``graph.graph`` gains ``hidden_nodes`` (count) and ``capped_from`` (original size).

    Raises:
        ValueError: ``max_nodes`` is below 1.
    """
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, got {max_nodes}")
    starts = start_nodes(graph)
    kept: set[str] = set()
    hidden_out: dict[str, int] = {}  # kept node -> number of its successors not kept
    placeholders = 0

    def cost_of_adding(node: str) -> int:
        freed = sum(1 for p in graph.predecessors(node) if p in kept and p != node and hidden_out[p] == 1)
        opens = any(s not in kept and s != node for s in graph.successors(node))
        return 1 + int(opens) - freed

    def add(node: str) -> None:
        nonlocal placeholders
        placeholders += cost_of_adding(node) - 1
        for p in graph.predecessors(node):
            if p in kept and p != node:
                hidden_out[p] -= 1
        kept.add(node)
        hidden_out[node] = sum(1 for s in graph.successors(node) if s not in kept)

    for node in _forced_nodes(graph, starts, expand):
        if node not in kept:
            add(node)
    order = {node: index for index, node in enumerate(graph.nodes)}
    frontier = [(-graph.nodes[n]["visits"], order[n], n) for n in starts if n not in kept]
    frontier += [(-graph.nodes[s]["visits"], order[s], s) for k in kept for s in graph.successors(k) if s not in kept]
    heapq.heapify(frontier)
    while frontier:
        _, _, node = heapq.heappop(frontier)
        if node in kept or len(kept) + placeholders + cost_of_adding(node) > max_nodes:
            continue
        add(node)
        for successor in graph.successors(node):
            if successor not in kept:
                heapq.heappush(frontier, (-graph.nodes[successor]["visits"], order[successor], successor))

    capped = nx.DiGraph(graph.subgraph(n for n in graph.nodes if n in kept))
    capped.graph.update(graph.graph, hidden_nodes=len(graph) - len(kept), capped_from=len(graph))
    for node in [n for n in capped.nodes if hidden_out[n]]:
        _add_placeholder(graph, capped, node, kept)
    return capped


def _forced_nodes(graph: nx.DiGraph, starts: list[str], expand: Iterable[str]) -> list[str]:
    """Return the nodes that ``expand`` asks to show: a path from a start to each target, and its successors."""
    forced: list[str] = []
    holder: dict[str, str] | None = None
    for requested in expand:
        target = requested.removesuffix(MORE_SUFFIX)
        if target not in graph:
            # An id from before collapse_chains (e.g. a row's node) opens the merged node holding it.
            holder = holder or {m: n for n, members in graph.nodes(data="members", default=[]) for m in members}
            if target not in holder:
                continue
            target = holder[target]
        reachable = [s for s in starts if s == target or nx.has_path(graph, s, target)]
        if reachable:
            forced += nx.shortest_path(graph, reachable[0], target)
        forced += [target, *graph.successors(target)]
    return forced


def _add_placeholder(graph: nx.DiGraph, capped: nx.DiGraph, parent: str, kept: set[str]) -> None:
    """Attach to ``parent`` one node standing for everything hidden behind it."""
    hidden_children = [s for s in graph.successors(parent) if s not in kept]
    hidden = set(hidden_children)
    stack = list(hidden_children)
    while stack:  # hidden nodes reachable through hidden nodes only
        for successor in graph.successors(stack.pop()):
            if successor not in kept and successor not in hidden:
                hidden.add(successor)
                stack.append(successor)
    trajs = sorted({t for c in hidden_children for t in graph.nodes[c]["trajs"]})
    outcomes = graph.graph.get("outcomes", {})
    known = [outcomes[t] for t in trajs if t in outcomes]
    placeholder = parent + MORE_SUFFIX
    capped.add_node(
        placeholder,
        kind="placeholder",
        action=f"{len(hidden)} more nodes",
        state="",
        step_idx=min(graph.nodes[c]["step_idx"] for c in hidden_children),
        depth=graph.nodes[parent].get("depth", 0) + 1,
        visits=len(trajs),
        leaves=sum(graph.nodes[n]["leaves"] for n in hidden),
        value=float(np.mean(known)) if known else math.nan,
        trajs=trajs,
        rows=[],
        members=[],
        n_steps=0,
        hidden_nodes=len(hidden),
        expands=parent,
        q_mean=math.nan,
        q_count=0,
        q_min=math.nan,
        q_max=math.nan,
    )
    count = sum(graph.edges[parent, c].get("count", graph.nodes[c]["visits"]) for c in hidden_children)
    capped.add_edge(parent, placeholder, count=count, actions={}, trajs=trajs)
