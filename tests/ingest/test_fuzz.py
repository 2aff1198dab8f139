"""Property-based fuzzing of the detectors, every adapter and the native reader (issue 11, "A fuzz suite").

The property: any byte string, and any mutation of a valid file (bytes flipped, cut, inserted, removed or
repeated; a JSON value anywhere replaced by another of any type), gives rows or a one-line ``IngestError``,
never another exception; detection answers or declines; and after a failed ingest the database holds
exactly what it held before. Seeds are small slices of the committed fixtures so each example is fast.

Examples are derived from a fixed seed (``derandomize``) so CI runs are reproducible; set
``CREDITSCOPE_FUZZ_EXAMPLES`` to explore more (e.g. 2000) and ``CREDITSCOPE_FUZZ_RANDOM=1`` for fresh
random examples on each run.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._zip_members import read_member
from core.ingest.runner import ingest
from core.store.database import Store

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAMPLE_RUNS = Path(__file__).parent.parent.parent / "sample_data" / "runs"
EXAMPLES = int(os.environ.get("CREDITSCOPE_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("CREDITSCOPE_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Seed:
    """A valid source: the fixture folder to copy (companions included), the file in it, and how to trim it."""

    fmt: str
    folder: Path
    name: str
    keep_records: int | None = None  # JSONL: keep this many records
    max_list: int | None = None  # JSON: cut long lists to this many items (keeps big fixtures small)


SEEDS = [
    Seed("verl", FIXTURES / "verl", "2.jsonl", keep_records=3),
    Seed("verl_agent", FIXTURES / "verl_agent", "4.jsonl", keep_records=6),
    Seed("trl", FIXTURES / "trl", "completions/completions_00010.parquet"),
    Seed("rl_logging_board", FIXTURES / "rl_logging_board", "eval_poem_task_data.jsonl", keep_records=4),
    Seed("verifiers", FIXTURES / "verifiers", "wordle--gpt-5-mini--019a631c.results.jsonl", keep_records=3),
    Seed("prime_rl", FIXTURES / "prime_rl", "rollouts/step_3/train/all/traces.jsonl", keep_records=2),
    Seed("openai_messages", FIXTURES / "openai_messages", "rollouts.jsonl"),
    Seed("inspect", FIXTURES / "inspect_ai" / "current", "react_agent-eval.eval"),
    Seed("inspect", FIXTURES / "inspect_ai" / "current", "qa_epochs-json.json"),
    Seed("tinker", FIXTURES / "tinker", "run/iteration_000000/train_rollout_summaries.jsonl"),
    Seed(
        "rllm",
        FIXTURES / "rllm",
        "logs/demo/solver-exp/episodes/train_step_4_epoch_0/episode_hashab12cd34_idtask-17_1.json",
    ),
    Seed("skyrl", FIXTURES / "skyrl", "export/dumped_evals/global_step_10_evals/openai_gsm8k.jsonl", keep_records=3),
    Seed("areal", FIXTURES / "areal", "logs/user/gsm8k-grpo/trial0/rollout/3/q17.jsonl"),
    Seed("roll", FIXTURES / "roll", "rlvr/rollout_dump_data.step_7.jsonl"),
    Seed("prm800k", FIXTURES / "prm800k", "samples_prm800k.jsonl", keep_records=2),
    Seed("processbench", FIXTURES / "processbench", "gsm8k_sample.json"),
    Seed("math_shepherd", FIXTURES / "math_shepherd", "samples_math-shepherd.jsonl", keep_records=3),
    Seed("omegaprm", FIXTURES / "omegaprm", "samples_math-aps.jsonl", keep_records=2),
    Seed("treerl", FIXTURES / "treerl", "output_8_4_2_2.jsonl", keep_records=1, max_list=3),
    Seed("swe_agent", FIXTURES / "agent_trajectories", "swe-agent_pydicom__pydicom-1458.traj", max_list=3),
    Seed("agentgym", FIXTURES / "agent_trajectories", "agentgym-mcp_trajectories.json"),
    Seed("native", SAMPLE_RUNS, "agent.jsonl", keep_records=3),
]
IDS = [f"{seed.fmt}:{Path(seed.name).suffix}" for seed in SEEDS]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _trim(value: Any, max_list: int) -> Any:
    if isinstance(value, list):
        return [_trim(item, max_list) for item in value[:max_list]]
    if isinstance(value, dict):
        return {key: _trim(item, max_list) for key, item in value.items()}
    return value


def _seed_bytes(seed: Seed) -> bytes:
    data = (seed.folder / seed.name).read_bytes()
    if seed.keep_records is not None:
        lines = [line for line in data.split(b"\n") if line.strip()][: seed.keep_records]
        if seed.max_list is not None:
            lines = [json.dumps(_trim(json.loads(line), seed.max_list)).encode() for line in lines]
        return b"\n".join(lines) + b"\n"
    if seed.max_list is not None:
        return json.dumps(_trim(json.loads(data), seed.max_list)).encode()
    return data


class Workspace(dict):
    """Per seed index: the path of the file to mutate (in a private copy of its folder) and its valid bytes."""

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"<fuzz workspace of {len(self)} seeds>"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    """Per seed: a private copy of its fixture folder, the path of the file to mutate, and its valid bytes."""
    root = tmp_path_factory.mktemp("fuzz")
    prepared = Workspace()
    for index, seed in enumerate(SEEDS):
        folder = root / str(index)
        if seed.folder == SAMPLE_RUNS:
            folder.mkdir()
            shutil.copy(seed.folder / seed.name, folder / seed.name)
        else:
            shutil.copytree(seed.folder, folder, ignore=shutil.ignore_patterns("*.py", "*.md"))
        prepared[index] = (folder / seed.name, _seed_bytes(seed))
    return prepared


# ---- mutations ---------------------------------------------------------------------------------


def _mutate_json_value(value: Any, data: st.DataObject) -> Any:
    """Replace one value somewhere inside ``value`` (chosen by walking down) with an arbitrary JSON value."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value, key=str)))
        return {**value, key: _mutate_json_value(value[key], data)}
    if isinstance(value, list) and value and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(value) - 1))
        return [*value[:index], _mutate_json_value(value[index], data), *value[index + 1 :]]
    return data.draw(JSON_VALUES)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _mutate_records(raw: bytes, data: st.DataObject) -> bytes:
    """Mutate one JSON value inside a JSONL record or a JSON document; bytes that are not JSON are returned as is."""
    lines = raw.split(b"\n")
    candidates = [i for i, line in enumerate(lines) if line.strip()]
    try:
        if len(candidates) > 1:
            index = data.draw(st.sampled_from(candidates))
            lines[index] = _dumps(_mutate_json_value(json.loads(lines[index]), data))
            return b"\n".join(lines)
        return _dumps(_mutate_json_value(json.loads(raw), data))
    except (ValueError, RecursionError):
        return raw


def _mutate_zip_member(raw: bytes, path: Path, data: st.DataObject) -> bytes:
    """Mutate a JSON value inside one member of a zip and write it back (deflate)."""
    import io

    with zipfile.ZipFile(io.BytesIO(raw)) as archive:  # Zstandard members: read them as the adapter does
        members = {info.filename: read_member(archive, info, path) for info in archive.infolist()}
    name = data.draw(st.sampled_from(sorted(members)))
    members[name] = _mutate_records(members[name], data)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return out.getvalue()


def _mutate_bytes(raw: bytes, data: st.DataObject) -> bytes:
    buffer = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "delete", "repeat"]))
        at = data.draw(st.integers(0, max(len(buffer) - 1, 0)))
        if kind == "flip" and buffer:
            buffer[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "cut":
            del buffer[at:]
        elif kind == "insert":
            buffer[at:at] = data.draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\n", b"{", b'"', b"\xff"]))
        elif kind == "delete":
            del buffer[at : at + data.draw(st.integers(1, 64))]
        elif kind == "repeat":
            buffer[at:at] = buffer[at : at + data.draw(st.integers(1, 256))]
    return bytes(buffer)


def _mutant(raw: bytes, path: Path, data: st.DataObject) -> bytes:
    if data.draw(st.booleans()):
        if path.suffix == ".eval":
            return _mutate_zip_member(raw, path, data)
        if path.suffix != ".parquet":
            return _mutate_records(raw, data)
    return _mutate_bytes(raw, data)


# ---- the properties ----------------------------------------------------------------------------


def _read_or_refuse(module, path: Path) -> Rollouts | IngestError:
    try:
        return module.read(path, AdapterOptions())
    except IngestError as exc:
        assert "\n" not in str(exc), f"error is not one line: {exc!r}"
        assert str(path) in str(exc)
        return exc


def test_every_seed_is_valid_and_read_by_its_adapter(workspace):
    for index, seed in enumerate(SEEDS):
        path, raw = workspace[index]
        path.write_bytes(raw)
        assert registry.detect(path).NAME == seed.fmt, seed
        rollouts = registry.get(seed.fmt).read(path, AdapterOptions())
        assert len(rollouts.trajectories) > 0, seed


@pytest.mark.parametrize("index", range(len(SEEDS)), ids=IDS)
@FUZZ
@given(data=st.data())
def test_a_mutated_file_gives_rows_or_a_one_line_ingest_error(workspace, index, data):
    path, raw = workspace[index]
    path.write_bytes(_mutant(raw, path, data))
    _read_or_refuse(registry.get(SEEDS[index].fmt), path)


@pytest.mark.parametrize(
    "name", ["x.jsonl", "results.jsonl", "x.json", "x.eval", "x.traj", "x.parquet", "step_3.jsonl", "data.jsonl"]
)
@FUZZ
@given(content=st.binary(max_size=512) | st.builds(lambda v: _dumps(v) + b"\n", JSON_VALUES))
def test_any_bytes_are_detected_or_declined_and_read_or_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    head = registry.read_head(path)
    for module in registry.adapters():
        reason = module.detect(path, head)  # a detector must never raise
        assert reason is None or isinstance(reason, str), module.NAME
    try:
        module = registry.detect(path)
    except IngestError:
        return
    _read_or_refuse(module, path)


def _snapshot(store: Store) -> tuple:
    """Everything an ingest writes, in a comparable form (a failed ingest must not even touch timestamps)."""
    tables = ("runs", "sources", "trajectories", "step_rows")
    return tuple(
        sorted(map(tuple, store.query_df(f"SELECT * FROM {table}").astype(str).values.tolist())) for table in tables
    )


# Formats whose ingest path differs most: the native reader (DuckDB fast path and its Python fallback),
# a line-oriented adapter, a zip container and a parquet reader.
DB_SEEDS = [i for i, seed in enumerate(SEEDS) if seed.fmt in ("native", "verl", "inspect", "trl")]


@pytest.fixture(scope="module")
def stores():
    """One store per seed, holding another seed's rows; replaced only after a mutant loaded (and changed it)."""
    opened: dict[int, Store] = {}
    yield opened
    for store in opened.values():
        store.close()


@pytest.mark.parametrize("index", DB_SEEDS, ids=[IDS[i] for i in DB_SEEDS])
@FUZZ
@given(data=st.data())
def test_a_failed_ingest_leaves_the_database_as_it_was(workspace, stores, index, data):
    path, raw = workspace[index]
    if index not in stores:
        other = SEEDS[(index + 1) % len(SEEDS)]
        other_path, other_raw = workspace[(index + 1) % len(SEEDS)]
        other_path.write_bytes(other_raw)
        stores[index] = Store.open(":memory:")
        ingest(stores[index], [str(other_path)], fmt=other.fmt)
    store = stores[index]
    before = _snapshot(store)
    path.write_bytes(_mutant(raw, path, data))
    try:
        ingest(store, [str(path)], fmt=SEEDS[index].fmt)
    except IngestError as exc:
        assert "\n" not in str(exc)
        assert _snapshot(store) == before
    else:  # the mutant loaded: start the next example from a fresh database
        stores.pop(index).close()


def test_an_error_quoting_a_multi_line_library_message_stays_one_line():
    error = IngestError(
        "x.parquet", "cannot read parquet (Couldn't deserialize thrift\nDeserializing failed.\n)", 3, "a\nb"
    )
    assert str(error) == "x.parquet:3: a b: cannot read parquet (Couldn't deserialize thrift Deserializing failed. )"
