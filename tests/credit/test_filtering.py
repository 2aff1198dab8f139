"""Step filtering by PRM score: core function, group counts, `creditscope advantages --filter-prm-below`."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.credit.filtering import below_threshold_per_group, prm_filter
from core.errors import MissingInput
from tests.credit.builders import frame, trajectory


def scored() -> pd.DataFrame:
    return frame(
        trajectory("a", 1.0, ["x", "y"], group="g1", prm=[0.2, 0.9]),
        trajectory("b", 0.0, ["x", "z"], group="g1", prm=[None, 0.5]),
        trajectory("c", 0.0, ["w"], group="g2", prm=[0.1]),
    )


def test_filter_keeps_scores_at_or_above_tau_and_unscored_steps():
    kept = prm_filter(scored(), 0.5)
    np.testing.assert_array_equal(kept.keep, [False, True, True, True, False])
    assert (kept.n_below, kept.n_unscored) == (2, 1)
    assert kept.summary() == "kept 3 of 5 steps: 2 with PRM score below 0.5 dropped, 1 without a score kept"


def test_counts_per_group():
    counts = below_threshold_per_group(scored(), 0.5).set_index("group_id")
    assert counts.loc["g1", ["n_steps", "n_below", "n_unscored"]].tolist() == [4, 1, 1]
    assert counts.loc["g2", ["n_steps", "n_below", "n_unscored"]].tolist() == [1, 1, 0]


def test_filter_needs_prm_scores():
    with pytest.raises(MissingInput, match="rescore"):
        prm_filter(frame(trajectory("a", 1.0, ["x"])), 0.5)


def test_advantages_command_exports_the_kept_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "runs"
    args = ["synth", "--out", str(out_dir), "--env", "arithmetic", "--prompts", "2", "--iterations", "2"]
    assert main(args) == 0
    db = tmp_path / "x.duckdb"
    assert main(["ingest", str(out_dir), "--db", str(db), "--quiet"]) == 0
    full, kept = tmp_path / "full.csv", tmp_path / "kept.csv"
    base = ["advantages", "--db", str(db), "--run", "arithmetic", "--scheme", "gae"]
    assert main([*base, "--out", str(full)]) == 0
    capsys.readouterr()
    assert main([*base, "--out", str(kept), "--filter-prm-below", "0.5"]) == 0
    assert "with PRM score below 0.5 dropped" in capsys.readouterr().out
    everything, filtered = pd.read_csv(full), pd.read_csv(kept)
    from core.store import queries
    from core.store.database import Store

    store = Store.open(db)
    steps = queries.steps(store, run_id="arithmetic")
    store.close()
    key = ["traj_id", "step_idx"]
    expected = steps[~(steps["prm"] < 0.5)][key].sort_values(key).reset_index(drop=True)
    assert 0 < len(filtered) < len(everything)
    pd.testing.assert_frame_equal(filtered[key].sort_values(key).reset_index(drop=True), expected, check_dtype=False)
    # Credit comes from whole trajectories: a kept step's advantage is the same with or without the filter.
    merged = filtered.merge(everything, on=key, suffixes=("", "_all"))
    np.testing.assert_allclose(merged["advantage"], merged["advantage_all"])
