"""Rescore page and the Trajectory page's what-if, driven through AppTest with the demo PRM on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.credit import roc_auc
from core.ingest.runner import ingest
from core.prm.rescore import Scope, load_trajectories
from core.prm.scorer import Scorer
from core.store import prm_cache, queries
from core.store.database import Store
from core.synth import write_jsonl
from dashboard import resources as res
from dashboard.formatting import md_unescape
from dashboard.prm_panel import ACTIVE_CHOICE_LABEL, DEMO_PRM, LOGGED, progress_text

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
RUN = "arith"


@pytest.fixture
def arith_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database file with a small synthetic arithmetic run (labels and logged PRM scores included)."""
    source = tmp_path / "arithmetic.jsonl"
    write_jsonl(source, "arithmetic", prompts=2, iterations=2, group_size=4)
    db = tmp_path / "arith.duckdb"
    store = Store.open(db)
    ingest(store, [str(source)], run=RUN)
    store.close()
    monkeypatch.setenv("CREDITSCOPE_DB", str(db))
    return db


def _open(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The shown table having ``column`` (AppTest does not expose dataframe keys)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _sorted_steps(store: Store) -> pd.DataFrame:
    return queries.steps(store, run_id=RUN).sort_values(["traj_id", "step_idx"]).reset_index(drop=True)


def test_rescore_button_shows_the_demo_scores_in_steps_and_can_go_back_to_logged(arith_db: Path) -> None:
    at = _open("app_pages/rescore.py", run=RUN)
    store = res.get_store(str(arith_db))  # the app's own store: DuckDB allows one handle per file per process
    logged = _sorted_steps(store)["prm"].to_numpy()

    at.selectbox(key="prm_device").set_value("cpu")
    at.button(key="prm_rescore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.status[0].label == f"Rescored {len(logged)} steps"
    assert _metric(at, "Steps scored by the model") == str(len(logged))

    steps = _sorted_steps(store)
    _, _, trajectories = load_trajectories(store, RUN, Scope())
    expected = Scorer.load(DEMO_PRM, "token-cls", device="cpu").score(trajectories)
    assert steps["prm"].tolist() == pytest.approx([s for t in expected for s in t.scores], abs=1e-5)
    # The evaluation panel judges the new column (caches were cleared after rescoring).
    assert _metric(at, "ROC-AUC") == f"{roc_auc(steps['prm'].to_numpy(), steps['label'].to_numpy()):.3f}"

    chooser = next(s for s in at.selectbox if s.label == ACTIVE_CHOICE_LABEL)
    assert chooser.value == at.dataframe[0].value["scorer_id"].iloc[0]  # follows the rescore's activation
    chooser.set_value(LOGGED).run()  # "Apply" is enabled only once the choice differs
    at.button(key="prm_set_active").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert _sorted_steps(store)["prm"].to_numpy() == pytest.approx(logged)
    with store.reader() as cur:
        assert prm_cache.get_active(cur, RUN) is None
        assert prm_cache.logged_score_count(cur, RUN) == len(logged)
    assert _metric(at, "ROC-AUC") == f"{roc_auc(logged, steps['label'].to_numpy()):.3f}"


def test_trajectory_scope_rescores_only_the_picked_trajectory(arith_db: Path) -> None:
    at = _open("app_pages/rescore.py", run=RUN)
    at.radio(key="prm_scope").set_value("trajectory").run()
    at.selectbox(key="prm_scope_iteration").set_value(1).run()
    traj_id = at.selectbox(key="prm_scope_traj").options[-1]
    at.selectbox(key="prm_scope_traj").set_value(traj_id)
    at.selectbox(key="prm_device").set_value("cpu")
    at.button(key="prm_rescore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with res.get_store(str(arith_db)).reader() as cur:
        scored = cur.execute("SELECT DISTINCT traj_id FROM prm_step_scores").fetchall()
    assert scored == [(traj_id,)] and traj_id.startswith("it1-")


def test_what_if_edit_changes_scores_from_the_edited_step_only(arith_db: Path) -> None:
    store = res.get_store(str(arith_db))
    steps = _sorted_steps(store)
    traj_id = steps.groupby("traj_id").size().idxmax()
    mine = steps[steps["traj_id"] == traj_id]
    edited_idx = int(mine["step_idx"].iloc[1])
    at = _open("app_pages/trajectory.py", run=RUN, traj=traj_id)

    at.selectbox(key="whatif_device").set_value("cpu")
    at.text_area(key=f"whatif_{traj_id}_{edited_idx}").set_value("1 + 1 = 3")
    at.button(key="whatif_run").click().run()
    assert not at.exception, [e.value for e in at.exception]

    scores = _table_with(at, "old_prm")
    assert scores["edited"].tolist() == [idx == edited_idx for idx in mine["step_idx"]]
    assert scores["change"].iloc[0] == pytest.approx(0.0)  # the prefix before the edit scores the same
    assert abs(scores["change"].iloc[1]) > 1e-6
    shift = _table_with(at, "scheme")
    dense = shift[shift["scheme"] == "prm"]
    assert dense["change"].to_numpy() == pytest.approx(scores["change"].to_numpy())  # prm credit = the score
    assert {"pav(source=prm)", "gae(value_source=prm)"} <= set(shift["scheme"])
    # Only the content cache learned something: the run's scores and steps.prm are untouched.
    with store.reader() as cur:
        assert cur.execute("SELECT count(*) FROM prm_step_scores").fetchone()[0] == 0
        assert cur.execute("SELECT count(*) FROM prm_cache").fetchone()[0] > 0
    assert np.array_equal(_sorted_steps(store)["prm"].to_numpy(), steps["prm"].to_numpy())


def test_progress_text_shows_steps_per_second_and_the_time_left_from_the_rate_so_far() -> None:
    assert progress_text(0, 10, 0.0) == "0 / 10 steps · 0 s elapsed"
    assert progress_text(2, 10, 4.0) == "2 / 10 steps · 0 steps/s · 4 s elapsed · about 16 s left"
    assert progress_text(3000, 12000, 2.0) == "3,000 / 12,000 steps · 1,500 steps/s · 2 s elapsed · about 6 s left"
    assert progress_text(10, 10, 20.0) == "10 / 10 steps · 0 steps/s · 20 s elapsed"


def test_long_trajectories_edit_one_picked_step(arith_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dashboard.whatif.MAX_TEXT_AREAS", 2)
    steps = _sorted_steps(res.get_store(str(arith_db)))
    traj_id = steps.groupby("traj_id").size().idxmax()
    last_idx = int(steps.loc[steps["traj_id"] == traj_id, "step_idx"].max())
    at = _open("app_pages/trajectory.py", run=RUN, traj=traj_id)
    assert len(at.text_area) == 1  # one editor instead of one per step
    at.selectbox(key=f"whatif_pick_{traj_id}").set_value(last_idx).run()
    at.selectbox(key="whatif_device").set_value("cpu")
    at.text_area(key=f"whatif_{traj_id}_{last_idx}").set_value("7 * 7 = 48")
    at.button(key="whatif_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    scores = _table_with(at, "old_prm")
    assert scores["edited"].tolist() == [idx == last_idx for idx in scores["step_idx"]]
    assert scores["change"].iloc[:-1].abs().max() == pytest.approx(0.0)


def test_a_checkpoint_that_does_not_fit_is_refused_on_the_page_and_nothing_changes(
    arith_db: Path, tmp_path: Path
) -> None:
    import shutil

    folder = Path(shutil.copytree(DEMO_PRM, tmp_path / "shepherd-on-tokcls"))
    at = _open("app_pages/rescore.py", run=RUN)
    store = res.get_store(str(arith_db))
    before = _sorted_steps(store)["prm"].to_numpy()
    at.text_input(key="prm_model").set_value(str(folder))
    at.selectbox(key="prm_family").set_value("shepherd")  # a causal-LM family on a token classifier
    at.selectbox(key="prm_device").set_value("cpu")
    at.button(key="prm_rescore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.status[0].label == "Rescoring failed"
    assert "lm_head.weight" in md_unescape(at.error[0].value) and "randomly initialised" in md_unescape(
        at.error[0].value
    )
    with store.reader() as cur:
        assert cur.execute("SELECT count(*) FROM prm_step_scores").fetchone()[0] == 0
        assert cur.execute("SELECT count(*) FROM prm_active").fetchone()[0] == 0
    assert np.array_equal(_sorted_steps(store)["prm"].to_numpy(), before, equal_nan=True)


def test_a_partial_rescore_keeps_the_logged_scores_elsewhere_and_evaluates_only_what_it_scored(
    arith_db: Path,
) -> None:
    from core.credit import compute

    at = _open("app_pages/rescore.py", run=RUN)
    store = res.get_store(str(arith_db))
    before = _sorted_steps(store)
    at.radio(key="prm_scope").set_value("group").run()
    at.selectbox(key="prm_scope_iteration").set_value(1).run()
    group = at.selectbox(key="prm_scope_group").value
    n_run = before["traj_id"].nunique()
    in_group = before[(before["group_id"] == group) & (before["iteration"] == 1)]
    n_group = in_group["traj_id"].nunique()
    # Said before scoring: how much of the run this is, and what the rest will show.
    note = next(i.value for i in at.info if "After scoring" in i.value)
    assert f"This group is {n_group:,} of the run's {n_run:,} trajectories" in note
    assert f"the other {n_run - n_group:,} keep their logged scores ({len(before) - len(in_group):,} steps" in note

    at.selectbox(key="prm_device").set_value("cpu")
    at.button(key="prm_rescore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    after = _sorted_steps(store)
    scored = after["traj_id"].isin(set(in_group["traj_id"]))
    scorer_id = after.loc[scored, "prm_source"].iloc[0]
    assert scorer_id.startswith("token-cls:") and (after.loc[scored, "prm_source"] == scorer_id).all()
    assert (after.loc[~scored, "prm_source"] == "logged").all()
    assert after.loc[~scored, "prm"].to_numpy() == pytest.approx(before.loc[~scored, "prm"].to_numpy())
    # Every other group still has a prm column the prm scheme can use (it said "rescore first" before).
    other = after[~scored & (after["group_id"] != group)]
    one_group = other[other["group_id"] == other["group_id"].iloc[0]]
    assert np.isfinite(compute(one_group, "prm")).all()
    # The evaluation judges the scorer on its own steps only, and says so.
    coverage = next(i.value for i in at.info if i.value.startswith("Judged on"))
    assert f"Judged on the {int(scored.sum()):,} steps of {n_group:,} of {n_run:,} trajectories" in coverage
    assert f"{int((~scored).sum()):,} logged" in coverage
    labelled = after.loc[scored, "label"].notna() & after.loc[scored, "prm"].notna()
    caption = next(c.value for c in at.caption if "labelled steps in" in c.value)
    assert caption.startswith(f"{int(labelled.sum())} labelled steps in {n_group} trajectories")


def test_served_to_other_machines_the_model_box_loads_nothing_outside_the_data_roots(
    arith_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from core.serving import REMOTE_ENV, ROOTS_ENV

    root = tmp_path / "data"
    root.mkdir()
    outside = Path(shutil.copytree(DEMO_PRM, tmp_path / "copied-prm"))  # a real model, but not under the root
    monkeypatch.setenv(REMOTE_ENV, "1")
    monkeypatch.setenv(ROOTS_ENV, str(root.resolve()))
    at = _open("app_pages/rescore.py", run=RUN)
    store = res.get_store(str(arith_db))
    at.text_input(key="prm_model").set_value(str(outside))
    at.selectbox(key="prm_device").set_value("cpu")
    at.button(key="prm_rescore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.status, "nothing was loaded or scored"
    assert md_unescape(at.error[0].value) == (
        f"{outside}: this dashboard is served to other machines (--allow-remote); it loads models and tokenizers "
        f"only from the demo PRM or a folder under {root.resolve()}"
    )
    with store.reader() as cur:
        assert cur.execute("SELECT count(*) FROM prm_step_scores").fetchone()[0] == 0

    at.text_input(key="prm_model").set_value(DEMO_PRM)  # the shipped demo PRM is always allowed
    at.button(key="prm_rescore").click().run()
    assert at.status[0].label.startswith("Rescored ")
