"""Golden vectors of the spec's section 1 (GRPO family) and section 8 (G-RA)."""

import numpy as np
import pandas as pd
import pytest

from core.credit import compute
from core.credit.outcome import accumulated_reward
from tests.credit.builders import frame, outcome_group, steps_of, trajectory

R = [1.0, 0.0, 0.0, 0.5]


def per_traj(df, values):
    return np.array([steps_of(df, values, f"t{i}")[0] for i in range(df["traj_id"].nunique())])


@pytest.mark.parametrize(
    ("scheme", "params", "expected"),
    [
        ("grpo", {}, [1.305580, -0.783348, -0.783348, 0.261116]),
        ("drgrpo", {}, [0.625, -0.375, -0.375, 0.125]),
        ("grpo", {"std": False}, [0.625, -0.375, -0.375, 0.125]),
        ("rloo", {}, [0.833333, -0.5, -0.5, 0.166667]),
    ],
)
def test_group_baselines(scheme, params, expected):
    df = outcome_group(R)
    np.testing.assert_allclose(per_traj(df, compute(df, scheme, **params)), expected, atol=1e-6)


def test_grpo_singleton_keeps_raw_score():
    df = outcome_group([0.7])
    np.testing.assert_allclose(compute(df, "grpo"), [0.7 / (1 + 1e-6)], atol=1e-12)
    assert compute(df, "grpo")[0] == pytest.approx(0.699999, abs=1e-6)
    np.testing.assert_allclose(compute(df, "rloo"), [0.7])


def test_grpo_cross_steps_statistics():
    df = outcome_group(R, steps=[2, 3, 1, 2])
    adv = compute(df, "grpo", stats_over="steps")
    np.testing.assert_allclose(per_traj(df, adv), [1.410187, -0.846112, -0.846112, 0.282037], atol=1e-6)
    # Every step of a trajectory carries the same value.
    np.testing.assert_allclose(steps_of(df, adv, "t1"), [-0.846112] * 3, atol=1e-6)


def reinforce_batch():
    g1 = [
        trajectory(f"a{i}", r, ["x"], group="g1", n_tokens=[n])
        for i, (r, n) in enumerate(zip(R, [3, 2, 4, 1], strict=False))
    ]
    g2 = [trajectory(f"b{i}", 1.0, ["x"], group="g2", n_tokens=[2]) for i in range(2)]
    return frame(*g1, *g2)


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        ("reinforce_pp", [0.931133, -1.074384, -1.074384, -0.071626, 0.931133, 0.931133]),
        ("reinforce_pp_baseline", [1.628104, -0.904502, -0.904502, 0.361801, 0.045225, 0.045225]),
    ],
)
def test_reinforce_pp_token_whitening(scheme, expected):
    df = reinforce_batch()
    adv = compute(df, scheme, unit="token")
    got = [steps_of(df, adv, t)[0] for t in ["a0", "a1", "a2", "a3", "b0", "b1"]]
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("scheme", ["reinforce_pp", "reinforce_pp_baseline"])
def test_reinforce_pp_single_group_variants_coincide(scheme):
    df = frame(
        *[trajectory(f"a{i}", r, ["x"], n_tokens=[n]) for i, (r, n) in enumerate(zip(R, [3, 2, 4, 1], strict=False))]
    )
    got = [steps_of(df, compute(df, scheme, unit="token"), f"a{i}")[0] for i in range(4)]
    np.testing.assert_allclose(got, [1.370320, -0.737865, -0.737865, 0.316228], atol=1e-6)


def test_reinforce_pp_whitens_each_iteration_separately():
    first = reinforce_batch()
    second = reinforce_batch().assign(iteration=1, traj_id=lambda d: d["traj_id"] + "_it1")
    second["outcome"] = second["outcome"] * 10  # a different scale must not leak into iteration 0
    both = pd.concat([first, second], ignore_index=True)
    adv = compute(both, "reinforce_pp", unit="token")
    np.testing.assert_allclose(adv[: len(first)], compute(first, "reinforce_pp", unit="token"), atol=1e-9)
    assert not np.allclose(
        compute(both, "reinforce_pp", unit="token", whiten_over="all")[: len(first)], adv[: len(first)]
    )


def test_gra_and_dra_totals():
    outcome = np.array([1.0, 0.0, 0.6])
    immediate = np.array([0.6, 0.6, 0.2])
    np.testing.assert_allclose(accumulated_reward(outcome, immediate, threshold=0.5, gated=False), [1.6, 0.6, 0.8])
    np.testing.assert_allclose(accumulated_reward(outcome, immediate, threshold=0.5, gated=True), [1.6, 0.0, 0.8])


def test_gra_scheme_feeds_gated_totals_to_grpo():
    df = frame(
        trajectory("t0", 1.0, ["a", "b", "c"], reward=[0.2, 0.1, 0.3]),
        trajectory("t1", 0.0, ["a", "b", "c"], reward=[0.2, 0.2, 0.2]),
        trajectory("t2", 0.6, ["a", "b", "c"], reward=[0.0, 0.1, 0.1]),
    )
    gated = per_traj(df, compute(df, "gra", std=False))
    np.testing.assert_allclose(gated, np.array([1.6, 0.0, 0.8]) - 0.8, atol=1e-9)
    direct = per_traj(df, compute(df, "gra", std=False, gated=False))
    np.testing.assert_allclose(direct, np.array([1.6, 0.6, 0.8]) - 1.0, atol=1e-9)
