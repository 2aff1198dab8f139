"""Whole-run credit streamed by iteration equals the whole-frame computation: every scheme, the ranking, agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.credit import SCHEMES, agreement_table, compute, prepare, rank_schemes
from core.credit.streaming import RANK_COLUMNS, needs_whole_run, summarise_run
from core.errors import CreditscopeError
from core.ingest.runner import ingest
from core.store import queries
from core.store.database import Store
from core.store.stream import iter_chunks, plan_chunks
from core.synth import records

RUN = "mixed"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One run holding all three sample environments over 6 iterations (labels, states, trees, PRM, values)."""
    folder = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(0)
    lines = []
    for env in ("arithmetic", "tree", "agent"):
        for rec in records(env, prompts=3, iterations=6, seed=2, run=RUN):
            rec["trajectory"], rec["group"] = f"{env}/{rec['trajectory']}", f"{env}/{rec['group']}"
            for step in rec["steps"]:
                for key in ("node", "parent"):
                    if step.get(key):
                        step[key] = f"{env}/{step[key]}"
                step.setdefault("prm", round(float(rng.random()), 6))  # the agent env logs neither
                step.setdefault("value", round(float(rng.random()), 6))
                step.setdefault("logp_policy", round(float(rng.normal(-2, 1)), 6))
                step.setdefault("logp_ref", round(float(rng.normal(-2, 1)), 6))
            lines.append(json.dumps(rec))
    (folder / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    s = Store.open(":memory:")
    ingest(s, [str(folder / "mixed.jsonl")])
    return s


def _chunks(store: Store, chunk_steps: int = 700) -> list[pd.DataFrame]:
    plan = plan_chunks(store, RUN, chunk_steps=chunk_steps)
    assert len(plan.ranges) > 2  # several chunks, or the test proves nothing
    return list(iter_chunks(store, RUN, plan))


def test_chunks_concatenate_to_the_whole_run(store: Store) -> None:
    whole = queries.steps(store, run_id=RUN, with_token_stats=True)  # what the chunks carry
    pd.testing.assert_frame_equal(pd.concat(_chunks(store), ignore_index=True), whole)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_every_scheme_streams_exactly_or_says_it_needs_the_whole_run(store: Store, scheme: str) -> None:
    whole = queries.steps(store, run_id=RUN, with_token_stats=True)  # what the chunks carry
    expected = compute(whole, scheme)
    streamed = np.concatenate([compute(chunk, scheme) for chunk in _chunks(store)])
    if needs_whole_run(scheme) is None:
        np.testing.assert_array_equal(streamed, expected)  # bit for bit
    else:
        assert not np.array_equal(streamed, expected)  # the listed exception is real


def test_whiten_over_all_is_flagged() -> None:
    assert needs_whole_run("reinforce_pp", {"whiten_over": "all"})
    assert needs_whole_run("reinforce_pp", {"whiten_over": "iteration"}) is None


def test_streamed_ranking_and_agreement_equal_the_whole_frame(store: Store) -> None:
    slots = {"grpo": ("grpo", {}), "gigpo(gamma=0.9)": ("gigpo", {"gamma": 0.9}), "treerl": ("treerl", {})}
    rank_params = {"gigpo": {"gamma": 0.9}}
    seen: list[tuple[int, int]] = []
    plan = plan_chunks(store, RUN, chunk_steps=700)
    summary = summarise_run(
        iter_chunks(store, RUN, plan), slots, rank_params=rank_params, total_steps=plan.n_steps,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    whole = queries.steps(store, run_id=RUN, with_token_stats=True)  # what the chunks carry
    prep = prepare(whole)
    expected = rank_schemes(prep, params=rank_params).set_index("scheme")
    got = summary.ranking.set_index("scheme")
    assert list(summary.ranking.columns) == RANK_COLUMNS == list(rank_schemes(prep, schemes=["grpo"]).columns)
    numbers = ["auc", "first_error_f1", "acc_erroneous", "acc_correct", "threshold"]
    streamable = [s for s in SCHEMES if needs_whole_run(s, rank_params.get(s)) is None]
    assert got.loc[streamable, "auc"].notna().sum() >= 15
    pd.testing.assert_frame_equal(got.loc[streamable, numbers], expected.loc[streamable, numbers], check_exact=True)
    assert "every trajectory at once" in got.loc["spa", "note"]
    agreement = agreement_table({label: compute(prep, name, **params) for label, (name, params) in slots.items()})
    pd.testing.assert_frame_equal(summary.agreement, agreement, check_exact=True)
    assert summary.n_steps == len(whole) == plan.n_steps
    assert seen[-1] == (len(whole), len(whole)) and len(seen) == len(plan.ranges)


def test_a_slot_that_needs_the_whole_run_is_refused(store: Store) -> None:
    with pytest.raises(CreditscopeError, match="spa fits its progress estimator"):
        summarise_run(_chunks(store), {"grpo": ("grpo", {}), "spa": ("spa", {})}, rank=False)


def test_plan_keeps_iterations_whole_and_covers_the_run(store: Store) -> None:
    plan = plan_chunks(store, RUN, chunk_steps=1)  # smaller than any iteration: one iteration per chunk
    assert plan.ranges == tuple((i, i) for i in range(6))
    one = plan_chunks(store, RUN, iteration=3)
    assert one.ranges == ((3, 3),) and one.n_steps == len(queries.steps(store, run_id=RUN, iteration=3))


def test_streaming_the_labels_in_chunks_does_not_need_them_everywhere(store: Store, tmp_path: Path) -> None:
    # A run without labels ranks nothing but still compares schemes.
    chunks = [c.assign(label=np.nan) for c in _chunks(store)]
    summary = summarise_run(chunks, {"grpo": ("grpo", {}), "rloo": ("rloo", {})})
    assert summary.ranking["auc"].isna().all()
    assert summary.agreement["spearman"].notna().all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("scheme", ["gigpo", "spa"])
def test_advantages_export_streams_the_same_rows(store: Store, tmp_path: Path, suffix: str, scheme: str) -> None:
    from core.export import export_advantages

    out = tmp_path / f"adv{suffix}"
    steps = []
    report = export_advantages(store, RUN, scheme, {}, str(out), progress=lambda d, t: steps.append((d, t)))
    whole = queries.steps(store, run_id=RUN, with_token_stats=True)  # what the chunks carry
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert (
        frame[["traj_id", "step_idx"]].astype(str).values.tolist()
        == whole[["traj_id", "step_idx"]].astype(str).values.tolist()
    )
    np.testing.assert_allclose(
        frame["advantage"], compute(whole, scheme), rtol=0, atol=1e-15 if suffix == ".csv" else 0
    )
    assert (report.in_memory is None) == (scheme != "spa")
    assert report.n_steps == len(whole) and steps[-1] == (len(whole), len(whole))
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no partial file left behind


def test_lean_auc_equals_roc_auc_bit_for_bit() -> None:
    from core.credit import roc_auc
    from core.credit.streaming import lean_roc_auc

    rng = np.random.default_rng(3)
    for trial in range(30):
        n = int(rng.integers(1, 4000))
        scores = rng.choice([-1.0, 0.0, 0.5, 1.0], size=n) if trial % 2 else rng.normal(size=n)  # ties, or none
        scores[rng.random(n) < 0.05] = np.nan
        labels = np.where(rng.random(n) < 0.4, 0.0, 1.0)
        labels[rng.random(n) < 0.1] = np.nan
        expected, got = roc_auc(scores, labels), lean_roc_auc(scores, labels)
        assert (np.isnan(expected) and np.isnan(got)) or expected == got


def test_lean_spearman_equals_spearman_bit_for_bit() -> None:
    from core.credit import spearman
    from core.credit.streaming import lean_spearman

    rng = np.random.default_rng(4)
    for trial in range(30):
        n = int(rng.integers(2, 5000))
        x = rng.choice([-1.0, 0.0, 2.0], size=n) if trial % 3 == 0 else rng.normal(size=n)
        y = x + rng.normal(size=n) if trial % 2 else rng.normal(size=n)
        if trial % 7 == 0:
            y[int(rng.integers(n))] = np.nan
        if trial % 11 == 0:
            x = np.zeros(n)
        expected, got = spearman(x, y), lean_spearman(lambda x=x: x.copy(), lambda y=y: y.copy())
        assert (np.isnan(expected) and np.isnan(got)) or expected == got, (trial, expected, got)
