"""Scoring credit against ground-truth step labels, and comparing schemes with each other.

- ROC-AUC of a scheme's per-step credit against ``label`` (1 good, 0 bad).
- First-error F1 following ProcessBench: per trajectory the predicted first bad step is the first
  labelled step whose credit falls below a threshold; F1 is the harmonic mean of the accuracy on
  trajectories that contain an error and on those that do not.
- Spearman correlation and sign agreement between two schemes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

from core.credit.engine import compute_with_info, get_scheme
from core.credit.prepared import PreparedSteps, combine_codes, dense_codes, prepare
from core.credit.registry import SCHEMES
from core.errors import CreditscopeError


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of ``scores`` for separating good (label >= 0.5) from bad steps; ties count one half.

    Rows with a missing label or a non-finite score are ignored. Computed as the Mann-Whitney U
    statistic on average ranks.

    Args:
        scores: One credit value per step.
        labels: One label per step (NaN = unlabelled).

    Returns:
        The AUC, or NaN when only one class is present.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    keep = ~np.isnan(labels) & np.isfinite(scores)
    good = labels[keep] >= 0.5
    n_good, n_bad = int(good.sum()), int((~good).sum())
    if n_good == 0 or n_bad == 0:
        return float("nan")
    ranks = rankdata(scores[keep])
    return float((ranks[good].sum() - n_good * (n_good + 1) / 2) / (n_good * n_bad))


@dataclass(frozen=True)
class FirstErrorScore:
    """ProcessBench-style first-error detection result.

    Attributes:
        f1: Harmonic mean of ``acc_erroneous`` and ``acc_correct`` (NaN when either is undefined).
        acc_erroneous: Share of trajectories with an error whose first error was found exactly.
        acc_correct: Share of error-free trajectories predicted error-free.
        n_erroneous: Number of labelled trajectories containing a bad step.
        n_correct: Number of labelled trajectories without one.
    """

    f1: float
    acc_erroneous: float
    acc_correct: float
    n_erroneous: int
    n_correct: int


class FirstErrors:
    """The labelled trajectories of one step frame, set up once to score many schemes' first-error F1.

    Rows with a label are grouped by (run_id, traj_id); each trajectory's first step labelled bad (inf:
    none) is found once, so scoring a scheme is a few vectorised passes (:meth:`score`) instead of a
    grouping of string keys per scheme.
    """

    def __init__(self, steps: pd.DataFrame) -> None:
        label = pd.to_numeric(steps["label"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        # Rows without a label, or without a key (which a grouping would drop), take no part.
        self.keep = ~np.isnan(label) & steps["run_id"].notna().to_numpy() & steps["traj_id"].notna().to_numpy()
        codes, _ = combine_codes(dense_codes(steps["run_id"]), dense_codes(steps["traj_id"]))
        codes = codes[self.keep]
        self.order = np.argsort(codes, kind="stable")
        codes = codes[self.order]
        self.starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.zeros(0, np.int64)
        self.step = steps["step_idx"].to_numpy(dtype=np.float64)[self.keep][self.order]
        bad = label[self.keep][self.order] < 0.5
        # inf marks "no bad step"; the minimum over the trajectory is the first one.
        self.true_bad = self._first(np.where(bad, self.step, np.inf))
        self.has_error = np.isfinite(self.true_bad)

    def _first(self, values: np.ndarray) -> np.ndarray:
        return np.minimum.reduceat(values, self.starts) if len(self.starts) else np.zeros(0)

    def score(self, scores: np.ndarray, threshold: float = 0.0) -> FirstErrorScore:
        """First-error F1 of ``scores`` (one per row of the frame) at ``threshold``; see :func:`first_error_f1`."""
        score = np.asarray(scores, dtype=np.float64)[self.keep][self.order]
        hit = self.true_bad == self._first(np.where(score < threshold, self.step, np.inf))
        has_error = self.has_error
        n_err, n_ok = int(has_error.sum()), int((~has_error).sum())
        acc_err = float(hit[has_error].mean()) if n_err else float("nan")
        acc_ok = float(hit[~has_error].mean()) if n_ok else float("nan")
        # NaN compares false, so without the explicit test a label set with one kind of trajectory would
        # score 0 ("always wrong") instead of undefined.
        if math.isnan(acc_err) or math.isnan(acc_ok):
            f1 = float("nan")
        else:
            f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if (acc_err + acc_ok) > 0 else 0.0
        return FirstErrorScore(
            f1=float(f1), acc_erroneous=acc_err, acc_correct=acc_ok, n_erroneous=n_err, n_correct=n_ok
        )


def first_error_f1(steps: pd.DataFrame, scores: np.ndarray, threshold: float = 0.0) -> FirstErrorScore:
    """First-error F1 of ``scores`` against the ``label`` column (only labelled steps are considered).

    Args:
        steps: Step frame with run_id, traj_id, step_idx and label.
        scores: Credit per row of ``steps``.
        threshold: A step is predicted bad when its score is below this.

    Returns:
        The score; trajectories without any labelled step are ignored. F1 is NaN when the labels hold
        no erroneous or no error-free trajectory (one of the two accuracies is then undefined). To score
        many schemes on one frame, build :class:`FirstErrors` once and call its ``score``.
    """
    return FirstErrors(steps).score(scores, threshold)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two schemes' credit over the same rows (NaN if one is constant)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def sign_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows where two schemes' credit has the same sign (-, 0 or +)."""
    return float(np.mean(np.sign(a) == np.sign(b)))


def agreement_table(results: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Spearman correlation and sign agreement for every pair of schemes.

    Args:
        results: Scheme name -> credit over the same rows.

    Returns:
        One row per unordered pair: ``scheme_a, scheme_b, spearman, sign_agreement``.
    """
    names = list(results)
    rows = [
        {
            "scheme_a": a,
            "scheme_b": b,
            "spearman": spearman(results[a], results[b]),
            "sign_agreement": sign_agreement(results[a], results[b]),
        }
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    return pd.DataFrame(rows, columns=["scheme_a", "scheme_b", "spearman", "sign_agreement"])


def rank_schemes(
    steps: pd.DataFrame | PreparedSteps,
    schemes: Iterable[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Score several schemes on one frame against its step labels, best AUC first.

    Schemes whose inputs are missing are kept with NaN scores and the reason in ``note``.

    Args:
        steps: Canonical step frame with a ``label`` column (or prepared steps).
        schemes: Scheme names; all registered schemes when None.
        params: Optional per-scheme parameter overrides, e.g. ``{"gigpo": {"gamma": 0.9}}``.

    Returns:
        Columns ``scheme, title, confidence, auc, first_error_f1, acc_erroneous, acc_correct,
        threshold, seconds, note``.
    """
    prep = prepare(steps)
    frame = prep.frame
    labels = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    first_errors = FirstErrors(frame)
    rows = []
    for name in schemes or SCHEMES:
        spec = get_scheme(name)
        started = time.perf_counter()
        row: dict[str, Any] = {
            "scheme": name,
            "title": spec.title,
            "confidence": spec.confidence,
            "threshold": spec.threshold_for((params or {}).get(name)),
        }
        try:
            credit, info = compute_with_info(prep, name, **dict((params or {}).get(name, {})))
        except CreditscopeError as error:
            row.update(auc=np.nan, first_error_f1=np.nan, acc_erroneous=np.nan, acc_correct=np.nan, note=str(error))
        else:
            first_error = first_errors.score(credit, row["threshold"])
            row.update(
                auc=roc_auc(credit, labels),
                first_error_f1=first_error.f1,
                acc_erroneous=first_error.acc_erroneous,
                acc_correct=first_error.acc_correct,
                note="; ".join(info.notes),
            )
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
    columns = [
        "scheme",
        "title",
        "confidence",
        "auc",
        "first_error_f1",
        "acc_erroneous",
        "acc_correct",
        "threshold",
        "seconds",
        "note",
    ]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("auc", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
