"""The store's own checks on rows just written, for one source or many at once.

Adapters and the native readers check values first and name the line; these checks guard the contract
whatever wrote the rows (duplicate ids across files, empty trajectories, non-finite numbers, broken
token arrays) and name the file. Each runs as one query however many sources a load covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb

from core.errors import IngestError
from core.schema import TOKEN_COLUMNS

if TYPE_CHECKING:
    from core.store.load import SourceInfo


def _tokens_ok() -> str:
    """SQL that is true for a step whose present token arrays share one length and hold only finite numbers."""
    lengths = ", ".join(f"len({c.name})" for c in TOKEN_COLUMNS)
    numbers = [c.name for c in TOKEN_COLUMNS if c.sql_type == "DOUBLE[]"]
    finite = " AND ".join(
        f"coalesce(list_count({n}) = len({n}) AND list_bool_and(list_transform({n}, lambda x: isfinite(x))) "
        f"IS NOT FALSE, TRUE)"
        for n in numbers
    )
    one_length = f"coalesce(greatest({lengths}) = least({lengths}), TRUE)"
    return f"{one_length} AND {finite} AND coalesce(list_count(tokens) = len(tokens), TRUE)"


TOKENS_OK = _tokens_ok()
"""Checked on every step written from a Python frame (adapters check with :func:`core.tokens.token_arrays`
first; this keeps a frame that skipped it from storing a broken array)."""

_PHYSICAL_FLOATS = ("reward", "outcome", "label", "prm_logged", "value")
_ALL_FINITE = " AND ".join(f"coalesce(isfinite({c}), TRUE)" for c in _PHYSICAL_FLOATS)
_MINE = "source_id IN (SELECT unnest($ids))"


def check_sources(cur: duckdb.DuckDBPyConnection, sources: Sequence[SourceInfo], *, per_step: bool) -> None:
    """Reject rows that would break the contract: duplicate ids, empty trajectories, non-finite numbers.

    Args:
        cur: The writer's cursor, after the sources' rows were written.
        sources: The sources just written.
        per_step: Also scan their step rows (rows a checked fast path wrote need not be scanned again).

    Raises:
        IngestError: Naming the first file (in ``sources`` order) whose rows break the contract.
    """
    by_id = {src.source_id: src for src in sources}
    ids = {"ids": list(by_id)}
    # One query covers repeats inside a source, between the sources of this load and with earlier sources of the
    # same runs; the paths listed are the others' (a repeat inside the file is not "already ingested").
    # Finding a repeat is one grouping of the ids; which files hold it is asked only when there is one (the
    # lists for every id cost ten times as much).
    dup = cur.execute(
        f"""SELECT run_id, traj_id FROM trajectories
        WHERE run_id IN (SELECT DISTINCT run_id FROM trajectories WHERE {_MINE})
        GROUP BY run_id, traj_id HAVING count(*) > 1 LIMIT 1""",
        ids,
    ).fetchall()
    if dup:
        (traj_id, source_ids, recorded), *_ = cur.execute(
            """SELECT t.traj_id, list(DISTINCT t.source_id), list_distinct(list(s.path))
            FROM trajectories t LEFT JOIN sources s USING (source_id)
            WHERE t.run_id = $run AND t.traj_id = $traj GROUP BY t.traj_id""",
            {"run": dup[0][0], "traj": dup[0][1]},
        ).fetchall()
        blamed = next(src for src in sources if src.source_id in source_ids)
        others = {by_id[i].path for i in source_ids if i in by_id and i != blamed.source_id}
        others |= {path for path in recorded if path is not None and path != blamed.path}
        elsewhere = f" (already ingested from {', '.join(sorted(others))})" if others else ""
        raise IngestError(
            blamed.path,
            f"trajectory id {traj_id!r} occurs more than once in its run{elsewhere}; "
            "ingest it with another --run name if it belongs to a different run",
        )
    bad = _first(
        cur, f"SELECT source_id, traj_id, split FROM trajectories WHERE {_MINE} AND split NOT IN ('train', 'val')", ids
    )
    if bad:
        raise IngestError(by_id[bad[0]].path, f"trajectory {bad[1]!r}: split must be 'train' or 'val', got {bad[2]!r}")
    bad = _first(cur, f"SELECT source_id, traj_id FROM trajectories WHERE {_MINE} AND n_steps = 0", ids)
    if bad:
        raise IngestError(by_id[bad[0]].path, f"trajectory {bad[1]!r} has no steps")
    if per_step:
        _check_steps(cur, by_id, ids)


def _first(cur: duckdb.DuckDBPyConnection, sql: str, params: dict) -> tuple | None:
    rows = cur.execute(f"{sql} LIMIT 1", params).fetchall()
    return rows[0] if rows else None


def _check_steps(cur: duckdb.DuckDBPyConnection, by_id: dict[str, SourceInfo], ids: dict) -> None:
    floats = ", ".join(f"isfinite({c}) IS FALSE" for c in _PHYSICAL_FLOATS)
    bad = _first(
        cur, f"SELECT source_id, traj_id, step_idx, {floats} FROM step_rows WHERE {_MINE} AND NOT ({_ALL_FINITE})", ids
    )
    if bad:
        column = _PHYSICAL_FLOATS[list(bad[3:]).index(True)]
        name = "prm" if column == "prm_logged" else column
        raise IngestError(by_id[bad[0]].path, f"trajectory {bad[1]!r} step {bad[2]}: {name} is NaN or infinite")
    bad = _first(cur, f"SELECT source_id, traj_id, step_idx FROM step_rows WHERE {_MINE} AND NOT ({TOKENS_OK})", ids)
    if bad:
        raise IngestError(
            by_id[bad[0]].path,
            f"trajectory {bad[1]!r} step {bad[2]}: token arrays must have one length and finite numbers",
        )
    bad = _first(
        cur,
        f"""SELECT any_value(source_id), traj_id, step_idx FROM step_rows WHERE {_MINE}
        GROUP BY run_id, traj_id, step_idx HAVING count(*) > 1""",
        ids,
    )
    if bad:
        raise IngestError(by_id[bad[0]].path, f"trajectory {bad[1]!r} has step {bad[2]} more than once")
