"""Logs written by the current Inspect release (Zstandard .eval members, react() submit) and .eval safety limits.

Fixtures: tests/fixtures/inspect_ai/current, written by make_fixtures.py there through Inspect's own eval().
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions
from core.ingest.formats import inspect
from core.ingest.runner import ingest
from core.store.database import Store
from tests.ingest.zip_builder import RawMember, write_zip, zstd_member, zstd_stream_member

CURRENT = Path(__file__).parent.parent / "fixtures" / "inspect_ai" / "current"
REPO = Path(__file__).parent.parent.parent


def _canonical(path: Path):
    """The rollouts of one log with the file stem taken out of the ids (the two containers differ only there)."""
    module = registry.detect(path)
    assert module is inspect
    rollouts = module.read(path, AdapterOptions())
    trajectories = rollouts.trajectories.assign(traj_id=rollouts.trajectories["traj_id"].str.replace(path.stem, ""))
    steps = rollouts.steps.assign(traj_id=rollouts.steps["traj_id"].str.replace(path.stem, ""))
    trajectories = trajectories[["traj_id", "group_id", "outcome", "iteration", "split", "prompt"]]
    steps = steps[["traj_id", "step_idx", "state", "action"]]
    return trajectories.sort_values("traj_id").reset_index(drop=True), steps.sort_values(["traj_id", "step_idx"])


def test_fixtures_come_from_the_current_release_with_zstandard_members():
    assert (CURRENT / "VERSION").read_text().startswith("inspect_ai 0.3.")
    for name in ("qa_epochs-eval.eval", "react_agent-eval.eval"):
        with zipfile.ZipFile(CURRENT / name) as archive:
            assert {info.compress_type for info in archive.infolist()} == {93}


@pytest.mark.parametrize("task", ["qa_epochs", "react_agent"])
def test_eval_and_json_logs_load_the_same_trajectories_groups_steps_and_outcomes(task):
    eval_trajectories, eval_steps = _canonical(CURRENT / f"{task}-eval.eval")
    json_trajectories, json_steps = _canonical(CURRENT / f"{task}-json.json")
    assert eval_trajectories.equals(json_trajectories)
    assert eval_steps.reset_index(drop=True).equals(json_steps.reset_index(drop=True))


def test_qa_epochs_are_rollouts_of_one_group_per_sample():
    trajectories, _ = _canonical(CURRENT / "qa_epochs-eval.eval")
    assert trajectories.groupby("group_id").size().to_dict() == {"q0": 2, "q1": 2, "q2": 2}
    by_epoch = trajectories.assign(epoch=trajectories["traj_id"].str[-1]).groupby("epoch")["outcome"].mean()
    assert by_epoch.to_dict() == {"1": 1.0, "2": 0.0}  # the scripted model is right on epoch 1 only


@pytest.mark.parametrize("suffix", [".eval", ".json"])
def test_the_react_agents_final_submit_is_the_last_step(suffix):
    path = CURRENT / f"react_agent-{suffix[1:]}{suffix}"
    rollouts = inspect.read(path, AdapterOptions())
    assert len(rollouts.trajectories) == 4
    for traj_id, steps in rollouts.steps.groupby("traj_id"):
        steps = steps.sort_values("step_idx")
        assert len(steps) == 2, traj_id
        first, last = steps.iloc[0], steps.iloc[-1]
        assert '[tool_call] add({"x":' in first["action"]
        assert '[tool_call] submit({"answer":' in last["action"]
        submit = __import__("json").loads(last["extra"])["final_submit"]
        assert submit["function"] == "submit" and submit["source"] == "events"
        assert submit["result"] == submit["arguments"]["answer"]
        outcome = rollouts.trajectories.set_index("traj_id").loc[traj_id, "outcome"]
        expected = str(sum((19, 23) if "/a0/" in traj_id else (100, 1)))
        assert outcome == (1.0 if submit["arguments"]["answer"] == expected else 0.0)


def _header() -> RawMember:
    return zstd_member("header.json", b'{"version": 2, "status": "success", "eval": {"task": "t", "model": "m"}}')


def _sample(name: str = "samples/1_epoch_1.json") -> RawMember:
    payload = b'{"id": 1, "epoch": 1, "messages": [{"role": "assistant", "content": "hi"}], "scores": {}}'
    return zstd_member(name, payload)


def test_an_unsupported_compression_method_is_one_line_naming_file_member_and_method(tmp_path):
    good = _sample()
    ppmd = RawMember("samples/2_epoch_1.json", 98, b"\x00" * 10, 40, 0)
    path = write_zip(tmp_path / "odd.eval", [_header(), good, ppmd])
    with pytest.raises(IngestError) as caught:
        inspect.read(path, AdapterOptions())
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "samples/2_epoch_1.json" in message and "compression method 98 (ppmd)" in message


def test_corrupt_zstandard_data_and_a_bad_crc_are_errors_naming_the_member(tmp_path):
    garbage = RawMember("samples/1_epoch_1.json", 93, b"not zstandard at all", 50, 0)
    path = write_zip(tmp_path / "garbage.eval", [_header(), garbage])
    with pytest.raises(IngestError, match="corrupt Zstandard data") as caught:
        inspect.read(path, AdapterOptions())
    assert caught.value.record == "samples/1_epoch_1.json"
    good = _sample()
    bad_crc = RawMember(good.name, 93, good.data, good.size, good.crc ^ 1)
    path = write_zip(tmp_path / "crc.eval", [_header(), bad_crc])
    with pytest.raises(IngestError, match="CRC-32") as caught:
        inspect.read(path, AdapterOptions())


def test_a_mixed_archive_reads_each_member_with_its_own_method(tmp_path):
    payload = b'{"id": 2, "epoch": 1, "messages": [{"role": "assistant", "content": "yo"}], "scores": {}}'
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = compressor.compress(payload) + compressor.flush()
    deflate = RawMember("samples/2_epoch_1.json", 8, deflated, len(payload), zlib.crc32(payload))
    stored = RawMember("samples/3_epoch_1.json", 0, payload.replace(b'"id": 2', b'"id": 3'), len(payload), 0)
    stored.crc = zlib.crc32(stored.data)
    path = write_zip(tmp_path / "mixed.eval", [_header(), _sample(), deflate, stored])
    rollouts = inspect.read(path, AdapterOptions())
    assert sorted(rollouts.trajectories["group_id"]) == ["1", "2", "3"]


def test_a_failed_ingest_changes_nothing_in_the_database(tmp_path):
    store = Store.open(tmp_path / "runs.duckdb")
    try:
        ingest(store, [str(CURRENT / "qa_epochs-eval.eval")])
        before = store.query_df("SELECT traj_id, outcome FROM trajectories ORDER BY traj_id")
        ppmd = RawMember("samples/2_epoch_1.json", 98, b"\x00" * 10, 40, 0)
        bad = write_zip(tmp_path / "bad.eval", [_header(), _sample(), ppmd])
        with pytest.raises(IngestError, match="ppmd"):
            ingest(store, [str(CURRENT / "react_agent-eval.eval"), str(bad)])
        after = store.query_df("SELECT traj_id, outcome FROM trajectories ORDER BY traj_id")
        assert after.equals(before)
    finally:
        store.close()


def test_size_limits_are_configurable_and_named_in_the_error(tmp_path):
    path = CURRENT / "react_agent-eval.eval"
    with pytest.raises(IngestError, match="per-member limit of 0 MiB .*--max-member-mb"):
        inspect.read(path, AdapterOptions(extra={"max_member_mb": 0.01}))
    with pytest.raises(IngestError, match="per-file limit .*--max-archive-mb"):
        inspect.read(path, AdapterOptions(extra={"max_archive_mb": 0.05}))
    with pytest.raises(IngestError, match="positive number"):
        inspect.read(path, AdapterOptions(extra={"max_member_mb": -1}))


def _bomb(tmp_path: Path, *, lie: bool) -> Path:
    """8 sample members of 200 MB each (a 200 MB string in each), compressed to a few KB apiece."""
    member = zstd_stream_member(
        "samples/1_epoch_1.json",
        b'{"id": 1, "epoch": 1, "messages": [{"role": "assistant", "content": "',
        b"A" * (1 << 20),
        200,
        b'"}], "scores": {}}',
    )
    members = [_header()]
    for k in range(8):
        declared = 1000 if lie else member.size
        members.append(RawMember(f"samples/{k}_epoch_1.json", 93, member.data, declared, member.crc))
    return write_zip(tmp_path / ("liar.eval" if lie else "bomb.eval"), members)


def _ingest_in_a_child(path: Path, db: Path) -> tuple[int, str, float]:
    """Run `creditscope ingest` in a fresh process; return its exit status, stderr and peak memory in MB."""
    code = (
        "import re, sys\n"
        "from core.cli import main\n"
        f"status = main(['ingest', {str(path)!r}, '--db', {str(db)!r}, '--quiet'])\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (v)forking parent, so a child of
        # a large pytest process would report the parent's size.
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print(int(hwm) / 1024, file=sys.stdout)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    return done.returncode, done.stderr.strip(), float(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("lie", [False, True], ids=["declared", "lying-headers"])
def test_a_zip_bomb_is_refused_in_little_memory(tmp_path, lie):
    path = _bomb(tmp_path, lie=lie)
    assert path.stat().st_size < 300_000  # expands to 8 x 200 MB = 1.6 GB
    status, stderr, peak_mb = _ingest_in_a_child(path, tmp_path / "runs.duckdb")
    assert status == 2 and len(stderr.splitlines()) == 1, stderr
    if lie:
        assert "samples/0_epoch_1.json: member expands beyond its declared size" in stderr
    else:
        assert "1.7 GB, over the per-file limit of 1024 MiB (raise it with --max-archive-mb)" in stderr
    assert peak_mb < 300, peak_mb


def test_logged_token_logprobs_become_token_columns(tmp_path):
    """Inspect logs logprobs when a task asks for them: ``logprobs.content[{token, logprob, top_logprobs}]``."""
    document = json.loads((CURRENT / "react_agent-json.json").read_text())
    sample = document["samples"][0]
    model_events = [event for event in sample["events"] if event["event"] == "model"]
    first = model_events[0]["output"]["choices"][0]
    first["logprobs"] = {
        "content": [
            {"token": "Let", "logprob": -0.1, "top_logprobs": [{"token": "I", "logprob": -2.5}]},
            {"token": " me", "logprob": -0.2, "top_logprobs": []},
        ]
    }
    path = tmp_path / "with_logprobs.json"
    path.write_text(json.dumps(document))
    steps = inspect.read(path, AdapterOptions()).steps
    step = steps[steps["traj_id"] == "with_logprobs/a0/epoch1"].iloc[0]
    assert step["tokens"] == ["Let", " me"] and step["token_logprobs"] == [-0.1, -0.2]
    assert json.loads(step["extra"])["logprobs"] == {"top_logprobs": [[{"token": "I", "logprob": -2.5}], []]}
    first["logprobs"]["content"][1]["logprob"] = None
    path.write_text(json.dumps(document))
    with pytest.raises(IngestError, match="token_logprobs\\[1\\]"):
        inspect.read(path, AdapterOptions())
