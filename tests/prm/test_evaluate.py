"""PRM evaluation maths on small hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.credit import first_error_f1
from core.prm.evaluate import (
    best_threshold,
    calibration_error,
    calibration_table,
    candidate_thresholds,
    evaluate_prm,
    tuning_half,
)


def _frame(trajectories: dict[str, tuple[list[float], list[float]]]) -> pd.DataFrame:
    """Steps of run "r": traj id -> (labels, scores)."""
    rows = [
        {"run_id": "r", "traj_id": traj, "step_idx": k, "label": label, "prm": score}
        for traj, (labels, scores) in trajectories.items()
        for k, (label, score) in enumerate(zip(labels, scores, strict=True))
    ]
    return pd.DataFrame(rows)


# t0 and t1 contain an error (first bad step 1 and 2), t2 and t3 are clean.
FOUR = _frame(
    {
        "t0": ([1, 0, 0], [0.9, 0.3, 0.1]),  # 0.5 finds step 1: hit
        "t1": ([1, 1, 0], [0.8, 0.4, 0.2]),  # 0.5 flags step 1 too early: miss
        "t2": ([1, 1], [0.7, 0.6]),  # nothing below 0.5: hit
        "t3": ([1, 1], [0.45, 0.9]),  # 0.45 flagged: miss
    }
)


def test_evaluate_prm_auc_matches_pairwise_count_with_ties() -> None:
    # Good steps score 0.4, 0.7, 0.2 and the bad one 0.4: pairs won 0.5 (tie) + 1 + 0 out of 3.
    steps = _frame({"a": ([1, 1, 0, 1], [0.4, 0.7, 0.4, 0.2])})
    assert evaluate_prm(steps).auc == pytest.approx(0.5)
    assert evaluate_prm(FOUR).auc == pytest.approx(_pairwise_auc(FOUR))


def _pairwise_auc(steps: pd.DataFrame) -> float:
    good = steps.loc[steps["label"] >= 0.5, "prm"].to_numpy()
    bad = steps.loc[steps["label"] < 0.5, "prm"].to_numpy()
    wins = sum(1.0 if g > b else 0.5 if g == b else 0.0 for g in good for b in bad)
    return wins / (len(good) * len(bad))


def test_first_error_f1_at_half_counts_hits_per_trajectory() -> None:
    result = evaluate_prm(FOUR).at_default
    assert (result.n_erroneous, result.n_correct) == (2, 2)
    assert (result.acc_erroneous, result.acc_correct, result.f1) == pytest.approx((0.5, 0.5, 0.5))


def test_best_threshold_is_the_only_midpoint_that_gets_every_trajectory_right() -> None:
    # Every trajectory is right exactly for thresholds in (0.3, 0.4]; of the midpoints only 0.35 lies there.
    threshold = best_threshold(FOUR, FOUR["prm"].to_numpy())
    assert threshold == pytest.approx(0.35)
    assert first_error_f1(FOUR, FOUR["prm"].to_numpy(), threshold).f1 == pytest.approx(1.0)


def test_candidate_thresholds_cover_nothing_bad_and_everything_bad() -> None:
    candidates = candidate_thresholds(np.array([0.2, np.nan, 0.6, 0.2, 1.0]))
    assert candidates[0] == 0.2 and candidates[-1] > 1.0
    assert candidates[1:-1] == pytest.approx([0.4, 0.8])
    assert candidate_thresholds(np.array([np.nan])).tolist() == [0.5]
    assert len(candidate_thresholds(np.linspace(0, 1, 1000), max_candidates=10)) <= 11


def test_tuning_half_is_reproducible_per_trajectory_and_roughly_balanced() -> None:
    runs = np.array(["r"] * 400)
    trajs = np.array([f"t{i // 2}" for i in range(400)])  # two steps per trajectory
    first = tuning_half(runs, trajs)
    assert np.array_equal(first, tuning_half(runs, trajs))
    assert np.array_equal(first[0::2], first[1::2])  # both steps of a trajectory on one side
    assert 70 <= first[0::2].sum() <= 130
    assert not np.array_equal(first, tuning_half(runs, trajs, salt="other"))


def test_threshold_is_tuned_on_one_half_and_reported_on_the_other() -> None:
    rng = np.random.default_rng(0)
    trajectories = {}
    for i in range(60):
        labels = [1.0] * 4
        if i % 2:
            labels[int(rng.integers(0, 4))] = 0.0
        scores = [float(rng.uniform(0.3, 1.0)) if label else float(rng.uniform(0.0, 0.6)) for label in labels]
        trajectories[f"t{i}"] = (labels, scores)
    steps = _frame(trajectories)
    result = evaluate_prm(steps)
    tune = tuning_half(steps["run_id"].to_numpy(), steps["traj_id"].to_numpy())
    scores = steps["prm"].to_numpy()
    assert result.best_threshold == best_threshold(steps[tune], scores[tune])
    assert result.held_out == first_error_f1(steps[~tune], scores[~tune], result.best_threshold)
    assert result.tuned.n_erroneous + result.held_out.n_erroneous == result.at_default.n_erroneous
    assert result.tuned.f1 >= first_error_f1(steps[tune], scores[tune], 0.5).f1  # tuned never loses on its half
    assert (result.n_steps, result.n_trajectories) == (240, 60)


def test_calibration_table_bins_scores_and_averages_labels() -> None:
    table = calibration_table(np.array([0.05, 0.15, 0.12, 0.95, 1.0, 0.5]), np.array([0, 1, 0, 1, 1, np.nan]))
    assert table["count"].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]  # 1.0 lands in the top bin; NaN label dropped
    assert table.loc[[0, 1, 9], "mean_label"].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert table.loc[[0, 1, 9], "mean_score"].tolist() == pytest.approx([0.05, 0.135, 0.975])
    assert math.isnan(table.loc[2, "mean_label"])
    assert calibration_error(table) == pytest.approx((0.05 + 2 * 0.365 + 2 * 0.025) / 5)


def test_calibration_of_unbounded_scores_uses_their_range() -> None:
    table = calibration_table(np.array([-2.0, 0.0, 2.0]), np.array([0.0, 1.0, 1.0]), n_bins=2)
    assert table["bin_low"].tolist() == [-2.0, 0.0]
    assert table["count"].tolist() == [1, 2]


def test_steps_of_source_keeps_one_scorer_and_counts_the_rest() -> None:
    from core.prm.evaluate import steps_of_source
    from dashboard.prm_notes import coverage_note

    steps = pd.DataFrame(
        {
            "traj_id": ["a", "a", "b", "b", "c"],
            "prm_source": ["s1", "s1", "logged", "logged", None],
            "prm": [0.2, 0.9, 0.5, 0.5, None],
        }
    )
    mine, coverage = steps_of_source(steps, "s1")
    assert mine["traj_id"].tolist() == ["a", "a"]
    assert (coverage.n_steps, coverage.n_trajectories, coverage.n_run_trajectories) == (2, 1, 3)
    assert coverage.other_sources == {"logged": 2, None: 1} and coverage.partial
    assert "(2 logged, 1 with no score)" in coverage_note(coverage, "s1")
    whole, alone = steps_of_source(steps.iloc[:2], "s1")
    assert len(whole) == 2 and not alone.partial and coverage_note(alone, "s1") is None
