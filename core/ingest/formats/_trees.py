"""Root-to-leaf paths of the rollout trees that sources store, nested or as parent links.

A trajectory in a tree source is one root-to-leaf path; shared prefixes share node ids, which is what
the tree views and tree credit schemes rely on. Two layouts occur: nested nodes with a ``children``
list (OmegaPRM, TreeRL) and flat node lists where each node names its parent (prime-rl node graphs,
rebuilt OmegaPRM prefix lists).

Private (leading underscore) so the registry does not mistake it for an adapter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import IngestError


@dataclass
class TreePath:
    """One root-to-leaf path of a nested tree: the nodes below the root, their ids and their field paths."""

    nodes: list[dict[str, Any]]
    node_ids: list[str]
    locators: list[str]


def _children(node: dict[str, Any], path: Path, record: int | str, locator: str) -> list[dict[str, Any]]:
    """A nested node's children, validated (missing or null means a leaf)."""
    children = node.get("children") or []
    if not isinstance(children, list) or not all(isinstance(child, dict) for child in children):
        raise IngestError(str(path), "expected a list of objects", record, f"{locator}.children")
    return children


def tree_paths(root: dict[str, Any], id_prefix: str, locator: str, path: Path, record: int | str) -> Iterator[TreePath]:
    """Yield every root-to-leaf path of a nested ``children`` tree, depth first, children in stored order.

    The root is excluded from each path (in every tree format read here it is the question or an
    empty prompt node, not a step). Node ids are the child-index path from the root, e.g.
    ``"<prefix>/0/2"``, so they are stable across re-reads and shared prefixes share ids.
    A root without children yields nothing.

    Args:
        root: The root node.
        id_prefix: Prefix making ids unique across the trees of one file.
        locator: Dotted path of ``root`` in the record, the start of each node's locator.
        path: Source file, for errors.
        record: Record locator, for errors.

    Raises:
        IngestError: A node's ``children`` is not a list of objects, naming that node's field.
    """
    # Explicit stack instead of recursion: search trees can be deep enough to hit Python's limit.
    stack: list[tuple[dict[str, Any], list[dict[str, Any]], list[str], list[str]]] = [(root, [], [], [])]
    while stack:
        node, nodes, ids, locators = stack.pop()
        node_locator = locators[-1] if locators else locator
        children = _children(node, path, record, node_locator)
        if not children and nodes:
            yield TreePath(nodes=nodes, node_ids=ids, locators=locators)
            continue
        parent_id = ids[-1] if ids else id_prefix
        for index in reversed(range(len(children))):
            stack.append(
                (
                    children[index],
                    [*nodes, children[index]],
                    [*ids, f"{parent_id}/{index}"],
                    [*locators, f"{node_locator}.children[{index}]"],
                )
            )


def leaf_chains(parents: Sequence[int | None], excluded: frozenset[int] = frozenset()) -> list[list[int]]:
    """Root-to-leaf index chains of a forest given as parent links, leaves in index order.

    Args:
        parents: ``parents[i]`` is the index of node i's parent, or None for a root. Links must point
            to earlier or otherwise acyclic nodes (callers validate them).
        excluded: Nodes that are not part of any path (e.g. entries standing for the tree's root):
            they are never leaves, and their own parent links do not make their parents inner nodes.

    Returns:
        One chain per leaf, from its topmost ancestor down to the leaf.
    """
    has_child = {parent for index, parent in enumerate(parents) if parent is not None and index not in excluded}
    chains: list[list[int]] = []
    for leaf in range(len(parents)):
        if leaf in excluded or leaf in has_child:
            continue
        chain = [leaf]
        while (parent := parents[chain[-1]]) is not None:
            chain.append(parent)
        chains.append(chain[::-1])
    return chains
