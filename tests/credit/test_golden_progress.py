"""Golden vectors for PAV (section 7), VSRM (9), Math-Shepherd (11a), PRM (11b), GAE/returns (12),
implicit PRM (10) and SPA's reward assembly (6)."""

import numpy as np
import pytest

from core.credit import compute
from core.credit.prepared import prepare
from core.credit.spa import fit_contributions, step_rewards_from_contributions
from tests.credit.builders import frame, steps_of, trajectory


def single_chain(acc):
    """One trajectory whose group value is acc[0] (its outcome) and whose prm scores are acc[1:]."""
    return frame(trajectory("t", acc[0], [f"s{i}" for i in range(len(acc) - 1)], prm=list(acc[1:])))


@pytest.mark.parametrize(
    ("acc", "expected"),
    [
        ([0.4, 0.4, 0.8, 0.8, 0.8, 0.2], [0.28, 0.4, -0.294, -0.42, -0.6]),
        ([0.5] * 7 + [1.0], [0, 0, 0.12005, 0.1715, 0.245, 0.35, 0.5]),
        ([0.2, 0.6, 0.6, 0.6], [0.4, 0.0, 0.0]),
    ],
)
def test_vsrm_golden(acc, expected):
    df = single_chain(acc)
    np.testing.assert_allclose(compute(df, "vsrm", source="prm", output="reward"), expected, atol=1e-9)


def test_vsrm_from_tree_values():
    # Root 0.5; after step 0 the shared node has value 0.5 (flat), then the leaves decide.
    df = frame(trajectory("w", 1.0, ["a", "b"]), trajectory("l", 0.0, ["a", "c"]))
    rewards = compute(df, "vsrm", output="reward")
    np.testing.assert_allclose(steps_of(df, rewards, "w"), [0.5 * 0.7, 0.5])
    np.testing.assert_allclose(steps_of(df, rewards, "l"), [-0.5 * 0.7, -0.5])


def pav_group():
    """Ten trajectories, three successes. The PRM prover's V(s_0) is the group's mean first-step score; the
    other nine first scores are chosen so that it is the spec's V(s_0) = 0.30."""
    main = trajectory("main", 1.0, ["p", "q", "r"], prm=[0.45, 0.40, 0.80])
    other_first = (0.30 * 10 - 0.45) / 9
    others = [trajectory(f"o{i}", 1.0 if i < 2 else 0.0, [f"o{i}"], prm=[other_first]) for i in range(9)]
    return frame(main, *others)


def test_pav_progress_and_outcome_term():
    df = pav_group()
    progress = steps_of(df, compute(df, "pav", source="prm", outcome_term="none"), "main")
    np.testing.assert_allclose(progress, [0.15, -0.05, 0.40], atol=1e-9)
    # Telescoping: with gamma = 1 the bonus shifts the return by alpha (V_H - V_0).
    assert progress.sum() == pytest.approx(0.8 - 0.3)
    centred = steps_of(df, compute(df, "pav", source="prm", alpha=2.0), "main")
    np.testing.assert_allclose(centred, 0.7 + 2.0 * np.array([0.15, -0.05, 0.40]), atol=1e-9)


def test_mc_value_soft_and_hard():
    # Prefix "s" is continued by four trajectories with outcomes [1, 0, 1, 1] (spec: soft 0.75, hard 1).
    trajs = [trajectory(f"t{i}", r, ["s", f"c{i}"]) for i, r in enumerate([1, 0, 1, 1])]
    failing = [trajectory(f"f{i}", 0.0, ["z", f"d{i}"]) for i in range(4)]
    df = frame(*trajs, *failing)
    soft, hard = compute(df, "mc_value"), compute(df, "mc_value", estimate="hard")
    first = (df["step_idx"] == 0).to_numpy()
    np.testing.assert_allclose(soft[first], [0.75] * 4 + [0.0] * 4)
    np.testing.assert_allclose(hard[first], [1.0] * 4 + [0.0] * 4)
    np.testing.assert_allclose(soft[~first], [1, 0, 1, 1, 0, 0, 0, 0])


@pytest.mark.parametrize(("how", "expected"), [("min", 0.6), ("last", 0.8), ("prod", 0.432), ("mean", 0.766667)])
def test_prm_aggregates(how, expected):
    # A one-trajectory group keeps its raw score (mean 0), which exposes the aggregate itself.
    df = frame(trajectory("t", 1.0, ["a", "b", "c"], prm=[0.9, 0.6, 0.8]))
    np.testing.assert_allclose(compute(df, "prm", dense="none", aggregate=how), [expected] * 3, atol=1e-6)


def test_prm_dense_rewards():
    df = frame(trajectory("t", 1.0, ["a", "b", "c"], prm=[0.9, 0.6, 0.8]))
    np.testing.assert_allclose(compute(df, "prm"), [0.9, 0.6, 0.8])
    np.testing.assert_allclose(compute(df, "prm", dense="delta"), [0.9, -0.3, 0.2], atol=1e-12)


def test_gae_golden():
    df = frame(
        trajectory("t1", 1.0, ["a", "b", "c"], reward=[0, 0, 1], value=[0.5, 0.6, 0.8]),
        trajectory("t2", 0.0, ["a", "b", "c"], reward=[0, 0, 0], value=[0.4, 0.3, 0.1]),
    )
    raw = compute(df, "gae", gamma=1.0, lam=0.95, whiten_batches=False)
    np.testing.assert_allclose(raw, [0.4705, 0.39, 0.2, -0.38025, -0.295, -0.1], atol=1e-9)
    whitened = compute(df, "gae", gamma=1.0, lam=0.95)
    np.testing.assert_allclose(whitened, [1.180799, 0.956062, 0.425628, -1.194293, -0.956295, -0.411901], atol=1e-6)


def test_discounted_returns_golden():
    df = frame(trajectory("t", 1.0, ["a", "b", "c", "d"], reward=[0, 0.5, 0, 1]))
    np.testing.assert_allclose(compute(df, "mc_return", gamma=0.9), [1.179, 1.31, 0.9, 1.0], atol=1e-12)


def istar_group():
    raw = {"T1": [0.02, 0.05], "T2": [-0.01, 0.0, -0.04], "T3": [0.03, -0.02]}
    outcome = {"T1": 1.0, "T2": 0.0, "T3": 1.0}
    return frame(
        *[
            trajectory(t, outcome[t], [f"{t}{k}" for k in range(len(r))], logp_policy=r, logp_ref=[0.0] * len(r))
            for t, r in raw.items()
        ]
    )


def test_implicit_prm_istar_rloo_golden():
    df = istar_group()
    adv = compute(df, "implicit_prm", beta=1.0)
    expected = {"T1": [0.699996, 1.599978], "T2": [-1.699986, -1.399992, -2.599968], "T3": [0.99999, -0.49998]}
    for traj, values in expected.items():
        np.testing.assert_allclose(steps_of(df, adv, traj), values, atol=1e-6)


def test_implicit_prm_all_steps_baseline():
    df = istar_group()
    adv = compute(df, "implicit_prm", beta=1.0, step_baseline="all_steps", process_only=True)
    got = np.concatenate([steps_of(df, adv, t) for t in ["T1", "T2", "T3"]])
    np.testing.assert_allclose(
        got, [0.366659, 1.066645, -0.333327, -0.099998, -1.033313, 0.599988, -0.566655], atol=1e-6
    )


def test_spa_reward_assembly_golden():
    contribution = np.array([0.1, 0.3, -0.1, 0.5])
    valid = np.array([1.0, 0.0, 1.0, 0.0])  # the last step counts as grounded whatever it says
    is_last = np.array([False, False, False, True])
    remaining = np.array([3, 2, 1, 0])
    paper = step_rewards_from_contributions(
        contribution, valid, is_last, remaining, grounding=0.5, code_weighting=False
    )
    np.testing.assert_allclose(paper, [0.6, 0.3, 0.4, 1.0])
    code = step_rewards_from_contributions(contribution, valid, is_last, remaining, grounding=0.5, code_weighting=True)
    np.testing.assert_allclose(code, [1.8, 0.6, 0.4, 0.0])


def test_spa_contributions_sum_to_outcome():
    df = frame(
        trajectory("t0", 1.0, ["good", "x1"]),
        trajectory("t1", 0.0, ["bad", "x2"]),
        trajectory("t2", 1.0, ["good", "x3"]),
        trajectory("t3", 0.0, ["bad", "x4"]),
    )
    contribution, residual = fit_contributions(prepare(df), ridge=1e-8)
    sums = np.bincount(prepare(df).traj, weights=contribution)
    np.testing.assert_allclose(sums, [1.0, 0.0, 1.0, 0.0], atol=1e-6)
    assert residual < 1e-6
    adv = compute(df, "spa", grounding=0.0, ridge=1e-8)
    assert steps_of(df, adv, "t0")[0] > steps_of(df, adv, "t1")[0]
