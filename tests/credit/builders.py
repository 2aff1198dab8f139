"""Hand-built canonical step frames for the credit tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.schema import STEP_COLUMN_NAMES


def trajectory(traj_id: str, outcome: float, actions: list[str], group: str = "g", **per_step: list[Any]) -> list[dict]:
    """Rows of one trajectory; each keyword is a per-step list (state, reward, node_id, valid, prm, ...)."""
    rows = []
    for t, action in enumerate(actions):
        row: dict[str, Any] = {
            "traj_id": traj_id,
            "group_id": group,
            "step_idx": t,
            "action": action,
            "outcome": outcome,
        }
        for name, values in per_step.items():
            row[name] = values[t]
        rows.append(row)
    return rows


def frame(*trajectories: list[dict], run: str = "run", iteration: int = 0) -> pd.DataFrame:
    """Concatenate trajectories into a canonical frame with every schema column present."""
    rows = [row for traj in trajectories for row in traj]
    df = pd.DataFrame(rows)
    if "run_id" not in df.columns:
        df.insert(0, "run_id", run)
    if "iteration" not in df.columns:
        df.insert(1, "iteration", iteration)
    for column in STEP_COLUMN_NAMES:
        if column not in df.columns:
            df[column] = None
    return df


def steps_of(df: pd.DataFrame, values: np.ndarray, traj_id: str) -> np.ndarray:
    """Values of one trajectory's rows in step order."""
    mask = (df["traj_id"] == traj_id).to_numpy()
    order = np.argsort(df.loc[mask, "step_idx"].to_numpy())
    return np.asarray(values)[mask][order]


def outcome_group(outcomes: list[float], steps: list[int] | None = None, group: str = "g") -> pd.DataFrame:
    """One group with the given outcomes (one step each unless ``steps`` gives the lengths)."""
    lengths = steps or [1] * len(outcomes)
    return frame(
        *[
            trajectory(f"t{i}", r, [f"a{i}_{k}" for k in range(n)], group=group)
            for i, (r, n) in enumerate(zip(outcomes, lengths, strict=True))
        ]
    )
