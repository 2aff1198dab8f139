"""Every real trainer log loads end to end with ``--format auto``, with the counts its source holds.

The real logs live in ``../shared/real_logs`` (provenance in its SOURCES.md); byte-identical copies are the
test fixtures, so this suite also runs where that folder is absent. Each file goes through the real ingest
command (format detection, adapter, store) and the database must then hold exactly the trajectories and
steps stated below. Each stated count says how it was derived from the source; where the rule is a
one-liner it is derived again here from the raw file, and the adapter tests named derive the others.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.cli import main
from core.ingest import registry
from core.ingest.runner import ingest
from core.store.database import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHARED_REAL_LOGS = Path(__file__).resolve().parents[3] / "shared" / "real_logs"


@dataclass(frozen=True)
class RealLog:
    """A real log's fixture copy, the format that must detect it, and what its source holds."""

    fixture: str
    format: str
    trajectories: int
    steps: int
    derivation: str


REAL_LOGS: tuple[RealLog, ...] = (
    RealLog("agent_trajectories/agentgym-mcp_trajectories.json", "agentgym", 3, 11, "3 episodes, 11 transitions"),
    RealLog("agent_trajectories/swe-agent_pydicom__pydicom-1458.traj", "swe_agent", 1, 12, "12 trajectory[] entries"),
    RealLog(
        "inspect_ai/2025-02-11T15-17-00-05-00_popularity_dPiJifoWeEQBrfWsAopzWr.eval",
        "inspect",
        10,
        10,
        "10 samples x 1 epoch, one assistant message each",
    ),
    RealLog(
        "inspect_ai/2025-05-12T20-27-36-04-00_browser.json",
        "inspect",
        1,
        5,
        "1 sample; 5 of its 10 messages are assistant",
    ),
    RealLog(
        "inspect_ai/2025-09-23T08-09-58-04-00_security-guide_LuxZJVwvymC3S3SyoJczxB.eval",
        "inspect",
        16,
        16,
        "16 samples, one assistant message each",
    ),
    RealLog("inspect_ai/metr_oxdna_simple_small.eval", "inspect", 6, 76, "6 epochs; 76 assistant messages in all"),
    RealLog("math_shepherd/samples_math-shepherd.jsonl", "math_shepherd", 7, 25, "7 lines; 25 'ки' step tags"),
    RealLog(
        "omegaprm/samples_math-aps-tree.jsonl",
        "omegaprm",
        242,
        624,
        "137+85+20 tree leaves; steps = sum of leaf depths",
    ),
    RealLog(
        "omegaprm/samples_math-aps.jsonl",
        "omegaprm",
        124,
        290,
        "leaves of the trees rebuilt from the prefix lists, 10 repeated prefixes merged; steps = path lengths"
        " (test_omegaprm)",
    ),
    RealLog(
        "prm800k/samples_prm800k.jsonl",
        "prm800k",
        6,
        45,
        "6 lines; label steps with a chosen or human completion, plus found_error final steps (test_prm800k)",
    ),
    RealLog(
        "rl_logging_board/eval_poem_task_data.jsonl",
        "rl_logging_board",
        3000,
        3000,
        "3000 records (SOURCES.md); no response holds a blank line, so one step each (test_rl_logging_board)",
    ),
    RealLog("treerl/output_8_4_2_2.jsonl", "treerl", 64, 273, "2 problems x 32 paths; 273 segments"),
    RealLog("treerl/trees_vine.jsonl", "treerl", 124, 626, "124 leaves of the 165-node tree; sum of leaf depths"),
    RealLog(
        "verifiers/math-python--gpt-4.1-mini--578769a7.results.jsonl",
        "verifiers",
        15,
        45,
        "15 rows (5 examples x 3); 45 assistant messages",
    ),
    RealLog(
        "verifiers/wiki-search--gpt-5-mini--78fe3ac3.results.jsonl",
        "verifiers",
        50,
        149,
        "50 rows; 149 assistant messages (SOURCES.md)",
    ),
    RealLog(
        "verifiers/wordle--gpt-5-mini--019a631c.results.jsonl",
        "verifiers",
        15,
        56,
        "15 rows (5 examples x 3); 56 assistant messages",
    ),
    RealLog(
        "verl/2.jsonl",
        "verl",
        672,
        1497,
        "672 lines = 42 prompts x 16; every group has tool-using rollouts, so one rule per group cuts every"
        " output into turns: k role-word turns give k+1 steps (test_verl)",
    ),
)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _assistant_messages(messages: list[dict[str, Any]]) -> int:
    return sum(message.get("role") == "assistant" for message in messages)


def _inspect_samples(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))["samples"]
    with zipfile.ZipFile(path) as archive:
        return [json.loads(archive.read(name)) for name in archive.namelist() if name.startswith("samples/")]


def _leaf_depths(node: dict[str, Any], depth: int = 0) -> list[int]:
    children = node.get("children") or []
    return [depth] if not children else [d for child in children for d in _leaf_depths(child, depth + 1)]


def _counts_agentgym(path: Path) -> tuple[int, int]:
    episodes = json.loads(path.read_text(encoding="utf-8"))["episodes"]
    return len(episodes), sum(len(episode["transitions"]) for episode in episodes)


def _counts_swe_agent(path: Path) -> tuple[int, int]:
    return 1, len(json.loads(path.read_text(encoding="utf-8"))["trajectory"])


def _counts_inspect(path: Path) -> tuple[int, int]:
    samples = _inspect_samples(path)
    return len(samples), sum(_assistant_messages(sample["messages"]) for sample in samples)


def _counts_math_shepherd(path: Path) -> tuple[int, int]:
    records = _jsonl(path)
    return len(records), sum(record["input"].count("ки") for record in records)


def _counts_nested_trees(path: Path) -> tuple[int, int]:
    depths = [d for record in _jsonl(path) for d in _leaf_depths(record["reasoning_steps"])]
    return len(depths), sum(depths)


def _counts_treerl(path: Path) -> tuple[int, int]:
    records = _jsonl(path)
    if "paths" in records[0]:
        paths = [segments for record in records for segments in record["paths"]]
        return len(paths), sum(len(segments) for segments in paths)
    depths = [d for record in records for d in _leaf_depths(record)]
    return len(depths), sum(depths)


def _counts_verifiers(path: Path) -> tuple[int, int]:
    records = _jsonl(path)
    return len(records), sum(_assistant_messages(record["completion"]) for record in records)


DERIVED_HERE: dict[str, Callable[[Path], tuple[int, int]]] = {
    "agent_trajectories/agentgym-mcp_trajectories.json": _counts_agentgym,
    "agent_trajectories/swe-agent_pydicom__pydicom-1458.traj": _counts_swe_agent,
    **{log.fixture: _counts_inspect for log in REAL_LOGS if log.format == "inspect"},
    "math_shepherd/samples_math-shepherd.jsonl": _counts_math_shepherd,
    "omegaprm/samples_math-aps-tree.jsonl": _counts_nested_trees,
    "treerl/output_8_4_2_2.jsonl": _counts_treerl,
    "treerl/trees_vine.jsonl": _counts_treerl,
    **{log.fixture: _counts_verifiers for log in REAL_LOGS if log.format == "verifiers"},
}
"""Stated counts re-derived from the raw file by a rule short enough to read at a glance."""


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, int, int, int]]:
    """Ingest each real log with its own ``ingest`` command (format auto) into one temporary store.

    Returns:
        Per fixture: the format that loaded it, and the trajectories, steps and summed ``n_steps`` in the
        database for its source.
    """
    store = Store.open(tmp_path_factory.mktemp("real_logs") / "real.duckdb")
    try:
        for log in REAL_LOGS:
            ingest(store, [str(FIXTURES / log.fixture)], fmt="auto")
        frame = store.query_df(
            """
            SELECT s.path, s.format,
                   (SELECT count(*) FROM trajectories t WHERE t.source_id = s.source_id) AS trajectories,
                   (SELECT count(*) FROM step_rows r WHERE r.source_id = s.source_id) AS steps,
                   (SELECT coalesce(sum(t.n_steps), 0) FROM trajectories t WHERE t.source_id = s.source_id) AS n_steps
            FROM sources s
            """
        )
    finally:
        store.close()
    by_path = {row.path: (row.format, row.trajectories, row.steps, row.n_steps) for row in frame.itertuples()}
    return {log.fixture: by_path[str((FIXTURES / log.fixture).resolve())] for log in REAL_LOGS}


@pytest.mark.parametrize("log", REAL_LOGS, ids=lambda log: log.fixture)
def test_real_log_loads_with_the_counts_its_source_holds(
    log: RealLog, ingested: dict[str, tuple[str, int, int, int]]
) -> None:
    fmt, trajectories, steps, n_steps = ingested[log.fixture]
    assert fmt == log.format
    assert (trajectories, steps) == (log.trajectories, log.steps), log.derivation
    assert n_steps == steps  # the trajectories table's step counts agree with the step rows


@pytest.mark.parametrize("fixture", sorted(DERIVED_HERE))
def test_stated_counts_are_what_the_raw_file_holds(fixture: str) -> None:
    log = next(log for log in REAL_LOGS if log.fixture == fixture)
    assert DERIVED_HERE[fixture](FIXTURES / fixture) == (log.trajectories, log.steps), log.derivation


def test_fixtures_are_byte_identical_copies_of_every_shared_real_log() -> None:
    if not SHARED_REAL_LOGS.is_dir():
        pytest.skip(f"{SHARED_REAL_LOGS} is not present on this machine")
    listed = {Path(log.fixture).name: FIXTURES / log.fixture for log in REAL_LOGS}
    for source in sorted(p for p in SHARED_REAL_LOGS.rglob("*") if p.is_file() and p.name != "SOURCES.md"):
        if registry.is_companion(source):
            # Side files (verifiers' metadata.json) are read with their main file, from the same folder.
            copies = [path for path in listed.values() if path.parent.joinpath(source.name).is_file()]
            assert copies, f"{source.name}: no fixture folder holds this companion"
            assert copies[0].parent.joinpath(source.name).read_bytes() == source.read_bytes()
            continue
        assert source.name in listed, f"{source.name} has no entry in REAL_LOGS"
        assert listed[source.name].read_bytes() == source.read_bytes(), f"{source.name}: fixture differs"


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_one_cli_command_loads_the_whole_fixture_folder(tmp_path: Path) -> None:
    code, out, err = _run_cli(["ingest", str(FIXTURES), "--db", str(tmp_path / "all.duckdb"), "-q"])
    assert code == 0, err
    for log in REAL_LOGS:
        line = f"{FIXTURES / log.fixture} [{log.format}] {log.trajectories} trajectories, {log.steps} steps"
        assert f"loaded    {line}" in out
    # SOURCES.md files and fixture builders are not logs: noted and skipped, never an error
    assert f"note: {FIXTURES / 'verl' / 'SOURCES.md'}: skipped, no adapter recognised it" in out


def test_cli_names_every_adapter_tried_for_an_unknown_file(tmp_path: Path) -> None:
    unknown = tmp_path / "metrics.csv"
    unknown.write_text("step,loss\n1,0.5\n", encoding="utf-8")
    code, out, err = _run_cli(["ingest", str(unknown), "--db", str(tmp_path / "none.duckdb"), "-q"])
    assert code == 2
    assert err.startswith(f"creditscope: error: {unknown}: no adapter recognised this file")
    for module in registry.adapters():
        assert f"{module.NAME}: " in err  # each adapter that declined says why
    assert "loaded" not in out
