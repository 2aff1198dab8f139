"""Vectorised segment operations shared by the credit schemes.

Every scheme works on rows sorted by (group, trajectory, step), so groups and trajectories are
contiguous runs of rows identified by dense integer codes. These helpers compute per-segment
statistics with ``np.bincount`` and walk trajectories backwards level by level (one vectorised
pass per step position, never one Python iteration per row).
"""

from __future__ import annotations

import numpy as np

EPS_STD = 1e-6
"""verl's epsilon, added to the standard deviation (not the variance)."""

EPS_WHITEN = 1e-8
"""``masked_whiten``'s epsilon, used for both the mean's denominator and the variance."""


def segment_sum(values: np.ndarray, codes: np.ndarray, n_segments: int) -> np.ndarray:
    """Sum ``values`` per segment code.

    Args:
        values: One float per row.
        codes: Dense segment code per row, in ``[0, n_segments)``.
        n_segments: Number of segments.

    Returns:
        Array of length ``n_segments`` with each segment's sum (0 for empty segments).
    """
    return np.bincount(codes, weights=values, minlength=n_segments)


def segment_count(codes: np.ndarray, n_segments: int) -> np.ndarray:
    """Number of rows per segment code, as float64 (ready for division)."""
    return np.bincount(codes, minlength=n_segments).astype(np.float64)


def segment_mean_std(
    values: np.ndarray, codes: np.ndarray, n_segments: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, unbiased standard deviation (ddof=1) and size of each segment.

    The variance is computed in two passes (centre, then square) so that large offsets do not
    cancel catastrophically. Segments with fewer than two rows get std NaN; callers decide what
    a singleton means for their scheme (the conventions differ, see the spec's section 0).

    Args:
        values: One float per row.
        codes: Dense segment code per row.
        n_segments: Number of segments.

    Returns:
        ``(mean, std, count)`` arrays of length ``n_segments``.
    """
    count = segment_count(codes, n_segments)
    safe = np.maximum(count, 1.0)
    mean = segment_sum(values, codes, n_segments) / safe
    centred = values - mean[codes]
    sq = segment_sum(centred * centred, codes, n_segments)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(sq / (count - 1.0))
    std[count < 2] = np.nan
    return mean, std, count


def group_normalise(
    values: np.ndarray,
    codes: np.ndarray,
    n_segments: int,
    *,
    use_std: bool,
    singleton: str,
    eps: float = EPS_STD,
) -> np.ndarray:
    """Centre (and optionally scale) each value by its segment's statistics, verl style.

    ``(x - mean) / (std + 1e-6)`` with ``use_std``, else ``x - mean``.

    Args:
        values: One score per member.
        codes: Segment code per member.
        n_segments: Number of segments.
        use_std: Divide by ``std + 1e-6``.
        singleton: What a one-member segment yields: ``"raw"`` (mean 0, std 1, as verl's
            episode-level functions do, so the advantage is the raw score) or ``"zero"``
            (mean = own value, as GiGPO's step-level function does).
        eps: Added to the std before dividing.

    Returns:
        The normalised values, aligned with ``values``.
    """
    mean, std, count = segment_mean_std(values, codes, n_segments)
    alone = count < 2
    if singleton == "raw":
        mean[alone] = 0.0
        std[alone] = 1.0
    else:
        # mean = own value makes the numerator 0 whatever the std is.
        std[alone] = 1.0
    out = values - mean[codes]
    if singleton != "raw":
        out[alone[codes]] = 0.0
    if use_std:
        out = out / (std[codes] + eps)
    return out


def leave_one_out(values: np.ndarray, codes: np.ndarray, n_segments: int) -> np.ndarray:
    """RLOO advantage: each value minus the mean of the other members of its segment.

    Written as ``x·n/(n-1) - mean·n/(n-1)`` like verl; a singleton keeps its raw value.
    """
    count = segment_count(codes, n_segments)
    mean = segment_sum(values, codes, n_segments) / np.maximum(count, 1.0)
    n = count[codes]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = values * n / (n - 1.0) - mean[codes] * n / (n - 1.0)
    return np.where(n > 1, out, values)


def whiten(values: np.ndarray, codes: np.ndarray, n_segments: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Apply verl's ``masked_whiten`` separately within each segment (a training batch).

    ``mean = Σwx/(Σw+1e-8)``, unbiased variance ``Σw(x-mean)²/(Σw+1e-8) · Σw/(Σw-1)``,
    ``out = (x-mean)/sqrt(var+1e-8)``. Weights stand for token counts: a step of 3 tokens counts
    as three identical tokens, which reproduces token-level whitening from step-level rows.
    A segment whose total weight is at most 1 cannot be whitened (verl raises); it is centred only.

    Args:
        values: One value per row.
        codes: Batch code per row.
        n_segments: Number of batches.
        weights: Optional non-negative weight per row (token counts); 1 per row when None.

    Returns:
        Whitened values.
    """
    w = np.ones_like(values) if weights is None else weights
    total = segment_sum(w, codes, n_segments)
    mean = segment_sum(w * values, codes, n_segments) / (total + EPS_WHITEN)
    centred = values - mean[codes]
    var = segment_sum(w * centred * centred, codes, n_segments) / (total + EPS_WHITEN)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = var * total / (total - 1.0)
    scale = np.where(total > 1.0, 1.0 / np.sqrt(np.where(total > 1.0, var, 0.0) + EPS_WHITEN), 1.0)
    return centred * scale[codes]


def reverse_levels(traj_start: np.ndarray, traj_len: np.ndarray, n_rows: int) -> list[np.ndarray]:
    """Row indices grouped by distance from their trajectory's last step.

    ``levels[k]`` holds every row that is the k-th last of its trajectory. Walking the levels in
    order lets backward recursions (returns, GAE) run one vectorised update per level.

    Args:
        traj_start: First row of each trajectory (rows sorted by trajectory then step).
        traj_len: Number of rows of each trajectory.
        n_rows: Total number of rows.

    Returns:
        List of index arrays, level 0 (last steps) first.
    """
    traj_of_row = np.repeat(np.arange(len(traj_start)), traj_len)
    from_end = (traj_start + traj_len - 1)[traj_of_row] - np.arange(n_rows)
    order = np.argsort(from_end, kind="stable")
    bounds = np.searchsorted(from_end[order], np.arange(int(from_end.max(initial=-1)) + 2))
    return [order[bounds[k] : bounds[k + 1]] for k in range(len(bounds) - 1)]


def discounted_reverse_sum(values: np.ndarray, levels: list[np.ndarray], factor: float) -> np.ndarray:
    """``out_t = values_t + factor · out_{t+1}`` within each trajectory (0 after the last step).

    Args:
        values: One value per row, rows sorted by trajectory then step.
        levels: Output of :func:`reverse_levels` for the same rows.
        factor: Discount (γ for returns, γλ for GAE).

    Returns:
        The discounted reverse cumulative sums.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    for rows in levels[1:]:
        # rows + 1 is the next step of the same trajectory, already final at this level.
        out[rows] += factor * out[rows + 1]
    return out


def forward_fill_within(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Replace entries where ``keep`` is False by the last kept entry before them.

    The caller must mark every trajectory's first row as kept, which stops the fill from
    crossing a trajectory boundary.
    """
    source = np.where(keep, np.arange(len(values)), 0)
    np.maximum.accumulate(source, out=source)
    return values[source]
