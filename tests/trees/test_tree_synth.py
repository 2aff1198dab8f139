"""Trees and state graphs on the sample environments of core.synth (tree, arithmetic, agent runs)."""

from __future__ import annotations

import networkx as nx
import pandas as pd
import pytest

from core.trees import node_of_rows, prefix_tree, state_graph
from dashboard.figures.trees import state_graph_figure, tree_figure

synth = pytest.importorskip("core.synth")

GROUP = ["run_id", "iteration", "group_id"]


def groups_of(env: str) -> list[pd.DataFrame]:
    steps = synth.generate_steps(env, prompts=2, iterations=2, group_size=8, seed=5)
    return [group.reset_index(drop=True) for _, group in steps.groupby(GROUP, sort=True)]


def group_name(group: pd.DataFrame) -> str:
    return f"{group['group_id'].iloc[0]}@{group['iteration'].iloc[0]}"


def assert_group_totals(tree: nx.DiGraph, group: pd.DataFrame) -> None:
    outcomes = group.groupby("traj_id")["outcome"].first()
    root = tree.nodes[tree.graph["root"]]
    assert root["visits"] == len(outcomes) == 8
    assert root["value"] == pytest.approx(outcomes.mean())
    assert sum(leaves for _, leaves in tree.nodes(data="leaves")) == len(outcomes)


@pytest.mark.parametrize("group", groups_of("tree"), ids=group_name)
def test_tree_run_uses_the_logged_branching(group: pd.DataFrame) -> None:
    tree = prefix_tree(group, quantity="label")
    assert tree.graph["node_source"] == "explicit"
    assert len(tree) == group["node_id"].nunique() + 1
    assert_group_totals(tree, group)
    assert list(node_of_rows(tree)) == list(group["node_id"])
    # TreeRL-style rollouts share prefixes: some node below the root is walked by several trajectories.
    assert max(d["visits"] for n, d in tree.nodes(data=True) if n != tree.graph["root"]) > 1
    assert max(tree.out_degree(n) for n in tree if n != tree.graph["root"]) >= 2
    for node, data in tree.nodes(data=True):
        if tree.out_degree(node) == 0:  # a leaf's value is its own trajectories' outcome
            outcomes = group.loc[group["traj_id"].isin(data["trajs"]), "outcome"]
            assert data["value"] == pytest.approx(outcomes.mean())
    assert len(prefix_tree(group.drop(columns=["node_id", "parent_id"]))) <= len(tree)


@pytest.mark.parametrize("group", groups_of("arithmetic")[:3], ids=group_name)
def test_arithmetic_run_derives_prefix_nodes(group: pd.DataFrame) -> None:
    tree = prefix_tree(group, quantity="label")
    assert tree.graph["node_source"] == "derived"
    assert_group_totals(tree, group)
    # Independent check: a row's node value is the mean outcome of all trajectories sharing its action prefix.
    ordered = group.sort_values(["traj_id", "step_idx"])
    prefixes = ordered.groupby("traj_id")["action"].apply(list)
    outcomes = ordered.groupby("traj_id")["outcome"].first()
    nodes = node_of_rows(tree)
    for position, row in group.iterrows():
        prefix = prefixes[row["traj_id"]][: row["step_idx"] + 1]
        sharing = [t for t, actions in prefixes.items() if actions[: len(prefix)] == prefix]
        assert tree.nodes[nodes[position]]["value"] == pytest.approx(outcomes[sharing].mean())
        assert tree.nodes[nodes[position]]["visits"] == len(sharing)
    # A step's label depends only on its prefix, so rows merged into one node agree on it.
    for _, data in tree.nodes(data=True):
        if data["q_count"]:
            assert data["q_min"] == data["q_max"]


@pytest.mark.parametrize("group", groups_of("agent")[:3], ids=group_name)
def test_agent_run_state_graph_has_recurring_states(group: pd.DataFrame) -> None:
    graph = state_graph(group, terminals=True)
    states = [n for n, k in graph.nodes(data="kind") if k == "state"]
    assert len(states) == group["state"].nunique() < len(group)
    assert max(graph.nodes[n]["visits"] for n in states) > 1  # anchors shared across trajectories
    assert sum(graph.nodes[n]["occurrences"] for n in states) == len(group)
    transitions = sum(c for u, v, c in graph.edges(data="count") if not v.startswith("end:"))
    assert transitions == len(group) - group["traj_id"].nunique()
    outcomes = group.groupby("traj_id")["outcome"].first()
    for node in states:
        data = graph.nodes[node]
        assert data["value"] == pytest.approx(outcomes[data["trajs"]].mean())
        assert data["n_success"] == int((outcomes[data["trajs"]] > 0).sum())
    figure = state_graph_figure(graph, title="agent", colour_label="value")
    assert sum(len(t.x) for t in figure.data if "markers" in t.mode) == len(graph)


def test_synth_tree_figure_round_trip() -> None:
    group = groups_of("tree")[0]
    tree = prefix_tree(group)
    figure = tree_figure(tree, title="tree", colour_label="value", scheme="Monte-Carlo value")
    ids = [node for t in figure.data if "markers" in t.mode for node in t.customdata]
    assert sorted(ids) == sorted(tree.nodes)
