"""``queries.steps(with_token_stats=True)``: per-step summaries of the stored per-token log-probs."""

import json
import math

import pytest

from core.ingest.runner import ingest
from core.store import queries


def test_token_stats_are_aggregated_from_the_arrays(store, tmp_path):
    ln = math.log
    record = {
        "trajectory": "t",
        "outcome": 1.0,
        "steps": [
            {"action": "a b", "tokens": ["a", " b"], "token_logprobs": [ln(0.9), ln(0.5)]},
            {"action": "c"},  # no per-token data on this step
        ],
    }
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(record) + "\n")
    ingest(store, [str(path)])
    plain = queries.steps(store, run_id="run")
    assert "token_mean_prob" not in plain.columns
    steps = queries.steps(store, run_id="run", with_token_stats=True)
    assert steps["token_mean_prob"].iloc[0] == pytest.approx(0.7)
    assert steps["token_mean_logprob"].iloc[0] == pytest.approx((ln(0.9) + ln(0.5)) / 2)
    assert steps[["token_mean_prob", "token_mean_logprob"]].iloc[1].isna().all()
    assert list(steps.columns[: len(plain.columns)]) == list(plain.columns)
