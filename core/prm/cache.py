"""Cache-aware scoring: look every step up by content hash first and run the model only on what is missing.

Used by :func:`core.prm.rescore.rescore` for whole runs and directly by the dashboard for what-if
edits (an edited trajectory is just a trajectory whose later steps hash differently).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.prm.scorer import Scorer
from core.prm.types import ProgressCallback, ScorerSpec, Trajectory, TrajectoryScores, step_content_hashes
from core.store import prm_cache


class CursorStore(Protocol):
    """The part of ``core.store.Store`` the cache needs: context managers yielding DuckDB cursors."""

    def reader(self) -> Any:
        """Context manager yielding a read cursor."""
        ...

    def writer(self) -> Any:
        """Context manager yielding a cursor inside a write transaction."""
        ...


@dataclass
class CachedScores:
    """Scores of a list of trajectories and where they came from.

    Attributes:
        results: One entry per input trajectory, in order.
        hashes: Content hash of every step, per trajectory.
        n_from_cache: Steps answered by the cache.
        n_scored: Steps whose content was new (their trajectories went through the model).
        n_trajectories_scored: Trajectories sent to the model (those with at least one new step).
        scorer: The scorer that ran, or None when the cache answered everything (no model was loaded).
    """

    results: list[TrajectoryScores]
    hashes: list[list[str]]
    n_from_cache: int
    n_scored: int
    scorer: Scorer | None
    n_trajectories_scored: int = 0


def score_with_cache(
    store: CursorStore,
    spec: ScorerSpec,
    trajectories: Sequence[Trajectory],
    *,
    get_scorer: Callable[[], Scorer],
    prefix_only: bool = True,
    batch_tokens: int | None = None,
    progress: ProgressCallback | None = None,
) -> CachedScores:
    """Score trajectories, reusing cached step scores and caching the new ones.

    A trajectory with at least one uncached step is run through the model whole (one pass scores
    all its steps anyway); only the uncached steps are added to the cache.

    Args:
        store: Gives read and write cursors.
        spec: The scorer's identity (its ``scorer_id`` keys the cache).
        trajectories: What to score.
        get_scorer: Loads (or returns an already loaded) scorer; called only if something is missing.
        prefix_only: Whether step scores depend only on their prefix (see :func:`step_content_hashes`).
        batch_tokens: Padded-token budget per forward pass; None = the scorer's default for its device.
        progress: ``progress(done, total)`` over the trajectories sent to the model.

    Returns:
        The scores and cache statistics.
    """
    import pandas as pd

    scorer_id = spec.scorer_id
    hashes = [step_content_hashes(t, prefix_only=prefix_only) for t in trajectories]
    with store.reader() as cur:
        cached = prm_cache.lookup_cached(cur, scorer_id, [h for hs in hashes for h in hs])
    known = {
        row.content_hash: (math.nan if pd.isna(row.score) else float(row.score), bool(row.truncated))
        for row in cached.itertuples(index=False)
    }
    results: list[TrajectoryScores] = []
    missing: list[int] = []
    for index, (traj, traj_hashes) in enumerate(zip(trajectories, hashes, strict=True)):
        hits = [known.get(h) for h in traj_hashes]
        if all(hit is not None for hit in hits):
            results.append(TrajectoryScores([h[0] for h in hits], [h[1] for h in hits], 0))
        else:
            results.append(TrajectoryScores([math.nan] * len(traj.steps), [False] * len(traj.steps), 0))
            missing.append(index)
    n_scored = sum(1 for i in missing for h in hashes[i] if h not in known)
    n_from_cache = sum(len(h) for h in hashes) - n_scored
    scorer = None
    if missing:
        scorer = get_scorer()
        fresh = scorer.score([trajectories[i] for i in missing], batch_tokens=batch_tokens, progress=progress)
        new_rows = []
        for index, scores in zip(missing, fresh, strict=True):
            results[index] = scores
            for k, content_hash in enumerate(hashes[index]):
                if content_hash not in known:
                    new_rows.append((content_hash, scores.scores[k], scores.truncated[k]))
        frame = pd.DataFrame(new_rows, columns=list(prm_cache.CACHE_COLUMNS)).astype(
            {"content_hash": "string", "score": "float64", "truncated": "bool"}
        )
        with store.writer() as cur:
            prm_cache.register_scorer(cur, scorer_id, spec.to_json())
            prm_cache.insert_cached(cur, scorer_id, frame)
    return CachedScores(results, hashes, n_from_cache, n_scored, scorer, len(missing))
