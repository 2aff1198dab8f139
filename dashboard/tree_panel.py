"""The Group page's tabs: credit heatmap, rollout tree and state graph, with a panel for the clicked node.

Each ``render_*_tab`` function draws one tab of a :class:`GroupView`. What they decide (colours, a node's
statistics, text and trajectories, which hidden branches are open) lives in pure helpers, testable without an app.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
import streamlit as st

from core.errors import MissingInput
from core.trees import MORE_SUFFIX, SIMILARITY_METHOD, cap_nodes, collapse_chains, prefix_tree, state_graph
from dashboard import resources as res
from dashboard.drill import clicked_step, open_trajectory
from dashboard.figures.heatmap import heatmap_figure
from dashboard.figures.trees import state_graph_figure, tree_figure
from dashboard.formatting import md_escape
from dashboard.widgets import colour_limit_input

ADVANTAGE, PRM, LABEL, MC_VALUE = "scheme advantage", "prm", "label", "Monte-Carlo value"
QUANTITIES = (ADVANTAGE, PRM, LABEL, MC_VALUE)
"""What the nodes can be coloured by (the options of the colour radio)."""

HEATMAP_CHART_KEY, TREE_CHART_KEY, GRAPH_CHART_KEY = "group_heatmap", "group_tree", "group_state_graph"
DEFAULT_CAP = 300
DERIVED_NOTE = (
    "No node ids are logged for this group, so the tree is derived from identical action prefixes: "
    "trajectories share a node for as long as their actions are the same text."
)


@dataclass(frozen=True)
class GroupView:
    """The shown group as the tabs need it.

    Attributes:
        group: ``(run_id, iteration, group_id)``.
        steps: Canonical step rows of the group.
        trajectories: One row per trajectory (``traj_id``, ``outcome``, ``n_steps``, ...).
        scheme: Credit scheme picked on the page.
        params: Its parameters.
        advantages: The scheme's credit per row of ``steps``, or None when it could not be computed.
    """

    group: tuple[str, int, str]
    steps: pd.DataFrame
    trajectories: pd.DataFrame
    scheme: str
    params: dict[str, object]
    advantages: pd.Series | None

    @property
    def scheme_text(self) -> str:
        """The scheme and its parameters as one line, e.g. ``"grpo std=True eps=1e-06"``."""
        return " ".join([self.scheme, *(f"{name}={value}" for name, value in self.params.items())])


@dataclass(frozen=True)
class Colouring:
    """How nodes are coloured.

    Attributes:
        quantity, values: What the tree/graph builders aggregate per node (both None for the value).
        colour_by: The node attribute the figure colours by (``q_mean`` or ``value``).
        label, meaning, source: Colour-bar title, what a node's colour is, and what produced it.
        midpoint: Centre of the diverging scale.
        note: Why the colouring is not what was asked for, or why every node is grey.
    """

    quantity: str | None
    values: np.ndarray | None
    colour_by: str
    label: str
    meaning: str
    source: str
    midpoint: float
    note: str | None = None


def colouring(view: GroupView, choice: str) -> Colouring:
    """Decide how nodes are coloured when the user picks ``choice`` (one of :data:`QUANTITIES`).

    Args:
        view: The shown group.
        choice: The picked quantity.

    Returns:
        The colouring. The scheme's advantage is centred on 0. ``prm`` and ``label`` are step columns
        averaged per node, centred on 0.5 when they lie in [0, 1] and on 0 otherwise (labels of -1/0/1).
        The Monte-Carlo value (mean outcome through a node) is centred on 0.5 for outcomes in [0, 1] and on
        the group's mean outcome otherwise. When the advantage is unavailable the value is used and
        ``note`` says why; a column no step has also gets a ``note``.
    """
    if choice == ADVANTAGE and view.advantages is not None:
        values = view.advantages.to_numpy(dtype=float)
        meaning = "mean advantage of the node's steps"
        return Colouring(f"advantage ({view.scheme})", values, "q_mean", "advantage", meaning, view.scheme_text, 0.0)
    if choice in (PRM, LABEL):
        column = pd.to_numeric(view.steps[choice], errors="coerce")
        logged = column.dropna()
        in_unit_range = bool(len(logged)) and logged.min() >= 0.0 and logged.max() <= 1.0
        note = None if len(logged) else f"No step of this group has a {choice}, so every node is grey."
        midpoint, meaning = (0.5 if in_unit_range else 0.0), f"mean {choice} of the node's steps"
        return Colouring(choice, None, "q_mean", choice, meaning, f"the steps' {choice} column", midpoint, note)
    note = None
    if choice != MC_VALUE:
        note = f"{view.scheme} could not be computed for this group (see above); colouring by the Monte-Carlo value."
    outcomes = view.trajectories["outcome"].dropna()
    in_unit_range = bool(len(outcomes)) and outcomes.min() >= 0.0 and outcomes.max() <= 1.0
    midpoint = 0.5 if in_unit_range or not len(outcomes) else float(outcomes.mean())
    meaning = "mean outcome of the trajectories through the node"
    return Colouring(None, None, "value", "Monte-Carlo value", meaning, "the logged outcomes", midpoint, note)


def legend_text(colour: Colouring, shown: nx.DiGraph) -> str:
    """One caption line saying what colour and size mean, where the colours come from, and what is hidden."""
    parts = [
        f"Colour: {colour.label}, the {colour.meaning}; centred on {colour.midpoint:g} (blue above, red below,",
        f"grey: no value). Size: trajectories through the node. Colours from {colour.source}.",
    ]
    if shown.graph.get("hidden_nodes"):
        hidden, total = shown.graph["hidden_nodes"], shown.graph["capped_from"]
        parts.append(f"{hidden} of {total} nodes hidden by the cap: click a diamond to open its branch.")
    return " ".join(parts)


@dataclass
class Interaction:
    """A tab's memory across reruns: the opened placeholders and the selected node of one group.

    A chart's selection is sent again on every rerun and is emptied whenever its figure changes
    (streamlit identifies the chart by its content), so only a *new* clicked id counts as a click
    and an empty selection keeps the node that was selected.
    """

    group: tuple[str, int, str]
    expanded: list[str] = field(default_factory=list)
    selected: str | None = None
    last_click: str | None = None

    def click(self, clicked: str | None) -> bool:
        """Take in the chart's current selection.

        Returns:
            True when the click opened a placeholder, so the figure must be drawn again.
        """
        if clicked == self.last_click:
            return False
        self.last_click = clicked
        if clicked is None:
            return False
        self.selected = clicked.removesuffix(MORE_SUFFIX)  # a placeholder's panel is that of the node it hangs from
        if clicked.endswith(MORE_SUFFIX) and clicked not in self.expanded:
            self.expanded.append(clicked)
            return True
        return False


def clicked_node(event: Mapping | None) -> str | None:
    """Return the node id of the first selected point of a ``st.plotly_chart`` event, or None."""
    # Item access works both on streamlit's event object and on a plain dict put in session state.
    points = event.get("selection", {}).get("points", []) if isinstance(event, Mapping) else []
    for point in points:
        node = point.get("customdata")
        if isinstance(node, str):  # edge traces carry no customdata
            return node
    return None


def resolve_node(graph: nx.DiGraph, node: str | None) -> str | None:
    """Return ``node`` if ``graph`` has it, the merged node holding it after a chain collapse, else None."""
    if node is None or node in graph:
        return node
    return next((n for n, members in graph.nodes(data="members", default=[]) if node in members), None)


def node_statistics_table(graph: nx.DiGraph, node: str) -> pd.DataFrame:
    """Return the statistics of ``node`` of a :mod:`core.trees` graph as a table of text (``statistic``, ``value``)."""
    data = graph.nodes[node]
    rows: list[tuple[str, str]] = [("node", str(node)), ("kind", str(data.get("kind", "")))]
    if data.get("kind") in ("step", "state"):
        first, last = data.get("step_idx"), data.get("last_step_idx", data.get("step_idx"))
        where = f"{first}" if first == last else f"{first} to {last} ({data.get('n_steps')} steps merged)"
        rows.append(("step index" if data.get("kind") == "step" else "first seen at step", where))
    rows += [
        ("visits (trajectories)", str(data.get("visits", 0))),
        ("ending here", str(data.get("leaves", 0))),
        ("Monte-Carlo value (mean outcome)", _number(data.get("value"), ".3f")),
    ]
    if "occurrences" in data:
        rows.append(("occurrences (with revisits)", str(data["occurrences"])))
        rows.append(("success / fail", f"{data['n_success']} / {data['n_fail']}"))
    if data.get("n_variants", 1) > 1:
        rows.append(("state texts merged", str(data["n_variants"])))
    if data.get("kind") == "placeholder":
        rows.append(("hidden nodes", str(data.get("hidden_nodes", 0))))
    quantity = graph.graph.get("quantity")
    if quantity:
        count = int(data.get("q_count", 0))
        stats = " / ".join(_number(data.get(k), ".4g") for k in ("q_mean", "q_min", "q_max"))
        rows.append((f"{quantity}: mean / min / max", f"{stats} over {count} steps" if count else "no values"))
    return pd.DataFrame(rows, columns=["statistic", "value"])


def node_text(graph: nx.DiGraph, full: nx.DiGraph, node: str) -> str:
    """Return the node's text for display as plain text.

    Args:
        graph: The graph the node was clicked in.
        full: The graph before chains were collapsed, used to list each merged step on its own.
        node: The node.

    Returns:
        For a step node, its action(s) headed by step index; for a state node, the state and the
        actions taken from it; for the root, the first logged state (the prompt); for a placeholder,
        what it stands for.
    """
    data = graph.nodes[node]
    kind = data.get("kind")
    if kind == "root":
        return "Prompt / first state:\n" + (data.get("state") or "(not logged)")
    if kind == "placeholder":
        return f"{data.get('action')} hidden by the node cap (opened by clicking it)."
    if kind == "step":
        members = [m for m in data.get("members", [node]) if m in full]
        return "\n\n".join(f"[step {full.nodes[m]['step_idx']}]\n{full.nodes[m]['action']}" for m in members)
    lines = [f"State:\n{data.get('state', '')}"]
    outgoing = sorted(graph.out_edges(node, data=True), key=lambda edge: -edge[2].get("count", 0))
    if outgoing:
        lines.append("\nActions taken from here (count -> next node):")
        for _, target, edge in outgoing[:10]:
            for action, count in edge.get("actions", {}).items():
                lines.append(f"  x{count} -> {target}: {action}")
    return "\n".join(lines)


def node_trajectories(graph: nx.DiGraph, node: str, view: GroupView) -> pd.DataFrame:
    """Return the trajectories through ``node``: id, outcome, length and which of their steps the node holds.

    Args:
        graph: The graph the node belongs to (its ``rows`` index ``view.steps`` by position).
        node: The node.
        view: The shown group.

    Returns:
        Columns ``traj_id``, ``outcome``, ``n_steps``, ``steps here`` (step indices, empty for the
        root, placeholders and end nodes), sorted by trajectory id.
    """
    data = graph.nodes[node]
    held = view.steps.iloc[list(data.get("rows", []))]
    steps_here = held.groupby("traj_id")["step_idx"].agg(lambda s: ", ".join(str(int(i)) for i in sorted(s)))
    table = view.trajectories.loc[view.trajectories["traj_id"].isin(data.get("trajs", [])), ["traj_id", "outcome"]]
    table = table.assign(
        n_steps=table["traj_id"].map(view.steps.groupby("traj_id").size()).astype(int),
        **{"steps here": [steps_here.get(traj, "") for traj in table["traj_id"]]},
    )
    return table.sort_values("traj_id").reset_index(drop=True)


def render_heatmap_tab(view: GroupView) -> None:
    """Draw the per-step credit heatmap; clicking a cell opens its trajectory."""
    if view.advantages is None:
        st.info("No heatmap: the scheme could not be computed for this group (see the warning above).")
        return
    shown = ", ".join(f"{name}={value}" for name, value in view.params.items())
    limit = colour_limit_input("heat_limit")
    figure = heatmap_figure(view.steps, view.advantages, title=f"{view.scheme}({shown})", limit=limit)
    event = st.plotly_chart(figure, key=HEATMAP_CHART_KEY, on_select="rerun", selection_mode="points")
    clicked = clicked_step(event)
    if clicked is not None:
        open_trajectory(*clicked)


def render_tree_tab(view: GroupView) -> None:
    """Draw the group's rollout tree with its controls and the clicked node's panel."""
    controls = st.columns([3, 1, 1])
    choice = controls[0].radio("Colour by", QUANTITIES, horizontal=True, key="tree_colour")
    cap = controls[1].number_input("Node cap", 10, 5000, DEFAULT_CAP, 50, key="tree_cap", help=_CAP_HELP)
    collapse = controls[2].checkbox("Collapse chains", value=True, key="tree_collapse", help=_COLLAPSE_HELP)
    colour = colouring(view, choice)
    tree = prefix_tree(view.steps, quantity=colour.quantity, values=colour.values)
    if tree.graph["node_source"] == "derived":
        st.info(DERIVED_NOTE)
    _show_graph("tree", view, colour, int(cap), collapse_chains(tree) if collapse else tree, tree)


def render_state_graph_tab(view: GroupView) -> None:
    """Draw the group's state graph (GiGPO anchor states) with its controls and the clicked node's panel."""
    controls = st.columns([2, 1, 1, 1])
    choice = controls[0].radio("Colour by", QUANTITIES, horizontal=True, key="graph_colour")
    cap = controls[1].number_input("Node cap", 10, 5000, DEFAULT_CAP, 50, key="graph_cap", help=_CAP_HELP)
    merge = controls[2].checkbox("Merge similar", value=False, key="graph_merge", help=SIMILARITY_METHOD)
    threshold = controls[2].slider("Similarity ≥", 0.5, 1.0, 0.9, 0.01, key="graph_similarity", disabled=not merge)
    terminals = controls[3].checkbox("End nodes", value=True, key="graph_terminals", help=_TERMINALS_HELP)
    colour = colouring(view, choice)
    similarity = threshold if merge else None
    try:
        settings = (res.db_path(), *view.group, colour.source, colour.quantity, similarity, terminals)
        graph = _state_graph(settings, view.steps, colour.values)
    except MissingInput as exc:  # no state logged in this group: say so instead of an empty chart
        st.info(md_escape(exc))
        return
    _show_graph("graph", view, colour, int(cap), graph, graph)


_CAP_HELP = "Most nodes drawn; the least visited branches fold into diamonds that open on click."
_COLLAPSE_HELP = "Merge runs of steps that no trajectory branches off or ends at into one node."
_TERMINALS_HELP = "Add 'end: success' and 'end: fail' nodes so each trajectory's last action shows as an edge."
_KINDS = {
    "tree": ("Rollout tree", tree_figure, TREE_CHART_KEY),
    "graph": ("State graph", state_graph_figure, GRAPH_CHART_KEY),
}


@st.cache_data(show_spinner="Building the state graph…", max_entries=32)
def _state_graph(settings: tuple[object, ...], _steps: pd.DataFrame, _values: np.ndarray | None) -> nx.DiGraph:
    """Build a state graph once per setting: merging similar states compares texts pairwise (0.25 s at 626 rows).

    ``settings`` is (database, run, iteration, group, colour source, quantity, similarity, terminals). The
    database, group and colour source stand in for the unhashed rows and values they determine; the data
    caches are cleared whenever the database changes, so a cached graph never outlives its rows.
    """
    *_, quantity, similarity, terminals = settings
    return state_graph(_steps, similarity=similarity, quantity=quantity, values=_values, terminals=terminals)


def _show_graph(kind: str, view: GroupView, colour: Colouring, cap: int, graph: nx.DiGraph, full: nx.DiGraph) -> None:
    """Draw ``graph`` (a tree, maybe collapsed, or a state graph) capped, take in a click, show the node panel.

    ``kind`` is ``"tree"`` or ``"graph"``; ``full`` is the tree before collapsing (``graph`` for a state graph).
    """
    interaction = _interaction(kind, view.group)
    shown = cap_nodes(graph, cap, expand=interaction.expanded)
    name, draw, chart_key = _KINDS[kind]
    collapsed = f" ({len(full)} before collapsing chains)" if len(full) != len(graph) else ""
    title = f"{name}: {graph.graph['n_trajectories']} trajectories, {len(graph)} nodes{collapsed}"
    options = {"colour_label": colour.label, "colour_by": colour.colour_by, "scheme": colour.source}
    figure = draw(shown, title=title, midpoint=colour.midpoint, **options)
    if colour.note:
        st.info(colour.note)
    event = st.plotly_chart(figure, key=chart_key, on_select="rerun", selection_mode="points")
    st.caption(legend_text(colour, shown))
    if interaction.click(clicked_node(event)):
        st.rerun()  # draw the opened branch now rather than on the next interaction
    # Looked up before capping, so a selected node stays described when a smaller cap hides it.
    node = resolve_node(graph, interaction.selected)
    if node is None:
        st.caption("Click a node to see its text, statistics and the trajectories through it.")
    else:
        _node_panel(graph, full, node, view, chart_key)


def _interaction(kind: str, group: tuple[str, int, str]) -> Interaction:
    """Return the tab's interaction memory, fresh when the group changed."""
    key = f"group_{kind}_interaction"
    current = st.session_state.get(key)
    if not isinstance(current, Interaction) or current.group != group:
        current = st.session_state[key] = Interaction(group)
    if current.expanded and st.button("Fold opened branches", key=f"group_{kind}_fold"):
        current.expanded.clear()
    return current


def _node_panel(graph: nx.DiGraph, full: nx.DiGraph, node: str, view: GroupView, chart_key: str) -> None:
    """The clicked node: its text (plain, never markdown), statistics and trajectories, one of which can be opened."""
    text_column, stats_column = st.columns(2)
    with text_column:
        st.code(node_text(graph, full, node), language=None, wrap_lines=True)
        state = graph.nodes[node].get("state")
        if graph.nodes[node].get("kind") == "step" and state:
            with st.expander("State before this step", expanded=False):
                st.code(state, language=None, wrap_lines=True)
    stats_column.dataframe(node_statistics_table(graph, node), hide_index=True, key=f"{chart_key}_stats")
    table = node_trajectories(graph, node, view)
    st.text(f"{len(table)} trajectories through this node; select one to open it at this node's step.")
    event = st.dataframe(
        table, hide_index=True, key=f"{chart_key}_trajs", on_select="rerun", selection_mode="single-row"
    )
    rows = event["selection"]["rows"] if event is not None else []  # item access also fits a dict set in tests
    if rows and rows[0] < len(table):
        chosen = table.iloc[rows[0]]
        here = str(chosen["steps here"]).split(",")[0].strip()
        open_trajectory(chosen["traj_id"], int(here) if here.isdigit() else None)  # opened at the node's step


def _number(value: object, fmt: str) -> str:
    """Format a number, with missing or NaN values as "n/a"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, fmt)
