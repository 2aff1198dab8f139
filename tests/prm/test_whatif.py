"""What-if helpers: applying edits, old-vs-new frames, credit shifts, and one end-to-end edit with the demo PRM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.prm.rescore import rescore
from core.prm.scorer import Scorer
from core.prm.types import Trajectory
from core.prm.whatif import (
    advantage_shift,
    edited_trajectory,
    scheme_label,
    score_comparison,
    what_if,
    with_trajectory_prm,
)
from core.store import prm_cache, queries

DEMO_PRM = str(Path(__file__).resolve().parents[2] / "sample_data" / "models" / "demo-prm")
RUN = "arith"
ORIGINAL = Trajectory("Start with 2", ("2 + 1 = 3", "3 * 2 = 6", "6 - 1 = 5"))


@pytest.fixture
def store(tmp_path):
    from core.ingest.runner import ingest
    from core.store.database import Store
    from core.synth import write_jsonl

    source = tmp_path / "arithmetic.jsonl"
    write_jsonl(source, "arithmetic", prompts=2, iterations=1, group_size=3, seed=0)
    opened = Store.open(":memory:")
    ingest(opened, [str(source)], run=RUN)
    yield opened
    opened.close()


def test_edited_trajectory_applies_edits_by_stored_step_index() -> None:
    edited = edited_trajectory(ORIGINAL, [10, 11, 12], {11: "3 * 2 = 7"})
    assert edited == Trajectory("Start with 2", ("2 + 1 = 3", "3 * 2 = 7", "6 - 1 = 5"))
    assert edited_trajectory(ORIGINAL, [0, 1, 2], {}) == ORIGINAL
    with pytest.raises(ValueError, match="no step 3"):
        edited_trajectory(ORIGINAL, [0, 1, 2], {3: "x"})
    with pytest.raises(ValueError, match="2 step indices"):
        edited_trajectory(ORIGINAL, [0, 1], {})


def test_score_comparison_marks_edited_steps_and_the_change() -> None:
    edited = edited_trajectory(ORIGINAL, [0, 1, 2], {1: "3 * 2 = 7"})
    frame = score_comparison([0, 1, 2], ORIGINAL, edited, [0.9, 0.8, 0.7], [0.9, 0.2, np.nan])
    assert frame["edited"].tolist() == [False, True, False]
    assert frame["change"].iloc[:2].tolist() == pytest.approx([0.0, -0.6])
    assert np.isnan(frame["change"].iloc[2])


def _group() -> pd.DataFrame:
    """Two trajectories of one group; step rows deliberately out of order."""
    return pd.DataFrame(
        {
            "run_id": "r",
            "iteration": 0,
            "group_id": "g",
            "traj_id": ["a", "b", "a", "b"],
            "step_idx": [1, 0, 0, 1],
            "state": None,
            "action": ["x", "y", "z", "w"],
            "reward": 0.0,
            "outcome": [1.0, 0.0, 1.0, 0.0],
            "node_id": None,
            "parent_id": None,
            "label": np.nan,
            "valid": None,
            "prm": [0.5, 0.4, 0.6, 0.3],
            "value": np.nan,
        }
    )


def test_with_trajectory_prm_replaces_one_trajectory_by_step_index() -> None:
    group = _group()
    frame = with_trajectory_prm(group, "a", [0, 1], [0.1, 0.2])
    assert frame["prm"].tolist() == [0.2, 0.4, 0.1, 0.3]
    assert group["prm"].tolist() == [0.5, 0.4, 0.6, 0.3]  # the input is left alone


def test_advantage_shift_follows_each_scheme_formula() -> None:
    schemes = [("prm", {}), ("gae", {"value_source": "prm", "whiten_batches": False})]
    shift, notes = advantage_shift(_group(), "a", [0, 1], [0.6, 0.5], [0.6, 0.1], schemes)
    assert notes == []
    dense = shift[shift["scheme"] == "prm"]
    assert dense["step_idx"].tolist() == [0, 1]
    assert dense["change"].tolist() == pytest.approx([0.0, -0.4])  # prm credit is the score itself
    # gamma = lambda = 1 telescopes to A_t = (rewards from t on) - V_t, so A moves by -(change of V_t).
    gae = shift[shift["scheme"] == "gae(value_source=prm, whiten_batches=False)"]
    assert gae["change"].tolist() == pytest.approx([0.0, 0.4])


def test_advantage_shift_reports_schemes_that_cannot_run() -> None:
    shift, notes = advantage_shift(_group(), "a", [0, 1], [0.6, 0.5], [0.6, 0.1], [("gae", {"value_source": "value"})])
    assert shift.empty and len(notes) == 1 and notes[0].startswith("gae(value_source=value)")
    assert scheme_label("pav", {"source": "prm"}) == "pav(source=prm)" and scheme_label("prm", {}) == "prm"


def test_what_if_rescores_only_from_the_edit_and_leaves_step_scores_alone(store) -> None:
    scorer = Scorer.load(DEMO_PRM, "token-cls", device="cpu")
    rescore(store, run_id=RUN, scorer=scorer)
    steps = queries.steps(store, run_id=RUN)
    traj_id = steps.groupby("traj_id").size().idxmax()
    mine = steps[steps["traj_id"] == traj_id].sort_values("step_idx")
    with store.reader() as cur:
        stored_before = prm_cache.step_scores(cur, RUN, scorer.scorer_id)

    result = what_if(
        store,
        run_id=RUN,
        traj_id=traj_id,
        edits={int(mine["step_idx"].iloc[1]): "1 + 1 = 3"},
        spec=scorer.spec,
        get_scorer=lambda: scorer,
    )
    n = len(mine)
    assert (result.n_scored, result.n_from_cache) == (n - 1, 2 * n - (n - 1))  # the edit and everything after it
    assert result.old.scores == pytest.approx(mine["prm"].tolist())  # the original comes straight from the cache
    frame = result.comparison()
    assert frame["edited"].tolist() == [k == 1 for k in range(n)]
    assert frame["change"].iloc[0] == pytest.approx(0.0)
    assert abs(frame["change"].iloc[1]) > 1e-6
    with store.reader() as cur:
        assert prm_cache.step_scores(cur, RUN, scorer.scorer_id).equals(stored_before)
    assert queries.steps(store, run_id=RUN)["prm"].tolist() == pytest.approx(steps["prm"].tolist())


def test_what_if_rejects_an_unknown_trajectory(store) -> None:
    with pytest.raises(ValueError, match="no trajectory"):
        what_if(store, run_id=RUN, traj_id="nope", edits={}, spec=None, get_scorer=lambda: None)  # type: ignore[arg-type]
