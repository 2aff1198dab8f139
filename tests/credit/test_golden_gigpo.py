"""GiGPO worked example of the spec's section 2, and SALT's reconstruction example (section 3)."""

import numpy as np
import pytest

from core.credit import compute
from tests.credit.builders import frame, steps_of, trajectory


def gigpo_group(valid_b1: bool = True):
    return frame(
        trajectory("A", 1.0, ["a", "b", "c"], state=["S0", "S1", "S2"], reward=[0, 0, 1]),
        trajectory(
            "B",
            1.0,
            ["a", "b", "c", "d"],
            state=["S0", "S3", "S1", "S2"],
            reward=[0, 0, 0, 1],
            valid=[True, valid_b1, True, True],
        ),
        trajectory("C", 0.0, ["a", "b", "c"], state=["S0", "S3", "S3"], reward=[0, 0, 0]),
        trajectory("D", 0.0, ["a", "b", "c"], state=["S0", "S1", "S4"], reward=[0, 0, 0]),
    )


MEAN_NORM = {
    "A": [0.924070, 0.778205, 0.461538],
    "B": [0.878945, 1.063205, 0.778205, 0.461538],
    "C": [-0.978430, -0.839295, -0.839295],
    "D": [-0.978430, -1.171795, -0.538462],
}
MEAN_STD_NORM = {
    "A": [1.799335, 1.466847, 0.889497],
    "B": [1.710570, 2.044196, 1.466847, 0.889497],
    "C": [-1.903202, -1.615096, -1.615096],
    "D": [-1.903202, -2.192445, -1.037747],
}


@pytest.mark.parametrize(("mode", "expected"), [("mean_norm", MEAN_NORM), ("mean_std_norm", MEAN_STD_NORM)])
def test_gigpo_worked_example(mode, expected):
    df = gigpo_group()
    adv = compute(df, "gigpo", gamma=0.95, omega=1.0, mode=mode)
    for traj, values in expected.items():
        np.testing.assert_allclose(steps_of(df, adv, traj), values, atol=1e-6)


def test_gigpo_episode_part_alone_and_paper_statistics():
    df = gigpo_group()
    episode = compute(df, "gigpo", omega=0.0, mode="mean_std_norm")
    np.testing.assert_allclose(steps_of(df, episode, "A"), [0.889497] * 3, atol=1e-6)
    paper = compute(df, "gigpo", omega=0.0, mode="mean_std_norm", episode_stats="trajectories")
    np.testing.assert_allclose(np.abs(paper), 0.866024, atol=1e-6)


def test_gigpo_invalid_penalty_hits_only_that_rows_score_and_return():
    base = compute(gigpo_group(), "gigpo", omega=0.0, invalid_penalty=0.1)
    df = gigpo_group(valid_b1=False)
    penalised = compute(df, "gigpo", omega=0.0, invalid_penalty=0.1)
    b1 = ((df["traj_id"] == "B") & (df["step_idx"] == 1)).to_numpy()
    # Row-level stats: the penalised row's score drops by 0.1 and the group mean by 0.1/13.
    assert penalised[b1][0] == pytest.approx(base[b1][0] - 0.1 + 0.1 / 13, abs=1e-12)
    np.testing.assert_allclose(penalised[~b1], base[~b1] + 0.1 / 13, atol=1e-12)
    step_only = compute(df, "gigpo", omega=1.0, invalid_penalty=0.1) - penalised
    clean = compute(gigpo_group(), "gigpo", omega=1.0, invalid_penalty=0.1) - base
    # S3 cluster {B1, C1, C2}: B1's return drops by 0.1, the cluster mean by 0.1/3.
    assert step_only[b1][0] == pytest.approx(clean[b1][0] - 0.1 + 0.1 / 3, abs=1e-12)


def test_gigpo_similarity_merges_near_identical_states():
    df = frame(
        trajectory("A", 1.0, ["x", "y"], state=["the red room", "door"], reward=[0, 1]),
        trajectory("B", 0.0, ["x", "y"], state=["the red room!", "hall"], reward=[0, 0]),
    )
    exact = compute(df, "gigpo", omega=1.0, gamma=1.0)
    merged = compute(df, "gigpo", omega=1.0, gamma=1.0, similarity=0.9)
    first = (df["step_idx"] == 0).to_numpy()
    assert np.allclose(exact[first], 0.5 * np.array([1, -1]))  # singleton clusters: episode part only
    np.testing.assert_allclose(merged[first], [1.0, -1.0])  # merged cluster adds G - mean(G) = +-0.5


def test_salt_reconstruction_example():
    df = frame(
        trajectory("t0", 1.0, ["k0", "k1", "k2"]),
        trajectory("t1", 1.0, ["k0", "k3", "k4"]),
        trajectory("t2", 0.0, ["k0", "k1", "k5"]),
        trajectory("t3", 0.0, ["k0", "k6", "k5"]),
    )
    adv = compute(df, "salt")
    a = 0.866024
    expected = {"t0": [0, 0, a], "t1": [0, a, a], "t2": [0, 0, -a], "t3": [0, -a, -a]}
    for traj, values in expected.items():
        np.testing.assert_allclose(steps_of(df, adv, traj), values, atol=1e-6)
    # Prefix nodes: (k0, k1) is still shared by t0 and t2, and k5 after different histories stays unmerged.
    prefix = compute(df, "salt", node="prefix")
    np.testing.assert_allclose(steps_of(df, prefix, "t3"), [0, -a, -a], atol=1e-6)
    np.testing.assert_allclose(steps_of(df, prefix, "t2"), [0, 0, -a], atol=1e-6)
