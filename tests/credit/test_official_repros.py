"""One test per divergence of issue 14, with vectors from the official functions run verbatim.

Sources (scratch scripts, not committed, ran the functions unchanged on these inputs):
- verl-agent ``gigpo/core_gigpo.py`` (vanzll/verl-agent d0b97244, = upstream PR #183);
- PRIME-RL/PRIME ``training/verl/trainer/ppo/core_algos.py::compute_rloo_returns`` @ 18ad596 and verl
  ``recipe/prime/prime_core_algos.py::compute_rloo_advantage_return`` (as vendored in verl-agent d0b97244);
- VSRM ``verl/workers/rollout_postprocess.py::compute_step_reward`` and the reward manager's outcome overwrite
  (1benwu1/VSRM-Efficient-LRMs e4e928b), then verl ``compute_gae_advantage_return`` + ``masked_whiten``;
- SPA-RL's trainer is TRL's ``PPOTrainer`` (same GAE recursion and ``masked_whiten``, gamma 1, lam 0.95).
"""

import difflib

import numpy as np
import pandas as pd
import pytest

from core.credit import SCHEMES, compute, compute_with_info
from core.store import queries
from core.store.database import Store
from tests.credit.builders import frame, steps_of, trajectory

KITCHEN = "You are in the kitchen. You see a door."
CELLAR = "You are in the cellar. It is dark here."


def test_1_gigpo_similarity_compares_candidate_to_representative_like_verl_agent():
    # The ratio is not symmetric: the candidate (B) against the representative (A) is 0.513.
    assert difflib.SequenceMatcher(None, CELLAR, KITCHEN).ratio() == pytest.approx(0.512821, abs=1e-6)
    assert difflib.SequenceMatcher(None, KITCHEN, CELLAR).ratio() == pytest.approx(0.487179, abs=1e-6)
    df = frame(
        trajectory("A", 1.0, ["look"], state=[KITCHEN], reward=[1.0]),
        trajectory("B", 0.0, ["look"], state=[CELLAR], reward=[0.0]),
    )
    adv = compute(df, "gigpo", similarity=0.5)
    np.testing.assert_allclose([steps_of(df, adv, "A")[0], steps_of(df, adv, "B")[0]], [1.0, -1.0], atol=1e-9)


def test_2_gigpo_trajectory_statistics_take_each_trajectorys_first_row_score():
    # A0 invalid, A1, B0; every outcome 0. verl-agent with compute_mean_std_cross_steps=False.
    df = frame(
        trajectory("A", 0.0, ["x", "y"], state=["s0", "s1"], reward=[0.0, 0.0], valid=[False, True]),
        trajectory("B", 0.0, ["z"], state=["s2"], reward=[0.0], valid=[True]),
    )
    adv = compute(df, "gigpo", episode_stats="trajectories", mode="mean_std_norm")
    got = np.r_[steps_of(df, adv, "A"), steps_of(df, adv, "B")]
    np.testing.assert_allclose(got, [-0.707097, 0.707097, 0.707097], atol=1e-6)
    # The code default (statistics over step rows) matches the official cross-steps branch too.
    rows = compute(df, "gigpo", mode="mean_std_norm")
    got = np.r_[steps_of(df, rows, "A"), steps_of(df, rows, "B")]
    np.testing.assert_allclose(got, [-1.154680, 0.577340, 0.577340], atol=1e-6)


def prime_group(rm: list[list[float]], acc: list[float]) -> pd.DataFrame:
    """One group; each step's logp_policy is its implicit reward (beta 1, logp_ref 0, no normalisation)."""
    return frame(
        *[
            trajectory(f"t{i}", a, [f"t{i}s{k}" for k in range(len(r))], logp_policy=r, logp_ref=[0.0] * len(r))
            for i, (r, a) in enumerate(zip(rm, acc, strict=True))
        ]
    )


def prime_steps(df: pd.DataFrame, adv: np.ndarray) -> list[float]:
    return np.concatenate([steps_of(df, adv, t) for t in sorted(df["traj_id"].unique())]).tolist()


RAW = {"beta": 1.0, "normalise": False}


def test_3_prime_reproduces_compute_rloo_returns_and_implicit_prm_is_istar():
    df = prime_group([[0.2, -0.4], [0.6, 0.2], [-0.2, 0.0]], [1.0, 0.0, 1.0])
    prime = compute(df, "prime", **RAW)
    np.testing.assert_allclose(
        prime_steps(df, prime), [0.253185, -0.253185, 0.253185, -1.772294, 0.253185, 1.265924], atol=1e-5
    )
    # What the issue saw from implicit_prm (its leave-one-out over all steps): iStar's formula, not PRIME's.
    istar = compute(df, "implicit_prm", **RAW, step_baseline="all_steps")
    np.testing.assert_allclose(prime_steps(df, istar), [0.66, -0.06, -0.36, -0.84, 0.18, 0.42], atol=1e-9)
    assert "iStar" in SCHEMES["implicit_prm"].title and "PRIME" not in SCHEMES["implicit_prm"].title
    assert "compute_rloo_returns" in SCHEMES["prime"].citation


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # verl recipe, reward_dpo_coef 2, reward_gt_coef 3 (gamma 1)
        (
            {"rm_weight": 2.0, "outcome_weight": 3.0},
            [0.186439, 0.131198, 0.573129, -1.360318, -1.747007, 0.517887, 0.794094, 0.904577],
        ),
        # PRIME's original function, reward_model_gamma 0.9, verifier_gamma 0.8 (it ignores the coefficients)
        (
            {"rm_weight": 1.0, "outcome_weight": 1.0, "rm_gamma": 0.9, "outcome_gamma": 0.8},
            [-0.182148, -0.217919, 0.704588, -0.810959, -1.837013, 0.218860, 0.855202, 1.269389],
        ),
        # Equal weights and gamma 1: the spec's worked example of section 11c.
        ({}, [-0.032294, -0.118412, 0.570529, -1.151823, -1.754646, 0.484411, 0.914999, 1.087234]),
    ],
)
def test_3_prime_weights_and_gammas_per_source_on_ragged_responses(params, expected):
    df = prime_group([[0.1, -0.2, 0.0], [0.3, 0.1], [-0.1, 0.0, 0.2]], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(prime_steps(df, compute(df, "prime", **RAW, **params)), expected, atol=1e-5)


@pytest.fixture(scope="module")
def sample_steps(sample_db_path):
    store = Store.open(sample_db_path)
    try:
        yield {run: queries.steps(store, run_id=run) for run in ("arithmetic", "agent")}
    finally:
        store.close()


def test_4_gra_does_not_count_the_outcome_twice_on_the_sample_runs(sample_steps):
    arithmetic = sample_steps["arithmetic"]
    last = arithmetic.groupby("traj_id")["step_idx"].transform("max") == arithmetic["step_idx"]
    # The arithmetic run logs the verifier's reward on the last step and as the outcome.
    assert (arithmetic.loc[last, "reward"] == arithmetic.loc[last, "outcome"]).all()
    gra, info = compute_with_info(arithmetic, "gra")
    np.testing.assert_allclose(gra, compute(arithmetic, "grpo"), atol=1e-9)  # no other immediate reward
    assert any("terminal reward excluded" in note for note in info.notes)
    # Counted twice, every centred total would double (GRPO's std division hides that for 0/1 outcomes).
    once = compute(arithmetic, "gra", std=False)
    np.testing.assert_allclose(compute(arithmetic, "gra", std=False, terminal="include"), 2 * once, atol=1e-9)

    agent = sample_steps["agent"]
    totals = _gra_totals_by_hand(agent, threshold=0.5)
    got = compute(agent, "gra", std=False)
    expected = totals - totals.groupby(agent.groupby("traj_id")["group_id"].first().reindex(totals.index)).transform(
        "mean"
    )
    per_traj = pd.Series(got, index=agent["traj_id"]).groupby(level=0).first()
    np.testing.assert_allclose(per_traj.loc[expected.index].to_numpy(), expected.to_numpy(), atol=1e-9)


def _gra_totals_by_hand(steps: pd.DataFrame, threshold: float) -> pd.Series:
    """R_out + 1[R_out >= threshold] x (sum of rewards, the goal's +1 on a successful last step left out)."""
    totals = {}
    for traj, rows in steps.sort_values("step_idx").groupby("traj_id"):
        outcome, rewards = rows["outcome"].iloc[0], rows["reward"].fillna(0.0).tolist()
        if rewards and rewards[-1] == outcome:
            rewards = rewards[:-1]
        totals[traj] = outcome + (sum(rewards) if outcome >= threshold else 0.0)
    return pd.Series(totals)


def vsrm_frame(values: bool = True) -> pd.DataFrame:
    """Accuracies [0.5, 0.4, 0.8, 0.8, 1.0] and [0.5, 0.4, 0.2] (group mean outcome 0.5, then the prm column)."""
    return frame(
        trajectory("t", 1.0, ["a", "b", "c", "d"], prm=[0.4, 0.8, 0.8, 1.0], value=[0.3, 0.5, 0.6, 0.7]),
        trajectory("u", 0.0, ["e", "f"], prm=[0.4, 0.2], value=[0.4, 0.2]),
    ).assign(value=lambda d: d["value"] if values else None)


@pytest.mark.parametrize(
    ("params", "values", "expected_t", "expected_u"),
    [
        ({}, True, [1.147294, 0.994998, 0.233520, -0.131990], [-1.350355, -0.893468]),
        ({}, False, [0.844052, 0.983951, 0.424358, 0.228500], [-1.310380, -1.170482]),
        ({"ppo_gamma": 0.9, "lam": 0.95}, True, [0.920910, 1.050189, 0.316969, 0.071695], [-1.461996, -0.897768]),
    ],
)
def test_5_vsrm_advantage_is_the_official_training_path(params, values, expected_t, expected_u):
    df = vsrm_frame(values)
    rewards = compute(df, "vsrm", source="prm", output="reward")
    np.testing.assert_allclose(steps_of(df, rewards, "t"), [-0.1, 0.4, 0.14, 0.2], atol=1e-9)
    adv = compute(df, "vsrm", source="prm", **params)  # output="advantage" is the default
    np.testing.assert_allclose(steps_of(df, adv, "t"), expected_t, atol=1e-6)
    np.testing.assert_allclose(steps_of(df, adv, "u"), expected_u, atol=1e-6)


def test_5_spa_advantage_is_trls_gae_on_the_progress_rewards():
    df = frame(
        trajectory("t0", 1.0, ["good", "x1", "y"], valid=[True, False, True], value=[0.2, 0.4, 0.5]),
        trajectory("t1", 0.0, ["bad", "x2"], valid=[True, True], value=[0.1, 0.3]),
        trajectory("t2", 1.0, ["good", "x3"], value=[0.5, 0.6]),
    )
    rewards = compute(df, "spa", output="reward")
    np.testing.assert_allclose(steps_of(df, rewards, "t0"), [0.954545, 0.181818, 0.681818], atol=1e-6)
    adv = compute(df, "spa")
    expected = {"t0": [1.607170, -0.382246, -0.861624], "t1": [0.383160, -0.829665], "t2": [0.960809, -0.877603]}
    for traj, values in expected.items():
        np.testing.assert_allclose(steps_of(df, adv, traj), values, atol=1e-6)
    assert SCHEMES["spa"].defaults()["output"] == SCHEMES["vsrm"].defaults()["output"] == "advantage"


def pav_tree(prm: bool) -> pd.DataFrame:
    """root -> a -> {win (1), lose (0)}: the policy succeeds half the time from a."""
    scores = {"prm": [0.6, 0.9]} if prm else {}
    lose = {"prm": [0.6, 0.2]} if prm else {}
    return frame(trajectory("w", 1.0, ["a", "win"], **scores), trajectory("l", 0.0, ["a", "lose"], **lose))


def test_6_pav_defaults_to_a_distinct_prover_and_keeps_mu_equals_pi():
    df = pav_tree(prm=False)
    progress = {source: compute(df, "pav", source=source, outcome_term="none") for source in ("auto", "policy")}
    # Best-of-4 of the policy: V = 1 - (1 - 0.5)^4 = 0.9375 at the root and at a; 1 / 0 at the leaves.
    np.testing.assert_allclose(steps_of(df, progress["auto"], "w"), [0.0, 1 - 0.9375], atol=1e-12)
    np.testing.assert_allclose(steps_of(df, progress["auto"], "l"), [0.0, -0.9375], atol=1e-12)
    np.testing.assert_allclose(steps_of(df, progress["policy"], "w"), [0.0, 0.5], atol=1e-12)
    _, info = compute_with_info(df, "pav")
    assert any("Best-of-4" in note for note in info.notes)
    # With scores, auto picks the PRM; V(s_0) is the group's mean first-step score, on the PRM's scale.
    scored = pav_tree(prm=True)
    auto, info = compute_with_info(scored, "pav", outcome_term="none")
    np.testing.assert_allclose(steps_of(scored, auto, "w"), [0.6 - 0.6, 0.9 - 0.6], atol=1e-12)
    np.testing.assert_allclose(steps_of(scored, auto, "l"), [0.0, 0.2 - 0.6], atol=1e-12)
    assert any("PRM" in note for note in info.notes)
    # Every prover lives on the success-probability scale, whatever the outcome's scale.
    scaled = df.assign(outcome=df["outcome"] * 10.0)
    for source in ("best_of_k", "policy"):
        values = compute(scaled, "pav", source=source, outcome_term="none", success_threshold=5.0)
        np.testing.assert_allclose(values, compute(df, "pav", source=source, outcome_term="none"), atol=1e-12)
