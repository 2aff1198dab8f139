"""All SQL behind PRM rescoring: the scorer registry, the content-hash score cache, per-step scores, the active scorer.

Every function takes a DuckDB connection or cursor (the store hands out cursors from ``reader()``
and, inside a transaction under its write lock, from ``writer()``). Bulk data goes in and out as
pandas frames registered as views, never row by row. Every statement's result is fetched before the
next one because duckdb 2.0 refuses new work on a cursor with an unfinished result. The tables are
created by the store's migration:

- ``prm_scorers(scorer_id, spec, created_at)``: one row per scorer identity.
- ``prm_cache(scorer_id, content_hash, score, truncated)``: score of a (prompt, steps up to k) content.
- ``prm_step_scores(run_id, traj_id, step_idx, scorer_id, score, truncated)``: scores placed on steps.
- ``prm_active(run_id, scorer_id)``: which scorer the ``steps`` view shows as ``prm``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pandas as pd

CACHE_COLUMNS: tuple[str, ...] = ("content_hash", "score", "truncated")
STEP_SCORE_COLUMNS: tuple[str, ...] = ("run_id", "traj_id", "step_idx", "score", "truncated")


@contextmanager
def _registered(cur: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> Iterator[str]:
    """Expose ``frame`` to SQL under a unique name for the duration of the block."""
    name = f"_prm_{uuid.uuid4().hex}"
    cur.register(name, frame)
    try:
        yield name
    finally:
        cur.unregister(name)


def register_scorer(cur: duckdb.DuckDBPyConnection, scorer_id: str, spec: dict[str, Any]) -> None:
    """Record a scorer's spec; a later call with the same id updates it and keeps ``created_at``.

    Local checkpoints are identified by content, so the same id can come back from another folder; the
    latest spec is the one whose paths most likely still exist.
    """
    cur.execute(
        """INSERT INTO prm_scorers (scorer_id, spec, created_at) VALUES (?, ?, now())
           ON CONFLICT (scorer_id) DO UPDATE SET spec = excluded.spec""",
        [scorer_id, json.dumps(spec, sort_keys=True)],
    ).fetchall()


def scorer_spec(cur: duckdb.DuckDBPyConnection, scorer_id: str) -> dict[str, Any] | None:
    """The stored spec of ``scorer_id``, or None when unknown."""
    rows = cur.execute("SELECT spec FROM prm_scorers WHERE scorer_id = ?", [scorer_id]).fetchall()
    return json.loads(rows[0][0]) if rows else None


def lookup_cached(cur: duckdb.DuckDBPyConnection, scorer_id: str, content_hashes: Sequence[str]) -> pd.DataFrame:
    """Cached scores of ``scorer_id`` for the given content hashes.

    Returns:
        Frame with columns ``content_hash, score, truncated``: one row per hash found (misses are absent;
        a NULL score with ``truncated`` True is a cached truncation, not a miss).
    """
    wanted = pd.DataFrame({"content_hash": pd.Series(list(dict.fromkeys(content_hashes)), dtype="string")})
    with _registered(cur, wanted) as name:
        return cur.execute(
            f"""SELECT c.content_hash, c.score, c.truncated
                FROM prm_cache c JOIN {name} w ON c.content_hash = w.content_hash
                WHERE c.scorer_id = ?""",
            [scorer_id],
        ).df()


def insert_cached(cur: duckdb.DuckDBPyConnection, scorer_id: str, scores: pd.DataFrame) -> int:
    """Add new cache entries in bulk; hashes already cached for this scorer are left alone.

    Args:
        cur: Write cursor.
        scorer_id: The scorer that produced the scores.
        scores: Columns ``content_hash, score, truncated`` (score NULL/NaN where truncated).

    Returns:
        Number of rows offered.
    """
    frame = scores.loc[:, list(CACHE_COLUMNS)].drop_duplicates("content_hash")
    with _registered(cur, frame) as name:
        cur.execute(
            f"""INSERT INTO prm_cache (scorer_id, content_hash, score, truncated)
                SELECT ?, content_hash, CASE WHEN isnan(score) THEN NULL ELSE score END, truncated FROM {name}
                ON CONFLICT DO NOTHING""",
            [scorer_id],
        ).fetchall()
    return len(frame)


def upsert_step_scores(cur: duckdb.DuckDBPyConnection, scorer_id: str, scores: pd.DataFrame) -> int:
    """Write (or overwrite) the scores of ``scorer_id`` on steps, in bulk.

    Args:
        cur: Write cursor.
        scorer_id: The scorer.
        scores: Columns ``run_id, traj_id, step_idx, score, truncated``.

    Returns:
        Number of rows written.
    """
    frame = scores.loc[:, list(STEP_SCORE_COLUMNS)]
    with _registered(cur, frame) as name:
        cur.execute(
            f"""INSERT OR REPLACE INTO prm_step_scores (run_id, traj_id, step_idx, scorer_id, score, truncated)
                SELECT run_id, traj_id, CAST(step_idx AS INTEGER), ?,
                       CASE WHEN isnan(score) THEN NULL ELSE score END, truncated
                FROM {name}""",
            [scorer_id],
        ).fetchall()
    return len(frame)


def step_scores(
    cur: duckdb.DuckDBPyConnection, run_id: str, scorer_id: str, traj_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Scores of ``scorer_id`` on the steps of a run (optionally only some trajectories), ordered by step."""
    query = "SELECT traj_id, step_idx, score, truncated FROM prm_step_scores WHERE run_id = ? AND scorer_id = ?"
    if traj_ids is None:
        return cur.execute(query + " ORDER BY traj_id, step_idx", [run_id, scorer_id]).df()
    wanted = pd.DataFrame({"traj_id": pd.Series(list(traj_ids), dtype="string")})
    with _registered(cur, wanted) as name:
        return cur.execute(
            query + f" AND traj_id IN (SELECT traj_id FROM {name}) ORDER BY traj_id, step_idx", [run_id, scorer_id]
        ).df()


def set_active(cur: duckdb.DuckDBPyConnection, run_id: str, scorer_id: str | None) -> None:
    """Make ``scorer_id`` the scorer the ``steps`` view shows for ``run_id``; None goes back to logged scores."""
    if scorer_id is None:
        cur.execute("DELETE FROM prm_active WHERE run_id = ?", [run_id]).fetchall()
    else:
        cur.execute(
            "INSERT OR REPLACE INTO prm_active (run_id, scorer_id) VALUES (?, ?)", [run_id, scorer_id]
        ).fetchall()


def get_active(cur: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The active scorer of ``run_id``, or None when the run shows its logged PRM scores."""
    rows = cur.execute("SELECT scorer_id FROM prm_active WHERE run_id = ?", [run_id]).fetchall()
    return rows[0][0] if rows else None


def list_scorers(cur: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """Scorers that have scores on ``run_id``, with coverage and whether each is active.

    Returns:
        Columns ``scorer_id, family, model, n_steps, n_truncated, mean_score, active, created_at``, newest first.
    """
    return cur.execute(
        """SELECT s.scorer_id,
                  json_extract_string(p.spec, '$.family') AS family,
                  json_extract_string(p.spec, '$.model') AS model,
                  count(*) AS n_steps,
                  count(*) FILTER (WHERE s.truncated) AS n_truncated,
                  avg(s.score) AS mean_score,
                  coalesce(a.scorer_id IS NOT NULL, false) AS active,
                  p.created_at
           FROM prm_step_scores s
           LEFT JOIN prm_scorers p USING (scorer_id)
           LEFT JOIN prm_active a ON a.run_id = s.run_id AND a.scorer_id = s.scorer_id
           WHERE s.run_id = ?
           GROUP BY ALL
           ORDER BY p.created_at DESC NULLS LAST, s.scorer_id""",
        [run_id],
    ).df()


def logged_score_count(cur: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """How many steps of ``run_id`` carry a PRM score from the source log (what ``set_active(None)`` shows)."""
    rows = cur.execute("SELECT count(prm_logged) FROM step_rows WHERE run_id = ?", [run_id]).fetchall()
    return int(rows[0][0]) if rows else 0


def source_counts(cur: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """What ``steps.prm`` of ``run_id`` shows, by source, from the PRM tables and the run's summaries.

    Only the active scorer's rows are joined with the steps (never the whole run), so this stays cheap on
    runs of millions of steps where a partial rescore covered a few groups.

    Returns:
        ``active`` (scorer id or None), ``scored_steps`` and ``scored_trajectories`` (rows of the active
        scorer, truncated ones included), ``logged_steps`` (steps showing their logged score), ``no_score``
        (steps with neither), ``run_steps`` and ``run_trajectories``.
    """
    active = get_active(cur, run_id)
    run_trajectories, run_steps = cur.execute(
        "SELECT coalesce(sum(n), 0)::BIGINT, coalesce(sum(sum_steps), 0)::BIGINT FROM group_stats WHERE run_id = ?",
        [run_id],
    ).fetchone()
    logged_total = cur.execute(
        "SELECT coalesce(sum(prm_logged), 0)::BIGINT FROM source_coverage WHERE run_id = ?", [run_id]
    ).fetchone()[0]
    scored_steps = scored_trajectories = replaced = 0
    if active is not None:
        scored_steps, scored_trajectories, replaced = cur.execute(
            """SELECT count(*), count(DISTINCT p.traj_id), count(s.prm_logged)
               FROM prm_step_scores p
               JOIN step_rows s ON s.run_id = p.run_id AND s.traj_id = p.traj_id AND s.step_idx = p.step_idx
               WHERE p.run_id = ? AND p.scorer_id = ?""",
            [run_id, active],
        ).fetchone()
    logged_steps = int(logged_total) - int(replaced)
    return {
        "active": active,
        "scored_steps": int(scored_steps),
        "scored_trajectories": int(scored_trajectories),
        "logged_steps": logged_steps,
        "no_score": int(run_steps) - int(scored_steps) - logged_steps,
        "run_steps": int(run_steps),
        "run_trajectories": int(run_trajectories),
    }


def run_trajectories_and_logged(cur: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, int]:
    """Trajectories of ``run_id`` and its steps that carry a logged PRM score (from the run's summaries)."""
    trajectories = cur.execute(
        "SELECT coalesce(sum(n), 0)::BIGINT FROM group_stats WHERE run_id = ?", [run_id]
    ).fetchone()[0]
    logged_total = cur.execute(
        "SELECT coalesce(sum(prm_logged), 0)::BIGINT FROM source_coverage WHERE run_id = ?", [run_id]
    ).fetchone()[0]
    return int(trajectories), int(logged_total)
