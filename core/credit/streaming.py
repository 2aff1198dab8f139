"""Whole-run credit in bounded memory: schemes, their ranking against labels and their agreement, chunk by chunk.

A run is read a few iterations at a time (:mod:`core.store.stream`). Every scheme except those listed
by :func:`needs_whole_run` works within one training batch (run, iteration), so computing it on
chunks of whole iterations gives exactly the numbers of one computation over the whole run (a test
checks this for every registered scheme). What the ranking and the agreement need from all steps at
once is kept compactly or spilled to disk:

- ROC-AUC needs every labelled step's credit: it is written to a temporary file per scheme and read
  back one scheme at a time, so the peak is one scheme's labelled credit, not the run's rows.
- First-error F1 is per trajectory, and trajectories never cross chunks: hit counts just add up (counted
  on the chunk's prepared trajectory order, exactly as :func:`core.credit.first_error_f1` counts them).
- Spearman and sign agreement between the 2-4 chosen schemes read their spilled credit back pairwise.

The same functions as the in-memory path (:func:`core.credit.roc_auc`, ``spearman``,
``sign_agreement``) compute the final numbers, on the same values in the same order.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from core.credit.engine import compute_with_info, get_scheme
from core.credit.evaluate import sign_agreement
from core.credit.prepared import PreparedSteps, prepare
from core.credit.registry import SCHEMES
from core.errors import CreditscopeError

RANK_COLUMNS = [
    "scheme", "title", "confidence", "auc", "first_error_f1", "acc_erroneous", "acc_correct", "threshold", "seconds",
    "note",
]  # fmt: skip
"""Columns of :func:`core.credit.rank_schemes`' table."""

Progress = Callable[[int, int], None]
"""Called with (steps done, steps in all) after each chunk."""


def needs_whole_run(scheme: str, params: Mapping[str, Any] | None = None) -> str | None:
    """Why ``scheme`` with ``params`` cannot be computed chunk by chunk (None when it can).

    ``spa`` fits its progress estimator over every trajectory it is given, and ``whiten_over='all'``
    whitens over every loaded step; both would change if computed one iteration range at a time.
    """
    resolved = get_scheme(scheme).resolve(dict(params or {}))
    if scheme == "spa":
        return "spa fits its progress estimator over every trajectory at once"
    if resolved.get("whiten_over") == "all":
        return f"{scheme} with whiten_over='all' whitens over every step at once"
    return None


class _Spill:
    """Float arrays appended to a temporary file, read back whole (a scheme's credit over a run)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / f"{name}.f64"
        self.path.write_bytes(b"")

    def append(self, values: np.ndarray) -> None:
        with open(self.path, "ab") as fh:
            np.asarray(values, dtype=np.float64).tofile(fh)

    def read(self) -> np.ndarray:
        return np.fromfile(self.path, dtype=np.float64)


@dataclass
class _SchemeScore:
    """What the ranking accumulates for one scheme."""

    threshold: float
    credit: _Spill
    hits_erroneous: int = 0
    hits_correct: int = 0
    n_erroneous: int = 0
    n_correct: int = 0
    notes: dict[str, None] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class _Trajectories:
    """A chunk's labelled steps in the prepared (trajectory, step) order, to count first errors per trajectory."""

    order: np.ndarray
    """Caller row of each sorted row."""
    starts: np.ndarray
    """First sorted row of each trajectory (trajectories are contiguous when sorted)."""
    step: np.ndarray
    labelled: np.ndarray
    first_bad: np.ndarray
    """Per trajectory: the first step labelled bad (inf: none)."""
    has_label: np.ndarray
    """Per trajectory: whether any of its steps is labelled (the others are ignored, as in first_error_f1)."""

    @classmethod
    def of(cls, prep: PreparedSteps, label: np.ndarray) -> _Trajectories:
        sorted_label = label[prep.order]
        labelled = ~np.isnan(sorted_label)
        step = prep.step_idx.astype(np.float64)
        starts = prep.traj_start
        first_bad = np.minimum.reduceat(np.where(labelled & (sorted_label < 0.5), step, np.inf), starts)
        has_label = np.logical_or.reduceat(labelled, starts)
        return cls(prep.order, starts, step, labelled, first_bad, has_label)

    def hits(self, credit: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
        """(hits among erroneous, erroneous, hits among correct, correct), as :func:`first_error_f1` counts them."""
        score = credit[self.order]
        predicted = np.minimum.reduceat(np.where(self.labelled & (score < threshold), self.step, np.inf), self.starts)
        error = np.isfinite(self.first_bad) & self.has_label
        correct = ~np.isfinite(self.first_bad) & self.has_label
        hit = self.first_bad == predicted
        return int((hit & error).sum()), int(error.sum()), int((hit & correct).sum()), int(correct.sum())


def _accumulate(score: _SchemeScore, trajs: _Trajectories, labelled: np.ndarray, credit: np.ndarray) -> None:
    score.credit.append(credit[labelled])
    # Accuracies are shares of trajectories, and trajectories never cross chunks: the counts add up.
    hits_err, n_err, hits_ok, n_ok = trajs.hits(credit, score.threshold)
    score.hits_erroneous += hits_err
    score.n_erroneous += n_err
    score.hits_correct += hits_ok
    score.n_correct += n_ok


def _f1(score: _SchemeScore) -> tuple[float, float, float]:
    """(f1, acc_erroneous, acc_correct) exactly as :func:`first_error_f1` computes them over all trajectories."""
    acc_err = score.hits_erroneous / score.n_erroneous if score.n_erroneous else float("nan")
    acc_ok = score.hits_correct / score.n_correct if score.n_correct else float("nan")
    if np.isnan(acc_err) or np.isnan(acc_ok):
        return float("nan"), acc_err, acc_ok
    f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if (acc_err + acc_ok) > 0 else 0.0
    return float(f1), acc_err, acc_ok


@dataclass(frozen=True)
class RunSummary:
    """Ranking of every scheme and agreement of the chosen ones over a whole run."""

    ranking: pd.DataFrame
    """Columns of :func:`core.credit.rank_schemes`; schemes that need the whole run at once say so in ``note``."""
    agreement: pd.DataFrame
    """Columns of :func:`core.credit.agreement_table`, over every step."""
    n_steps: int
    sample_steps: pd.DataFrame
    """The step rows of the groups asked for with ``sample`` (whole groups, in canonical order)."""
    sample_credit: dict[str, np.ndarray]
    """Each slot's credit on ``sample_steps`` (the same numbers as over the whole run)."""


def summarise_run(
    chunks: Iterable[pd.DataFrame],
    slots: Mapping[str, tuple[str, Mapping[str, Any]]],
    *,
    rank: bool = True,
    rank_params: Mapping[str, Mapping[str, Any]] | None = None,
    total_steps: int = 0,
    progress: Progress | None = None,
    sample: set[tuple[int, str]] | None = None,
) -> RunSummary:
    """Rank every scheme against the labels and compare the chosen ``slots``, one chunk at a time.

    Args:
        chunks: Step frames of whole iterations (see :func:`core.store.stream.iter_chunks`), in order.
        slots: Label -> (scheme, params) of the schemes compared in the agreement table.
        rank: Also rank every registered scheme against the step labels.
        rank_params: Per-scheme parameter overrides for the ranking (as :func:`core.credit.rank_schemes`).
        total_steps: Steps in all, for ``progress``.
        progress: Called after each chunk.
        sample: (iteration, group_id) of groups whose rows and slot credit to keep (heatmaps, a scatter).
    """
    rank_params = rank_params or {}
    with tempfile.TemporaryDirectory(prefix="creditscope-stream-") as tmp:
        folder = Path(tmp)
        scores = {
            name: _SchemeScore(get_scheme(name).threshold_for(rank_params.get(name)), _Spill(folder, f"rank-{i}"))
            for i, name in enumerate(SCHEMES if rank else ())
        }
        for name, score in scores.items():
            score.error = needs_whole_run(name, rank_params.get(name))
        slot_spills = {label: _Spill(folder, f"slot-{i}") for i, label in enumerate(slots)}
        for label, (name, params) in slots.items():
            reason = needs_whole_run(name, params)
            if reason is not None:
                raise CreditscopeError(f"{label}: {reason}; compare it on one iteration instead of the whole run")
        labels = _Spill(folder, "labels")
        done = 0
        kept: list[pd.DataFrame] = []
        kept_credit: dict[str, list[np.ndarray]] = {slot: [] for slot in slots}
        for frame in chunks:
            keep = _in_sample(frame, sample)
            if keep.any():
                kept.append(frame[keep])
            prep = prepare(frame)  # sorted and encoded once for every scheme of the chunk
            label = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            labelled = ~np.isnan(label)
            labels.append(label[labelled])
            trajs = _Trajectories.of(prep, label) if rank and len(frame) else None
            for name, score in scores.items():
                if score.error is None:
                    started = time.perf_counter()
                    try:
                        credit, info = compute_with_info(prep, name, **dict(rank_params.get(name, {})))
                    except CreditscopeError as error:
                        score.error = str(error)
                    else:
                        _accumulate(score, trajs, labelled, credit)
                        score.notes.update(dict.fromkeys(info.notes))
                    score.seconds += time.perf_counter() - started
            for slot, (name, params) in slots.items():  # a scheme missing its inputs raises, as in memory
                credit = compute_with_info(prep, name, **dict(params))[0]
                slot_spills[slot].append(credit)
                if keep.any():
                    kept_credit[slot].append(credit[keep])
            done += len(frame)
            if progress is not None:
                progress(done, total_steps or done)
        ranking = _ranking(scores, labels.read()) if rank else pd.DataFrame(columns=RANK_COLUMNS)
        agreement = _agreement(slot_spills)
    sample_steps = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()
    sample_credit = {slot: np.concatenate(parts) if parts else np.zeros(0) for slot, parts in kept_credit.items()}
    return RunSummary(ranking, agreement, done, sample_steps, sample_credit)


def _in_sample(frame: pd.DataFrame, sample: set[tuple[int, str]] | None) -> np.ndarray:
    if not sample:
        return np.zeros(len(frame), dtype=bool)
    keys = pd.MultiIndex.from_arrays([frame["iteration"].astype("int64"), frame["group_id"].astype(object)])
    return np.asarray(keys.isin(list(sample)))


def _ranking(scores: dict[str, _SchemeScore], labels: np.ndarray) -> pd.DataFrame:
    rows = []
    for name, score in scores.items():
        spec = get_scheme(name)
        row: dict[str, Any] = {"scheme": name, "title": spec.title, "confidence": spec.confidence}
        row["threshold"], row["seconds"] = score.threshold, score.seconds
        if score.error is not None:
            row.update(auc=np.nan, first_error_f1=np.nan, acc_erroneous=np.nan, acc_correct=np.nan, note=score.error)
        else:
            f1, acc_err, acc_ok = _f1(score)
            auc = lean_roc_auc(score.credit.read(), labels)  # one scheme's labelled credit in memory at a time
            row.update(auc=auc, first_error_f1=f1, acc_erroneous=acc_err, acc_correct=acc_ok)
            row["note"] = "; ".join(score.notes)
        rows.append(row)
    table = pd.DataFrame(rows, columns=RANK_COLUMNS)
    return table.sort_values("auc", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def lean_roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """:func:`core.credit.roc_auc` in about half the memory, with the same result bit for bit.

    Mann-Whitney U from one sort: per group of tied scores, its good steps beat every bad step below
    and tie with the bad steps of the group. U is an integer count (doubled, so ties are whole), and
    ``roc_auc``'s rank sums are exact in float64 too, so both end in the same single division.
    """
    keep = ~np.isnan(labels) & np.isfinite(scores)
    good = labels[keep] >= 0.5
    n_good = int(good.sum())
    n_bad = int(good.size - n_good)
    if n_good == 0 or n_bad == 0:
        return float("nan")
    order = np.argsort(scores[keep], kind="stable")
    ordered = scores[keep][order]
    good = good[order]
    del order
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    del ordered
    good_per_tie = np.add.reduceat(good.astype(np.int64), starts)
    bad_per_tie = np.diff(np.r_[starts, good.size]) - good_per_tie
    bad_below = np.cumsum(bad_per_tie) - bad_per_tie
    u_doubled = int(np.sum(good_per_tie * (2 * bad_below + bad_per_tie)))
    return float(u_doubled / (2 * n_good * n_bad))


def lean_spearman(read_a: Callable[[], np.ndarray], read_b: Callable[[], np.ndarray]) -> float:
    """:func:`core.credit.spearman` of two spilled arrays, holding one raw array at a time (same result bit for bit).

    scipy's ``spearmanr`` stacks both arrays, ranks each column and correlates the ranked columns; here each
    array is ranked as soon as it is read and dropped, then the same ``np.corrcoef`` runs on the same
    stacked ranks (about 0.9 GB less at 10M steps).
    """
    ranks = []
    for read in (read_a, read_b):
        values = read()
        if np.ptp(values) == 0:
            return float("nan")  # constant: spearman's own answer
        if np.isnan(values).any():
            return float("nan")  # spearmanr propagates NaN
        ranks.append(rankdata(values))
        del values
    stacked = np.column_stack(ranks)
    del ranks
    return float(np.corrcoef(stacked, rowvar=False)[1, 0])


def _agreement(spills: dict[str, _Spill]) -> pd.DataFrame:
    names = list(spills)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            rho = lean_spearman(spills[a].read, spills[b].read)
            x, y = spills[a].read(), spills[b].read()  # two schemes' credit in memory at a time
            rows.append({"scheme_a": a, "scheme_b": b, "spearman": rho, "sign_agreement": sign_agreement(x, y)})
            del x, y
    return pd.DataFrame(rows, columns=["scheme_a", "scheme_b", "spearman", "sign_agreement"])


def stream_scheme(
    chunks: Iterable[pd.DataFrame], scheme: str, params: Mapping[str, Any]
) -> Iterable[tuple[pd.DataFrame, np.ndarray]]:
    """Each chunk with one scheme's credit on it (the export path); refuses schemes that need the whole run.

    Raises:
        CreditscopeError: The scheme cannot be computed chunk by chunk (see :func:`needs_whole_run`).
    """
    reason = needs_whole_run(scheme, params)
    if reason is not None:
        raise CreditscopeError(f"{reason}, so it cannot be computed one iteration range at a time")
    for frame in chunks:
        yield frame, compute_with_info(frame, scheme, **dict(params))[0]
