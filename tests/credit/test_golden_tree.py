"""Tree schemes on the spec's example tree (sections 4, 5 and 13), derived and explicit node ids."""

import numpy as np
import pytest

from core.credit import compute, compute_with_info
from tests.credit.builders import frame, steps_of, trajectory

PATHS = {
    "X1": (["X", "X1"], 1.0),
    "X2": (["X", "X2"], 0.0),
    "Y1": (["Y", "Y1"], 0.0),
    "Y2a": (["Y", "Y2", "Y2a"], 1.0),
    "Y2b": (["Y", "Y2", "Y2b"], 0.0),
}


def example_tree(explicit: bool):
    trajs = []
    for leaf, (nodes, outcome) in PATHS.items():
        extra = {"node_id": nodes, "parent_id": [None, *nodes[:-1]]} if explicit else {}
        # With explicit ids the action texts differ per trajectory: only node_id can tell the tree.
        actions = [f"{leaf}-{n}" for n in nodes] if explicit else nodes
        trajs.append(trajectory(leaf, outcome, actions, **extra))
    return frame(*trajs)


def assert_paths(df, adv, expected):
    for leaf, values in expected.items():
        np.testing.assert_allclose(steps_of(df, adv, leaf), values, atol=1e-6, err_msg=leaf)


TREERL_CODE = {
    "X1": [0.176777, 1.411612],
    "X2": [0.176777, -1.088388],
    "Y1": [-0.096225, -0.951887],
    "Y2a": [-0.096225, 0.224889, 1.411612],
    "Y2b": [-0.096225, 0.224889, -1.088388],
}
TREERL_PAPER = {
    "X1": [0.141421, 1.1],
    "X2": [0.141421, -0.9],
    "Y1": [-0.076980, -0.733333],
    "Y2a": [-0.076980, 0.188562, 1.1],
    "Y2b": [-0.076980, 0.188562, -0.9],
}
TREEPS = {
    "X1": [0.1, 0.5],
    "X2": [0.1, -0.5],
    "Y1": [-0.066667, -0.333333],
    "Y2a": [-0.066667, 0.166667, 0.5],
    "Y2b": [-0.066667, 0.166667, -0.5],
}


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize(
    ("scheme", "params", "expected"),
    [("treerl", {}, TREERL_CODE), ("treerl", {"variant": "paper"}, TREERL_PAPER), ("treeps", {}, TREEPS)],
)
def test_tree_worked_examples(explicit, scheme, params, expected):
    df = example_tree(explicit)
    assert_paths(df, compute(df, scheme, **params), expected)


def test_derived_tree_is_reported_and_explicit_is_not():
    _, derived = compute_with_info(example_tree(False), "treeps")
    _, explicit = compute_with_info(example_tree(True), "treeps")
    assert any("derived prefix tree" in note for note in derived.notes)
    assert not any("derived" in note for note in explicit.notes)


def test_prefix_tree_distinguishes_order_of_actions():
    # [a, b] and [b, a] must not share their second node even though the action multiset is equal.
    df = frame(trajectory("t0", 1.0, ["a", "b"]), trajectory("t1", 0.0, ["b", "a"]))
    np.testing.assert_allclose(compute(df, "treeps"), [0.5, 0.0, -0.5, 0.0])


def test_treeps_adds_trajectory_advantage_on_request():
    df = example_tree(False)
    base, mixed = compute(df, "treeps"), compute(df, "treeps", traj_weight=1.0)
    grpo = compute(df, "grpo")
    np.testing.assert_allclose(mixed, base + grpo, atol=1e-12)


def test_portool_reconstruction_example():
    df = frame(
        trajectory("t0", 1.0, ["a", "a1"], valid=[True, True]),
        trajectory("t1", 0.0, ["a", "a2"], valid=[True, False]),
        trajectory("t2", 0.0, ["b", "b1", "b1x"], valid=[True, False, True]),
        trajectory("t3", 0.0, ["b", "b1", "b1y"], valid=[True, False, True]),
    )
    adv = compute(df, "portool", tool_bonus=0.1, fork_weight=1.0)
    win, lose, fork = 1.499997, -0.499999, 0.707106
    expected = {
        "t0": [win + fork, win + fork],
        "t1": [lose + fork, lose - fork],
        "t2": [lose - fork, lose, lose],
        "t3": [lose - fork, lose, lose],
    }
    for traj, values in expected.items():
        np.testing.assert_allclose(steps_of(df, adv, traj), values, atol=1e-6, err_msg=traj)
