"""Golden vectors for PBRS (policy invariance) and SCOPE (confidence from token log-probs), hand-computed
in the comments, and the Compare ranking on the sample runs including the new schemes."""

import math

import numpy as np
import pandas as pd
import pytest

from core.credit import compute, compute_with_info, rank_schemes
from core.errors import MissingInput
from core.store import queries
from core.store.database import Store
from tests.credit.builders import frame, steps_of, trajectory
from tests.credit.test_invariants import rich_frame


def shaping_group() -> pd.DataFrame:
    return frame(
        trajectory("t1", 1.0, ["a", "b"], reward=[0.0, 1.0], prm=[0.5, 0.9], value=[0.2, 0.7]),
        trajectory("t2", 0.0, ["c", "d"], reward=[0.0, 0.0], prm=[0.3, 0.1], value=[0.4, 0.1]),
    )


def test_pbrs_shaped_returns_by_hand():
    # Phi(s0) = mean first-step PRM score = 0.4; terminal potential 0.
    # t1: r' = [0 + 0.5 - 0.4, 1 + 0 - 0.5] = [0.1, 0.5] -> returns-to-go [0.6, 0.5]
    # t2: r' = [0 + 0.3 - 0.4, 0 + 0 - 0.3] = [-0.1, -0.3] -> [-0.4, -0.3]
    df = shaping_group()
    returns = compute(df, "pbrs", base="returns")
    np.testing.assert_allclose(steps_of(df, returns, "t1"), [0.6, 0.5], atol=1e-12)
    np.testing.assert_allclose(steps_of(df, returns, "t2"), [-0.4, -0.3], atol=1e-12)
    # Group baseline: mean whole return 0.1 -> [0.5, 0.4, -0.5, -0.4], whitened (unbiased var 0.82 / 3).
    scale = 1 / math.sqrt(0.82 / 3 + 1e-8)
    adv = compute(df, "pbrs")
    np.testing.assert_allclose(steps_of(df, adv, "t1"), [0.5 * scale, 0.4 * scale], atol=1e-9)
    np.testing.assert_allclose(steps_of(df, adv, "t2"), [-0.5 * scale, -0.4 * scale], atol=1e-9)
    # Critic potential: Phi(s_t) = value_t. t1: r' = [0 + 0.7 - 0.2, 1 + 0 - 0.7] = [0.5, 0.3].
    by_value = compute(df, "pbrs", potential="value", base="returns")
    np.testing.assert_allclose(steps_of(df, by_value, "t1"), [0.8, 0.3], atol=1e-12)


@pytest.mark.parametrize("potential", ["prm", "value"])
@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_pbrs_policy_invariance(potential, gamma):
    """Every trajectory's shaped discounted return is its unshaped return minus Phi(s_0)."""
    df = rich_frame(seed=5)
    shaped = compute(df, "pbrs", potential=potential, gamma=gamma, base="returns")
    unshaped = compute(df, "mc_return", gamma=gamma)
    first = (df["step_idx"] == 0).to_numpy()
    if potential == "value":
        phi0 = df.loc[first, "value"].to_numpy(dtype=float)
    else:
        group = df["run_id"] + "|" + df["iteration"].astype(str) + "|" + df["group_id"]
        phi0 = df.loc[first, "prm"].groupby(group[first]).transform("mean").to_numpy(dtype=float)
    np.testing.assert_allclose(shaped[first], unshaped[first] - phi0, atol=1e-9)
    # Shaping moves credit between steps: the per-step values do change.
    assert not np.allclose(shaped[~first], unshaped[~first])


def test_pbrs_gae_without_a_critic_is_whitened_shaped_returns():
    df = shaping_group().assign(value=None)
    adv, info = compute_with_info(df, "pbrs", base="gae")
    scale = 1 / math.sqrt(0.82 / 3 + 1e-8)  # returns [0.6, 0.5, -0.4, -0.3], batch mean 0.1
    np.testing.assert_allclose(steps_of(df, adv, "t1"), [0.5 * scale, 0.4 * scale], atol=1e-9)
    assert any("V = 0" in note for note in info.notes)


def scope_group(**per_traj) -> pd.DataFrame:
    t1 = {k: v[0] for k, v in per_traj.items()}
    t2 = {k: v[1] for k, v in per_traj.items()}
    return frame(trajectory("t1", 1.0, ["a", "b"], **t1), trajectory("t2", 0.0, ["c"], **t2))


GRPO = 1 / (math.sqrt(0.5) + 1e-6)  # |advantage| of a 1/0 pair: 0.5 / (std 0.707107 + 1e-6)


def test_scope_confidence_from_per_token_logprobs():
    ln = math.log
    df = scope_group(token_logprobs=([[ln(0.9), ln(0.5)], [ln(0.8)]], [[ln(0.4)]]))
    mean_prob, info = compute_with_info(df, "scope")
    np.testing.assert_allclose(steps_of(df, mean_prob, "t1"), [0.7 * GRPO * 0.5, 0.8 * GRPO * 0.5], atol=1e-9)
    np.testing.assert_allclose(steps_of(df, mean_prob, "t2"), [-0.4 * GRPO * 0.5], atol=1e-9)
    assert any("per-token log-probs" in note for note in info.notes)
    geo = compute(df, "scope", confidence="geo_mean")
    np.testing.assert_allclose(steps_of(df, geo, "t1")[0], math.sqrt(0.45) * GRPO * 0.5, atol=1e-9)
    relative = compute(df, "scope", relative=True)
    np.testing.assert_allclose(steps_of(df, relative, "t1"), [0.7 / 0.75 * GRPO * 0.5, 0.8 / 0.75 * GRPO * 0.5])


def test_scope_falls_back_to_per_step_sums_and_says_so():
    ln = math.log
    with_tokens = scope_group(logp_policy=([ln(0.9) + ln(0.5), ln(0.8)], [ln(0.4)]), n_tokens=([2, 1], [1]))
    adv, info = compute_with_info(with_tokens, "scope")
    np.testing.assert_allclose(steps_of(with_tokens, adv, "t1")[0], math.sqrt(0.45) * GRPO * 0.5, atol=1e-9)
    assert any("mean_prob needs per-token log-probs" in note for note in info.notes)
    sums_only = with_tokens.drop(columns="n_tokens")
    adv, info = compute_with_info(sums_only, "scope")
    np.testing.assert_allclose(steps_of(sums_only, adv, "t1")[0], 0.45 * GRPO * 0.5, atol=1e-9)
    assert any("each step counts as one token" in note for note in info.notes)
    with pytest.raises(MissingInput, match="token log-probabilities"):
        compute(frame(trajectory("t", 1.0, ["a"])), "scope")


@pytest.fixture(scope="module")
def arithmetic_steps(sample_db_path):
    store = Store.open(sample_db_path)
    try:
        yield queries.steps(store, run_id="arithmetic", with_token_stats=True)
    finally:
        store.close()


def test_compare_ranking_on_the_sample_runs_includes_the_new_schemes(arithmetic_steps):
    table = rank_schemes(arithmetic_steps).set_index("scheme")
    for scheme in ("prime", "pbrs", "scope", "implicit_prm"):
        assert np.isfinite(table.loc[scheme, "auc"]), table.loc[scheme, "note"]
    assert "stored per-token log-probs" in table.loc["scope", "note"]
    # PBRS on the logged PRM scores credits steps by their potential change, which tracks the labels.
    assert table.loc["pbrs", "auc"] > 0.6


def test_scope_reads_the_stores_token_summaries_and_refuses_partial_coverage():
    df = scope_group(token_mean_prob=([0.7, 0.8], [0.4]), token_mean_logprob=([-0.4, -0.2], [-0.9]))
    adv, info = compute_with_info(df, "scope")
    np.testing.assert_allclose(steps_of(df, adv, "t1"), [0.7 * GRPO * 0.5, 0.8 * GRPO * 0.5], atol=1e-9)
    assert any("stored per-token log-probs" in note for note in info.notes)
    geo = compute(df, "scope", confidence="geo_mean")
    np.testing.assert_allclose(steps_of(df, geo, "t2"), [-math.exp(-0.9) * GRPO * 0.5], atol=1e-9)
    partial = scope_group(token_mean_prob=([0.7, None], [0.4]), token_mean_logprob=([-0.4, None], [-0.9]))
    with pytest.raises(MissingInput, match="1 steps have none"):
        compute(partial, "scope")
