"""Per-token arrays: stored as LIST columns by every native path, checked alike, read back per trajectory."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest import runner
from core.ingest.base import AdapterOptions
from core.ingest.formats._frames import FrameBuilder, StepRow
from core.ingest.runner import ingest
from core.schema import TOKEN_COLUMN_NAMES
from core.store import queries
from core.store.database import Store
from core.store.load import SourceInfo, load_rollouts
from core.store.migrations import MIGRATIONS
from core.store.native_jsonl import FastPathUnavailable
from core.synth import agent, generate_steps, records, write_jsonl
from core.writer import InvalidRollout, RolloutWriter

STEP = {
    "action": "6 * 5 = 30",
    "tokens": ["6", " *", " 5", " =", " 30"],
    "token_logprobs": [0, 0, -0.5, 0, -1.25],
    "token_entropies": [0.0, 0.1, 0.2, 0.3, 1.5],
}


def _record(traj: str, steps: list[dict]) -> dict:
    return {"run": "r", "trajectory": traj, "outcome": 1.0, "steps": steps}


def _write(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _refuse_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise FastPathUnavailable("forced by the test")

    monkeypatch.setattr(runner, "load_native_jsonl", refuse)


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "tok.jsonl",
        [
            _record("a", [STEP, {"action": "done", "token_advantages": [0.5], "token_ids": [7]}]),
            _record("b", [{"action": "no tokens logged"}]),
        ],
    )


@pytest.mark.parametrize("fast", [True, False])
def test_both_native_jsonl_readers_store_token_lists(
    store: Store, tokens_file: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    if not fast:
        _refuse_fast_path(monkeypatch)
    assert ingest(store, [str(tokens_file)]).sources[0].fast_path is fast
    got = queries.step_tokens(store, "r", "a")
    assert list(got.columns) == ["step_idx", *TOKEN_COLUMN_NAMES]
    first, second = got.to_dict("records")
    assert first["tokens"] == STEP["tokens"]
    assert first["token_logprobs"] == [0.0, 0.0, -0.5, 0.0, -1.25]
    assert first["token_entropies"] == STEP["token_entropies"]
    assert first["token_ref_logprobs"] is None and first["token_advantages"] is None
    assert second["token_advantages"] == [0.5] and second["tokens"] is None
    # Token arrays are columns of their own, not JSON in `extra`; other keys still go there.
    extras = queries.steps(store, run_id="r", with_extra=True).set_index(["traj_id", "step_idx"])["extra"]
    assert pd.isna(extras[("a", 0)])
    assert json.loads(extras[("a", 1)]) == {"token_ids": [7]}
    assert queries.step_tokens(store, "r", "b")["tokens"].tolist() == [None]
    coverage = queries.token_coverage(store, "r").iloc[0]
    assert (coverage["steps"], coverage["tokens"], coverage["token_advantages"]) == (3, 1, 1)


def test_the_steps_view_and_its_queries_do_not_carry_token_arrays(store: Store, tokens_file: Path) -> None:
    ingest(store, [str(tokens_file)])
    with store.reader() as cur:
        view = [row[0] for row in cur.execute("DESCRIBE steps").fetchall()]
    assert not set(view) & set(TOKEN_COLUMN_NAMES)
    assert not set(queries.steps(store, with_extra=True).columns) & set(TOKEN_COLUMN_NAMES)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    ("bad_step", "message"),
    [
        ({"token_logprobs": [0, 0, -0.5, 0]}, r"steps\[1\]\.token_logprobs: has 4 entries but tokens has 5"),
        ({"token_logprobs": [0, 0, "x", 0, 0]}, r"steps\[1\]\.token_logprobs\[2\]: expected a finite number"),
        (
            {"token_logprobs": [0, 0, None, 0, 0]},
            r"steps\[1\]\.token_logprobs\[2\]: expected a finite number, got null",
        ),
        ({"token_entropies": [0, 0, 1e999, 0, 0]}, r"steps\[1\]\.token_entropies\[2\]: expected a finite number"),
        ({"tokens": ["6", 17, " 5", " =", " 30"]}, r"steps\[1\]\.tokens\[1\]: expected the token's text, got int 17"),
        ({"token_advantages": 0.5}, r"steps\[1\]\.token_advantages: expected a list, got float"),
    ],
)
def test_bad_token_arrays_name_file_line_and_field(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool, bad_step: dict, message: str
) -> None:
    if not fast:
        _refuse_fast_path(monkeypatch)
    good = [_record(f"t{i}", [STEP, STEP]) for i in range(5)]
    good[3] = _record("t3", [STEP, {**STEP, **bad_step}])
    path = _write(tmp_path / "bad.jsonl", good)
    with pytest.raises(IngestError, match=rf"bad\.jsonl:4: {message}"):
        ingest(store, [str(path)])
    assert queries.runs_summary(store).empty


def test_native_parquet_keeps_token_list_columns_and_checks_them(store: Store, tmp_path: Path) -> None:
    frame = generate_steps("agent", prompts=2, iterations=2, group_size=2, with_tokens=True).drop(columns="run_id")
    assert {"tokens", "token_logprobs", "token_entropies"} <= set(frame.columns)
    frame.to_parquet(tmp_path / "agent-run.parquet", index=False)
    ingest(store, [str(tmp_path / "agent-run.parquet")])
    first = frame.iloc[0]
    got = queries.step_tokens(store, "agent-run", first["traj_id"]).iloc[0]
    assert got["tokens"] == list(first["tokens"]) and got["token_logprobs"] == list(first["token_logprobs"])
    assert queries.steps(store, with_extra=True)["extra"].isna().all()  # no list landed in extra as JSON

    frame.at[3, "token_entropies"] = [0.1]  # the row's tokens have two entries
    frame.to_parquet(tmp_path / "broken.parquet", index=False)
    with pytest.raises(IngestError, match=r"broken\.parquet:row 4: token_entropies: has 1 entries but tokens has 2"):
        ingest(store, [str(tmp_path / "broken.parquet")])


def test_writer_accepts_arrays_and_tensors_and_refuses_bad_token_arrays(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "w.jsonl"
    with RolloutWriter(path, run="w") as writer:
        step = {"action": "a b", "tokens": ("a", " b"), "token_logprobs": np.array([-0.25, -1.0], dtype=np.float32)}
        writer.write(iteration=0, group="g", trajectory="t0", outcome=1.0, steps=[step])
        with pytest.raises(InvalidRollout, match=r"steps\[0\]\.token_entropies: has 1 entries but tokens has 2"):
            writer.write(iteration=0, group="g", trajectory="t1", outcome=1.0, steps=[{**step, "token_entropies": [0]}])
        with pytest.raises(InvalidRollout, match=r"steps\[0\]\.token_logprobs\[1\]: expected a finite number, got nan"):
            writer.write(
                iteration=0, group="g", trajectory="t2", outcome=1.0, steps=[{**step, "token_logprobs": [0, math.nan]}]
            )
    assert len(path.read_text().splitlines()) == 1
    ingest(store, [str(path)])
    got = queries.step_tokens(store, "w", "t0").iloc[0]
    assert got["tokens"] == ["a", " b"] and got["token_logprobs"] == [-0.25, -1.0]


def test_adapter_frames_carry_token_arrays_to_the_store(store: Store) -> None:
    builder = FrameBuilder()
    builder.add(
        traj_id="x", group_id="g", outcome=1.0, steps=[StepRow(action="hi", tokens=["hi"], token_logprobs=[-1.0])]
    )
    builder.add(traj_id="y", group_id="g", outcome=0.0, steps=[StepRow(action="no tokens")])
    rollouts = builder.rollouts(AdapterOptions(), default_run="frames")
    src = SourceInfo("s1", "/logs/f.jsonl", "test", None, "", 1, 0.0, {})
    with store.writer() as cur:
        load_rollouts(cur, src, rollouts, "frames")
    assert queries.step_tokens(store, "frames", "x").iloc[0]["token_logprobs"] == [-1.0]
    assert queries.step_tokens(store, "frames", "y").iloc[0]["tokens"] is None


def test_the_store_refuses_a_frame_whose_token_arrays_disagree(store: Store) -> None:
    # An adapter that skipped core.tokens.token_arrays must still not store a misaligned step.
    builder = FrameBuilder()
    builder.add(traj_id="x", group_id="g", outcome=1.0, steps=[StepRow(action="a b", tokens=["a", " b"])])
    rollouts = builder.rollouts(AdapterOptions(), default_run="frames")
    rollouts.steps["token_logprobs"] = pd.Series([[-1.0]], dtype="object")
    src = SourceInfo("s1", "/logs/f.jsonl", "test", None, "", 1, 0.0, {})
    with pytest.raises(IngestError, match=r"f\.jsonl: trajectory 'x' step 0: token arrays must have one length"):
        with store.writer() as cur:
            load_rollouts(cur, src, rollouts, "frames")
    assert queries.runs_summary(store).empty


def test_a_version_3_database_gains_the_token_columns(tmp_path: Path) -> None:
    path = tmp_path / "v3.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, migration in enumerate(MIGRATIONS[:3], start=1):
        con.execute(migration)
        con.execute("INSERT INTO schema_version VALUES (?)", [version])
    con.execute(
        "INSERT INTO step_rows (run_id, iteration, group_id, traj_id, step_idx, action, outcome, source_id) "
        "VALUES ('old', 0, 'g', 't', 0, 'a', 1.0, 's')"
    )
    con.close()
    store = Store.open(path)
    try:
        got = queries.step_tokens(store, "old", "t")
        assert got["tokens"].tolist() == [None] and got["token_logprobs"].tolist() == [None]
    finally:
        store.close()


def test_sample_environments_log_consistent_token_arrays() -> None:
    for env in ("arithmetic", "tree", "agent"):
        for rec in records(env, prompts=2, iterations=3, group_size=3, seed=4):
            for step in rec["steps"]:
                assert "".join(step["tokens"]) == step["action"]
                assert len(step["tokens"]) == len(step["token_logprobs"]) == len(step["token_entropies"])
                assert all(p <= 0 for p in step["token_logprobs"]) and all(h >= 0 for h in step["token_entropies"])
                if "logp_policy" in step:  # the per-step log-prob is the sum of the token log-probs
                    assert sum(step["token_logprobs"]) == pytest.approx(step["logp_policy"], abs=1e-6)
                    assert sum(step["token_ref_logprobs"]) == pytest.approx(step["logp_ref"], abs=1e-6)


def test_agent_token_logprobs_are_a_distribution_over_actions() -> None:
    world = agent.World("hall")
    best = agent.optimal_actions(world)
    for err in (0.05, 0.3, 0.9):
        total = sum(math.exp(sum(agent.action_tokens(a, best, err)["token_logprobs"])) for a in agent.ALL_ACTIONS)
        assert total == pytest.approx(1.0, abs=1e-5)


def test_synth_runs_load_with_tokens_through_the_fast_path(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "agent.jsonl"
    write_jsonl(path, "agent", prompts=2, iterations=2, group_size=2)
    report = ingest(store, [str(path)])
    assert report.sources[0].fast_path
    coverage = queries.token_coverage(store).iloc[0]
    assert coverage["tokens"] == coverage["token_logprobs"] == coverage["token_entropies"] == coverage["steps"]
