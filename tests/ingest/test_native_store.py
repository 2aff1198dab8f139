"""Native JSONL/Parquet through the store: fast path, validating fallback, atomicity, idempotence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest import runner
from core.ingest.runner import ingest
from core.schema import STEP_COLUMN_NAMES
from core.store import queries
from core.store.database import Store
from core.store.native_jsonl import SAMPLE_RECORDS, FastPathUnavailable
from core.synth import generate_steps, write_jsonl
from core.writer import RolloutWriter


@pytest.fixture
def arith(tmp_path: Path) -> Path:
    path = tmp_path / "arith.jsonl"
    write_jsonl(path, "arithmetic", prompts=3, iterations=4, group_size=4, seed=7)
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _js(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else None


def _steps(store: Store) -> pd.DataFrame:
    return queries.steps(store, with_extra=True).reset_index(drop=True)


def test_native_jsonl_matches_the_generator(store: Store, arith: Path) -> None:
    report = ingest(store, [str(arith)])
    assert report.sources[0].fast_path and report.sources[0].status == "loaded"
    expected = generate_steps("arithmetic", prompts=3, iterations=4, group_size=4, seed=7)
    got = _steps(store)
    assert len(got) == len(expected) == report.n_steps
    merged = got.merge(expected, on=["traj_id", "step_idx"], suffixes=("", "_exp"))
    assert len(merged) == len(expected)
    for col in ("action", "state", "reward", "label", "prm", "value", "outcome", "iteration", "group_id"):
        assert (merged[col] == merged[f"{col}_exp"]).all(), col


def test_fast_path_and_validating_reader_store_the_same_rows(arith: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = _lines(arith)
    records[0]["steps"][0]["logprobs"] = [-0.1, -0.2]  # an extra step key
    records[1]["seed"] = 3  # an extra top-level key
    canonical = {"state", "action", "reward", "label", "node", "parent", "valid", "prm", "value"}
    records[2]["steps"] = [{k: v for k, v in step.items() if k in canonical} for step in records[2]["steps"]]
    _write(arith, records)
    fast = Store.open(":memory:")
    assert ingest(fast, [str(arith)]).sources[0].fast_path

    def refuse(*args: object, **kwargs: object) -> None:
        raise FastPathUnavailable("forced by the test")

    monkeypatch.setattr(runner, "load_native_jsonl", refuse)
    slow = Store.open(":memory:")
    assert not ingest(slow, [str(arith)]).sources[0].fast_path
    a, b = _steps(fast), _steps(slow)
    pd.testing.assert_frame_equal(a.drop(columns="extra"), b.drop(columns="extra"), check_dtype=False)
    assert [_js(x) for x in a["extra"]] == [_js(x) for x in b["extra"]]
    meta = lambda s: queries.trajectories(s, run_id="arithmetic").set_index("traj_id")["meta"].map(json.loads)  # noqa: E731
    assert meta(fast).to_dict() == meta(slow).to_dict()
    assert meta(fast)[records[1]["trajectory"]]["seed"] == 3
    n_steps = lambda s: queries.trajectories(s, run_id="arithmetic").set_index("traj_id")["n_steps"].to_dict()  # noqa: E731
    assert n_steps(fast) == n_steps(slow) == {r["trajectory"]: len(r["steps"]) for r in records}
    assert a.loc[a.traj_id == records[2]["trajectory"], "extra"].isna().all()  # no extra key: no JSON at all
    extra = json.loads(a.loc[(a.traj_id == records[0]["trajectory"]) & (a.step_idx == 0), "extra"].iloc[0])
    assert extra["logprobs"] == [-0.1, -0.2]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r[5]["steps"][1].__setitem__("reward", "abc"),
            r"arith.jsonl:6: steps\[1\]\.reward: expected number, got \"abc\"",
        ),
        (
            lambda r: r[2]["steps"][0].__setitem__("reward", "0.5"),
            r"arith.jsonl:3: steps\[0\]\.reward: expected number",
        ),
        (lambda r: r[3]["steps"][0].pop("action"), r"arith.jsonl:4: steps\[0\]\.action: required field is missing"),
        (lambda r: r[4].pop("outcome"), r"arith.jsonl:5: outcome: required field is missing"),
        (lambda r: r[4].__setitem__("iteration", 1.5), r"arith.jsonl:5: iteration: expected integer, got 1.5"),
        (lambda r: r[4].__setitem__("split", "test"), r"arith.jsonl:5: split: expected 'train' or 'val'"),
        (lambda r: r[4].__setitem__("steps", []), r"arith.jsonl:5: steps: expected a non-empty list"),
        (lambda r: r[6]["steps"][2].__setitem__("valid", "yes"), r"arith.jsonl:7: steps\[2\]\.valid: expected bool"),
        (lambda r: r.append(dict(r[0])), r"arith.jsonl: trajectory id .* occurs more than once"),
    ],
)
def test_bad_records_name_file_line_and_field_and_land_nothing(store: Store, arith: Path, mutate, message) -> None:
    records = _lines(arith)
    mutate(records)
    _write(arith, records)
    with pytest.raises(IngestError, match=message):
        ingest(store, [str(arith)])
    assert queries.steps(store).empty and queries.runs_summary(store).empty


def test_nan_reward_names_the_line(store: Store, arith: Path) -> None:
    text = arith.read_text().splitlines()
    text[8] = text[8].replace('"reward":0.0', '"reward":NaN', 1)
    arith.write_text("\n".join(text) + "\n")
    with pytest.raises(IngestError, match=r"arith.jsonl:9: steps\[0\]\.reward: expected a finite number"):
        ingest(store, [str(arith)])


def test_truncated_and_non_utf8_lines(store: Store, arith: Path) -> None:
    raw = arith.read_bytes().split(b"\n")
    raw[-2] = raw[-2][:40]
    arith.write_bytes(b"\n".join(raw))
    with pytest.raises(IngestError, match=rf"arith.jsonl:{len(raw) - 1}: invalid JSON"):
        ingest(store, [str(arith)])
    raw = [line for line in raw if line]
    raw[2] = raw[2].replace(b"Start", b"St\xffart")
    arith.write_bytes(b"\n".join(raw[:-1]) + b"\n")
    with pytest.raises(IngestError, match=r"arith.jsonl:3: not valid UTF-8"):
        ingest(store, [str(arith)])


def test_one_bad_file_means_the_whole_command_lands_nothing(store: Store, arith: Path, tmp_path: Path) -> None:
    good = tmp_path / "agent.jsonl"
    write_jsonl(good, "agent", prompts=2, iterations=2, group_size=2)
    records = _lines(arith)
    records[1]["outcome"] = "high"
    _write(arith, records)
    with pytest.raises(IngestError, match="arith.jsonl:2: outcome"):
        ingest(store, [str(good), str(arith)])
    assert queries.runs_summary(store).empty
    assert ingest(store, [str(good)]).n_trajectories == 8


def test_reingest_is_idempotent_and_a_changed_file_replaces_its_rows(store: Store, arith: Path, tmp_path: Path) -> None:
    other = tmp_path / "agent.jsonl"
    write_jsonl(other, "agent", prompts=2, iterations=2, group_size=2)
    first = ingest(store, [str(arith), str(other)])
    n_before = len(queries.steps(store))
    again = ingest(store, [str(arith), str(other)])
    assert [s.status for s in again.sources] == ["unchanged", "unchanged"]
    assert len(queries.steps(store)) == n_before
    os.utime(arith, (1, 1))  # touched, same bytes: still unchanged
    assert ingest(store, [str(arith)]).sources[0].status == "unchanged"
    records = _lines(arith)[:-5]
    _write(arith, records)
    replaced = ingest(store, [str(arith)])
    assert replaced.sources[0].status == "replaced"
    assert replaced.n_trajectories == len(records)
    counts = queries.runs_summary(store).set_index("run_id")["trajectories"]
    assert counts["arithmetic"] == len(records)
    assert counts["agent"] == first.sources[1].n_trajectories


def test_same_file_under_two_run_names_is_two_runs(store: Store, arith: Path) -> None:
    ingest(store, [str(arith)], run="a")
    ingest(store, [str(arith)], run="b")
    assert sorted(queries.runs_summary(store)["run_id"]) == ["a", "b"]


def test_key_unseen_while_sampling_is_kept_by_detecting_over_the_whole_file(store: Store, tmp_path: Path) -> None:
    # DuckDB samples the first records to detect the layout; a key first seen after that must not vanish:
    # the refusal makes the load detect the layout over the whole file and read it again.
    path = tmp_path / "many.jsonl"
    rec = {"trajectory": "t", "outcome": 1.0, "steps": [{"action": "a"}]}
    lines = [json.dumps({**rec, "trajectory": f"t{i}"}) for i in range(SAMPLE_RECORDS + 500)]
    lines[-1] = json.dumps({**rec, "trajectory": "late", "steps": [{"action": "a", "token_ids": [1, 2]}]})
    path.write_text("\n".join(lines) + "\n")
    report = ingest(store, [str(path)])
    assert report.sources[0].fast_path and report.n_trajectories == SAMPLE_RECORDS + 500
    extra = queries.steps(store, traj_ids=["late"], with_extra=True)["extra"].iloc[0]
    assert json.loads(extra) == {"token_ids": [1, 2]}


def test_integers_in_the_sample_do_not_round_a_later_decimal(store: Store, tmp_path: Path) -> None:
    # "label": 1 in every sampled record would make DuckDB read labels as integers and round a later 0.5.
    path = tmp_path / "ints.jsonl"
    lines = [
        json.dumps({"trajectory": f"t{i}", "outcome": 1, "steps": [{"action": "a", "label": 1}]})
        for i in range(SAMPLE_RECORDS + 10)
    ]
    lines[-1] = json.dumps({"trajectory": "late", "outcome": 0.25, "steps": [{"action": "a", "label": 0.5}]})
    path.write_text("\n".join(lines) + "\n")
    assert ingest(store, [str(path)]).sources[0].fast_path
    late = queries.steps(store, traj_ids=["late"])
    assert (late["label"].iloc[0], late["outcome"].iloc[0]) == (0.5, 0.25)


@pytest.mark.parametrize(
    ("late", "message"),
    [
        ({"iteration": 1.5}, r"iteration: expected integer, got 1.5"),
        ({"trajectory": ["x"]}, r"trajectory: expected id"),
        ({"outcome": "0.5"}, r"outcome: expected number"),
        ({"outcome": True}, r"outcome: expected number"),
        ({"prompt": 5}, r"prompt: expected text"),
        ({"steps": []}, r"steps: expected a non-empty list"),
        ({"steps": None}, r"steps: expected a non-empty list"),
        ({"steps": "a"}, r"steps: expected a non-empty list"),
        ({"steps": [{"action": "a"}, 5]}, r"steps\[1\]: expected an object"),
        (
            {"steps": [{"action": "a", "label": 7}]},
            r"steps\[0\]\.label: expected a label in \[0, 1\] \(1 good, 0 bad\), got 7",
        ),
    ],
)
def test_late_records_get_the_same_checks_as_early_ones(store: Store, tmp_path: Path, late: dict, message: str) -> None:
    # Past DuckDB's sample, its type conversion would turn these into 2, "['x']", 0.5, 1.0, "5" and keep 7.
    path = tmp_path / "late.jsonl"
    rec = {"iteration": 1, "trajectory": "t", "prompt": "p", "outcome": 1.0, "steps": [{"action": "a", "label": 1.0}]}
    lines = [json.dumps({**rec, "trajectory": f"t{i}"}) for i in range(SAMPLE_RECORDS + 10)]
    lines[-1] = json.dumps({**rec, "trajectory": "late", **late})
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=rf"late\.jsonl:{SAMPLE_RECORDS + 10}: {message}"):
        ingest(store, [str(path)])
    assert queries.runs_summary(store).empty


def test_native_parquet_round_trip(store: Store, tmp_path: Path) -> None:
    frame = generate_steps("tree", prompts=2, iterations=2, group_size=4, seed=3).drop(columns="run_id")
    frame["token_count"] = range(len(frame))  # a non-canonical column must survive in `extra`
    frame.to_parquet(tmp_path / "tree-run.parquet", index=False)
    ingest(store, [str(tmp_path / "tree-run.parquet")])
    got = queries.steps(store, with_extra=True)
    assert set(got["run_id"]) == {"tree-run"} and len(got) == len(frame)
    assert got["node_id"].notna().all()
    merged = got.merge(frame, on=["traj_id", "step_idx"], suffixes=("", "_src"))
    assert (merged["node_id"] == merged["node_id_src"]).all()
    assert (merged["extra"].map(lambda e: json.loads(e)["token_count"]) == merged["token_count"]).all()


def test_writer_output_round_trips_through_the_store(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    with RolloutWriter(path, run="grpo") as w:
        for k in range(3):
            w.write(
                iteration=2,
                group="g0",
                trajectory=f"g0-{k}",
                prompt="2+2?",
                outcome=float(k == 1),
                steps=[
                    {"state": "s0", "action": f"think {k}", "reward": 0.0, "node": "n0", "logprob": -1.5},
                    {"action": "4", "reward": float(k == 1), "parent": "n0", "valid": True, "prm": 0.9},
                ],
            )
    ingest(store, [str(path)])
    got = queries.steps(store, with_extra=True)
    assert set(got["run_id"]) == {"grpo"} and len(got) == 6
    first = got[(got.traj_id == "g0-1")].sort_values("step_idx")
    assert first["action"].tolist() == ["think 1", "4"] and first["outcome"].tolist() == [1.0, 1.0]
    assert first["prm"].iloc[1] == 0.9 and bool(first["valid"].iloc[1]) is True
    assert json.loads(first["extra"].iloc[0]) == {"logprob": -1.5}


def test_sample_runs_exercise_every_column(sample_db_path: Path) -> None:
    s = Store.open(sample_db_path, read_only=True)
    try:
        coverage = queries.column_coverage(s).set_index("run_id")
        full = queries.steps(s)
    finally:
        s.close()
    synthetic = coverage.loc[["arithmetic", "tree", "agent"]]
    for col in ("state", "reward", "node_id", "parent_id", "label", "valid", "prm", "value"):
        assert synthetic[col].sum() > 0, col
    assert full[list(STEP_COLUMN_NAMES)].notna().any().all()
    agent = full[full.run_id == "agent"]
    assert (~agent["valid"].astype(bool)).any() and agent["reward"].ne(0).any()


def test_copying_a_folder_of_sources_plans_each_file_once(store: Store, tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "sample_data" / "runs"
    dst = tmp_path / "runs"
    shutil.copytree(src, dst)
    report = ingest(store, [str(dst), str(dst / "*.jsonl")])
    assert len(report.sources) == len(list(src.iterdir()))


def test_a_huge_record_loads_whole(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    huge = "x" * (17 * 1024 * 1024)  # past read_json's documented 16 MB default object size
    path.write_text(
        json.dumps({"trajectory": "small", "outcome": 0.0, "steps": [{"action": "a"}]})
        + "\n"
        + json.dumps({"trajectory": "huge", "outcome": 1.0, "steps": [{"action": huge}]})
        + "\n"
    )
    report = ingest(store, [str(path)])
    assert report.n_trajectories == 2
    assert queries.steps(store, traj_ids=["huge"])["action"].iloc[0] == huge


def test_logged_logprobs_reach_the_implicit_prm_scheme(store: Store, arith: Path) -> None:
    from core.credit import compute, roc_auc

    ingest(store, [str(arith)])
    steps = queries.steps(store)
    assert steps[["logp_policy", "logp_ref"]].notna().all().all()  # read from `extra`
    adv = compute(steps, "implicit_prm")
    assert roc_auc(adv, steps["label"].to_numpy(dtype=float)) > 0.6


def test_forced_split_applies_to_native_files(store: Store, arith: Path) -> None:
    from core.ingest.base import AdapterOptions

    ingest(store, [str(arith)], options=AdapterOptions(split="val"))
    assert set(queries.trajectories(store, run_id="arithmetic")["split"]) == {"val"}


def test_a_native_jsonl_ingest_imports_neither_pandas_nor_pyarrow(tmp_path: Path, arith: Path) -> None:
    # pandas alone took ~0.9 s of a 1M-step load; the fast path needs no frame at all.
    code = (
        "import sys\n"
        "from core.cli import main\n"
        f"assert main(['ingest', {str(arith)!r}, '--db', {str(tmp_path / 'x.duckdb')!r}, '--quiet']) == 0\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
