"""What `creditscope ingest` does when things go wrong: Ctrl-C, bad --db paths, a full disk, emptied files.

Each case runs the real command in a child process and checks the exit status, that stderr is one line,
and what the database holds afterwards (issue 11 items 8-10, issue 16 item 2).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.ingest import registry
from core.ingest.follow import Follower, PollReport, poll_once
from core.store import queries
from core.store.database import Store
from core.synth import write_jsonl

REPO = Path(__file__).resolve().parents[2]
CTRL_C_DURING_STEPS = """
import os, signal, sys, threading
import core.store.native_jsonl as native_jsonl
load_steps = native_jsonl._insert_steps

def interrupted(*args, **kwargs):  # a real SIGINT while DuckDB unnests a big file
    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
    return load_steps(*args, **kwargs)

native_jsonl._insert_steps = interrupted
from core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _creditscope(*args: str, code: str | None = None, wrap: list[str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code or "import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))"]
    return subprocess.run([*(wrap or []), *command, *args], capture_output=True, text=True, cwd=REPO, timeout=300)


def _one_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def _runs(db: Path) -> list[str]:
    store = Store.open(db, read_only=True)
    try:
        return sorted(queries.runs_summary(store)["run_id"])
    finally:
        store.close()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A native file large enough that its step statement is still running 50 ms in."""
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    write_jsonl(path, "arithmetic", prompts=60, iterations=20, group_size=8)
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.jsonl"
    write_jsonl(path, "agent", prompts=2, iterations=2, group_size=2)
    return path


def _namespace_root() -> list[str] | None:
    """A prefix that runs a command as root of a new user and mount namespace, or None when unavailable."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-Urm", "true"], capture_output=True).returncode != 0:
        return None
    return [unshare, "-Urm"]


def _unprivileged() -> list[str]:
    """A prefix that runs a command as an unprivileged user (for tests started as root), or skips the test."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-U", "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without user namespaces: file permissions cannot be tested here")
    return [unshare, "-U"]


def test_ctrl_c_during_a_native_load_exits_130_in_one_line_and_loads_nothing(big: Path, tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    done = _creditscope("ingest", str(big), "--db", str(db), "--quiet", code=CTRL_C_DURING_STEPS)
    assert done.returncode == 130
    assert _one_line(done) == "creditscope: interrupted; none of this command's files were loaded"
    assert not db.exists()  # nothing landed, so the new database is not left behind either


def test_ctrl_c_during_a_multi_file_ingest_keeps_the_database_as_it_was(big: Path, small: Path, tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    assert _creditscope("ingest", str(small), "--db", str(db), "--quiet").returncode == 0
    other = tmp_path / "other.jsonl"
    write_jsonl(other, "tree", prompts=2, iterations=2, group_size=2)
    done = _creditscope("ingest", str(other), str(big), "--db", str(db), "--quiet", code=CTRL_C_DURING_STEPS)
    assert done.returncode == 130 and "interrupted" in _one_line(done)
    assert _runs(db) == ["agent"]  # what the first ingest loaded, and nothing of the interrupted one


@pytest.mark.parametrize(
    ("make", "command", "message"),
    [
        (lambda db: db.mkdir(), "ingest", r"is a folder; give --db the path of a database file"),
        (lambda db: db.write_text("hello"), "ingest", r"is not a creditscope database \(not a DuckDB file\)"),
        (lambda db: db.write_text("hello"), "runs", r"is not a creditscope database"),
        (lambda db: None, "runs", r"no database at .*; create one with `creditscope ingest LOGS --db"),
    ],
    ids=["folder", "not-duckdb-ingest", "not-duckdb-runs", "missing-runs"],
)
def test_a_db_path_that_cannot_be_a_database_is_one_line(
    small: Path, tmp_path: Path, make, command: str, message: str
) -> None:
    db = tmp_path / "x.duckdb"
    make(db)
    args = ("ingest", str(small), "--db", str(db), "--quiet") if command == "ingest" else ("runs", "--db", str(db))
    done = _creditscope(*args)
    assert done.returncode == 2
    assert _one_line(done).startswith("creditscope: error: ") and __import__("re").search(message, done.stderr)
    if command == "runs" and not db.exists() and not db.is_dir():
        assert not db.exists()  # `runs` creates nothing


@pytest.mark.parametrize("damage", ["truncated", "zeroed"])
def test_a_damaged_database_is_one_line_for_runs_and_ingest(small: Path, tmp_path: Path, damage: str) -> None:
    db = tmp_path / "cut.duckdb"
    write_jsonl(tmp_path / "more.jsonl", "arithmetic", prompts=6, iterations=10, group_size=8)
    assert _creditscope("ingest", str(tmp_path / "more.jsonl"), "--db", str(db), "--quiet").returncode == 0
    data = db.read_bytes()
    if damage == "truncated":
        db.write_bytes(data[:100])
    else:  # pages overwritten: DuckDB's block checksums no longer match
        db.write_bytes(data[: 1 << 18] + bytes(len(data) - (1 << 18)))
    for args in (("runs", "--db", str(db)), ("ingest", str(small), "--db", str(db), "--quiet")):
        done = _creditscope(*args)
        assert done.returncode == 2, done.stderr
        assert "is damaged (truncated or corrupted" in _one_line(done)


def test_a_read_only_database_is_one_line_and_stays_readable(small: Path, tmp_path: Path) -> None:
    db = tmp_path / "ro.duckdb"
    assert _creditscope("ingest", str(small), "--db", str(db), "--quiet").returncode == 0
    db.chmod(0o444)
    wrap = None
    if os.geteuid() == 0:  # root writes anyway: run as nobody in a new user namespace, without root's powers
        wrap = _unprivileged()
    other = tmp_path / "other.jsonl"
    write_jsonl(other, "tree", prompts=2, iterations=2, group_size=2)
    done = _creditscope("ingest", str(other), "--db", str(db), "--quiet", wrap=wrap)
    assert done.returncode == 2 and "permission denied" in _one_line(done)
    assert _runs(db) == ["agent"]


def test_deeply_nested_json_is_a_line_error_not_a_recursion_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    nested = "[" * 100_000 + "]" * 100_000
    path.write_text('{"trajectory": "t", "outcome": 1, "steps": [{"action": "a", "x": ' + nested + "}]}\n")
    done = _creditscope("ingest", str(path), "--format", "native", "--db", str(tmp_path / "x.duckdb"), "--quiet")
    assert done.returncode == 2
    assert _one_line(done).endswith("deep.jsonl:1: JSON nested too deeply to read")


def test_a_full_disk_names_the_space_needed_and_the_database_stays_usable(small: Path, tmp_path: Path) -> None:
    wrap = _namespace_root()
    if wrap is None:
        pytest.skip("no user namespaces to mount a small tmpfs in")
    mount, db = tmp_path / "disk", tmp_path / "disk" / "runs.duckdb"
    mount.mkdir()
    large = tmp_path / "large.jsonl"
    write_jsonl(large, "arithmetic", prompts=40, iterations=20, group_size=8)  # ~14 MB
    me = f"{sys.executable} -c 'import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))'"
    script = f"""
mount -t tmpfs -o size=6m tmpfs {mount}
{me} ingest {small} --db {db} --quiet >/dev/null || exit 90
{me} ingest {large} --db {db} --quiet; echo "status=$?"
{me} runs --db {db}
{me} ingest {REPO / "sample_data/runs/arithmetic.jsonl"} --db {db} --quiet >/dev/null; echo "after=$?"
"""
    done = subprocess.run([*wrap, "sh", "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert "status=2" in done.stdout, done.stdout + done.stderr
    line = _one_line(done)
    assert "not enough disk space" in line and "needs about 14 MiB more" in line and "MiB are free" in line
    assert "agent" in done.stdout and "after=0" in done.stdout  # the earlier run stays, later loads work


def test_a_failed_ingest_into_a_new_database_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"trajectory": "t", "outcome": "high", "steps": [{"action": "a"}]}\n')
    db = tmp_path / "fresh.duckdb"
    done = _creditscope("ingest", str(bad), "--db", str(db), "--quiet")
    assert done.returncode == 2 and "bad.jsonl:1: outcome" in _one_line(done)
    assert not db.exists() and not Path(f"{db}.wal").exists()


def test_a_followed_file_truncated_to_nothing_drops_its_rows(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "live"
    folder.mkdir()
    keep, emptied = folder / "keep.jsonl", folder / "emptied.jsonl"
    write_jsonl(keep, "agent", prompts=1, iterations=1, group_size=2)
    write_jsonl(emptied, "tree", prompts=1, iterations=1, group_size=2)
    poll_once(store, [str(folder)])
    assert sorted(queries.runs_summary(store)["run_id"]) == ["agent", "tree"]
    emptied.write_text("")
    report = poll_once(store, [str(folder)])
    assert [(s.status, s.n_trajectories) for s in report.landed] == [("dropped", 2)]
    assert sorted(queries.runs_summary(store)["run_id"]) == ["agent"]
    assert report.n_trajectories == 0 and not report.errors
    assert poll_once(store, [str(emptied)]).waiting == [f"{emptied}: no files yet"]  # named directly: waits


@pytest.mark.parametrize("interval", ["0", "-1", "nan"])
def test_follow_refuses_an_interval_that_would_spin(tmp_path: Path, interval: str) -> None:
    done = _creditscope("ingest", str(tmp_path), "--follow", "--interval", interval, "--db", str(tmp_path / "x.db"))
    assert done.returncode == 2 and "--interval must be at least 0.1 seconds" in _one_line(done)
    with pytest.raises(ValueError, match="interval must be positive"):
        Follower(lambda: PollReport(), interval=float(interval))


def test_an_unreadable_subfolder_is_skipped_with_a_note(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    (root / "locked").mkdir(parents=True)
    write_jsonl(root / "a.jsonl", "agent", prompts=1, iterations=1, group_size=2)
    write_jsonl(root / "locked" / "b.jsonl", "agent", prompts=1, iterations=1, group_size=2)
    (root / "locked").chmod(0)
    try:
        code = (
            "import sys; from core.ingest import registry; notes = []\n"
            f"plan = registry.plan_sources([{str(root)!r}], notes=notes)\n"
            "print(len(plan)); print(notes)\n"
        )
        wrap = None
        if os.geteuid() == 0:  # root reads every folder: run as nobody in a new user namespace
            wrap = _unprivileged()
        done = subprocess.run(
            [*(wrap or []), sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
        )
        assert done.stdout.splitlines()[0] == "1", done.stdout + done.stderr
        assert f"{root / 'locked'}: skipped, cannot read this folder" in done.stdout
    finally:
        (root / "locked").chmod(0o755)
    assert registry.unreadable_folders(root) == []
