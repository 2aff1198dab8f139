"""Invariants every scheme must satisfy: row-order independence, zero credit in all-equal groups,
group sums, singletons, input checks and the registry's metadata."""

import numpy as np
import pandas as pd
import pytest

from core.credit import SCHEMES, InvalidParameter, compute, compute_with_info, prepare
from core.errors import MissingInput
from tests.credit.builders import frame, outcome_group, trajectory

ALL = list(SCHEMES)


def rich_frame(seed: int = 0) -> pd.DataFrame:
    """Several runs/iterations/groups; shared action prefixes and recurring states; every optional column."""
    rng = np.random.default_rng(seed)
    trajs = []
    for run in ("r1", "r2"):
        for iteration in (0, 1):
            for g in range(3):
                for k in range(4):
                    length = int(rng.integers(1, 5))
                    actions = [f"a{int(rng.integers(0, 2))}" for _ in range(length)]
                    rows = trajectory(
                        f"{run}-{iteration}-{g}-{k}",
                        float(rng.integers(0, 2)),
                        actions,
                        group=f"g{g}",
                        state=[f"s{int(rng.integers(0, 3))}" for _ in range(length)],
                        reward=list(rng.normal(size=length)),
                        valid=list(rng.random(length) > 0.2),
                        prm=list(rng.random(length)),
                        value=list(rng.random(length)),
                        logp_policy=list(rng.normal(size=length)),
                        logp_ref=list(rng.normal(size=length)),
                        n_tokens=list(rng.integers(1, 9, size=length)),
                        label=list(rng.integers(0, 2, size=length)),
                    )
                    for row in rows:
                        row.update(run_id=run, iteration=iteration)
                    trajs.append(rows)
    return frame(*trajs)


@pytest.mark.parametrize("scheme", ALL)
def test_row_order_does_not_matter(scheme):
    df = rich_frame()
    expected = compute(df, scheme)
    shuffled = df.sample(frac=1.0, random_state=7)
    got = compute(shuffled, scheme)
    # Align by the original index: the same row must get the same credit.
    np.testing.assert_allclose(pd.Series(got, index=shuffled.index).loc[df.index].to_numpy(), expected, atol=1e-9)
    assert np.isfinite(expected).all()


@pytest.mark.parametrize("scheme", ["treeps", "treerl", "portool", "mc_value", "vsrm", "pav"])
def test_row_order_does_not_matter_with_explicit_node_ids(scheme):
    df = rich_frame(seed=3)
    # Explicit ids that follow the prefix tree, but with texts that only match through node_id.
    df["node_id"] = (
        df["run_id"]
        + df["group_id"]
        + df["iteration"].astype(str)
        + "|"
        + df.groupby("traj_id")["action"].transform(lambda s: s.cumsum())
    )
    expected = compute(df, scheme)
    shuffled = df.sample(frac=1.0, random_state=11)
    got = pd.Series(compute(shuffled, scheme), index=shuffled.index).loc[df.index].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)
    # These node ids describe the same tree the action prefixes imply.
    np.testing.assert_allclose(expected, compute(df.assign(node_id=None), scheme), atol=1e-9)


def test_row_order_does_not_matter_on_sample_environments():
    from core.synth import generate_steps

    for env in ("tree", "agent"):
        df = generate_steps(env, prompts=2, iterations=2, group_size=4, seed=1)
        prep, shuffled = prepare(df), df.sample(frac=1.0, random_state=3)
        for scheme in ALL:
            try:
                expected = compute(prep, scheme)
            except MissingInput:
                continue
            got = pd.Series(compute(shuffled, scheme), index=shuffled.index).loc[df.index].to_numpy()
            np.testing.assert_allclose(got, expected, atol=1e-9, err_msg=f"{env}/{scheme}")


EQUAL_GROUP_SCHEMES = [
    "grpo",
    "drgrpo",
    "rloo",
    "reinforce_pp_baseline",
    "gigpo",
    "salt",
    "treeps",
    "treerl",
    "portool",
    "pav",
    "gra",
]
# implicit_prm is left out on purpose: its step part compares each step with the group's *first* steps
# (official baseline), so identical trajectories whose steps differ keep non-zero step credit. PAV with a PRM
# prover (its default when scores exist) and PBRS rightly credit a step that raises the prover's value or
# the potential even when every outcome is equal; their tree-based forms are checked below.


@pytest.mark.parametrize("scheme", EQUAL_GROUP_SCHEMES)
def test_all_equal_group_gives_zero(scheme):
    params = {"pav": {"source": "best_of_k"}}.get(scheme, {})
    same = dict(
        state=["s0", "s1"],
        reward=[0.0, 1.0],
        valid=[True, True],
        prm=[0.5, 0.7],
        logp_policy=[0.1, 0.2],
        logp_ref=[0.0, 0.0],
    )
    df = frame(*[trajectory(f"t{i}", 1.0, ["a", "b"], **same) for i in range(4)])
    np.testing.assert_allclose(compute(df, scheme, **params), 0.0, atol=1e-12)


def test_grpo_sums_to_zero_per_group():
    df = rich_frame()
    adv = compute(df, "grpo")
    first = df["step_idx"] == 0
    sums = (
        pd.Series(adv[first.to_numpy()])
        .groupby(
            (df.loc[first, "run_id"] + df.loc[first, "iteration"].astype(str) + df.loc[first, "group_id"]).to_numpy()
        )
        .sum()
    )
    np.testing.assert_allclose(sums.to_numpy(), 0.0, atol=1e-9)


def test_singleton_groups_follow_the_spec():
    single = outcome_group([0.7])
    assert compute(single, "grpo")[0] == pytest.approx(0.7 / (1 + 1e-6))
    assert compute(single, "drgrpo")[0] == pytest.approx(0.7)
    assert compute(single, "rloo")[0] == pytest.approx(0.7)
    # GiGPO (row-level stats): a one-row group keeps its raw score; a singleton anchor cluster adds 0.
    df = frame(trajectory("t", 1.0, ["a"], state=["s0"], reward=[1.0]))
    np.testing.assert_allclose(compute(df, "gigpo", mode="mean_std_norm"), [1 / (1 + 1e-6)])
    two_rows = frame(trajectory("t", 1.0, ["a", "b"], state=["s0", "s1"], reward=[0.0, 1.0]))
    np.testing.assert_allclose(compute(two_rows, "gigpo", mode="mean_std_norm"), [0.0, 0.0])
    np.testing.assert_allclose(compute(df, "treerl"), 0.0)  # the official code asserts; we give 0


@pytest.mark.parametrize(
    ("scheme", "column", "hint"),
    [
        ("gigpo", "state", "observations"),
        ("prm", "prm", "rescore"),
        ("implicit_prm", "logp_policy", "logp_policy"),
        ("gae", "value", "critic"),
        ("gra", "reward", "reward"),
    ],
)
def test_missing_inputs_name_the_column(scheme, column, hint):
    df = outcome_group([1.0, 0.0])
    with pytest.raises(MissingInput, match=f"'{column}'.*{hint}"):
        compute(df, scheme)


def test_missing_key_column_and_token_unit():
    with pytest.raises(MissingInput, match="outcome"):
        compute(outcome_group([1.0]).drop(columns="outcome"), "grpo")
    with pytest.raises(MissingInput, match="n_tokens"):
        compute(outcome_group([1.0, 0.0]), "reinforce_pp", unit="token")


@pytest.mark.parametrize(
    ("scheme", "params", "message"),
    [
        ("grpo", {"gama": 0.9}, "unknown parameter.*gama"),
        ("gigpo", {"gamma": 1.5}, r"\[0.0, 1.0\]"),
        ("gigpo", {"mode": "zscore"}, "mean_norm, mean_std_norm"),
        ("grpo", {"std": 1}, "True or False"),
        ("vsrm", {"lookahead": 2.5}, "integer"),
        ("nope", {}, "unknown credit scheme"),
    ],
)
def test_bad_parameters_raise(scheme, params, message):
    with pytest.raises(InvalidParameter, match=message):
        compute(outcome_group([1.0, 0.0]), scheme, **params)


def test_info_reports_derived_tree_and_parameters():
    _, info = compute_with_info(frame(trajectory("t0", 1.0, ["a"]), trajectory("t1", 0.0, ["b"])), "treerl")
    assert info.params == {"variant": "code"}
    assert info.confidence == "H"
    assert any("derived prefix tree" in note for note in info.notes)


def test_registry_metadata_is_complete():
    for name, spec in SCHEMES.items():
        assert spec.name == name and spec.citation and spec.description
        assert spec.confidence in {"H", "M", "L"}
        assert spec.resolve({}) == spec.defaults()  # every default passes its own validation
        if spec.confidence == "L":
            assert "Reconstructed" in spec.description
            assert all("Reconstructed" in p.help for p in spec.params if p.type is not bool)
