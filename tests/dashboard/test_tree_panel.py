"""Tree and state-graph tabs of the Group page: AppTest runs on the sample database, and the pure helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.schema import STEP_COLUMN_NAMES
from core.trees import MORE_SUFFIX, cap_nodes, collapse_chains, prefix_tree, state_graph
from dashboard import resources as res
from dashboard import tree_panel as tp

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Start every test with empty streamlit caches (the state graph and all queries are cached)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def sample_app(sample_db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the app at the sample database; close the app's cached handle afterwards."""
    monkeypatch.setenv(res.DB_ENV, str(sample_db_path))
    yield
    # The next test opens the same file again in this process, which DuckDB refuses while it is open.
    res.get_store(str(sample_db_path)).close()


def open_group(run: str, group: str, tab: str, iteration: int = 0) -> AppTest:
    """Run the app, go to the Group page of one group, and open ``tab``."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(run=run, iteration=str(iteration), group=group)
    at.run()
    at.switch_page("app_pages/group.py").run()
    at.session_state["group_view"] = tab
    at.run()
    assert not at.exception, at.exception
    return at


def chart_ids(at: AppTest) -> dict[str, list[str]]:
    """Node ids per trace name of the page's (only) node chart, read from the figure sent to the browser."""
    charts = at.get("plotly_chart")
    assert len(charts) == 1, "the open tab should draw exactly one chart"
    spec = json.loads(charts[0].proto.spec)
    return {trace["name"]: list(trace["customdata"]) for trace in spec["data"] if trace.get("customdata")}


def click(at: AppTest, chart_key: str, node: str | list[str]) -> AppTest:
    """Select ``node`` in a chart as a click would, and rerun."""
    at.session_state[chart_key] = {"selection": {"points": [{"customdata": node}], "box": [], "lasso": []}}
    at.run()
    assert not at.exception, at.exception
    return at


def statistic(at: AppTest, name: str) -> str:
    """The value of one row of the node statistics table (a display-only table, so it has no key to find it by)."""
    table = next(d.value for d in at.dataframe if list(d.value.columns) == ["statistic", "value"])
    return table.set_index("statistic").loc[name, "value"]


def trajectory_table(at: AppTest) -> pd.DataFrame:
    """The table of trajectories through the selected node."""
    return next(d.value for d in at.dataframe if "steps here" in d.value.columns)


# --- AppTest on the sample database -------------------------------------------------------------

uses_sample_db = pytest.mark.usefixtures("sample_app")


@uses_sample_db
def test_tree_node_click_shows_text_statistics_and_trajectories() -> None:
    at = open_group("tree", "it0-p0", "Tree")
    assert not any(tp.DERIVED_NOTE in i.value for i in at.info)  # the tree run logs node ids
    node = next(n for n in chart_ids(at)["nodes (colour: advantage)"] if n != "root")
    click(at, tp.TREE_CHART_KEY, node)

    steps = res.group_steps(str(res.db_path()), "tree", 0, "it0-p0")
    in_node = steps[steps["node_id"] == node]
    expected = sorted(in_node["traj_id"].unique())
    trajs = trajectory_table(at)
    assert trajs["traj_id"].tolist() == expected
    assert statistic(at, "node") == node
    assert statistic(at, "visits (trajectories)") == str(len(expected))
    mean_outcome = steps[steps["traj_id"].isin(expected)].groupby("traj_id")["outcome"].first().mean()
    assert statistic(at, "Monte-Carlo value (mean outcome)") == f"{mean_outcome:.3f}"
    # The step text is shown verbatim in a code block (plain text, never markdown).
    assert any(in_node["action"].iloc[0] in block.value for block in at.code)


@uses_sample_db
def test_opening_a_trajectory_from_the_node_panel() -> None:
    at = open_group("tree", "it0-p0", "Tree")
    click(at, tp.TREE_CHART_KEY, "root")
    first = trajectory_table(at)["traj_id"].iloc[0]
    at.session_state[f"{tp.TREE_CHART_KEY}_trajs"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Trajectory"
    assert at.query_params["traj"] == first


@uses_sample_db
def test_heatmap_tab_draws_only_its_chart_and_a_cell_opens_its_trajectory() -> None:
    at = open_group("arithmetic", "it0-p0", "Heatmap")
    assert len(at.get("plotly_chart")) == 1  # the tree and graph tabs are not built while hidden
    click(at, tp.HEATMAP_CHART_KEY, ["it0-p0-r3", "2"])
    assert at.title[0].value == "Trajectory"
    assert at.query_params["traj"] == "it0-p0-r3" and at.query_params["step"] == "2"


@uses_sample_db
def test_clicking_a_placeholder_opens_its_branch_and_fold_closes_it() -> None:
    at = open_group("tree", "it0-p0", "Tree")
    at.checkbox(key="tree_collapse").uncheck()  # so the drawn nodes are the logged node ids
    at.number_input(key="tree_cap").set_value(10).run()
    before = chart_ids(at)
    placeholder = before["hidden nodes (click to open)"][0]
    click(at, tp.TREE_CHART_KEY, placeholder)

    after = {n for ids in chart_ids(at).values() for n in ids}
    parent = placeholder.removesuffix(MORE_SUFFIX)
    steps = res.group_steps(str(res.db_path()), "tree", 0, "it0-p0")
    children = set(steps.loc[steps["parent_id"] == parent, "node_id"]) if parent != "root" else set()
    assert placeholder not in after
    assert children <= after  # every child of the opened node is drawn now, beyond the cap
    assert statistic(at, "node") == parent  # the panel describes the node the placeholder hung from

    at.button(key="group_tree_fold").click().run()
    assert placeholder in {n for ids in chart_ids(at).values() for n in ids}


@uses_sample_db
def test_arithmetic_tree_says_it_is_derived_from_action_prefixes() -> None:
    at = open_group("arithmetic", "it0-p0", "Tree")
    assert any(tp.DERIVED_NOTE in i.value for i in at.info)
    at.radio(key="tree_colour").set_value(tp.MC_VALUE).run()
    assert not at.exception, at.exception
    assert any("Colour: Monte-Carlo value" in c.value for c in at.caption)


@uses_sample_db
def test_agent_state_graph_renders_and_describes_a_state() -> None:
    at = open_group("agent", "it0-p0", "State graph")
    states = [n for n in chart_ids(at)["nodes (colour: advantage)"] if not n.startswith("end:")]
    click(at, tp.GRAPH_CHART_KEY, states[0])
    steps = res.group_steps(str(res.db_path()), "agent", 0, "it0-p0")
    text = next(block.value for block in at.code if block.value.startswith("State:"))
    assert text.splitlines()[1] in set(steps["state"].str.split("\n").str[0])
    at.checkbox(key="graph_merge").check().run()
    assert not at.exception, at.exception


@uses_sample_db
def test_a_scheme_without_its_inputs_still_leaves_the_tree_coloured_by_value() -> None:
    at = open_group("agent", "it0-p0", "Tree")
    at.selectbox(key="group_scheme").set_value("gae").run()  # the agent run logs no critic values
    assert not at.exception, at.exception
    assert any("needs column 'value'" in w.value for w in at.warning)
    assert any("gae could not be computed" in i.value for i in at.info)
    assert "nodes (colour: Monte-Carlo value)" in chart_ids(at)
    assert at.dataframe(key="group_trajs") is not None  # the rest of the page still renders


@uses_sample_db
@pytest.mark.parametrize(
    ("run", "group", "tab"),
    [
        ("trees_vine", "trees_vine:1", "Tree"),
        ("trees_vine", "trees_vine:1", "State graph"),
        ("agent", "it0-p0", "Tree"),
    ],
)
def test_real_and_agent_groups_render(run: str, group: str, tab: str) -> None:
    at = open_group(run, group, tab)
    assert sum(len(ids) for ids in chart_ids(at).values()) <= tp.DEFAULT_CAP


# --- Pure helpers on hand-built groups ----------------------------------------------------------


def build_view(paths: dict[str, tuple[list[str], float]], **columns: list[float]) -> tp.GroupView:
    """A group in which trajectory ``t`` takes the actions ``paths[t][0]`` and has outcome ``paths[t][1]``.

    The state before each action is ``"room <action>"``; advantages are the row positions minus 2.
    """
    rows = []
    for traj, (actions, outcome) in paths.items():
        for index, action in enumerate(actions):
            row = dict.fromkeys(STEP_COLUMN_NAMES)
            row.update(run_id="r", iteration=0, group_id="g", traj_id=traj, step_idx=index, action=action)
            row.update(state=f"room {action}", outcome=outcome)
            rows.append(row)
    steps = pd.DataFrame(rows, columns=list(STEP_COLUMN_NAMES))
    for name, values in columns.items():
        steps[name] = values
    trajs = steps.groupby("traj_id", as_index=False)["outcome"].first()
    advantages = pd.Series(np.arange(len(steps), dtype=float) - 2.0, index=steps.index)
    return tp.GroupView(("r", 0, "g"), steps, trajs, "grpo", {"std": True}, advantages)


BRANCHING = {"a": (["x", "y", "z"], 1.0), "b": (["x", "y", "w"], 0.0), "c": (["q"], 3.0)}


def test_colouring_per_quantity() -> None:
    view = build_view(BRANCHING, label=[1, 1, 0, 1, 1, -1, 0], prm=[np.nan] * 7)
    advantage = tp.colouring(view, tp.ADVANTAGE)
    assert (advantage.colour_by, advantage.midpoint, advantage.source) == ("q_mean", 0.0, "grpo std=True")
    np.testing.assert_array_equal(advantage.values, view.advantages.to_numpy())
    assert tp.colouring(view, tp.LABEL).midpoint == 0.0  # labels of -1/0/1 centre on 0
    assert "No step of this group has a prm" in tp.colouring(view, tp.PRM).note
    value = tp.colouring(view, tp.MC_VALUE)
    assert (value.colour_by, value.quantity, value.note) == ("value", None, None)
    assert value.midpoint == pytest.approx(4.0 / 3.0)  # outcomes beyond [0, 1]: centred on the group mean

    unit = build_view({"a": (["x"], 1.0), "b": (["y"], 0.0)}, label=[0.0, 1.0])
    assert tp.colouring(unit, tp.LABEL).midpoint == 0.5
    assert tp.colouring(unit, tp.MC_VALUE).midpoint == 0.5
    no_scheme = tp.GroupView(unit.group, unit.steps, unit.trajectories, "pav", {}, None)
    fallback = tp.colouring(no_scheme, tp.ADVANTAGE)
    assert fallback.colour_by == "value" and "pav could not be computed" in fallback.note


def test_interaction_counts_new_clicks_only() -> None:
    state = tp.Interaction(("r", 0, "g"))
    assert not state.click("n1") and state.selected == "n1"
    assert not state.click(None) and state.selected == "n1"  # an emptied selection keeps the panel
    assert state.click("n2::more")  # opens a branch: redraw
    assert (state.expanded, state.selected) == (["n2::more"], "n2")
    state.expanded.clear()  # folded by the user while the chart still reports the same click
    assert not state.click("n2::more") and state.expanded == []


def test_clicked_node_and_resolve_node() -> None:
    assert tp.clicked_node(None) is None
    event = {"selection": {"points": [{"x": 1.0}, {"customdata": "p1"}]}}
    assert tp.clicked_node(event) == "p1"
    view = build_view(BRANCHING)
    tree = prefix_tree(view.steps)
    collapsed = collapse_chains(tree)
    middle = next(n for n, d in tree.nodes(data=True) if d["action"] == "y")
    head = next(n for n, d in tree.nodes(data=True) if d["action"] == "x")
    assert tp.resolve_node(collapsed, middle) == head  # y was merged into the chain headed by x
    assert tp.resolve_node(collapsed, "gone") is None


def test_node_statistics_and_text_of_a_collapsed_chain() -> None:
    view = build_view(BRANCHING)
    tree = prefix_tree(view.steps, quantity="advantage", values=view.advantages.to_numpy())
    collapsed = collapse_chains(tree)
    head = next(n for n, d in tree.nodes(data=True) if d["action"] == "x")
    table = tp.node_statistics_table(collapsed, head).set_index("statistic")["value"]
    assert table["step index"] == "0 to 1 (2 steps merged)"
    assert table["visits (trajectories)"] == "2"
    assert table["Monte-Carlo value (mean outcome)"] == "0.500"
    # Rows of a and b at steps 0-1 hold advantages -2, -1, 1, 2 (a's z sits at row 2).
    assert table["advantage: mean / min / max"] == "0 / -2 / 2 over 4 steps"
    assert tp.node_text(collapsed, tree, head) == "[step 0]\nx\n\n[step 1]\ny"
    trajs = tp.node_trajectories(collapsed, head, view)
    assert trajs.to_dict("list") == {
        "traj_id": ["a", "b"],
        "outcome": [1.0, 0.0],
        "n_steps": [3, 3],
        "steps here": ["0, 1", "0, 1"],
    }


def test_state_node_text_lists_actions_and_revisits() -> None:
    view = build_view({"a": (["hall", "<b>door</b>", "hall"], 1.0), "b": (["hall", "stairs"], 0.0)})
    graph = state_graph(view.steps)
    hall = next(n for n, d in graph.nodes(data=True) if d["state"] == "room hall")
    text = tp.node_text(graph, graph, hall)
    assert text.startswith("State:\nroom hall")
    # Each step's state is "room <its action>": both visits to the hall took the action "hall", once to
    # the door and once to the stairs.
    assert text.count("x1 -> ") == 2 and text.endswith(": hall")
    door = next(n for n, d in graph.nodes(data=True) if "door" in d["state"])
    assert tp.node_text(graph, graph, door).startswith("State:\nroom <b>door</b>")  # plain text, not escaped
    assert tp.node_trajectories(graph, hall, view)["steps here"].tolist() == ["0, 2", "0"]
    table = tp.node_statistics_table(graph, hall).set_index("statistic")["value"]
    assert table["occurrences (with revisits)"] == "3"
    assert table["success / fail"] == "1 / 1"


def test_legend_names_the_scheme_and_hidden_nodes() -> None:
    view = build_view(BRANCHING)
    colour = tp.colouring(view, tp.ADVANTAGE)
    full = prefix_tree(view.steps)
    assert "hidden" not in tp.legend_text(colour, cap_nodes(full, 100))
    text = tp.legend_text(colour, cap_nodes(full, 3))
    assert "Colours from grpo std=True." in text
    assert f"of {len(full)} nodes hidden" in text
