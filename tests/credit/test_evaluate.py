"""Evaluation functions on tiny hand-computed examples."""

import numpy as np
import pytest

from core.credit import SCHEMES, agreement_table, first_error_f1, rank_schemes, roc_auc, sign_agreement, spearman
from tests.credit.builders import frame, trajectory


def test_roc_auc_hand_example():
    # Pairs (good, bad): (0.35 vs 0.1 ok, 0.35 vs 0.4 wrong, 0.8 vs both ok) -> 3/4.
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)


def test_roc_auc_ties_unlabelled_and_single_class():
    assert roc_auc(np.array([1.0, 1.0]), np.array([0.0, 1.0])) == pytest.approx(0.5)
    assert roc_auc(np.array([0.0, 5.0, 1.0]), np.array([0.0, np.nan, 1.0])) == pytest.approx(1.0)
    assert np.isnan(roc_auc(np.array([0.0, 1.0]), np.array([1.0, 1.0])))


def labelled():
    return frame(
        trajectory("err1", 0.0, ["a", "b", "c"], label=[1, 0, 0]),  # first error at step 1
        trajectory("err2", 0.0, ["a", "b"], label=[0, 1]),  # first error at step 0
        trajectory("ok1", 1.0, ["a", "b"], label=[1, 1]),
        trajectory("ok2", 1.0, ["a", "b"], label=[1, None]),  # unlabelled steps are ignored
    )


def test_first_error_f1_hand_example():
    df = labelled()
    # err1: predicted first below 0 at step 1 (hit); err2: predicted step 1 (miss);
    # ok1: nothing below 0 (hit); ok2: step 1 is negative but unlabelled, so no error predicted (hit).
    scores = np.array([0.5, -1.0, -2.0, 0.3, -0.1, 0.2, 0.4, 0.1, -5.0])
    result = first_error_f1(df, scores)
    assert (result.n_erroneous, result.n_correct) == (2, 2)
    assert result.acc_erroneous == pytest.approx(0.5)
    assert result.acc_correct == pytest.approx(1.0)
    assert result.f1 == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    # Threshold 0.35 flags ok1's step 1 (0.1) and ok2's step 0 (0.1): no correct trajectory survives.
    stricter = first_error_f1(df, scores, threshold=0.35)
    assert stricter.acc_correct == pytest.approx(0.0)
    assert stricter.f1 == pytest.approx(0.0)


def test_spearman_and_sign_agreement():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([-1.0, 0.0, 5.0, 10.0])
    assert spearman(a, b) == pytest.approx(1.0)
    assert spearman(a, -b) == pytest.approx(-1.0)
    assert sign_agreement(a, b) == pytest.approx(0.5)  # -1 and 0 disagree in sign with 1 and 2
    table = agreement_table({"x": a, "y": b, "z": -b})
    assert list(zip(table.scheme_a, table.scheme_b, strict=False)) == [("x", "y"), ("x", "z"), ("y", "z")]
    assert table.loc[2, "spearman"] == pytest.approx(-1.0)


def test_rank_schemes_orders_by_auc_and_keeps_failures():
    df = frame(
        trajectory("w", 1.0, ["a", "good"], label=[1, 1], prm=[0.9, 0.8]),
        trajectory("l", 0.0, ["a", "bad"], label=[0, 0], prm=[0.2, 0.1]),
    )
    table = rank_schemes(df, ["treeps", "prm", "gae"])
    assert list(table.scheme) == ["prm", "treeps", "gae"]
    prm_row = table.set_index("scheme").loc["prm"]
    assert prm_row.auc == pytest.approx(1.0)
    gae_row = table.set_index("scheme").loc["gae"]
    assert np.isnan(gae_row.auc) and "value" in gae_row.note
    assert set(rank_schemes(df).scheme) == set(SCHEMES)


def test_prm_scores_are_judged_at_half_and_deltas_at_zero() -> None:
    from core.credit import SCHEMES, rank_schemes
    from core.synth import generate_steps

    assert SCHEMES["prm"].threshold_for({}) == 0.5
    assert SCHEMES["prm"].threshold_for({"dense": "delta"}) == 0.0
    steps = generate_steps("tree", prompts=3, iterations=3)
    table = rank_schemes(steps, schemes=["prm"]).set_index("scheme")
    assert table.loc["prm", "threshold"] == 0.5 and table.loc["prm", "first_error_f1"] > 0.5
