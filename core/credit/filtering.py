"""Step filtering by PRM score (WebSTAR / StepRM style): which steps fall below a threshold, per step and per group.

Filtering happens after credit is computed: a step's credit depends on its whole trajectory (returns,
group baselines), so dropping steps first would change the credit of the steps that are kept. Steps
without a PRM score are kept and counted separately: nothing says they are bad.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import MissingInput

GROUP_KEY = ["run_id", "iteration", "group_id"]


@dataclass(frozen=True)
class PrmFilter:
    """Which steps a PRM threshold keeps.

    Attributes:
        threshold: τ; a step with ``prm < τ`` is dropped.
        keep: One flag per row of the frame it was computed on.
        n_below: Steps dropped (scored below τ).
        n_unscored: Steps without a PRM score (kept).
    """

    threshold: float
    keep: np.ndarray
    n_below: int
    n_unscored: int

    def summary(self) -> str:
        """One line: what was kept and why."""
        total = len(self.keep)
        return (
            f"kept {int(self.keep.sum())} of {total} steps: {self.n_below} with PRM score below {self.threshold:g} "
            f"dropped, {self.n_unscored} without a score kept"
        )


def _scores(steps: pd.DataFrame) -> np.ndarray:
    if "prm" not in steps.columns or not steps["prm"].notna().any():
        raise MissingInput(
            "filtering by PRM score needs column 'prm', which is missing or empty: rescore the steps with a PRM "
            "first (the Rescore page, or `creditscope rescore --db FILE --run RUN --model PRM --family FAMILY`)"
        )
    return pd.to_numeric(steps["prm"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def prm_filter(steps: pd.DataFrame, threshold: float) -> PrmFilter:
    """Flag the steps whose PRM score is below ``threshold`` (unscored steps are kept).

    Raises:
        MissingInput: No step of the frame has a PRM score.
    """
    scores = _scores(steps)
    below = scores < threshold  # NaN compares False: unscored steps are kept
    return PrmFilter(threshold, ~below, int(below.sum()), int(np.isnan(scores).sum()))


def below_threshold_per_group(steps: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per group: steps, steps scored below ``threshold``, steps without a score.

    Returns:
        Columns ``run_id, iteration, group_id, n_steps, n_below, n_unscored`` (groups in frame order).
    """
    scores = _scores(steps)
    counts = steps[GROUP_KEY].assign(n_steps=1, n_below=scores < threshold, n_unscored=np.isnan(scores))
    return counts.groupby(GROUP_KEY, sort=False, as_index=False)[["n_steps", "n_below", "n_unscored"]].sum()
