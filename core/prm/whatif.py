"""What-if edits: rewrite steps of one trajectory, rescore it, and see how PRM scores and PRM-based credit move.

The edited trajectory goes through :func:`core.prm.cache.score_with_cache` next to the original, so
only steps whose content changed (the edited step and, for causal PRMs, every later one) reach the
model. Results land in the content-addressed ``prm_cache`` only; the run's ``prm_step_scores`` and
its ``steps.prm`` column are left as they were.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.credit import compute
from core.errors import CreditscopeError
from core.prm.cache import score_with_cache
from core.prm.rescore import Scope, load_trajectories
from core.prm.scorer import Scorer
from core.prm.types import ScorerSpec, Trajectory, TrajectoryScores

PRM_SCHEMES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("prm", {}),
    ("pav", {"source": "prm"}),
    ("gae", {"value_source": "prm"}),
)
"""Credit schemes that read the ``prm`` column, with the parameters that make them do so."""

COMPARISON_COLUMNS: tuple[str, ...] = ("step_idx", "edited", "old_prm", "new_prm", "change")
SHIFT_COLUMNS: tuple[str, ...] = ("scheme", "step_idx", "before", "after", "change")


@dataclass
class WhatIfResult:
    """One what-if rescoring.

    Attributes:
        traj_id: The trajectory.
        step_idx: Stored ``step_idx`` of each step, in order.
        original: The trajectory as logged.
        edited: The trajectory with the edits applied.
        old: Scores of the original under the chosen scorer.
        new: Scores of the edited version.
        n_scored: Steps whose content was new and went through the model.
        n_from_cache: Steps answered by the score cache.
        notes: Caveats for the user (e.g. truncated steps).
    """

    traj_id: str
    step_idx: list[int]
    original: Trajectory
    edited: Trajectory
    old: TrajectoryScores
    new: TrajectoryScores
    n_scored: int = 0
    n_from_cache: int = 0
    notes: list[str] = field(default_factory=list)

    def comparison(self) -> pd.DataFrame:
        """Old vs new score per step (see :func:`score_comparison`)."""
        return score_comparison(self.step_idx, self.original, self.edited, self.old.scores, self.new.scores)


def edited_trajectory(original: Trajectory, step_idx: Sequence[int], edits: Mapping[int, str]) -> Trajectory:
    """Apply text edits, keyed by stored ``step_idx``, to a trajectory.

    Args:
        original: The logged trajectory.
        step_idx: Stored ``step_idx`` of each of its steps, in order (sources need not number from 0).
        edits: New text per ``step_idx``; steps not mentioned keep their text.

    Returns:
        A new :class:`Trajectory` with the same prompt.

    Raises:
        ValueError: An edit names a step the trajectory does not have, or the lengths disagree.
    """
    if len(step_idx) != len(original.steps):
        raise ValueError(f"{len(step_idx)} step indices for {len(original.steps)} steps")
    unknown = sorted(set(edits) - set(step_idx))
    if unknown:
        raise ValueError(f"no step {unknown[0]} in this trajectory (steps: {list(step_idx)})")
    texts = tuple(edits.get(idx, text) for idx, text in zip(step_idx, original.steps, strict=True))
    return Trajectory(prompt=original.prompt, steps=texts)


def score_comparison(
    step_idx: Sequence[int],
    original: Trajectory,
    edited: Trajectory,
    old_scores: Sequence[float],
    new_scores: Sequence[float],
) -> pd.DataFrame:
    """Old vs new PRM score per step, marking the steps whose text changed.

    Returns:
        Columns :data:`COMPARISON_COLUMNS`, one row per step (NaN scores where a step was truncated).
    """
    old = np.asarray(old_scores, dtype=np.float64)
    new = np.asarray(new_scores, dtype=np.float64)
    return pd.DataFrame(
        {
            "step_idx": list(step_idx),
            "edited": [a != b for a, b in zip(original.steps, edited.steps, strict=True)],
            "old_prm": old,
            "new_prm": new,
            "change": new - old,
        },
        columns=list(COMPARISON_COLUMNS),
    )


def with_trajectory_prm(
    group_steps: pd.DataFrame, traj_id: str, step_idx: Sequence[int], scores: Sequence[float]
) -> pd.DataFrame:
    """A copy of ``group_steps`` where one trajectory's ``prm`` column holds ``scores``.

    Args:
        group_steps: Canonical step rows of the trajectory's group (any order).
        traj_id: The trajectory to overwrite.
        step_idx: Its stored step indices, aligned with ``scores``.
        scores: New PRM score per step.

    Returns:
        The modified copy; other trajectories keep the ``prm`` the store shows.
    """
    by_step = dict(zip(step_idx, scores, strict=True))
    frame = group_steps.copy()
    mine = (frame["traj_id"] == traj_id).to_numpy()
    frame["prm"] = frame["prm"].astype("float64")
    frame.loc[mine, "prm"] = frame.loc[mine, "step_idx"].map(by_step).astype("float64").to_numpy()
    return frame


def scheme_label(name: str, params: Mapping[str, Any]) -> str:
    """``pav(source=prm)``-style label of a scheme with explicit parameters."""
    return f"{name}({', '.join(f'{k}={v}' for k, v in params.items())})" if params else name


def advantage_shift(
    group_steps: pd.DataFrame,
    traj_id: str,
    step_idx: Sequence[int],
    old_scores: Sequence[float],
    new_scores: Sequence[float],
    schemes: Sequence[tuple[str, Mapping[str, Any]]] = PRM_SCHEMES,
) -> tuple[pd.DataFrame, list[str]]:
    """How the credit of one trajectory's steps moves when its PRM scores change, within its group.

    Each scheme runs twice on the group's steps: with the trajectory's ``prm`` set to the old scores,
    then to the new ones. Group-relative parts (baselines, whitening) are recomputed too, so a change
    can also come from the edited trajectory's effect on its siblings' statistics.

    Args:
        group_steps: Canonical step rows of the group.
        traj_id: The edited trajectory.
        step_idx: Its stored step indices.
        old_scores: PRM scores before the edit.
        new_scores: PRM scores after it.
        schemes: ``(name, params)`` pairs; by default every scheme that reads ``prm``.

    Returns:
        ``(shift, notes)``: columns :data:`SHIFT_COLUMNS` for the trajectory's steps, and one note per
        scheme that could not run on this group (e.g. a missing input).
    """
    before_frame = with_trajectory_prm(group_steps, traj_id, step_idx, old_scores)
    after_frame = with_trajectory_prm(group_steps, traj_id, step_idx, new_scores)
    mine = (group_steps["traj_id"] == traj_id).to_numpy()
    order = np.argsort(group_steps.loc[mine, "step_idx"].to_numpy(), kind="stable")
    parts, notes = [], []
    for name, params in schemes:
        label = scheme_label(name, params)
        try:
            before = compute(before_frame, name, **dict(params))[mine][order]
            after = compute(after_frame, name, **dict(params))[mine][order]
        except CreditscopeError as error:
            notes.append(f"{label}: {error}")
            continue
        parts.append(
            pd.DataFrame(
                {
                    "scheme": label,
                    "step_idx": group_steps.loc[mine, "step_idx"].to_numpy()[order],
                    "before": before,
                    "after": after,
                    "change": after - before,
                }
            )
        )
    shift = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(SHIFT_COLUMNS))
    return shift, notes


def what_if(
    store: Any,
    *,
    run_id: str,
    traj_id: str,
    edits: Mapping[int, str],
    spec: ScorerSpec,
    get_scorer: Callable[[], Scorer],
    prefix_only: bool = True,
    batch_tokens: int | None = None,
) -> WhatIfResult:
    """Score a trajectory as logged and as edited with one scorer, reusing every cached step score.

    The original is built exactly as :func:`core.prm.rescore.rescore` builds it, so a trajectory
    already rescored with this scorer costs no model call for its unedited prefix.

    Args:
        store: An open, writable ``core.store.Store`` (new scores are added to its content cache).
        run_id: The run.
        traj_id: The trajectory.
        edits: New text per stored ``step_idx``.
        spec: The scorer's identity.
        get_scorer: Returns the loaded scorer; called only when some step is not cached.
        prefix_only: Whether scores depend only on the prefix (causal models).
        batch_tokens: Padded-token budget per forward pass; None = the scorer's default for its device.

    Returns:
        A :class:`WhatIfResult`.

    Raises:
        ValueError: The trajectory does not exist, or an edit names an unknown step.
    """
    steps, traj_ids, trajectories = load_trajectories(store, run_id, Scope("trajectory", traj_id))
    if not traj_ids:
        raise ValueError(f"no trajectory {traj_id!r} in run {run_id!r}")
    step_idx = [int(i) for i in steps["step_idx"]]
    original = trajectories[0]
    edited = edited_trajectory(original, step_idx, edits)
    outcome = score_with_cache(
        store, spec, [original, edited], get_scorer=get_scorer, prefix_only=prefix_only, batch_tokens=batch_tokens
    )
    old, new = outcome.results
    result = WhatIfResult(traj_id, step_idx, original, edited, old, new, outcome.n_scored, outcome.n_from_cache)
    if any(math.isnan(s) for s in new.scores):
        result.notes.append("some steps lie past the model's max length and have no score")
    return result
