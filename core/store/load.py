"""Bulk loading of canonical frames and native JSONL into the store, one source at a time.

Every function here runs on a cursor already inside :meth:`Store.writer`'s transaction, so a
failure anywhere rolls the whole ingest command back. Rows are never inserted one by one: frames
go in through DuckDB's pandas scan, native JSONL through ``read_json`` straight from the file.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from core.errors import IngestError
from core.ingest.base import Rollouts
from core.schema import STEP_COLUMN_NAMES, TOKEN_COLUMNS
from core.store.checks import check_sources
from core.store.summaries import refresh_source, refresh_sources

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class SourceInfo:
    """Bookkeeping for one ingested file (a row of the ``sources`` table)."""

    source_id: str
    path: str
    format: str
    run_override: str | None
    content_hash: str
    """SHA-1 of the whole file (:func:`core.ingest.follow.scan_file`), or "" after an incremental append."""
    size: int
    mtime: float
    options: dict
    loaded_bytes: int | None = None
    """For line-appendable sources: the byte offset just past the last line loaded; None otherwise."""
    loaded_lines: int | None = None
    """Newlines before ``loaded_bytes``: the next line read is number ``loaded_lines + 1``."""
    prefix_hash: str | None = None
    """Fingerprint of the bytes just before ``loaded_bytes`` (see :func:`core.ingest.runner.prefix_fingerprint`)."""


@dataclass(frozen=True)
class SourceState:
    """What the ``sources`` table remembers about an earlier ingest of one file."""

    format: str
    content_hash: str
    size: int
    mtime: float
    n_trajectories: int
    n_steps: int
    options: dict
    loaded_bytes: int | None
    loaded_lines: int | None
    prefix_hash: str | None


def previous_states(cur: duckdb.DuckDBPyConnection, source_ids: Sequence[str]) -> dict[str, SourceState]:
    """The recorded states of several sources (those never ingested are absent), in one query."""
    rows = cur.execute(
        """SELECT source_id, format, content_hash, size, mtime, n_trajectories, n_steps, options, loaded_bytes,
                  loaded_lines, prefix_hash
        FROM sources WHERE source_id IN (SELECT unnest($1))""",
        [list(source_ids)],
    ).fetchall()
    return {row[0]: _state(row[1:]) for row in rows}


def _state(row: tuple) -> SourceState:
    return SourceState(
        format=str(row[0]),
        content_hash=str(row[1]),
        size=int(row[2]),
        mtime=float(row[3]),
        n_trajectories=int(row[4]),
        n_steps=int(row[5]),
        options=json.loads(row[6]) if row[6] else {},
        loaded_bytes=None if row[7] is None else int(row[7]),
        loaded_lines=None if row[8] is None else int(row[8]),
        prefix_hash=row[9],
    )


def previous_state(cur: duckdb.DuckDBPyConnection, source_id: str) -> SourceState | None:
    """The recorded state of a source, or None if it was never ingested."""
    return previous_states(cur, [source_id]).get(source_id)


def touch_source(cur: duckdb.DuckDBPyConnection, source_id: str, mtime: float) -> None:
    """Remember a new mtime for a file whose content did not change, so the next check is cheap."""
    cur.execute("UPDATE sources SET mtime = ? WHERE source_id = ?", [mtime, source_id])


def note_partial_growth(cur: duckdb.DuckDBPyConnection, source_id: str, mtime: float, size: int) -> None:
    """Record that a file grew by a partial last line only: its rows stand, the next poll compares to ``size``.

    The content hash is cleared because it described the smaller file; the loaded prefix's fingerprint
    is what vouches for the rows from now on.
    """
    cur.execute(
        "UPDATE sources SET mtime = ?, size = ?, content_hash = '' WHERE source_id = ?", [mtime, size, source_id]
    )


def load_rollouts(
    cur: duckdb.DuckDBPyConnection, src: SourceInfo, rollouts: Rollouts, default_run: str, *, append: bool = False
) -> tuple[int, int]:
    """Replace a source's rows with an adapter's frames (or add them); returns the source's (trajectories, steps).

    The run is ``src.run_override`` when the user named one, else the trajectory frame's optional
    ``run_id`` column (a native file may hold several runs), else ``default_run``.

    With ``append`` the frames hold only the lines a grown file gained, so the rows already stored
    stay (PRM scores of earlier trajectories included); the usual checks then run over old and new rows.
    """
    steps = rollouts.steps
    trajs = rollouts.trajectories
    if trajs.empty:
        raise IngestError(src.path, "no trajectories found")
    trajs = trajs.copy()
    if src.run_override or "run_id" not in trajs.columns:
        trajs["run_id"] = src.run_override or default_run
    else:
        trajs["run_id"] = trajs["run_id"].where(trajs["run_id"].notna(), default_run)
    # Trajectory ids are unique only within a run, and a native file may hold several runs; when its
    # step frame names each step's run too, a step joins its trajectory on (run, id), not the id alone.
    by_run = "run_id" in steps.columns and "run_id" in rollouts.trajectories.columns and not src.run_override
    step_run = "coalesce(s.run_id::VARCHAR, ?)"  # the same default as the trajectory frame's null runs get
    join_run, count_run, count_match = (
        (f"AND {step_run} = t.run_id", f"{step_run} AS run_id,", "AND n.run_id = t.run_id") if by_run else ("", "", "")
    )
    run_params = [default_run] if by_run else []
    cur.register("_cs_steps_df", steps)
    cur.register("_cs_trajs_df", trajs)
    try:
        if not append:
            delete_source(cur, src.source_id)
        # Iteration, group and outcome come from the trajectory frame so a step can never disagree
        # with its trajectory, whatever the adapter put in the step frame.
        step_exprs = ", ".join(
            "t.iteration::BIGINT AS iteration"
            if c == "iteration"
            else "t.group_id::VARCHAR AS group_id"
            if c == "group_id"
            else "t.outcome::DOUBLE AS outcome"
            if c == "outcome"
            else f"s.{c}"
            for c in STEP_COLUMN_NAMES
            if c != "run_id"
        )
        # Token arrays are optional frame columns; one a frame lacks stays NULL (INSERT BY NAME).
        tokens = "".join(f", s.{c.name}::{c.sql_type} AS {c.name}" for c in TOKEN_COLUMNS if c.name in steps.columns)
        inserted = cur.execute(
            f"""INSERT INTO step_rows BY NAME
            SELECT t.run_id::VARCHAR AS run_id, {step_exprs.replace("s.prm", "s.prm AS prm_logged")},
                   s.extra::JSON AS extra{tokens}, ? AS source_id
            FROM _cs_steps_df s JOIN _cs_trajs_df t
              ON s.traj_id::VARCHAR = t.traj_id::VARCHAR {join_run}""",
            [src.source_id, *run_params],
        ).fetchone()
        if inserted is not None and inserted[0] < len(steps):
            # The join would otherwise drop them without a word.
            raise IngestError(src.path, f"{len(steps) - inserted[0]} step rows belong to no trajectory of the file")
        cur.execute(
            f"""INSERT INTO trajectories BY NAME
            SELECT t.run_id::VARCHAR AS run_id, t.traj_id::VARCHAR AS traj_id, t.iteration::BIGINT AS iteration,
                   t.group_id::VARCHAR AS group_id, t.prompt::VARCHAR AS prompt,
                   coalesce(t.split::VARCHAR, 'train') AS split, t.outcome::DOUBLE AS outcome,
                   coalesce(n.n, 0)::INTEGER AS n_steps, t.meta::JSON AS meta, ? AS source_id
            FROM _cs_trajs_df t
            LEFT JOIN (SELECT {count_run} traj_id::VARCHAR AS traj_id, count(*) AS n FROM _cs_steps_df s GROUP BY ALL) n
              ON n.traj_id = t.traj_id::VARCHAR {count_match}""",
            [src.source_id, *run_params],
        )
    finally:
        # After a failed statement DuckDB refuses everything but ROLLBACK, unregistering included; that
        # refusal must not replace the real error (the writer rolls back and closes the cursor anyway).
        with contextlib.suppress(duckdb.TransactionException):
            cur.unregister("_cs_steps_df")
            cur.unregister("_cs_trajs_df")
    run_config = {**rollouts.run_config, **({"options": src.options} if src.options else {})}
    return finish_source(cur, src, run_config)


def delete_source(cur: duckdb.DuckDBPyConnection, source_id: str) -> None:
    """Drop what an earlier ingest of this source wrote, including PRM scores of its trajectories."""
    delete_sources(cur, [source_id])


def delete_sources(cur: duckdb.DuckDBPyConnection, source_ids: Sequence[str]) -> None:
    """:func:`delete_source` for several sources, in three statements."""
    mine = "source_id IN (SELECT unnest($1))"
    cur.execute(
        f"""DELETE FROM prm_step_scores p USING trajectories t
        WHERE t.{mine} AND p.run_id = t.run_id AND p.traj_id = t.traj_id""",
        [list(source_ids)],
    )
    cur.execute(f"DELETE FROM step_rows WHERE {mine}", [list(source_ids)])
    cur.execute(f"DELETE FROM trajectories WHERE {mine}", [list(source_ids)])


def forget_source(cur: duckdb.DuckDBPyConnection, source_id: str) -> None:
    """Remove a source entirely: its rows, its bookkeeping, runs left without trajectories, its summaries."""
    delete_source(cur, source_id)
    cur.execute("DELETE FROM sources WHERE source_id = ?", [source_id])
    _drop_orphaned_runs(cur)
    refresh_source(cur, source_id)


def _drop_orphaned_runs(cur: duckdb.DuckDBPyConnection) -> None:
    cur.execute("DELETE FROM runs WHERE run_id NOT IN (SELECT DISTINCT run_id FROM trajectories)")
    # A run that is gone must not hand its PRM choice to a later run of the same name.
    cur.execute("DELETE FROM prm_active WHERE run_id NOT IN (SELECT DISTINCT run_id FROM trajectories)")


def finish_source(
    cur: duckdb.DuckDBPyConnection, src: SourceInfo, run_config: dict, *, checked: bool = False
) -> tuple[int, int]:
    """Check the rows just written for this source, then record the source and its runs.

    ``checked`` skips the per-step scans (finite numbers, unique step indices) for rows whose
    staging already guaranteed them; the cross-source id checks always run.
    """
    return finish_sources(cur, [src], run_config, checked=checked)[0]


def finish_sources(
    cur: duckdb.DuckDBPyConnection, sources: Sequence[SourceInfo], run_config: dict, *, checked: bool = False
) -> list[tuple[int, int]]:
    """:func:`finish_source` for several sources at once, in a fixed number of statements (many small files).

    Returns each source's (trajectories, steps), in order. A run named by several of them takes the
    format and path of the first.
    """
    ids = [src.source_id for src in sources]
    check_sources(cur, sources, per_step=not checked)
    counts = dict.fromkeys(ids, (0, 0))
    for source_id, n_traj, n_steps in cur.execute(
        """SELECT source_id, count(*), coalesce(sum(n_steps), 0) FROM trajectories
        WHERE source_id IN (SELECT unnest($1)) GROUP BY source_id""",
        [ids],
    ).fetchall():
        counts[source_id] = (int(n_traj), int(n_steps))
    columns = {
        "source_id": ids,
        "path": [src.path for src in sources],
        "format": [src.format for src in sources],
        "run_override": [src.run_override for src in sources],
        "content_hash": [src.content_hash for src in sources],
        "size": [src.size for src in sources],
        "mtime": [float(src.mtime) for src in sources],
        "n_trajectories": [counts[i][0] for i in ids],
        "n_steps": [counts[i][1] for i in ids],
        "options": [json.dumps(src.options, default=str) for src in sources],
        "loaded_bytes": [src.loaded_bytes for src in sources],
        "loaded_lines": [src.loaded_lines for src in sources],
        "prefix_hash": [src.prefix_hash for src in sources],
    }
    unnested = ", ".join(f"unnest(${n + 1}) AS {name}" for n, name in enumerate(columns))
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE cs_finishing AS
        SELECT *, row_number() OVER () AS position FROM (SELECT {unnested})""",
        list(columns.values()),
    )
    try:
        cur.execute(
            """INSERT INTO runs
            SELECT run_id, format, path, now()::TIMESTAMP, ?::JSON
            FROM (SELECT DISTINCT ON (t.run_id) t.run_id, f.format, f.path
                  FROM trajectories t JOIN cs_finishing f USING (source_id) ORDER BY t.run_id, f.position)
            ON CONFLICT (run_id) DO UPDATE SET ingested_at = excluded.ingested_at,
                config = json_merge_patch(coalesce(runs.config, '{}'), excluded.config)""",
            [json.dumps(run_config, default=str)],
        )
        _drop_orphaned_runs(cur)
        # Every column is named and given: DuckDB's INSERT OR REPLACE keeps the old value of a column left out.
        cur.execute(
            """INSERT OR REPLACE INTO sources (source_id, path, format, run_override, content_hash, size, mtime,
                n_trajectories, n_steps, ingested_at, options, loaded_bytes, loaded_lines, prefix_hash)
            SELECT source_id, path, format, run_override, content_hash, size, mtime, n_trajectories, n_steps,
                   now()::TIMESTAMP, options::JSON, loaded_bytes, loaded_lines, prefix_hash
            FROM cs_finishing"""
        )
    finally:
        with contextlib.suppress(duckdb.TransactionException):  # after a failure DuckDB accepts only ROLLBACK
            cur.execute("DROP TABLE IF EXISTS cs_finishing")
    refresh_sources(cur, ids)
    return [counts[i] for i in ids]
