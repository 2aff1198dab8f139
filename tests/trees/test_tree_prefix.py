"""prefix_tree: explicit ids, derived prefixes, per-node aggregation, error cases."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from tree_frames import build_steps

from core.errors import MissingInput
from core.trees import node_of_rows, prefix_tree


def test_explicit_ids_give_the_logged_tree(explicit_tree_steps: pd.DataFrame) -> None:
    tree = prefix_tree(explicit_tree_steps)
    root = tree.graph["root"]
    assert tree.graph["node_source"] == "explicit"
    assert set(tree.nodes) == {root, "X", "X1", "X2", "Y", "Y1", "Y2", "Y2a", "Y2b"}
    assert [n for n in tree.nodes if tree.in_degree(n) == 0] == [root]
    assert set(tree.successors(root)) == {"X", "Y"}
    assert set(tree.successors("Y2")) == {"Y2a", "Y2b"}
    assert tree.nodes[root]["step_idx"] == -1
    assert tree.nodes["Y2"]["step_idx"] == 1 and tree.nodes["Y2"]["depth"] == 2


def test_monte_carlo_values_match_the_treerl_example(explicit_tree_steps: pd.DataFrame) -> None:
    tree = prefix_tree(explicit_tree_steps)
    values = {n: tree.nodes[n]["value"] for n in tree.nodes}
    # V: root 0.4, X 0.5, Y 1/3, Y2 0.5 (credit-schemes.md section 4/13 worked example).
    assert values[tree.graph["root"]] == pytest.approx(0.4)
    assert values["X"] == pytest.approx(0.5)
    assert values["Y"] == pytest.approx(1 / 3)
    assert values["Y2"] == pytest.approx(0.5)
    assert values["Y2a"] == 1.0 and values["Y2b"] == 0.0


def test_visits_leaves_and_trajs(explicit_tree_steps: pd.DataFrame) -> None:
    tree = prefix_tree(explicit_tree_steps)
    root = tree.graph["root"]
    assert tree.nodes[root]["visits"] == 5 == tree.graph["n_trajectories"]
    assert sum(leaves for _, leaves in tree.nodes(data="leaves")) == 5
    assert tree.nodes["Y"]["trajs"] == ["t3", "t4", "t5"]
    assert tree.nodes["Y"]["leaves"] == 0 and tree.nodes["Y1"]["leaves"] == 1
    for node in tree.nodes:  # a node's visits are the sum over its children plus those ending there
        children = list(tree.successors(node))
        if children:
            assert (
                tree.nodes[node]["visits"]
                == sum(tree.nodes[c]["visits"] for c in children) + tree.nodes[node]["leaves"]
            )


def test_derived_prefixes_share_identical_beginnings(derived_chain_steps: pd.DataFrame) -> None:
    tree = prefix_tree(derived_chain_steps)
    root = tree.graph["root"]
    assert tree.graph["node_source"] == "derived"
    # Distinct prefixes: s1, s1/s2, s1/s2/s3, s1/s2/t3, s1/u2, v1, v1/s2 -> 7 step nodes + root.
    assert len(tree) == 8
    by_trajs = {tuple(d["trajs"]): n for n, d in tree.nodes(data=True)}
    s1 = by_trajs[("a", "b", "c", "e")]
    s1_s2 = by_trajs[("a", "b", "e")]
    assert tree.nodes[s1]["action"] == "s1" and list(tree.predecessors(s1)) == [root]
    assert list(tree.predecessors(s1_s2)) == [s1]
    # e stops at the shared node s1/s2 while a and b go on: a leaf count on an inner node.
    assert tree.nodes[s1_s2]["leaves"] == 1 and tree.out_degree(s1_s2) == 2
    # "s2" after "v1" is a different node from "s2" after "s1".
    s2_nodes = [n for n, a in tree.nodes(data="action") if a == "s2"]
    assert len(s2_nodes) == 2
    assert tree.nodes[root]["value"] == pytest.approx(derived_chain_steps.groupby("traj_id")["outcome"].first().mean())
    assert sum(tree.nodes[n]["leaves"] for n in tree) == 5


def test_derived_ids_are_stable_across_rebuilds_and_row_order(derived_chain_steps: pd.DataFrame) -> None:
    shuffled = derived_chain_steps.sample(frac=1.0, random_state=1)
    assert set(prefix_tree(derived_chain_steps).nodes) == set(prefix_tree(shuffled).nodes)


def test_values_array_is_aggregated_per_node_in_input_row_order(explicit_tree_steps: pd.DataFrame) -> None:
    # A GRPO mean-normalised advantage (R - mean R) on every row; the row order of the frame is shuffled.
    advantages = explicit_tree_steps["outcome"].to_numpy() - 0.4
    tree = prefix_tree(explicit_tree_steps, quantity="advantage", values=advantages)
    assert tree.graph["quantity"] == "advantage"
    x, y = tree.nodes["X"], tree.nodes["Y"]
    assert x["q_count"] == 2 and x["q_mean"] == pytest.approx(0.1)  # = V(X) - V(root)
    assert y["q_count"] == 3 and y["q_mean"] == pytest.approx(-1 / 15)
    assert (y["q_min"], y["q_max"]) == pytest.approx((-0.4, 0.6))
    root = tree.nodes[tree.graph["root"]]
    assert root["q_count"] == 0 and math.isnan(root["q_mean"])


def test_column_quantity_skips_missing_values(explicit_tree_steps: pd.DataFrame) -> None:
    steps = explicit_tree_steps.copy()
    steps["label"] = np.where(steps["traj_id"] == "t4", 1.0, 0.0)
    steps.loc[steps["traj_id"] == "t5", "label"] = np.nan
    tree = prefix_tree(steps, quantity="label")
    assert tree.nodes["Y2"]["q_count"] == 1 and tree.nodes["Y2"]["q_mean"] == 1.0
    assert tree.nodes["Y2b"]["q_count"] == 0
    assert tree.nodes["Y"]["q_mean"] == pytest.approx(0.5)  # t3 -> 0, t4 -> 1, t5 missing


def test_boolean_valid_column_counts_as_zero_one(derived_chain_steps: pd.DataFrame) -> None:
    steps = derived_chain_steps.copy()
    steps["valid"] = pd.Series([True, False, None] * 5, dtype=object)[: len(steps)].to_numpy()
    tree = prefix_tree(steps, quantity="valid")
    counted = sum(d["q_count"] for _, d in tree.nodes(data=True))
    assert counted == int(steps["valid"].notna().sum())


def test_node_of_rows_maps_every_input_row(explicit_tree_steps: pd.DataFrame) -> None:
    tree = prefix_tree(explicit_tree_steps)
    mapping = node_of_rows(tree)
    assert list(mapping) == list(explicit_tree_steps["node_id"])


def test_rejects_several_groups(explicit_tree_steps: pd.DataFrame) -> None:
    other = explicit_tree_steps.assign(group_id="other")
    with pytest.raises(ValueError, match="one group"):
        prefix_tree(pd.concat([explicit_tree_steps, other]))


def test_missing_column_and_bad_values_length(explicit_tree_steps: pd.DataFrame) -> None:
    with pytest.raises(MissingInput, match="action"):
        prefix_tree(explicit_tree_steps.drop(columns=["action"]))
    with pytest.raises(ValueError, match="one entry per step row"):
        prefix_tree(explicit_tree_steps, values=np.zeros(3))
    with pytest.raises(MissingInput, match="nope"):
        prefix_tree(explicit_tree_steps, quantity="nope")


def test_conflicting_and_cyclic_explicit_ids_are_reported() -> None:
    two_parents = build_steps(
        {
            "a": {
                "outcome": 1,
                "steps": [{"action": "x", "node_id": "n1"}, {"action": "y", "node_id": "n2", "parent_id": "n1"}],
            },
            "b": {
                "outcome": 0,
                "steps": [{"action": "z", "node_id": "n3"}, {"action": "y", "node_id": "n2", "parent_id": "n3"}],
            },
        }
    )
    with pytest.raises(ValueError, match="two parents"):
        prefix_tree(two_parents)
    cycle = build_steps(
        {
            "a": {"outcome": 1, "steps": [{"action": "x", "node_id": "n1", "parent_id": "n2"}]},
            "b": {"outcome": 1, "steps": [{"action": "y", "node_id": "n2", "parent_id": "n1"}]},
        }
    )
    with pytest.raises(ValueError, match="cycle"):
        prefix_tree(cycle)


def test_orphan_parent_hangs_under_root_and_root_id_avoids_clashes() -> None:
    steps = build_steps(
        {
            "a": {"outcome": 1, "steps": [{"action": "x", "node_id": "root"}]},
            "b": {"outcome": 0, "steps": [{"action": "y", "node_id": "n2", "parent_id": "lost"}]},
        }
    )
    tree = prefix_tree(steps)
    root = tree.graph["root"]
    assert root != "root" and "root" in tree
    assert set(tree.successors(root)) == {"root", "n2"}
    assert tree.graph["orphan_parents"] == ["lost"]
    assert nx.is_arborescence(tree)
