"""Figure builders: one marker per node, ids in customdata, escaped hover, colour scale and caption."""

from __future__ import annotations

import subprocess
import sys

import networkx as nx
import pandas as pd
import plotly.graph_objects as go
import pytest
from tree_frames import build_steps

from core.trees import cap_nodes, collapse_chains, prefix_tree, state_graph
from dashboard.figures.trees import escape_hover, state_graph_figure, tree_figure


def marker_traces(figure: go.Figure) -> list[go.Scatter]:
    return [t for t in figure.data if t.mode and "markers" in t.mode]


def marker_ids(figure: go.Figure) -> list[str]:
    return [node for trace in marker_traces(figure) for node in trace.customdata]


def assert_one_marker_per_node(figure: go.Figure, graph: nx.DiGraph) -> None:
    assert sum(len(t.x) for t in marker_traces(figure)) == len(graph)
    assert sorted(marker_ids(figure)) == sorted(graph.nodes)


def test_tree_figure_has_one_marker_per_node(explicit_tree_steps: pd.DataFrame) -> None:
    advantages = explicit_tree_steps["outcome"].to_numpy() - 0.4
    tree = prefix_tree(explicit_tree_steps, quantity="advantage", values=advantages)
    figure = tree_figure(tree, title="group g0", colour_label="advantage", scheme="GRPO mean_norm")
    assert_one_marker_per_node(figure, tree)
    # The root has no advantage of its own, so it is drawn grey rather than coloured.
    no_value = next(t for t in marker_traces(figure) if t.name == "no value")
    assert list(no_value.customdata) == [tree.graph["root"]]


def test_colour_scale_is_centred_on_the_midpoint(explicit_tree_steps: pd.DataFrame) -> None:
    advantages = explicit_tree_steps["outcome"].to_numpy() - 0.4
    tree = prefix_tree(explicit_tree_steps, quantity="advantage", values=advantages)
    coloured = marker_traces(tree_figure(tree, title="t", colour_label="advantage"))[0]
    assert coloured.marker.cmin == pytest.approx(-coloured.marker.cmax)
    assert coloured.marker.cmax == pytest.approx(0.6)
    assert coloured.marker.colorbar.title.text == "advantage"
    # Without a quantity the Monte-Carlo value is shown around 0.5.
    plain = prefix_tree(explicit_tree_steps)
    by_value = marker_traces(tree_figure(plain, title="t", colour_label="value"))[0]
    assert (by_value.marker.cmin + by_value.marker.cmax) / 2 == pytest.approx(0.5)
    assert len(by_value.x) == len(plain)  # every node, root included, has a value


def test_sizes_grow_with_visits(explicit_tree_steps: pd.DataFrame) -> None:
    tree = prefix_tree(explicit_tree_steps)
    trace = marker_traces(tree_figure(tree, title="t", colour_label="value"))[0]
    size_of = dict(zip(trace.customdata, trace.marker.size, strict=True))
    assert size_of[tree.graph["root"]] > size_of["Y"] > size_of["X"] > size_of["X1"]


def test_hover_text_is_escaped_and_limited() -> None:
    nasty = "<script>alert(1)</script> & <b>bold</b>"
    steps = build_steps({"a": {"outcome": 1, "steps": [{"action": nasty + "x" * 1000, "state": "<prompt>"}]}})
    tree = prefix_tree(steps)
    figure = tree_figure(tree, title="<t>", colour_label="v & w")
    hovers = [h for t in marker_traces(figure) for h in t.hovertext]
    step_hover = next(h for h in hovers if "alert" in h)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in step_hover
    assert "<script>" not in step_hover and "<b>bold" not in step_hover
    assert "x" * 400 not in step_hover and "…" in step_hover
    assert any("&lt;prompt&gt;" in h for h in hovers)
    assert figure.layout.title.text == "&lt;t&gt;"


def test_escape_hover_keeps_lines_as_breaks() -> None:
    assert escape_hover("17 * 3 = 51\n51 > 50 & done") == "17 * 3 = 51<br>51 &gt; 50 &amp; done"
    assert escape_hover(None) == ""
    assert escape_hover("\n".join(str(i) for i in range(20)), max_lines=3) == "0<br>1<br>2<br>…"


def test_caption_names_scheme_and_hidden_nodes(branching_steps: pd.DataFrame) -> None:
    shown = collapse_chains(cap_nodes(prefix_tree(branching_steps), 15))
    figure = tree_figure(shown, title="t", colour_label="value", scheme="TreeRL (code path), sqrt weighting")
    caption = figure.layout.annotations[0].text
    assert "TreeRL (code path), sqrt weighting" in caption
    assert f"{shown.graph['hidden_nodes']} of {shown.graph['capped_from']} nodes hidden" in caption
    assert "Size: trajectories through the node" in caption
    assert_one_marker_per_node(figure, shown)
    placeholders = next(t for t in marker_traces(figure) if t.name.startswith("hidden"))
    assert all(node.endswith("::more") for node in placeholders.customdata)


def test_state_graph_figure_marks_loops(agent_steps: pd.DataFrame) -> None:
    graph = state_graph(agent_steps, terminals=True, quantity="step", values=agent_steps["step_idx"].to_numpy(float))
    figure = state_graph_figure(graph, title="agent", colour_label="step index", scheme="demo")
    assert_one_marker_per_node(figure, graph)
    names = {t.name for t in figure.data}
    assert {"transitions", "back / same-layer transitions (loops)", "self-loops"} <= names
    arrows = [a for a in figure.layout.annotations if a.showarrow]
    assert len(arrows) == sum(1 for u, v in graph.edges if u != v)
    s0 = graph.graph["starts"][0]
    hover = dict(zip(marker_ids(figure), [h for t in marker_traces(figure) for h in t.hovertext], strict=True))[s0]
    assert "go north ×2" in hover and "success / fail: 3 / 2" in hover


def test_state_graph_figure_without_arrows_for_big_graphs(agent_steps: pd.DataFrame) -> None:
    graph = state_graph(agent_steps)
    figure = state_graph_figure(graph, title="agent", colour_label="value", max_arrows=0)
    assert not [a for a in figure.layout.annotations if a.showarrow]
    assert_one_marker_per_node(figure, graph)


def test_tree_modules_do_not_import_streamlit() -> None:
    code = "import sys, core.trees, dashboard.figures.trees; sys.exit('streamlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
