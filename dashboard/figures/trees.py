"""Plotly figures of rollout trees and state graphs (pure functions; no streamlit).

Nodes are markers coloured by a per-node quantity on a diverging scale centred on a midpoint
(0 for advantages, 0.5 for values in [0, 1]) and sized by visits. Every marker carries its node id
in ``customdata``, so ``st.plotly_chart(..., on_select="rerun")`` hands the clicked ids back.
Hover text is built here and escaped, because plotly renders hover text as a subset of HTML.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import networkx as nx
import numpy as np
import plotly.graph_objects as go

from core.trees import layered_layout, tree_layout
from dashboard.figures.text import hover_text

Position = tuple[float, float]

NO_VALUE_COLOUR = "#b0b0b0"
NODE_OUTLINE = "#808080"
"""Mid grey: visible around a node on the light and on the dark theme (no colour here is tied to one theme)."""
EDGE_COLOUR = "#9a9a9a"
LOOP_EDGE_COLOUR = "#e08a2c"
MIN_MARKER, MAX_MARKER = 8.0, 30.0


def escape_hover(text: object, max_chars: int = 300, max_lines: int = 8) -> str:
    """Hover markup for tree figures: :func:`dashboard.figures.text.hover_text`, eight lines at most."""
    return hover_text(text, max_chars, max_lines)


def tree_figure(
    graph: nx.DiGraph,
    *,
    title: str,
    colour_label: str,
    colorscale: str = "RdBu",
    midpoint: float | None = None,
    colour_by: str | None = None,
    colour_range: tuple[float, float] | None = None,
    scheme: str | None = None,
    positions: dict[str, Position] | None = None,
    max_hover_chars: int = 300,
) -> go.Figure:
    """Draw a rollout tree top-down.

    Args:
        graph: A tree from :func:`core.trees.prefix_tree` (possibly collapsed and/or capped).
        title: Figure title.
        colour_label: What the colour shows (colourbar title), e.g. ``"advantage"``.
        colorscale: A diverging plotly colour scale.
        midpoint: Value at the centre of the scale; defaults to 0 for a quantity, 0.5 for ``value``.
        colour_by: Node attribute to colour by; defaults to ``"q_mean"`` when the tree carries a
            quantity, else ``"value"`` (the Monte-Carlo value).
        colour_range: Fixed (min, max) of the scale; default symmetric around ``midpoint`` over the data.
        scheme: Which scheme and parameters produced the colours, shown in the caption.
        positions: Precomputed positions; default :func:`core.trees.tree_layout`.
        max_hover_chars: Longest step text shown in a hover box.

    Returns:
        A figure with one edge trace and up to three node traces (coloured, no value, hidden-node
        placeholders) that together hold exactly one marker per graph node.
    """
    positions = positions or tree_layout(graph)
    edges = _edge_trace([(positions[u], positions[v]) for u, v in graph.edges], "edges", EDGE_COLOUR, "solid")
    figure = _node_figure(
        graph,
        positions,
        [edges],
        title=title,
        colour_label=colour_label,
        colorscale=colorscale,
        midpoint=midpoint,
        colour_by=colour_by,
        colour_range=colour_range,
        scheme=scheme,
        hover=lambda node, data: _tree_hover(graph, node, data, max_hover_chars),
    )
    return figure


def state_graph_figure(
    graph: nx.DiGraph,
    *,
    title: str,
    colour_label: str,
    colorscale: str = "RdBu",
    midpoint: float | None = None,
    colour_by: str | None = None,
    colour_range: tuple[float, float] | None = None,
    scheme: str | None = None,
    positions: dict[str, Position] | None = None,
    max_hover_chars: int = 300,
    max_arrows: int = 150,
) -> go.Figure:
    """Draw a state graph in layers by breadth-first depth from its start states.

    Edges going down a layer are grey; edges that go back up or stay in a layer (loops, revisits)
    are orange and dashed; self-loops are small circles. Up to ``max_arrows`` edges also get
    arrowheads whose width grows with the transition count.

    Args:
        graph: A graph from :func:`core.trees.state_graph` (possibly capped).
        title: Figure title.
        colour_label: What the colour shows (colourbar title).
        colorscale: A diverging plotly colour scale.
        midpoint: Centre of the scale; defaults to 0 for a quantity, 0.5 for ``value``.
        colour_by: Node attribute to colour by (default ``"q_mean"`` with a quantity, else ``"value"``).
        colour_range: Fixed (min, max) of the scale; default symmetric around ``midpoint``.
        scheme: Which scheme and parameters produced the colours, shown in the caption.
        positions: Precomputed positions; default :func:`core.trees.layered_layout`.
        max_hover_chars: Longest state text shown in a hover box.
        max_arrows: Draw arrowheads only up to this many edges (each is a plotly annotation).

    Returns:
        A figure with edge traces and node traces holding exactly one marker per graph node.
    """
    positions = positions or layered_layout(graph)
    forward, backward, loops = [], [], []
    for u, v in graph.edges:
        if u == v:
            loops.append(positions[u])
        elif positions[v][1] < positions[u][1]:
            forward.append((positions[u], positions[v]))
        else:
            backward.append((positions[u], positions[v]))
    traces = [
        _edge_trace(forward, "transitions", EDGE_COLOUR, "solid"),
        _edge_trace(backward, "back / same-layer transitions (loops)", LOOP_EDGE_COLOUR, "dash"),
        _self_loop_trace(loops),
    ]
    figure = _node_figure(
        graph,
        positions,
        [t for t in traces if t is not None],
        title=title,
        colour_label=colour_label,
        colorscale=colorscale,
        midpoint=midpoint,
        colour_by=colour_by,
        colour_range=colour_range,
        scheme=scheme,
        hover=lambda node, data: _state_hover(graph, node, data, max_hover_chars),
    )
    if graph.number_of_edges() <= max_arrows:
        _add_arrowheads(figure, graph, positions)
    return figure


def _edge_trace(segments: list[tuple[Position, Position]], name: str, colour: str, dash: str) -> go.Scatter | None:
    """Return one line trace drawing all ``segments`` (None-separated), or None when there are none."""
    if not segments:
        return None
    xs: list[float | None] = []
    ys: list[float | None] = []
    for (x0, y0), (x1, y1) in segments:
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return go.Scatter(
        x=xs, y=ys, mode="lines", name=name, line={"color": colour, "width": 1.2, "dash": dash}, hoverinfo="skip"
    )


def _self_loop_trace(anchors: list[Position]) -> go.Scatter | None:
    """Return small circles above the nodes at ``anchors`` (a state that leads back to itself)."""
    if not anchors:
        return None
    angles = np.linspace(0, 2 * math.pi, 13)
    xs: list[float | None] = []
    ys: list[float | None] = []
    for x, y in anchors:
        xs += [*(x + 0.12 * np.cos(angles)), None]
        ys += [*(y + 0.14 + 0.12 * np.sin(angles)), None]
    return go.Scatter(
        x=xs, y=ys, mode="lines", name="self-loops", line={"color": LOOP_EDGE_COLOUR, "width": 1.2}, hoverinfo="skip"
    )


def _node_figure(
    graph: nx.DiGraph,
    positions: dict[str, Position],
    edge_traces: list[go.Scatter],
    *,
    title: str,
    colour_label: str,
    colorscale: str,
    midpoint: float | None,
    colour_by: str | None,
    colour_range: tuple[float, float] | None,
    scheme: str | None,
    hover: Callable[[str, dict], str],
) -> go.Figure:
    """Add the node traces, colour scale, caption and axes shared by both figure kinds."""
    colour_by = colour_by or ("q_mean" if graph.graph.get("quantity") else "value")
    midpoint = midpoint if midpoint is not None else (0.5 if colour_by == "value" else 0.0)
    max_visits = max((d.get("visits", 0) for _, d in graph.nodes(data=True)), default=1) or 1

    groups: dict[str, list[str]] = {"coloured": [], "no value": [], "placeholder": []}
    for node, data in graph.nodes(data=True):
        colour = data.get(colour_by, math.nan)
        if data.get("kind") == "placeholder":
            groups["placeholder"].append(node)
        elif colour is None or not math.isfinite(colour):
            groups["no value"].append(node)
        else:
            groups["coloured"].append(node)
    colours = [float(graph.nodes[n][colour_by]) for n in groups["coloured"]]
    low, high = colour_range or _symmetric_range(colours, midpoint)

    def marker_sizes(nodes: list[str]) -> list[float]:
        return [
            MIN_MARKER + (MAX_MARKER - MIN_MARKER) * math.sqrt(graph.nodes[n].get("visits", 0) / max_visits)
            for n in nodes
        ]

    def node_trace(nodes: list[str], name: str, marker: dict) -> go.Scatter:
        return go.Scatter(
            x=[positions[n][0] for n in nodes],
            y=[positions[n][1] for n in nodes],
            mode="markers",
            name=name,
            customdata=list(nodes),
            hovertext=[hover(n, graph.nodes[n]) for n in nodes],
            hoverinfo="text",
            marker={"size": marker_sizes(nodes), "line": {"color": NODE_OUTLINE, "width": 0.8}, **marker},
        )

    figure = go.Figure(edge_traces)
    if groups["coloured"]:
        colourbar = {"title": {"text": escape_hover(colour_label, 60)}}
        marker = {"color": colours, "colorscale": colorscale, "cmin": low, "cmax": high, "colorbar": colourbar}
        figure.add_trace(node_trace(groups["coloured"], f"nodes (colour: {escape_hover(colour_label, 60)})", marker))
    if groups["no value"]:
        figure.add_trace(node_trace(groups["no value"], "no value", {"color": NO_VALUE_COLOUR}))
    if groups["placeholder"]:
        hidden = {"color": "rgba(0,0,0,0)", "symbol": "diamond", "line": {"color": NODE_OUTLINE, "width": 1.5}}
        figure.add_trace(node_trace(groups["placeholder"], "hidden nodes (click to open)", hidden))

    figure.update_layout(
        title={"text": escape_hover(title, 200)},
        showlegend=True,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0.0},
        hovermode="closest",
        clickmode="event+select",
        xaxis={"visible": False},
        yaxis={"visible": False},
        margin={"l": 10, "r": 10, "t": 70, "b": 70},
        # About 60 px per depth level, capped so a 40-step tree stays on one screen or two.
        height=min(1400, max(360, 60 * (2 + len({round(p[1], 6) for p in positions.values()})))),
    )
    figure.add_annotation(
        text=_caption(graph, colour_label, colour_by, midpoint, (low, high), scheme),
        xref="paper",
        yref="paper",
        x=0.0,
        y=-0.02,
        xanchor="left",
        yanchor="top",
        showarrow=False,
        align="left",
        font={"size": 11},
    )
    return figure


def _symmetric_range(values: list[float], midpoint: float) -> tuple[float, float]:
    """Return a colour range centred on ``midpoint`` that covers ``values`` (never zero-width)."""
    half = max((abs(v - midpoint) for v in values), default=0.0) or 1e-9
    return midpoint - half, midpoint + half


def _caption(
    graph: nx.DiGraph,
    colour_label: str,
    colour_by: str,
    midpoint: float,
    colour_range: tuple[float, float],
    scheme: str | None,
) -> str:
    """Say what colour and size mean, which scheme made the colours, and what was hidden or merged."""
    source = "mean over the node's steps" if colour_by.startswith("q_") else f"node attribute {colour_by!r}"
    parts = [
        f"Colour: {escape_hover(colour_label, 80)} ({source}); centre {midpoint:g}, "
        f"range {colour_range[0]:.3g} to {colour_range[1]:.3g}. Size: trajectories through the node."
    ]
    details = [f"Scheme: {escape_hover(scheme, 200)}"] if scheme else []
    if graph.graph.get("hidden_nodes"):
        details.append(f"{graph.graph['hidden_nodes']} of {graph.graph['capped_from']} nodes hidden (diamonds)")
    if any(d.get("n_steps", 1) > 1 for _, d in graph.nodes(data=True)):
        details.append("single-child chains collapsed")
    if graph.graph.get("similarity") is not None:
        details.append(f"states merged at similarity ≥ {graph.graph['similarity']:g}")
    if details:
        parts.append("; ".join(details))
    return "<br>".join(parts)


def _statistics_lines(graph: nx.DiGraph, data: dict) -> list[str]:
    """Return the hover lines with visits, value, the quantity and the trajectories."""
    lines = [f"visits: {data.get('visits', 0)} trajectories · ending here: {data.get('leaves', 0)}"]
    value = data.get("value", math.nan)
    lines.append(f"value (mean outcome): {value:.3f}" if math.isfinite(value) else "value: n/a")
    if "n_success" in data:
        lines.append(f"success / fail: {data['n_success']} / {data['n_fail']}")
    quantity = graph.graph.get("quantity")
    if quantity and data.get("q_count"):
        lines.append(
            f"{escape_hover(quantity, 60)}: mean {data['q_mean']:.4g} over {data['q_count']} steps "
            f"(min {data['q_min']:.4g}, max {data['q_max']:.4g})"
        )
    trajs = data.get("trajs", [])
    shown = ", ".join(escape_hover(t, 40) for t in trajs[:6])
    lines.append(f"trajectories: {shown}" + (f" (+{len(trajs) - 6} more)" if len(trajs) > 6 else ""))
    return lines


def _tree_hover(graph: nx.DiGraph, node: str, data: dict, max_chars: int) -> str:
    """Hover text of one tree node: what it is, its step text, then its statistics."""
    kind = data.get("kind")
    if kind == "root":
        head = ["<b>prompt (root)</b>", escape_hover(data.get("state"), max_chars)]
    elif kind == "placeholder":
        head = [f"<b>{escape_hover(data['action'])}</b>", "click to open this branch"]
    else:
        step = data.get("step_idx")
        last = data.get("last_step_idx", step)
        steps = f"step {step}" if last == step else f"steps {step}-{last} ({data['n_steps']} collapsed)"
        head = [f"<b>{steps}</b> · node {escape_hover(node, 40)}", escape_hover(data.get("action"), max_chars)]
    return "<br>".join(head + _statistics_lines(graph, data))


def _state_hover(graph: nx.DiGraph, node: str, data: dict, max_chars: int) -> str:
    """Hover text of one state node: the state, its statistics, and its busiest outgoing transitions."""
    if data.get("kind") == "placeholder":
        return "<br>".join([f"<b>{escape_hover(data['action'])}</b>", "click to open", *_statistics_lines(graph, data)])
    variants = f" ({data['n_variants']} variants merged)" if data.get("n_variants", 1) > 1 else ""
    lines = [f"<b>state</b> {escape_hover(node, 40)}{variants}", escape_hover(data.get("state"), max_chars)]
    lines += _statistics_lines(graph, data)
    outgoing = sorted(graph.out_edges(node, data=True), key=lambda e: -e[2].get("count", 0))
    for _, target, edge in outgoing[:5]:
        actions = ", ".join(f"{escape_hover(a, 40)} ×{c}" for a, c in list(edge.get("actions", {}).items())[:3])
        lines.append(f"→ {escape_hover(target, 40)} ×{edge.get('count', 0)}: {actions}")
    if len(outgoing) > 5:
        lines.append(f"→ … {len(outgoing) - 5} more transitions")
    return "<br>".join(lines)


def _add_arrowheads(figure: go.Figure, graph: nx.DiGraph, positions: dict[str, Position]) -> None:
    """Add one arrow annotation per non-loop edge, wider for more frequent transitions."""
    max_count = max((c for _, _, c in graph.edges(data="count", default=1)), default=1) or 1
    arrows = []
    for u, v, count in graph.edges(data="count", default=1):
        if u == v:
            continue
        (x0, y0), (x1, y1) = positions[u], positions[v]
        arrows.append(
            go.layout.Annotation(
                x=x1,
                y=y1,
                ax=x0,
                ay=y0,
                xref="x",
                yref="y",
                axref="x",
                ayref="y",
                text="",
                showarrow=True,
                arrowhead=2,
                arrowsize=1,
                arrowwidth=1 + 2.5 * count / max_count,
                arrowcolor=LOOP_EDGE_COLOUR if y1 >= y0 else EDGE_COLOUR,
                standoff=MAX_MARKER / 2,
            )
        )
    # One layout update: add_annotation per edge re-validates the whole layout each time (~10 ms an edge).
    figure.update_layout(annotations=[*figure.layout.annotations, *arrows])
