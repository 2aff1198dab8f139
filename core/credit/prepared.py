"""Sorting and encoding a canonical step frame once, for every scheme that runs on it.

:func:`prepare` sorts rows by (run, iteration, group, trajectory, step) and replaces the string
keys by dense integer codes. Codes come from *sorted* factorisations, so they depend only on the
data, never on the order rows arrived in: that is what makes every scheme row-order independent.
Derived structures (anchor-state codes, the rollout tree) are built lazily and cached on the
object, so comparing many schemes on one frame pays for them once.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from core.credit.ops import reverse_levels
from core.errors import MissingInput

KEY_COLUMNS: tuple[str, ...] = ("run_id", "iteration", "group_id", "traj_id", "step_idx", "outcome")
"""Columns every scheme needs."""

HOW_TO_GET: dict[str, str] = {
    "prm": (
        "rescore the steps with a PRM first (the Rescore page, or "
        "`creditscope rescore --db FILE --run RUN --model PRM --family FAMILY`)"
    ),
    "value": "ingest a log that records critic values, or use value_source='prm' after rescoring",
    "state": "ingest with an adapter that records observations (the anchor state before each action)",
    "reward": "ingest a log with per-step environment rewards",
    "logp_policy": "add per-step sums of policy log-probabilities as column 'logp_policy'",
    "logp_ref": "add per-step sums of reference-model log-probabilities as column 'logp_ref'",
    "n_tokens": "add per-step action token counts as column 'n_tokens', or use unit='step'",
    "valid": "ingest a log that records whether each action was valid",
}
"""How a user obtains each optional input; quoted in MissingInput messages."""


def dense_codes(values: pd.Series | np.ndarray, sort: bool = True) -> tuple[np.ndarray, int]:
    """Factorisation: equal values get equal codes; with ``sort`` the codes are ordered like the values.

    Without ``sort`` codes follow first appearance, which is deterministic only for rows already in
    canonical order (hashing without sorting is several times faster on long text columns).
    Nulls get their own code (-1 is never returned), so callers need no special case.
    """
    codes, uniques = pd.factorize(values, sort=sort, use_na_sentinel=False)
    return codes.astype(np.int64), len(uniques)


def unique_sorted(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (``np.sort`` beats hash-based ``np.unique`` here)."""
    ordered = np.sort(keys)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def combine_codes(*parts: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    """Dense codes of the tuple of several code arrays, ordered lexicographically."""
    combined = np.zeros(len(parts[0][0]), dtype=np.int64)
    for codes, size in parts:
        combined = combined * max(size, 1) + codes
    return dense_codes(combined)


class PreparedSteps:
    """A step frame sorted and encoded for the credit schemes.

    Arrays are in *sorted* row order; :attr:`order` maps sorted position -> caller's row position.

    Attributes:
        frame: The caller's frame (unsorted, untouched).
        order: ``frame.iloc[order]`` is the sorted frame.
        n: Number of rows.
        group: Dense group code per sorted row (group = run, iteration, group_id).
        n_groups: Number of groups.
        traj: Dense trajectory code per sorted row; trajectories are contiguous.
        n_traj: Number of trajectories.
        batch: Dense (run, iteration) code per row, the unit verl whitens over.
        n_batches: Number of batches.
        outcome: Outcome per sorted row.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = [c for c in KEY_COLUMNS if c not in frame.columns]
        if missing:
            raise MissingInput(f"credit schemes need column(s) {', '.join(missing)}; the step table must carry them")
        self.frame = frame
        self.n = len(frame)
        # Factorising the Series themselves (not .to_numpy()) lets Arrow-backed string columns encode
        # without first becoming arrays of Python objects: a third of prepare's time at 1M rows.
        run = dense_codes(frame["run_id"])
        iteration = dense_codes(frame["iteration"])
        group_id = dense_codes(frame["group_id"])
        traj_id = dense_codes(frame["traj_id"])
        batch_codes, self.n_batches = combine_codes(run, iteration)
        group_codes, self.n_groups = combine_codes(run, iteration, group_id)
        traj_codes, self.n_traj = combine_codes((group_codes, self.n_groups), traj_id)
        step = frame["step_idx"].to_numpy(dtype=np.int64)
        self.order = np.lexsort((step, traj_codes))
        self.group = group_codes[self.order]
        self.traj = traj_codes[self.order]
        self.batch = batch_codes[self.order]
        self.step_idx = step[self.order]
        self.outcome = frame["outcome"].to_numpy(dtype=np.float64)[self.order]
        if np.isnan(self.outcome).any():
            raise MissingInput("column 'outcome' has nulls; every step must carry its trajectory's final reward")
        self.traj_len = np.bincount(self.traj, minlength=self.n_traj)
        self.traj_start = np.concatenate(([0], np.cumsum(self.traj_len)[:-1])).astype(np.int64)
        self.traj_group = self.group[self.traj_start] if self.n else np.zeros(0, dtype=np.int64)
        self.traj_outcome = self.outcome[self.traj_start] if self.n else np.zeros(0)
        self.pos = np.arange(self.n) - self.traj_start[self.traj]
        self.is_first = self.pos == 0
        self.is_last = self.pos == (self.traj_len - 1)[self.traj]
        self._columns: dict[str, np.ndarray] = {}
        self._code_counts: dict[str, int] = {}
        self.cache: dict[str, Any] = {}
        """Derived structures shared between schemes (e.g. the rollout tree), keyed by name."""

    def has(self, name: str) -> bool:
        """Whether column ``name`` exists and holds at least one non-null value."""
        return name in self.frame.columns and bool(self.frame[name].notna().any())

    def require(self, name: str, scheme: str) -> None:
        """Raise :class:`MissingInput` naming ``name`` and how to get it when it is absent or all null."""
        if not self.has(name):
            how = HOW_TO_GET.get(name, f"add column '{name}' to the step table")
            raise MissingInput(f"scheme '{scheme}' needs column '{name}', which is missing or empty: {how}")

    def floats(self, name: str, fill: float = np.nan) -> np.ndarray:
        """Column ``name`` as float64 in sorted order, nulls replaced by ``fill`` (cached per fill)."""
        key = f"{name}:{fill}"
        if key not in self._columns:
            raw = pd.to_numeric(self.frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            self._columns[key] = np.where(np.isnan(raw), fill, raw)[self.order]
        return self._columns[key]

    def validity(self) -> np.ndarray:
        """1.0 where the action was valid, 0.0 where invalid; unknown (null or no column) counts as valid."""
        if "valid" not in self.frame.columns:
            return np.ones(self.n)
        return self.floats("valid", fill=1.0)

    def codes(self, name: str) -> tuple[np.ndarray, int]:
        """Dense sorted codes of a column (e.g. ``state``, ``action``) in sorted row order (cached)."""
        key = f"codes:{name}"
        if name not in self.frame.columns:
            # An absent optional column behaves like one constant value: it never separates rows.
            return np.zeros(self.n, dtype=np.int64), 1
        if key not in self._columns:
            # Factorised in canonical row order, so first-appearance codes do not depend on input order.
            codes, size = dense_codes(self.frame[name].take(self.order), sort=False)
            # Count first: a prepared frame may be shared between threads (the dashboard's sessions), and a
            # reader that finds the codes must find their count too.
            self._code_counts[name] = size
            self._columns[key] = codes
        return self._columns[key], self._code_counts[name]

    @cached_property
    def levels(self) -> list[np.ndarray]:
        """Rows grouped by distance from their trajectory's end (for backward recursions)."""
        return reverse_levels(self.traj_start, self.traj_len, self.n)

    def step_rewards(self) -> tuple[np.ndarray, str]:
        """Per-step environment rewards and where they came from.

        The ``reward`` column when it holds any value (nulls count as 0); otherwise the outcome is
        placed on each trajectory's last step (sparse terminal reward), as outcome-only logs imply.
        """
        if self.has("reward"):
            return self.floats("reward", fill=0.0), "reward column"
        return np.where(self.is_last, self.outcome, 0.0), "outcome placed on the last step (no per-step rewards)"

    def to_caller_order(self, sorted_values: np.ndarray) -> np.ndarray:
        """Reorder a result computed on sorted rows back to the caller's row order."""
        out = np.empty(self.n, dtype=np.float64)
        out[self.order] = sorted_values
        return out


def prepare(steps: pd.DataFrame | PreparedSteps) -> PreparedSteps:
    """Sort and encode ``steps`` once; pass the result to ``compute`` to share the work across schemes.

    Args:
        steps: A canonical step frame (any row order), or an already prepared one.

    Returns:
        The prepared steps.

    Raises:
        MissingInput: A key column (run_id, iteration, group_id, traj_id, step_idx, outcome) is absent.
    """
    return steps if isinstance(steps, PreparedSteps) else PreparedSteps(steps)
