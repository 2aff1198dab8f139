"""``rescore --engine ray`` on a local 2-CPU Ray instance with the demo PRM: same scores and cache rows as the local
engine, incremental, resumable after Ctrl-C or a killed driver, and complete after an actor is killed mid-job."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray

from core.cli import main
from core.ingest.runner import ingest
from core.prm import ray_engine
from core.prm.checks import PrmRefused
from core.prm.loading import build_spec, spec_is_prefix_causal
from core.prm.ray_engine import RayOptions, fill_cache
from core.prm.rescore import Scope, load_trajectories, rescore
from core.prm.types import step_content_hashes
from core.store.database import Store
from core.synth import write_jsonl

DEMO = str(Path(__file__).resolve().parents[2] / "sample_data" / "models" / "demo-prm")
RUN = "arith"
SMALL_BLOCKS = RayOptions(workers=2, batch_trajectories=4)
ONE_WORKER = RayOptions(workers=1, batch_trajectories=4)  # each actor start imports torch: keep the tests' count low


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance with 2 CPUs for the module (joined by rescore and by the CLI subprocesses)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _db(folder: Path, prompts: int = 3, iterations: int = 2, group_size: int = 4) -> Path:
    source = folder / "arithmetic.jsonl"
    write_jsonl(source, "arithmetic", prompts=prompts, iterations=iterations, group_size=group_size, seed=3)
    db = folder / "runs.duckdb"
    store = Store.open(db)
    ingest(store, [str(source)], run=RUN)
    store.close()
    return db


def _cache(store: Store, scorer_id: str) -> pd.DataFrame:
    with store.reader() as cur:
        return cur.execute(
            "SELECT content_hash, score, truncated FROM prm_cache WHERE scorer_id = ? ORDER BY content_hash",
            [scorer_id],
        ).df()


def _step_scores(store: Store) -> pd.DataFrame:
    with store.reader() as cur:
        return cur.execute("SELECT * FROM prm_step_scores ORDER BY ALL").df()


def _hashes(store: Store) -> dict[str, list[str]]:
    spec = build_spec(DEMO, "token-cls")
    _, ids, trajectories = load_trajectories(store, RUN, Scope())
    prefix_only = spec_is_prefix_causal(spec)
    return {i: step_content_hashes(t, prefix_only=prefix_only) for i, t in zip(ids, trajectories, strict=True)}


def _never_load():
    raise AssertionError("every step should come from the cache")


def _actor_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"MapWorker(MapBatches(ScoringActor))" in title:
                pids.append(int(entry))
    return pids


def test_ray_equals_the_local_engine_even_when_an_actor_is_killed_mid_job(ray_address, tmp_path):
    (tmp_path / "ray").mkdir()
    (tmp_path / "local").mkdir()
    by_ray = Store.open(_db(tmp_path / "ray", prompts=4, iterations=4))
    by_local = Store.open(_db(tmp_path / "local", prompts=4, iterations=4))
    spec = build_spec(DEMO, "token-cls")
    killed: list[int] = []

    def kill_an_actor(done: int, total: int) -> None:
        if not killed and done < total:
            pid = max(_actor_pids())  # the newest actor process, busy with the blocks queued on it
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    fill = fill_cache(
        by_ray,
        spec,
        RUN,
        Scope(),
        prefix_only=spec_is_prefix_causal(spec),
        options=SMALL_BLOCKS,
        device="cpu",
        load_options={},
        progress=kill_an_actor,
    )
    assert killed and not Path(f"/proc/{killed[0]}").exists()
    hashes = _hashes(by_ray)
    assert fill.n_results == fill.n_trajectories_sent == len(hashes)  # each trajectory came back and was cached once
    assert fill.workers and all(":" in w for w in fill.workers)

    # The rescore itself finds everything cached (no second Ray job) and places the scores on the steps.
    ray_report = rescore(by_ray, run_id=RUN, model=DEMO, family="token-cls", engine="ray", ray_options=SMALL_BLOCKS)
    local_report = rescore(by_local, run_id=RUN, model=DEMO, family="token-cls", device="cpu")
    assert (ray_report.n_trajectories_sent, ray_report.model_loaded) == (0, False)
    assert ray_report.scorer_id == local_report.scorer_id and local_report.n_scored == local_report.n_steps > 0

    ray_cache, local_cache = _cache(by_ray, spec.scorer_id), _cache(by_local, spec.scorer_id)
    assert ray_cache["content_hash"].is_unique and ray_cache["score"].notna().all()
    assert ray_cache["content_hash"].tolist() == local_cache["content_hash"].tolist()  # identical cache rows
    assert ray_cache["truncated"].tolist() == local_cache["truncated"].tolist()
    assert np.abs(ray_cache["score"].to_numpy() - local_cache["score"].to_numpy()).max() < 1e-5
    ray_steps, local_steps = _step_scores(by_ray), _step_scores(by_local)
    assert ray_steps.drop(columns="score").equals(local_steps.drop(columns="score"))
    assert np.abs(ray_steps["score"].to_numpy() - local_steps["score"].to_numpy()).max() < 1e-5

    # The local engine's cache is a hit for the ray engine too: no model, no Ray job.
    again = rescore(by_local, run_id=RUN, model=DEMO, family="token-cls", engine="ray", ray_options=SMALL_BLOCKS)
    assert (again.n_scored, again.n_trajectories_sent, again.workers, again.model_loaded) == (0, 0, [], False)
    again_local = rescore(by_ray, run_id=RUN, model=DEMO, family="token-cls", device="cpu", load=_never_load)
    assert again_local.n_scored == 0
    by_ray.close()
    by_local.close()


def _complete_only(store: Store, scorer_id: str) -> tuple[set[str], set[str]]:
    """Check that every cached step belongs to a fully cached trajectory; return (complete, incomplete) ids."""
    hashes = _hashes(store)
    cached = set(_cache(store, scorer_id)["content_hash"])
    complete = {t for t, hs in hashes.items() if set(hs) <= cached}
    explained = {h for t in complete for h in hashes[t]}
    assert cached == explained, "a cached step whose trajectory is not completely cached"
    return complete, set(hashes) - complete


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["driver-killed", "ctrl-c"])
def test_a_stopped_job_leaves_whole_trajectories_and_a_rerun_scores_only_the_rest(ray_address, tmp_path, stop):
    db = _db(tmp_path, prompts=6, iterations=6, group_size=8)
    argv = [sys.executable, "-m", "core.cli", "rescore", "--db", str(db), "--run", RUN, "--model", DEMO]
    argv += ["--family", "token-cls", "--engine", "ray", "--address", ray_address, "--workers", "2", "--device", "cpu"]
    argv += ["--batch-trajectories", "4"]  # many small blocks, each its own transaction
    driver = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    seen = ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and driver.poll() is None:
        seen += driver.stderr.read(1)
        counts = re.findall(r"\| *(\d+)/(\d+) \[", seen)
        if counts and 0 < int(counts[-1][0]) < int(counts[-1][1]):
            break  # the bar shows scored steps: some blocks are cached, others are not yet
    driver.send_signal(stop)
    _, rest = driver.communicate(timeout=60)
    if stop == signal.SIGINT:
        assert driver.returncode == 130, rest[-3000:]
        assert rest.strip().splitlines()[-1].startswith("creditscope: interrupted;")
    else:
        assert driver.returncode == -signal.SIGKILL, rest[-3000:]

    store = Store.open(db)
    scorer_id = build_spec(DEMO, "token-cls").scorer_id
    complete, incomplete = _complete_only(store, scorer_id)
    assert complete and incomplete, "stop the job in the middle"
    if stop == signal.SIGINT:
        store.close()
        return  # finishing the rest is the same as after a killed driver, checked once
    cached_before = set(_cache(store, scorer_id)["content_hash"])
    hashes = _hashes(store)
    rerun = rescore(store, run_id=RUN, model=DEMO, family="token-cls", engine="ray", ray_options=ONE_WORKER)
    assert rerun.n_trajectories_sent == len(incomplete)  # incremental: nothing complete is sent again
    assert rerun.n_scored == sum(1 for t in incomplete for h in hashes[t] if h not in cached_before)
    assert _complete_only(store, scorer_id)[1] == set()
    store.close()


def test_a_refusal_on_the_workers_reaches_the_driver_in_one_line_and_nothing_is_written(ray_address, tmp_path):
    store = Store.open(_db(tmp_path))
    with pytest.raises(PrmRefused, match=r"lm_head\.weight") as refused:
        rescore(store, run_id=RUN, model=DEMO, family="shepherd", engine="ray", ray_options=ONE_WORKER)
    assert "\n" not in str(refused.value)
    assert store.query_df("SELECT count(*) AS n FROM prm_cache")["n"].iloc[0] == 0
    assert store.query_df("SELECT count(*) AS n FROM prm_active")["n"].iloc[0] == 0
    store.close()


def test_a_pool_bigger_than_the_cluster_is_refused_instead_of_hanging(ray_address, tmp_path):
    store = Store.open(_db(tmp_path))
    with pytest.raises(PrmRefused, match=r"3 workers x 1 CPUs need more than the cluster's 2 CPUs"):
        rescore(
            store,
            run_id=RUN,
            model=DEMO,
            family="token-cls",
            engine="ray",
            ray_options=RayOptions(workers=3, cpus_per_worker=1),
        )
    store.close()


def test_without_ray_installed_the_ray_engine_is_one_line(tmp_path, monkeypatch, capsys):
    db = _db(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    argv = ["rescore", "--db", str(db), "--run", RUN, "--model", DEMO, "--family", "token-cls", "--engine", "ray"]
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--engine ray needs Ray Data, which is not installed here" in lines[0]
    assert "pip install -e '.[ray]'" in lines[0]


def test_ray_options_without_the_ray_engine_are_refused(tmp_path, capsys):
    argv = ["rescore", "--db", str(_db(tmp_path)), "--run", RUN, "--model", DEMO, "--family", "token-cls"]
    assert main([*argv, "--workers", "2", "--address", "auto", "--batch-trajectories", "8"]) == 2
    assert "--address, --workers, --batch-trajectories only apply with --engine ray" in capsys.readouterr().err


def test_fractional_cpus_are_the_default():
    assert RayOptions().cpus_per_worker == ray_engine.DEFAULT_CPUS_PER_WORKER < 1
    with pytest.raises(PrmRefused, match="--workers must be at least 1"):
        RayOptions(workers=0)


def test_the_rescore_page_scores_on_ray_with_the_same_results(ray_address, tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    db = _db(tmp_path)
    monkeypatch.setenv("CREDITSCOPE_DB", str(db))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py"), default_timeout=180)
    at.query_params["run"] = RUN
    at.run()
    at.switch_page("app_pages/rescore.py").run()
    at.radio(key="prm_engine").set_value("ray").run()
    assert at.number_input(key="prm_cpus").value == ray_engine.DEFAULT_CPUS_PER_WORKER
    at.number_input(key="prm_workers").set_value(1)
    at.selectbox(key="prm_device").set_value("cpu")
    at.button(key="prm_rescore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from dashboard import resources as res

    store = res.get_store(str(db))
    n_steps = len(store.query_df("SELECT 1 FROM steps"))
    assert at.status[0].label == f"Rescored {n_steps} steps"
    assert "on Ray (" in next(c.value for c in at.caption if "scored by the model" in c.value)
    shown = store.query_df("SELECT prm FROM steps ORDER BY traj_id, step_idx")["prm"].to_numpy()
    _, _, trajectories = load_trajectories(store, RUN, Scope())
    from core.prm.scorer import Scorer

    expected = Scorer.load(DEMO, "token-cls", device="cpu").score(trajectories)
    assert np.abs(shown - np.array([s for t in expected for s in t.scores])).max() < 1e-5
    st.cache_resource.clear()
