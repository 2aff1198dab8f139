"""collapse_chains, cap_nodes, tree_layout and layered_layout."""

from __future__ import annotations

import itertools

import networkx as nx
import pandas as pd
import pytest

from core.trees import (
    MORE_SUFFIX,
    cap_nodes,
    collapse_chains,
    layered_layout,
    node_of_rows,
    prefix_tree,
    state_graph,
    tree_layout,
)


def test_collapse_merges_single_child_chains_only(derived_chain_steps: pd.DataFrame) -> None:
    tree = prefix_tree(derived_chain_steps, quantity="step", values=derived_chain_steps["step_idx"].to_numpy(float))
    collapsed = collapse_chains(tree)
    # v1 -> s2 is the only chain (v1 has one child and nobody stops at v1); s1 branches, s1/s2 has a leaf.
    assert len(collapsed) == len(tree) - 1
    merged = next(n for n, d in collapsed.nodes(data=True) if d["n_steps"] == 2)
    data = collapsed.nodes[merged]
    assert data["action"] == "v1\ns2" and len(data["members"]) == 2
    assert data["leaves"] == 1 and data["trajs"] == ["d"]
    assert data["q_count"] == 2 and data["q_mean"] == pytest.approx(0.5)  # steps 0 and 1
    assert nx.is_arborescence(collapsed)
    assert collapsed.nodes[collapsed.graph["root"]]["visits"] == tree.nodes[tree.graph["root"]]["visits"]
    assert len(tree) == len(prefix_tree(derived_chain_steps))  # input left untouched


def test_collapse_keeps_leaf_totals_and_row_mapping(branching_steps: pd.DataFrame) -> None:
    tree = prefix_tree(branching_steps)
    collapsed = collapse_chains(tree)
    assert len(collapsed) < len(tree)
    assert sum(d["leaves"] for _, d in collapsed.nodes(data=True)) == 30
    for node in collapsed:  # after collapsing, every non-root node branches or ends a trajectory
        data = collapsed.nodes[node]
        if node != collapsed.graph["root"]:
            assert collapsed.out_degree(node) != 1 or data["leaves"] > 0
    mapping = node_of_rows(collapsed)
    assert all(node is not None for node in mapping)
    assert sum(d["n_steps"] for _, d in collapsed.nodes(data=True)) == len(tree) - 1


def test_collapse_refuses_graphs_with_cycles(agent_steps: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="trees"):
        collapse_chains(state_graph(agent_steps))


def test_cap_keeps_budget_with_placeholders(branching_steps: pd.DataFrame) -> None:
    tree = prefix_tree(branching_steps)
    capped = cap_nodes(tree, 25)
    placeholders = [n for n, k in capped.nodes(data="kind") if k == "placeholder"]
    assert len(capped) <= 25 and placeholders
    assert capped.graph["hidden_nodes"] == len(tree) - (len(capped) - len(placeholders))
    assert sum(capped.nodes[p]["hidden_nodes"] for p in placeholders) == capped.graph["hidden_nodes"]
    for placeholder in placeholders:
        data = capped.nodes[placeholder]
        parent = data["expands"]
        assert placeholder == parent + MORE_SUFFIX and data["action"] == f"{data['hidden_nodes']} more nodes"
        kept_children = [c for c in capped.successors(parent) if c != placeholder]
        # Trajectories through the parent either stop there, go to a kept child, or into the placeholder.
        assert capped.nodes[parent]["visits"] == (
            capped.nodes[parent]["leaves"] + data["visits"] + sum(capped.nodes[c]["visits"] for c in kept_children)
        )
    assert nx.is_arborescence(capped)
    assert sum(d["leaves"] for _, d in capped.nodes(data=True)) == 30  # leaves stay accounted for


def test_cap_expand_opens_a_placeholder(branching_steps: pd.DataFrame) -> None:
    tree = prefix_tree(branching_steps)
    capped = cap_nodes(tree, 12)
    placeholder = next(n for n, k in capped.nodes(data="kind") if k == "placeholder")
    parent = capped.nodes[placeholder]["expands"]
    opened = cap_nodes(tree, 12, expand=[placeholder])
    assert set(tree.successors(parent)) <= set(opened.nodes)
    assert placeholder not in opened
    assert cap_nodes(tree, 12, expand=["no-such-node"]).nodes == capped.nodes  # stale ids are ignored


def test_cap_is_a_no_op_when_the_graph_fits(explicit_tree_steps: pd.DataFrame) -> None:
    tree = prefix_tree(explicit_tree_steps)
    capped = cap_nodes(tree, 100)
    assert set(capped.nodes) == set(tree.nodes) and capped.graph["hidden_nodes"] == 0
    with pytest.raises(ValueError):
        cap_nodes(tree, 0)


def test_cap_works_on_state_graphs(agent_steps: pd.DataFrame) -> None:
    graph = state_graph(agent_steps)
    capped = cap_nodes(graph, 4)
    assert len(capped) <= 4
    kept_states = [n for n, k in capped.nodes(data="kind") if k == "state"]
    assert graph.graph["starts"][0] in kept_states
    assert capped.graph["hidden_nodes"] == len(graph) - len(kept_states)


def assert_distinct_positions(positions: dict[str, tuple[float, float]]) -> None:
    for (a, pa), (b, pb) in itertools.combinations(positions.items(), 2):
        assert pa != pb, f"{a} and {b} overlap at {pa}"


def test_tree_layout_is_tidy(branching_steps: pd.DataFrame) -> None:
    tree = prefix_tree(branching_steps)
    positions = tree_layout(tree)
    assert set(positions) == set(tree.nodes)
    assert_distinct_positions(positions)
    leaf_xs = sorted(positions[n][0] for n in tree if tree.out_degree(n) == 0)
    assert leaf_xs == [float(i) for i in range(len(leaf_xs))]  # consecutive slots
    for node in tree:
        children = list(tree.successors(node))
        assert positions[node][1] == -tree.nodes[node]["depth"]
        if children:
            xs = [positions[c][0] for c in children]
            assert positions[node][0] == pytest.approx((min(xs) + max(xs)) / 2)


def test_tree_layout_of_capped_and_collapsed_trees(branching_steps: pd.DataFrame) -> None:
    shown = collapse_chains(cap_nodes(prefix_tree(branching_steps), 20))
    positions = tree_layout(shown)
    assert set(positions) == set(shown.nodes)
    assert_distinct_positions(positions)


def test_layered_layout_handles_cycles(agent_steps: pd.DataFrame) -> None:
    graph = state_graph(agent_steps, terminals=True)
    positions = layered_layout(graph)
    assert set(positions) == set(graph.nodes)
    assert_distinct_positions(positions)
    start = graph.graph["starts"][0]
    assert positions[start][1] == 0.0
    depth = nx.single_source_shortest_path_length(graph, start)
    assert all(positions[n][1] == -depth[n] for n in graph)


def test_collapse_then_cap_then_expand(branching_steps: pd.DataFrame) -> None:
    tree = prefix_tree(branching_steps)
    collapsed = collapse_chains(tree)
    capped = cap_nodes(collapsed, 10)
    assert len(capped) <= 10
    placeholder = next(n for n, k in capped.nodes(data="kind") if k == "placeholder")
    parent = capped.nodes[placeholder]["expands"]
    opened = cap_nodes(collapsed, 10, expand=[placeholder])
    assert set(collapsed.successors(parent)) <= set(opened.nodes)
    # An original node id that collapse_chains merged away opens the merged node holding it.
    small = cap_nodes(collapsed, 3)
    merged = next(n for n, d in collapsed.nodes(data=True) if len(d["members"]) > 1 and n not in small)
    inner = collapsed.nodes[merged]["members"][-1]
    assert merged in cap_nodes(collapsed, 3, expand=[inner])
