"""Helpers shared by the prefix-tree and state-graph builders.

Both builders take the canonical step rows of one group, walk them trajectory by trajectory and
aggregate per node: which trajectories pass through, their mean outcome, and the mean of any
per-step quantity (an advantage array, or a column such as ``prm`` or ``label``). Keeping that
aggregation here means the credit engine and the tree views read the same numbers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

from core.errors import MissingInput

GROUP_COLUMNS: tuple[str, ...] = ("run_id", "iteration", "group_id")
"""Columns that identify a group; the builders check that the rows they get share one value of each."""

REQUIRED_COLUMNS: tuple[str, ...] = ("traj_id", "step_idx", "action", "outcome")
"""Columns every tree or graph builder needs."""


def check_one_group(steps: pd.DataFrame, builder: str, extra_columns: Iterable[str] = ()) -> None:
    """Raise when ``steps`` is empty, lacks a needed column, or spans several groups.

    Args:
        steps: Canonical step rows.
        builder: Name of the calling function, used in messages.
        extra_columns: Columns the caller needs beyond :data:`REQUIRED_COLUMNS`.

    Raises:
        MissingInput: A required column is absent.
        ValueError: No rows, or rows of more than one (run_id, iteration, group_id).
    """
    missing = [c for c in (*REQUIRED_COLUMNS, *extra_columns) if c not in steps.columns]
    if missing:
        raise MissingInput(f"{builder} needs the step columns {missing}; the frame has {list(steps.columns)}")
    if steps.empty:
        raise ValueError(f"{builder} got no step rows; pass the rows of one group")
    present = [c for c in GROUP_COLUMNS if c in steps.columns]
    if present:
        groups = steps[present].drop_duplicates()
        if len(groups) > 1:
            first = groups.head(3).to_dict("records")
            raise ValueError(
                f"{builder} builds one group at a time; got {len(groups)} groups, e.g. {first}. "
                "Filter the steps to one (run_id, iteration, group_id) first."
            )


def group_key(steps: pd.DataFrame) -> dict[str, object]:
    """Return the group's identifying values (those of :data:`GROUP_COLUMNS` the frame has)."""
    first = steps.iloc[0]
    return {c: first[c] for c in GROUP_COLUMNS if c in steps.columns}


def resolve_quantity(
    steps: pd.DataFrame, quantity: str | None, values: np.ndarray | None
) -> tuple[str | None, np.ndarray | None]:
    """Turn the builders' ``quantity``/``values`` arguments into a float array aligned with the rows.

    Args:
        steps: The group's step rows (positional order is what ``values`` aligns with).
        quantity: A column name, or with ``values`` the display name of that array.
        values: Per-row numbers (e.g. advantages from the credit engine), or None.

    Returns:
        ``(name, array)``; ``(None, None)`` when no quantity was asked for. Missing entries are NaN.

    Raises:
        ValueError: ``values`` does not have one entry per row.
        MissingInput: ``quantity`` names a column the frame lacks.
    """
    if values is not None:
        array = np.asarray(values, dtype=float)
        if array.shape != (len(steps),):
            raise ValueError(f"values has shape {array.shape}; expected ({len(steps)},), one entry per step row")
        return quantity or "values", array
    if quantity is None:
        return None, None
    if quantity not in steps.columns:
        raise MissingInput(f"no step column {quantity!r} to aggregate; available: {list(steps.columns)}")
    column = steps[quantity]
    # Object columns (e.g. ``valid`` with nulls) hold Python bools and None; map them to 1/0/NaN.
    column = column.astype(object).where(column.notna(), np.nan)
    return quantity, pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


def short_hash(text: str) -> str:
    """Return a stable 12-hex-digit id for ``text`` (used for derived node ids, stable across reruns)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()


def text_or_empty(value: object) -> str:
    """Return ``value`` as text, with null/NaN as the empty string."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def ordered_rows(steps: pd.DataFrame) -> pd.DataFrame:
    """Return the rows sorted by (traj_id, step_idx), indexed by their position in ``steps``.

    The positional index lets builders record which input rows fall in each node, so that
    per-node results can be mapped back onto an advantage array aligned with the input.
    """
    positioned = steps.reset_index(drop=True)
    return positioned.sort_values(["traj_id", "step_idx"], kind="stable")


def positional_columns(steps: pd.DataFrame, names: Iterable[str]) -> dict[str, list[object]]:
    """Return the named columns as plain lists indexed by row position (None for absent columns).

    Builders read one row per node; list indexing is ~100x cheaper than ``DataFrame.iloc``.
    """
    return {name: steps[name].tolist() if name in steps.columns else [None] * len(steps) for name in names}


@dataclass
class NodeAccumulator:
    """What a builder collects for one node while walking the rows."""

    first_row: int
    trajs: set[str] = field(default_factory=set)
    rows: list[int] = field(default_factory=list)
    leaves: int = 0


def node_statistics(acc: NodeAccumulator, outcomes: dict[str, float], quantity: np.ndarray | None) -> dict[str, object]:
    """Aggregate one node: visits, mean outcome (Monte-Carlo value) and the quantity's mean/count/range.

    Args:
        acc: The node's trajectories and rows.
        outcomes: Outcome of each trajectory of the group.
        quantity: Per-row quantity aligned with the input rows, or None.

    Returns:
        Node attributes ``visits``, ``leaves``, ``value``, ``trajs``, ``rows``, ``q_mean``,
        ``q_count``, ``q_min``, ``q_max`` (the ``q_*`` are NaN / 0 without a quantity).
    """
    trajs = sorted(acc.trajs)
    value = sum(outcomes[t] for t in trajs) / len(trajs) if trajs else math.nan
    stats: dict[str, object] = {
        "visits": len(trajs),
        "leaves": acc.leaves,
        "value": value,
        "trajs": trajs,
        "rows": sorted(acc.rows),
    }
    stats.update(quantity_statistics(acc.rows, quantity))
    return stats


def quantity_statistics(rows: list[int], quantity: np.ndarray | None) -> dict[str, float | int]:
    """Return ``q_mean``, ``q_count``, ``q_min``, ``q_max`` of ``quantity`` over ``rows``, ignoring NaN."""
    if quantity is None or not rows:
        return {"q_mean": math.nan, "q_count": 0, "q_min": math.nan, "q_max": math.nan}
    picked = quantity[rows]
    picked = picked[~np.isnan(picked)]
    if picked.size == 0:
        return {"q_mean": math.nan, "q_count": 0, "q_min": math.nan, "q_max": math.nan}
    return {
        "q_mean": float(picked.mean()),
        "q_count": int(picked.size),
        "q_min": float(picked.min()),
        "q_max": float(picked.max()),
    }


def trajectory_outcomes(ordered: pd.DataFrame) -> dict[str, float]:
    """Return each trajectory's outcome (its first row's; the column repeats it on every row)."""
    firsts = ordered.drop_duplicates("traj_id", keep="first")
    return {str(t): float(o) for t, o in zip(firsts["traj_id"], firsts["outcome"], strict=True)}


def start_nodes(graph: nx.DiGraph) -> list[str]:
    """Return where a walk over ``graph`` starts: the tree's root, the graph's start states, or its sources."""
    if "root" in graph.graph:
        return [graph.graph["root"]]
    starts = [s for s in graph.graph.get("starts", []) if s in graph]
    starts = starts or [n for n in graph.nodes if graph.in_degree(n) == 0]
    if not starts and len(graph):  # every node lies on a cycle: start from the busiest one
        starts = [max(graph.nodes, key=lambda n: graph.nodes[n]["visits"])]
    return starts
