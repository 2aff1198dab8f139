"""The Rescore page judges a large run's PRM scores on a fixed sample of trajectories, and says so."""

from __future__ import annotations

import os

from core.prm.evaluate import evaluate_prm
from core.store import queries
from dashboard import prm_panel
from dashboard.resources import get_store


def test_a_large_run_is_judged_on_a_fixed_sample(open_page, monkeypatch) -> None:
    monkeypatch.setattr(prm_panel, "EVALUATION_TRAJECTORIES", 40)
    at = open_page("app_pages/rescore.py", run="arithmetic")
    assert not at.exception
    assert any("fixed sample" in c.value and "at most 40 of its" in c.value for c in at.caption)
    store = get_store(os.environ["CREDITSCOPE_DB"])
    frame, total = queries.labelled_steps_sample(store, "arithmetic", 40)
    again, _ = queries.labelled_steps_sample(store, "arithmetic", 40)
    assert frame.equals(again) and 0 < frame["traj_id"].nunique() <= 40 < total
    assert frame["label"].notna().all()
    shown = next(m.value for m in at.metric if m.label == "ROC-AUC")
    assert shown == f"{evaluate_prm(frame).auc:.3f}"
