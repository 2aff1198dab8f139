"""Hand-built canonical step frames for the tree and state-graph tests."""

from __future__ import annotations

import pandas as pd
import pytest
from tree_frames import AGENT_PATHS, build_steps, random_branching_steps


@pytest.fixture
def explicit_tree_steps() -> pd.DataFrame:
    """The TreeRL worked example (credit-schemes.md section 13) with explicit node ids, rows shuffled.

    root -> X -> {X1 = 1, X2 = 0}; root -> Y -> {Y1 = 0, Y2 -> {Y2a = 1, Y2b = 0}}.
    """
    paths = {
        "t1": ("X", "X1"),
        "t2": ("X", "X2"),
        "t3": ("Y", "Y1"),
        "t4": ("Y", "Y2", "Y2a"),
        "t5": ("Y", "Y2", "Y2b"),
    }
    outcomes = {"t1": 1, "t2": 0, "t3": 0, "t4": 1, "t5": 0}
    trajectories = {}
    for traj, path in paths.items():
        steps = []
        for depth, node in enumerate(path):
            parent = path[depth - 1] if depth else None
            steps.append({"node_id": node, "parent_id": parent, "action": f"step {node}", "state": f"before {node}"})
        trajectories[traj] = {"outcome": outcomes[traj], "steps": steps}
    frame = build_steps(trajectories)
    # Shuffled so that tests catch any confusion between input row positions and sorted order.
    return frame.sample(frac=1.0, random_state=7).reset_index(drop=True)


@pytest.fixture
def derived_chain_steps() -> pd.DataFrame:
    """Flat chains without node ids: a and b share two steps, c shares one, e is a prefix of a and b.

    d reuses the action text "s2" after a different first step, which must NOT merge with a's "s2".
    """
    actions = {
        "a": (["s1", "s2", "s3"], 1),
        "b": (["s1", "s2", "t3"], 0),
        "c": (["s1", "u2"], 1),
        "d": (["v1", "s2"], 0),
        "e": (["s1", "s2"], 1),
    }
    trajectories = {
        traj: {"outcome": outcome, "steps": [{"action": a, "state": f"{traj}:{i}"} for i, a in enumerate(acts)]}
        for traj, (acts, outcome) in actions.items()
    }
    return build_steps(trajectories)


@pytest.fixture
def agent_steps() -> pd.DataFrame:
    """An agent group whose anchor states recur across and within trajectories (self-loop and cycle)."""
    trajectories = {
        traj: {
            "outcome": outcome,
            "steps": [{"state": f"You are in room {s}.", "action": a} for s, a in zip(states, acts, strict=True)],
        }
        for traj, (states, acts, outcome) in AGENT_PATHS.items()
    }
    return build_steps(trajectories, group="agent")


@pytest.fixture
def branching_steps() -> pd.DataFrame:
    """A 30 x 8 group with random prefix sharing (big enough to exercise collapse, cap and layout)."""
    return random_branching_steps(30, 8, seed=3)
