"""PRM scorers, the score cache and ``rescore``.

Public API (torch and transformers load only when a model does):

- :class:`core.prm.types.Trajectory`, :class:`~core.prm.types.TrajectoryScores`,
  :class:`~core.prm.types.FormatSettings`, :class:`~core.prm.types.ScorerSpec`, :data:`~core.prm.types.FAMILIES`
- :class:`core.prm.scorer.Scorer` (``Scorer.load(model, family, ...)``, ``scorer.score(trajectories)``)
- :func:`core.prm.cache.score_with_cache` (what-if edits) and :func:`core.prm.rescore.rescore` (runs)
"""

from core.prm.types import FAMILIES, FormatSettings, ScorerSpec, Trajectory, TrajectoryScores

__all__ = ["FAMILIES", "FormatSettings", "ScorerSpec", "Trajectory", "TrajectoryScores"]
