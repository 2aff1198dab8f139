"""One paired prompt up close: the best and worst rollout of each side, their steps aligned by index."""

from __future__ import annotations

import numpy as np
import pandas as pd


def best_and_worst(trajectories: pd.DataFrame) -> tuple[str, str]:
    """Ids of a group's best rollout (highest outcome; then fewest steps) and worst (lowest; then most steps).

    Ties left after that go to the smallest trajectory id, so the choice is stable.
    """
    if trajectories.empty:
        raise ValueError("no trajectories")
    frame = trajectories[["traj_id", "outcome", "n_steps"]]
    best = frame.sort_values(["outcome", "n_steps", "traj_id"], ascending=[False, True, True], kind="stable")
    worst = frame.sort_values(["outcome", "n_steps", "traj_id"], ascending=[True, False, True], kind="stable")
    return str(best["traj_id"].iloc[0]), str(worst["traj_id"].iloc[0])


def aligned_steps(
    steps_a: pd.DataFrame,
    traj_a: str,
    steps_b: pd.DataFrame,
    traj_b: str,
    credit_a: pd.Series | np.ndarray | None = None,
    credit_b: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """Two trajectories' steps side by side by step index, with whether their actions differ.

    Args:
        steps_a: Step rows holding ``traj_a`` (e.g. its group's); ``action`` and ``step_idx`` are used.
        traj_a: The A-side trajectory.
        steps_b: Step rows holding ``traj_b``.
        traj_b: The B-side trajectory.
        credit_a: Per-row credit aligned with ``steps_a`` (optional).
        credit_b: Per-row credit aligned with ``steps_b`` (optional).

    Returns:
        One row per step index of the longer trajectory: ``step``, ``a``, ``b`` (the actions; None past
        a trajectory's end), ``differs`` (texts differ, or only one side has the step), and
        ``credit_a``/``credit_b`` (NaN where absent).
    """
    sides = []
    for steps, traj, credit in ((steps_a, traj_a, credit_a), (steps_b, traj_b, credit_b)):
        mask = (steps["traj_id"] == traj).to_numpy()
        values = np.full(int(mask.sum()), np.nan) if credit is None else np.asarray(credit, dtype=float)[mask]
        part = pd.DataFrame({"step": steps["step_idx"].to_numpy()[mask], "action": steps["action"].to_numpy()[mask]})
        part["credit"] = values
        sides.append(part.set_index("step").sort_index())
    joined = sides[0].add_suffix("_a").join(sides[1].add_suffix("_b"), how="outer").sort_index()
    out = pd.DataFrame(
        {
            "step": joined.index.astype(int),
            "a": joined["action_a"].astype(object).where(joined["action_a"].notna(), None),
            "b": joined["action_b"].astype(object).where(joined["action_b"].notna(), None),
        }
    ).reset_index(drop=True)
    out["differs"] = [x != y for x, y in zip(out["a"], out["b"], strict=True)]
    out["credit_a"] = joined["credit_a"].to_numpy(dtype=float)
    out["credit_b"] = joined["credit_b"].to_numpy(dtype=float)
    return out
