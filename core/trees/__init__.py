"""Trajectory trees and state graphs of one group, shared by the credit engine and the tree views.

- :func:`prefix_tree`: rollout tree (explicit ``node_id``/``parent_id``, or shared action prefixes).
- :func:`state_graph`: GiGPO anchor-state graph with observed transitions (may have cycles).
- :func:`collapse_chains`, :func:`cap_nodes`: display simplifications returning new graphs.
- :func:`tree_layout`, :func:`layered_layout`: node positions for drawing.

Every node carries ``visits``, ``leaves``, ``value`` (mean outcome), ``trajs``, ``rows`` and the
mean/count/min/max of an optional per-step quantity (``q_mean`` etc.).
"""

from core.trees.layout import layered_layout, tree_layout
from core.trees.prefix import ROOT_ID, node_of_rows, prefix_tree
from core.trees.simplify import MORE_SUFFIX, cap_nodes, collapse_chains
from core.trees.state_graph import SIMILARITY_METHOD, cluster_states, state_graph

__all__ = [
    "MORE_SUFFIX",
    "ROOT_ID",
    "SIMILARITY_METHOD",
    "cap_nodes",
    "cluster_states",
    "collapse_chains",
    "layered_layout",
    "node_of_rows",
    "prefix_tree",
    "state_graph",
    "tree_layout",
]
