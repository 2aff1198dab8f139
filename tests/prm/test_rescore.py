"""rescore end to end on a real store holding an ingested sample arithmetic run."""

from __future__ import annotations

import pytest

from core.prm import rescore as rescore_module
from core.prm.cache import score_with_cache
from core.prm.rescore import Scope, load_trajectories, rescore
from core.prm.scorer import Scorer
from core.prm.types import FormatSettings, Trajectory
from core.store import prm_cache, queries

RUN = "arith"


@pytest.fixture
def store(tmp_path):
    from core.ingest.runner import ingest
    from core.store.database import Store
    from core.synth import write_jsonl

    source = tmp_path / "arithmetic.jsonl"
    write_jsonl(source, "arithmetic", prompts=2, iterations=2, group_size=3, seed=0)
    opened = Store.open(":memory:")
    ingest(opened, [str(source)], run=RUN)
    yield opened
    opened.close()


@pytest.fixture
def count_loads(monkeypatch):
    loads: list[Scorer] = []
    original = Scorer.load.__func__

    def counting(cls, *args, **kwargs):
        loads.append(original(cls, *args, **kwargs))
        return loads[-1]

    monkeypatch.setattr(rescore_module.Scorer, "load", classmethod(counting))
    return loads


def test_rescore_fills_steps_prm_and_a_second_run_skips_the_model(store, save_checkpoint, count_loads):
    folder = str(save_checkpoint("llama-tokcls"))
    n_steps = len(queries.steps(store, run_id=RUN))
    first = rescore(store, run_id=RUN, model=folder, family="token-cls", device="cpu")
    assert (first.n_steps, first.n_scored, first.n_from_cache) == (n_steps, n_steps, 0)
    assert first.model_loaded and first.forward_passes == 1 and first.tokens > 0

    with store.reader() as cur:
        assert prm_cache.get_active(cur, RUN) == first.scorer_id
        stored = prm_cache.step_scores(cur, RUN, first.scorer_id)
    shown = queries.steps(store, run_id=RUN).sort_values(["traj_id", "step_idx"])
    assert shown["prm"].tolist() == pytest.approx(stored["score"].tolist())  # the view shows the active scorer

    second = rescore(store, run_id=RUN, model=folder, family="token-cls", device="cpu")
    assert (second.n_scored, second.n_from_cache, second.model_loaded) == (0, n_steps, False)
    assert len(count_loads) == 1


def test_what_if_edit_reruns_only_that_trajectory_and_reuses_the_prefix(store, save_checkpoint):
    scorer = Scorer.load(str(save_checkpoint("llama-tokcls")), "token-cls", device="cpu")
    rescore(store, run_id=RUN, scorer=scorer)
    _, _, trajectories = load_trajectories(store, RUN, Scope())
    original = max(trajectories, key=lambda t: len(t.steps))
    edited = Trajectory(original.prompt, (*original.steps[:1], "1 + 1 = 3", *original.steps[2:]))
    passes = scorer.stats.forward_passes
    unchanged = score_with_cache(store, scorer.spec, trajectories, get_scorer=lambda: scorer)
    assert (unchanged.n_scored, unchanged.scorer) == (0, None)
    result = score_with_cache(store, scorer.spec, [original, edited], get_scorer=lambda: scorer)
    assert scorer.stats.forward_passes - passes == 1
    assert result.n_scored == len(original.steps) - 1  # the edited step and every step after it
    before, after = result.results
    assert after.scores[0] == pytest.approx(before.scores[0])
    assert after.scores[1] != pytest.approx(before.scores[1])


@pytest.mark.parametrize("kind", ["iteration", "group", "trajectory"])
def test_scope_limits_what_is_scored(store, save_checkpoint, kind):
    all_steps = queries.steps(store, run_id=RUN)
    column = {"iteration": "iteration", "group": "group_id", "trajectory": "traj_id"}[kind]
    value = all_steps[column].iloc[-1]
    expected = all_steps[column] == value
    scorer = Scorer.load(str(save_checkpoint("llama-tokcls")), "token-cls", device="cpu")
    report = rescore(store, run_id=RUN, scorer=scorer, scope=Scope(kind, value))
    assert 0 < report.n_steps == report.n_scored == int(expected.sum()) < len(all_steps)
    with store.reader() as cur:
        stored = prm_cache.step_scores(cur, RUN, scorer.scorer_id)
    assert set(stored["traj_id"]) == set(all_steps.loc[expected, "traj_id"])


def test_truncated_steps_are_null_with_a_flag_and_the_view_shows_them_as_null(store, save_checkpoint):
    folder = str(save_checkpoint("llama-tokcls"))
    settings = FormatSettings(max_length=110)
    report = rescore(store, run_id=RUN, model=folder, family="token-cls", device="cpu", settings=settings)
    assert report.n_truncated_steps > 0 and report.truncated_trajectories
    assert f"{report.n_truncated_steps} truncated steps" in report.summary()
    with store.reader() as cur:
        rows = prm_cache.step_scores(cur, RUN, report.scorer_id)
    assert rows.loc[rows["truncated"], "score"].isna().all()
    assert rows.loc[~rows["truncated"], "score"].notna().all()
    shown = queries.steps(store, run_id=RUN).sort_values(["traj_id", "step_idx"]).reset_index(drop=True)
    truncated = rows["truncated"].to_numpy()
    # One column never mixes scorers: a step the active scorer could not score is NULL, not the logged score.
    assert shown.loc[truncated, "prm"].isna().all()
    assert shown.loc[~truncated, "prm"].notna().all()


def test_bad_scope_and_missing_model_are_refused(store):
    with pytest.raises(ValueError, match="scope"):
        Scope("epoch", 1)
    with pytest.raises(ValueError, match="need one"):
        Scope("group")
    with pytest.raises(ValueError, match="model and family"):
        rescore(store, run_id=RUN)


def test_group_scope_carries_its_iteration():
    assert Scope("group", "g1", iteration=3).step_filters() == {"group_id": "g1", "iteration": 3}
    assert Scope("group", "g1").step_filters() == {"group_id": "g1", "iteration": None}


def test_lazy_loader_is_not_called_when_everything_is_cached(store, save_checkpoint):
    folder = str(save_checkpoint("llama-tokcls"))
    rescore(store, run_id=RUN, model=folder, family="token-cls", device="cpu")
    calls = []

    def load():
        calls.append(1)
        raise AssertionError("the model must not load when every step is cached")

    report = rescore(store, run_id=RUN, model=folder, family="token-cls", device="cpu", load=load)
    assert calls == [] and report.n_scored == 0 and not report.model_loaded


@pytest.mark.parametrize("kind", ["iteration", "group", "trajectory"])
def test_a_scope_reads_only_its_own_prompts_and_they_are_the_right_ones(store, kind):
    all_steps = queries.steps(store, run_id=RUN)
    last = all_steps.iloc[-1]
    value = {"iteration": last["iteration"], "group": last["group_id"], "trajectory": last["traj_id"]}[kind]
    scope = Scope(kind, value, iteration=int(last["iteration"])) if kind == "group" else Scope(kind, value)
    _, full_ids, full = load_trajectories(store, RUN, Scope())
    by_id = dict(zip(full_ids, full, strict=True))
    _, ids, scoped = load_trajectories(store, RUN, scope)
    assert 0 < len(ids) < len(full_ids)
    assert all(by_id[t] == traj and traj.prompt for t, traj in zip(ids, scoped, strict=True))
    prompts_read = queries.trajectories(store, run_id=RUN, **scope.step_filters())
    assert set(prompts_read["traj_id"]) == set(ids)


def test_a_compile_failure_is_reported_and_the_run_is_still_scored(store, save_checkpoint):
    def failing_backend(graph_module, example_inputs):
        raise RuntimeError("inductor unavailable")

    scorer = Scorer.load(str(save_checkpoint("llama-tokcls")), "token-cls", device="cpu", compile="off")
    scorer.compile_backend = failing_backend
    scorer.set_compile_mode("on")
    with pytest.warns(RuntimeWarning):
        report = rescore(store, run_id=RUN, scorer=scorer)
    assert report.n_scored == report.n_steps > 0
    assert "inductor unavailable" in report.compile_error and "scored eagerly" in report.summary()
