import subprocess
import sys

import duckdb
import pytest

from core.errors import DatabaseLocked
from core.schema import STEP_COLUMN_NAMES
from core.store.database import Store
from core.store.migrations import SCHEMA_VERSION


def test_steps_view_has_exactly_the_contract_columns_first(store: Store) -> None:
    with store.reader() as cur:
        cols = [r[0] for r in cur.execute("DESCRIBE steps").fetchall()]
    assert tuple(cols[: len(STEP_COLUMN_NAMES)]) == STEP_COLUMN_NAMES
    assert cols[len(STEP_COLUMN_NAMES) :] == ["prm_source", "extra"]  # provenance of prm (schema version 6)


def test_trajectories_and_runs_tables_exist(store: Store) -> None:
    with store.reader() as cur:
        tables = {r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"steps", "trajectories", "runs", "sources", "prm_step_scores"} <= tables


def test_reopen_keeps_schema_version(tmp_path) -> None:
    path = tmp_path / "x.duckdb"
    Store.open(path).close()
    s = Store.open(path)
    with s.reader() as cur:
        versions = [r[0] for r in cur.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
    s.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "x.duckdb"
    Store.open(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 5])
    con.close()
    with pytest.raises(RuntimeError, match="newer than this creditscope"):
        Store.open(path)


def test_locked_database_names_the_holder_and_changes_nothing(tmp_path, sample_db_path) -> None:
    path = tmp_path / "held.duckdb"
    Store.open(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(DatabaseLocked, match=rf"process {holder.pid}.*Ingest page.*Nothing was changed"):
            Store.open(path)
        with pytest.raises(DatabaseLocked):
            Store.open(path, read_only=True)
    finally:
        holder.kill()
        holder.wait()
    s = Store.open(path)
    with s.reader() as cur:
        assert cur.execute("SELECT count(*) FROM step_rows").fetchone()[0] == 0
    s.close()


def test_writer_rolls_back_everything_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with store.writer() as cur:
            cur.execute("INSERT INTO prm_active VALUES ('r', 's')")
            raise RuntimeError("boom")
    with store.reader() as cur:
        assert cur.execute("SELECT count(*) FROM prm_active").fetchone()[0] == 0


def test_import_core_does_not_import_streamlit() -> None:
    code = (
        "import sys, core, core.store.database, core.ingest.runner, core.credit, core.trees, core.cli; "
        "sys.exit(int('streamlit' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_same_file_opened_twice_in_one_process(tmp_path) -> None:
    # Streamlit may build a second Store for the same file (cache cleared) while the first is alive.
    first = Store.open(tmp_path / "x.duckdb")
    second = Store.open(tmp_path / "x.duckdb")
    with second.writer() as cur:
        cur.execute("INSERT INTO prm_active VALUES ('r', 's')")
    with first.reader() as cur:
        assert cur.execute("SELECT count(*) FROM prm_active").fetchone()[0] == 1
    second.close()
    first.close()


def test_prm_column_keeps_the_logged_scores_outside_a_partial_rescore_and_says_which_is_which(
    store: Store, tmp_path
) -> None:
    from core.ingest.runner import ingest
    from core.synth import write_jsonl

    path = tmp_path / "a.jsonl"
    write_jsonl(path, "arithmetic", prompts=1, iterations=1, group_size=3)
    ingest(store, [str(path)])
    with store.writer() as cur:
        cur.execute(
            "INSERT INTO prm_step_scores SELECT run_id, traj_id, step_idx, 'demo', 0.25, FALSE FROM step_rows "
            "WHERE traj_id LIKE '%r0'"
        )
        # A step the scorer could not score (past its max length): its row says so with a NULL score.
        cur.execute(
            "INSERT INTO prm_step_scores SELECT run_id, traj_id, step_idx, 'demo', NULL, TRUE FROM step_rows "
            "WHERE traj_id LIKE '%r2' AND step_idx = 0"
        )
    with store.reader() as cur:
        logged = dict(cur.execute("SELECT traj_id || ':' || step_idx, prm FROM steps").fetchall())
        sources = {r[0] for r in cur.execute("SELECT DISTINCT prm_source FROM steps").fetchall()}
        assert sources == {"logged"}  # no active scorer: every score is the logged one
        cur.execute("INSERT INTO prm_active VALUES ('arithmetic', 'demo')")
        rows = cur.execute("SELECT traj_id, step_idx, prm, prm_source FROM steps").fetchall()
    scored = [(p, src) for t, _, p, src in rows if t.endswith("r0")]
    assert scored and set(scored) == {(0.25, "demo")}
    rest = [(f"{t}:{k}", p, src) for t, k, p, src in rows if t.endswith("r1")]
    assert rest and all(p == logged[key] and src == "logged" for key, p, src in rest)  # kept, and marked
    truncated = [(p, src) for t, k, p, src in rows if t.endswith("r2") and k == 0]
    assert truncated == [(None, "demo")]  # the active scorer's own verdict, not silently the logged score


def test_a_run_that_disappears_takes_its_prm_choice_along(store: Store, tmp_path) -> None:
    import json as _json

    from core.ingest.runner import ingest

    path = tmp_path / "a.jsonl"
    record = {"run": "old", "trajectory": "t", "outcome": 1.0, "steps": [{"action": "a"}]}
    path.write_text(_json.dumps(record) + "\n")
    ingest(store, [str(path)])
    with store.writer() as cur:
        cur.execute("INSERT INTO prm_active VALUES ('old', 'some-scorer')")
    path.write_text(_json.dumps({**record, "run": "new", "steps": [{"action": "b"}]}) + "\n")
    ingest(store, [str(path)])
    with store.reader() as cur:
        assert cur.execute("SELECT count(*) FROM prm_active").fetchone()[0] == 0
        assert [r[0] for r in cur.execute("SELECT run_id FROM runs").fetchall()] == ["new"]
