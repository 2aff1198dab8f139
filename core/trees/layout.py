"""Node positions for drawing: a tidy top-down tree layout and a layered layout for state graphs.

Both return ``{node: (x, y)}`` with ``y = -depth`` (the root or start states on top) and x in
slot units (one slot per leaf or per node of a layer); the figure builders scale nothing.
"""

from __future__ import annotations

from collections import deque

import networkx as nx

from core.trees.common import start_nodes

Position = tuple[float, float]


def tree_layout(graph: nx.DiGraph) -> dict[str, Position]:
    """Lay a tree out top-down, tidy-tree style.

    Leaves take consecutive x slots in depth-first order (siblings ordered by their first
    trajectory id, so the picture reads like the trajectory table) and every parent sits centred
    over its first and last child. Sibling subtrees therefore occupy disjoint x ranges, which is
    why no two nodes of the same depth can share a position.

    Args:
        graph: A tree (or forest) from :func:`core.trees.prefix_tree`, possibly collapsed or capped.

    Returns:
        ``{node: (x, y)}`` with ``y = -depth``.
    """
    roots = start_nodes(graph)

    def ordered_children(node: str) -> list[str]:
        return sorted(graph.successors(node), key=lambda c: (graph.nodes[c].get("trajs") or [""])[0] + "\x00" + c)

    x_of: dict[str, float] = {}
    y_of: dict[str, float] = {}
    next_slot = 0
    for root in roots:
        # Iterative post-order (children before parents) so deep trees cannot hit the recursion limit.
        stack: list[tuple[str, int, bool]] = [(root, 0, False)]
        while stack:
            node, depth, children_done = stack.pop()
            if node in x_of:
                continue
            children = ordered_children(node)
            if not children_done and children:
                stack.append((node, depth, True))
                stack.extend((child, depth + 1, False) for child in reversed(children))
                continue
            y_of[node] = -float(depth)
            if children:
                x_of[node] = (x_of[children[0]] + x_of[children[-1]]) / 2.0
            else:
                x_of[node] = float(next_slot)
                next_slot += 1
    return {node: (x_of[node], y_of[node]) for node in x_of}


def layered_layout(graph: nx.DiGraph, starts: list[str] | None = None) -> dict[str, Position]:
    """Lay a graph that may have cycles out in layers by breadth-first depth from its start node(s).

    Within a layer, nodes are ordered by the mean x of their already placed predecessors (one
    barycentre sweep, which removes most edge crossings cheaply), then by visits. Each layer is
    centred on x = 0 with one slot per node, so no two nodes share a position. Nodes that cannot
    be reached from a start go into one extra bottom layer.

    Args:
        graph: A state graph (or any graph whose nodes have ``visits``).
        starts: Start nodes; defaults to ``graph.graph["starts"]``, else its sources.

    Returns:
        ``{node: (x, y)}`` with ``y = -layer``.
    """
    starts = [s for s in (starts or start_nodes(graph)) if s in graph]
    layer_of: dict[str, int] = {s: 0 for s in starts}
    queue = deque(starts)
    while queue:
        node = queue.popleft()
        for successor in graph.successors(node):
            if successor not in layer_of:
                layer_of[successor] = layer_of[node] + 1
                queue.append(successor)
    unreached_layer = max(layer_of.values(), default=-1) + 1
    for node in graph.nodes:
        layer_of.setdefault(node, unreached_layer)

    layers: dict[int, list[str]] = {}
    for node, layer in layer_of.items():
        layers.setdefault(layer, []).append(node)
    positions: dict[str, Position] = {}
    for layer in sorted(layers):

        def sort_key(node: str, layer: int = layer) -> tuple[float, int, str]:
            placed = [positions[p][0] for p in graph.predecessors(node) if p in positions and layer_of[p] < layer]
            barycentre = sum(placed) / len(placed) if placed else 0.0
            return barycentre, -int(graph.nodes[node].get("visits", 0)), node

        members = sorted(layers[layer], key=sort_key)
        offset = (len(members) - 1) / 2.0
        for index, node in enumerate(members):
            positions[node] = (index - offset, -float(layer))
    return positions
