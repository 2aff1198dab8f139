"""First-error F1 is undefined (NaN), not 0, when the labels hold only one kind of trajectory."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core.credit import first_error_f1


def _frame(labels: list[list[float]]) -> pd.DataFrame:
    rows = [
        {"run_id": "r", "traj_id": f"t{t}", "step_idx": k, "label": label}
        for t, trajectory in enumerate(labels)
        for k, label in enumerate(trajectory)
    ]
    return pd.DataFrame(rows)


def test_only_error_free_trajectories_give_nan_f1_with_the_defined_accuracy() -> None:
    result = first_error_f1(_frame([[1.0, 1.0], [1.0]]), np.array([0.5, 0.5, -0.5]))
    assert (result.n_erroneous, result.n_correct) == (0, 2)
    assert result.acc_correct == 0.5
    assert math.isnan(result.acc_erroneous) and math.isnan(result.f1)


def test_only_erroneous_trajectories_give_nan_f1() -> None:
    result = first_error_f1(_frame([[1.0, 0.0]]), np.array([1.0, -1.0]))
    assert result.acc_erroneous == 1.0
    assert math.isnan(result.f1)


def test_both_accuracies_zero_is_a_real_zero() -> None:
    result = first_error_f1(_frame([[1.0, 0.0], [1.0]]), np.array([-1.0, 1.0, -1.0]))
    assert (result.acc_erroneous, result.acc_correct) == (0.0, 0.0)
    assert result.f1 == 0.0
