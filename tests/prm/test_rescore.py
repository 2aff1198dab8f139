"""rescore end to end on a fake store: incremental, cached, scoped, what-if edits only rerun their trajectory."""

from __future__ import annotations

import pytest
from prm_helpers import FakeStore, arithmetic_frames

from core.prm import rescore as rescore_module
from core.prm.rescore import Scope, rescore
from core.prm.scorer import Scorer
from core.store import prm_cache


@pytest.fixture
def store(prm_db):
    steps, trajs = arithmetic_frames()
    return FakeStore(prm_db, steps, trajs)


@pytest.fixture
def count_loads(monkeypatch):
    loads: list[Scorer] = []
    original = Scorer.load.__func__

    def counting(cls, *args, **kwargs):
        loads.append(original(cls, *args, **kwargs))
        return loads[-1]

    monkeypatch.setattr(rescore_module.Scorer, "load", classmethod(counting))
    return loads


def test_second_rescore_is_answered_by_the_cache_without_loading_the_model(store, save_checkpoint, count_loads):
    folder = str(save_checkpoint("llama-tokcls"))
    first = rescore(store, run_id="run-a", model=folder, family="token-cls", device="cpu")
    assert (first.n_steps, first.n_trajectories, first.n_scored, first.n_from_cache) == (18, 6, 18, 0)
    assert first.model_loaded and first.forward_passes == 1 and first.tokens > 0
    with store.reader() as cur:
        assert prm_cache.get_active(cur, "run-a") == first.scorer_id
        stored = prm_cache.step_scores(cur, "run-a", first.scorer_id)
    assert len(stored) == 18 and stored["score"].between(0, 1).all()

    second = rescore(store, run_id="run-a", model=folder, family="token-cls", device="cpu")
    assert (second.n_scored, second.n_from_cache, second.model_loaded) == (0, 18, False)
    assert len(count_loads) == 1  # the second call never touched the model
    with store.reader() as cur:
        again = prm_cache.step_scores(cur, "run-a", first.scorer_id)
    assert again["score"].tolist() == pytest.approx(stored["score"].tolist())


def test_what_if_edit_reruns_only_the_edited_trajectory_and_only_caches_changed_steps(store, save_checkpoint):
    scorer = Scorer.load(str(save_checkpoint("llama-tokcls")), "token-cls", device="cpu")
    rescore(store, run_id="run-a", scorer=scorer)
    before = scorer.stats.forward_passes
    with store.reader() as cur:
        old = prm_cache.step_scores(cur, "run-a", scorer.scorer_id).set_index(["traj_id", "step_idx"])["score"]
    edited = (store._steps["traj_id"] == "t1-2") & (store._steps["step_idx"] == 1)
    store._steps.loc[edited, "action"] = "5 * 2 = 11"
    report = rescore(store, run_id="run-a", scorer=scorer)
    assert scorer.stats.forward_passes - before == 1
    assert (report.n_scored, report.n_from_cache) == (2, 16)  # the edited step and the one after it
    with store.reader() as cur:
        new = prm_cache.step_scores(cur, "run-a", scorer.scorer_id).set_index(["traj_id", "step_idx"])["score"]
    changed = sorted(i for i in old.index if abs(old[i] - new[i]) > 1e-7)
    assert changed == [("t1-2", 1), ("t1-2", 2)]


@pytest.mark.parametrize(
    ("scope", "n_steps"),
    [(Scope(), 18), (Scope("iteration", 1), 9), (Scope("group", "g0"), 9), (Scope("trajectory", "t0-1"), 3)],
)
def test_scope_limits_what_is_scored(store, save_checkpoint, scope, n_steps):
    scorer = Scorer.load(str(save_checkpoint("llama-tokcls")), "token-cls", device="cpu")
    report = rescore(store, run_id="run-a", scorer=scorer, scope=scope)
    assert report.n_steps == report.n_scored == n_steps
    with store.reader() as cur:
        assert len(prm_cache.step_scores(cur, "run-a", scorer.scorer_id)) == n_steps


def test_truncated_steps_are_stored_as_null_with_a_flag(store, save_checkpoint):
    from core.prm.types import FormatSettings

    folder = str(save_checkpoint("llama-tokcls"))
    report = rescore(
        store, run_id="run-a", model=folder, family="token-cls", device="cpu", settings=FormatSettings(max_length=70)
    )
    assert report.n_truncated_steps > 0 and report.truncated_trajectories
    with store.reader() as cur:
        rows = prm_cache.step_scores(cur, "run-a", report.scorer_id)
    assert rows.loc[rows["truncated"], "score"].isna().all()
    assert rows.loc[~rows["truncated"], "score"].notna().all()
    assert "truncated" in report.summary()


def test_bad_scope_and_missing_model_are_refused(store):
    with pytest.raises(ValueError, match="scope"):
        Scope("epoch", 1)
    with pytest.raises(ValueError, match="need one"):
        Scope("group")
    with pytest.raises(ValueError, match="model and family"):
        rescore(store, run_id="run-a")
