"""Builders of hand-made canonical step frames for the tree tests (imported by conftest and tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.schema import STEP_COLUMN_NAMES


def build_steps(trajectories: dict[str, dict], *, group: str = "g0") -> pd.DataFrame:
    """Return canonical step rows from ``{traj_id: {"outcome": R, "steps": [dict, ...]}}``.

    Each step dict may set any canonical column (action, state, node_id, parent_id, label, ...);
    unset columns are null, and run/iteration/group are filled in.
    """
    rows = []
    for traj_id, spec in trajectories.items():
        for step_idx, step in enumerate(spec["steps"]):
            row = dict.fromkeys(STEP_COLUMN_NAMES)
            row.update(run_id="run", iteration=3, group_id=group, traj_id=traj_id, step_idx=step_idx)
            row.update(outcome=float(spec["outcome"]), valid=True)
            row.update(step)
            rows.append(row)
    return pd.DataFrame(rows, columns=list(STEP_COLUMN_NAMES))


AGENT_PATHS = {
    # GiGPO's worked example (credit-schemes.md section 2) plus E, which walks the cycle S0 -> S4 -> S0.
    "A": (["S0", "S1", "S2"], ["go north", "go east", "open door"], 1),
    "B": (["S0", "S3", "S1", "S2"], ["go west", "go back", "go east", "open door"], 1),
    "C": (["S0", "S3", "S3"], ["go west", "wait", "wait"], 0),
    "D": (["S0", "S1", "S4"], ["go north", "go south", "look"], 0),
    "E": (["S0", "S4", "S0", "S1", "S2"], ["go south", "go north", "go N", "go east", "open door"], 1),
}


def random_branching_steps(n_trajs: int, n_steps: int, seed: int = 0) -> pd.DataFrame:
    """Trajectories that copy a random earlier trajectory's prefix, then continue with fresh actions."""
    rng = np.random.default_rng(seed)
    actions: list[list[str]] = []
    trajectories = {}
    for index in range(n_trajs):
        shared = actions[rng.integers(len(actions))][: rng.integers(0, n_steps)] if actions else []
        path = shared + [f"x{index}.{k}" for k in range(len(shared), n_steps)]
        actions.append(path)
        trajectories[f"traj{index:03d}"] = {
            "outcome": float(rng.integers(0, 2)),
            "steps": [{"action": a} for a in path],
        }
    return build_steps(trajectories)
