"""How well a PRM's step scores match ground-truth step labels: ROC-AUC, first-error F1, calibration.

Pure functions over a canonical step frame (``run_id, traj_id, step_idx, label`` and a score per row);
no Streamlit, no store. The first-error metric is ProcessBench's (see :func:`core.credit.first_error_f1`):
a step is predicted bad when its score is below a threshold. Because a fixed 0.5 suits calibrated
probabilities only, the threshold is also tuned on one half of the trajectories and reported on the
other half, split by a hash of the trajectory id so the split is the same on every machine and run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.credit import FirstErrorScore, first_error_f1, roc_auc

DEFAULT_THRESHOLD = 0.5
"""ProcessBench's threshold for PRMs that output a probability of the step being correct."""

CALIBRATION_COLUMNS: tuple[str, ...] = ("bin_low", "bin_high", "count", "mean_score", "mean_label")


@dataclass(frozen=True)
class PrmEvaluation:
    """A PRM's scores judged against step labels.

    Attributes:
        n_steps: Labelled steps that carry a finite score (the ones every metric uses).
        n_trajectories: Trajectories with at least one labelled step.
        auc: ROC-AUC of score vs label (NaN when only one class is present).
        at_default: First-error detection over all trajectories at threshold 0.5.
        best_threshold: The threshold with the best first-error F1 on the tuning half.
        tuned: First-error detection on the tuning half at ``best_threshold`` (optimistic by construction).
        held_out: First-error detection on the other half at ``best_threshold`` (the honest number).
        held_out_at_default: The held-out half at 0.5, for a like-for-like comparison with ``held_out``.
        calibration: Reliability table, columns :data:`CALIBRATION_COLUMNS`, one row per score bin.
        calibration_error: Expected calibration error: count-weighted mean |mean_label - mean_score| over bins.
    """

    n_steps: int
    n_trajectories: int
    auc: float
    at_default: FirstErrorScore
    best_threshold: float
    tuned: FirstErrorScore
    held_out: FirstErrorScore
    held_out_at_default: FirstErrorScore
    calibration: pd.DataFrame
    calibration_error: float


def tuning_half(run_ids: np.ndarray, traj_ids: np.ndarray, salt: str = "") -> np.ndarray:
    """Deterministic 50/50 split of trajectories: True for the half used to tune the threshold.

    Python's ``hash`` is salted per process, so a sha256 of ``run_id``, ``traj_id`` and ``salt``
    decides instead; every step of a trajectory lands on the same side.

    Args:
        run_ids: Run id per row.
        traj_ids: Trajectory id per row.
        salt: Changes the split (for checking how much a result depends on it).

    Returns:
        Boolean array, one entry per row.
    """
    keys = pd.Series([f"{r}\x00{t}" for r, t in zip(run_ids, traj_ids, strict=True)], dtype=object)
    side = {key: hashlib.sha256(f"{salt}\x00{key}".encode()).digest()[0] % 2 == 0 for key in keys.unique()}
    return keys.map(side).to_numpy(dtype=bool)


def candidate_thresholds(scores: np.ndarray, max_candidates: int = 64) -> np.ndarray:
    """Thresholds worth trying: between consecutive distinct scores, plus "nothing bad" and "everything bad".

    Only the order of scores matters to the first-error metric, so thresholds between neighbouring
    distinct values cover every possible outcome. Large runs are thinned to quantiles so tuning stays
    a few dozen metric evaluations.

    Args:
        scores: Step scores (non-finite values are ignored).
        max_candidates: Most distinct score levels to consider.

    Returns:
        Ascending thresholds; ``[0.5]`` when there is no finite score.
    """
    levels = np.unique(scores[np.isfinite(scores)])
    if levels.size == 0:
        return np.array([DEFAULT_THRESHOLD])
    if levels.size > max_candidates:
        levels = np.unique(np.quantile(levels, np.linspace(0.0, 1.0, max_candidates)))
    midpoints = (levels[:-1] + levels[1:]) / 2
    # A step is bad when score < threshold: the lowest level flags nothing, just above the highest flags all.
    return np.concatenate([[levels[0]], midpoints, [np.nextafter(levels[-1], np.inf)]])


def best_threshold(steps: pd.DataFrame, scores: np.ndarray, max_candidates: int = 64) -> float:
    """The threshold maximising first-error F1 on ``steps``; ties go to the one closest to 0.5, then the lower.

    Args:
        steps: Step frame with ``run_id, traj_id, step_idx, label``.
        scores: Score per row of ``steps``.
        max_candidates: See :func:`candidate_thresholds`.

    Returns:
        The chosen threshold (0.5 when no candidate gives a defined F1).
    """
    best, best_key = DEFAULT_THRESHOLD, (-np.inf, -np.inf, -np.inf)
    for threshold in candidate_thresholds(np.asarray(scores, dtype=np.float64), max_candidates):
        f1 = first_error_f1(steps, scores, float(threshold)).f1
        key = (f1 if np.isfinite(f1) else -1.0, -abs(threshold - DEFAULT_THRESHOLD), -threshold)
        if key > best_key:
            best, best_key = float(threshold), key
    return best


def calibration_table(scores: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Reliability diagram data: mean label per equal-width score bin, with bin counts.

    Bins span [0, 1] when every score is a probability, else the scores' own range (e.g. the
    unbounded ``implicit`` family). Rows without a label or a finite score are left out.

    Args:
        scores: Score per step.
        labels: Label per step (NaN = unlabelled).
        n_bins: Number of bins.

    Returns:
        One row per bin, columns :data:`CALIBRATION_COLUMNS`; empty bins have count 0 and NaN means.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    keep = np.isfinite(scores) & ~np.isnan(labels)
    scores, labels = scores[keep], labels[keep]
    low, high = 0.0, 1.0
    if scores.size and (scores.min() < 0.0 or scores.max() > 1.0):
        low, high = float(scores.min()), float(scores.max())
        high = high if high > low else low + 1.0
    edges = np.linspace(low, high, n_bins + 1)
    # The top edge belongs to the last bin, so a score of exactly 1.0 is counted.
    index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(index, weights=scores, minlength=n_bins) / counts
        mean_label = np.bincount(index, weights=labels, minlength=n_bins) / counts
    return pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "count": counts.astype(np.int64),
            "mean_score": mean_score,
            "mean_label": mean_label,
        },
        columns=list(CALIBRATION_COLUMNS),
    )


def calibration_error(table: pd.DataFrame) -> float:
    """Expected calibration error of a :func:`calibration_table` (NaN when it counts nothing)."""
    filled = table[table["count"] > 0]
    if filled.empty:
        return float("nan")
    gaps = (filled["mean_label"] - filled["mean_score"]).abs()
    return float((gaps * filled["count"]).sum() / filled["count"].sum())


def evaluate_prm(
    steps: pd.DataFrame, scores: np.ndarray | None = None, *, n_bins: int = 10, salt: str = ""
) -> PrmEvaluation:
    """Judge PRM scores against the ``label`` column.

    Args:
        steps: Canonical step frame with ``run_id, traj_id, step_idx, label`` (and ``prm`` if no scores given).
        scores: Score per row; the frame's ``prm`` column when None.
        n_bins: Calibration bins.
        salt: Changes the tuning/held-out split (see :func:`tuning_half`).

    Returns:
        A :class:`PrmEvaluation`.
    """
    values = np.asarray(steps["prm"] if scores is None else scores, dtype=np.float64)
    labels = pd.to_numeric(steps["label"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    labelled = ~np.isnan(labels)
    tune = tuning_half(steps["run_id"].to_numpy(), steps["traj_id"].to_numpy(), salt)
    threshold = best_threshold(steps[tune], values[tune])
    table = calibration_table(values, labels, n_bins)
    return PrmEvaluation(
        n_steps=int((labelled & np.isfinite(values)).sum()),
        n_trajectories=int(steps.loc[labelled, ["run_id", "traj_id"]].drop_duplicates().shape[0]),
        auc=roc_auc(values, labels),
        at_default=first_error_f1(steps, values, DEFAULT_THRESHOLD),
        best_threshold=threshold,
        tuned=first_error_f1(steps[tune], values[tune], threshold),
        held_out=first_error_f1(steps[~tune], values[~tune], threshold),
        held_out_at_default=first_error_f1(steps[~tune], values[~tune], DEFAULT_THRESHOLD),
        calibration=table,
        calibration_error=calibration_error(table),
    )


@dataclass(frozen=True)
class SourceCoverage:
    """Which steps of a run one PRM source (a scorer id, or ``"logged"``) accounts for in ``steps.prm``.

    Attributes:
        source: The scorer id, or :data:`core.schema.LOGGED_PRM`.
        n_steps: Steps whose ``prm`` comes from this source (a step it could not score counts: NULL).
        n_trajectories: Trajectories with at least one such step (None where not counted: logged scores).
        n_run_steps: Steps of the run.
        n_run_trajectories: Trajectories of the run.
        other_sources: Steps per other source shown in the column (e.g. logged scores outside a partial
            rescore), ``None`` for steps with no score at all.
    """

    source: str
    n_steps: int
    n_trajectories: int | None
    n_run_steps: int
    n_run_trajectories: int
    other_sources: dict[str | None, int]

    @property
    def partial(self) -> bool:
        """Whether other sources fill part of the column."""
        return any(source is not None for source in self.other_sources)


def steps_of_source(steps: pd.DataFrame, source: str) -> tuple[pd.DataFrame, SourceCoverage]:
    """The steps whose ``prm`` comes from ``source`` (by their ``prm_source``), and how much of the run that is.

    A PRM is judged on the steps it scored only: after a partial rescore the rest of the run shows the
    logged scores, which say nothing about the new scorer.

    Args:
        steps: Step frame with ``traj_id`` and ``prm_source`` (``core.store.queries.steps``).
        source: Scorer id, or ``"logged"``.
    """
    origin = steps["prm_source"].astype(object).where(steps["prm_source"].notna(), None)
    mine = (origin == source).to_numpy()
    others = origin[~mine].value_counts(dropna=False)
    coverage = SourceCoverage(
        source=source,
        n_steps=int(mine.sum()),
        n_trajectories=int(steps.loc[mine, "traj_id"].nunique()),
        n_run_steps=len(steps),
        n_run_trajectories=int(steps["traj_id"].nunique()),
        other_sources={(None if pd.isna(k) else str(k)): int(v) for k, v in others.items()},
    )
    return steps[mine], coverage


def coverage_from_counts(counts: dict, source: str) -> SourceCoverage:
    """:class:`SourceCoverage` of ``source`` from ``core.store.prm_cache.source_counts`` (no step scan)."""
    by_source: dict[str | None, int] = {"logged": counts["logged_steps"], None: counts["no_score"]}
    if counts["active"] is not None:
        by_source[counts["active"]] = counts["scored_steps"]
    mine = by_source.pop(source, 0)
    return SourceCoverage(
        source=source,
        n_steps=mine,
        n_trajectories=counts["scored_trajectories"] if source == counts["active"] else None,
        n_run_steps=counts["run_steps"],
        n_run_trajectories=counts["run_trajectories"],
        other_sources={k: v for k, v in by_source.items() if v > 0},
    )
