"""Read queries the CLI and the dashboard need. SQL stays here, in the store package.

Every function takes a :class:`Store` and returns a pandas DataFrame; none keeps a cursor open.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.schema import OPTIONAL_STEP_INPUTS, STEP_COLUMN_NAMES, TOKEN_COLUMN_NAMES
from core.store.database import Store


def runs_summary(store: Store) -> pd.DataFrame:
    """One row per run: format, source, counts and when it was last ingested."""
    return store.query_df(
        """SELECT r.run_id, r.source_format, r.source_path, r.ingested_at,
                  count(DISTINCT t.iteration) AS iterations, count(DISTINCT (t.iteration, t.group_id)) AS groups,
                  count(*) AS trajectories, sum(t.n_steps)::BIGINT AS steps, avg(t.outcome) AS mean_outcome
           FROM runs r JOIN trajectories t USING (run_id)
           GROUP BY ALL ORDER BY r.run_id"""
    )


def iteration_curves(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """Per run and iteration: mean outcome, success rate, mean steps, share of zero-variance groups.

    Success means an outcome above 0 (a verifier's pass); a zero-variance group is one whose
    trajectories all share one outcome, so GRPO gives all of them zero advantage.
    """
    return store.query_df(
        """WITH g AS (
               SELECT run_id, iteration, group_id, count(*) AS n, stddev_pop(outcome) AS sd
               FROM trajectories WHERE run_id IN (SELECT unnest($runs)) GROUP BY ALL)
           SELECT t.run_id, t.iteration, avg(t.outcome) AS mean_outcome, avg((t.outcome > 0)::INT) AS success_rate,
                  avg(t.n_steps) AS mean_steps, count(*) AS trajectories,
                  (SELECT avg((g.sd = 0)::INT) FROM g WHERE g.run_id = t.run_id AND g.iteration = t.iteration)
                      AS zero_variance_share
           FROM trajectories t WHERE t.run_id IN (SELECT unnest($runs))
           GROUP BY t.run_id, t.iteration ORDER BY t.run_id, t.iteration""",
        {"runs": list(run_ids)},
    )


def iterations(store: Store, run_id: str) -> list[int]:
    """Iterations present in a run, ascending."""
    frame = store.query_df("SELECT DISTINCT iteration FROM trajectories WHERE run_id = ? ORDER BY 1", [run_id])
    return [int(i) for i in frame["iteration"]]


def groups(store: Store, run_id: str, iteration: int | None = None, search: str = "") -> pd.DataFrame:
    """Groups of a run (optionally one iteration) with size, outcome mean/std and a zero-variance flag.

    ``search`` keeps groups whose prompt or any step action contains the text (case-insensitive). The
    text is matched literally: a ``%`` or ``_`` in it is not a LIKE wildcard.
    """
    needle = search or None
    return store.query_df(
        """SELECT t.iteration, t.group_id, count(*) AS n, avg(t.outcome) AS mean_outcome,
                  coalesce(stddev_samp(t.outcome), 0) AS std_outcome,
                  (max(t.outcome) = min(t.outcome)) AS zero_variance, avg(t.n_steps) AS mean_steps,
                  left(any_value(t.prompt), 160) AS prompt
           FROM trajectories t
           WHERE t.run_id = $run AND ($it IS NULL OR t.iteration = $it)
             AND ($needle IS NULL OR contains(lower(t.prompt), lower($needle)) OR EXISTS (
                 SELECT 1 FROM step_rows s
                 WHERE s.run_id = t.run_id AND s.traj_id = t.traj_id AND contains(lower(s.action), lower($needle))))
           GROUP BY t.iteration, t.group_id ORDER BY t.iteration, t.group_id""",
        {"run": run_id, "it": iteration, "needle": needle},
    )


def steps(
    store: Store,
    *,
    run_id: str | None = None,
    iteration: int | None = None,
    group_id: str | None = None,
    traj_ids: Sequence[str] | None = None,
    with_extra: bool = False,
) -> pd.DataFrame:
    """Canonical step rows (the ``steps`` view), filtered, ordered by trajectory and step.

    The optional credit inputs (:data:`core.schema.OPTIONAL_STEP_INPUTS`) come along as columns,
    read from ``extra`` (NULL where a log does not carry them).
    """
    optional = [f"TRY_CAST(extra->>'{k}' AS DOUBLE) AS {k}" for k in OPTIONAL_STEP_INPUTS]
    cols = ", ".join([*STEP_COLUMN_NAMES, *optional, *(["extra"] if with_extra else [])])
    return store.query_df(
        f"""SELECT {cols} FROM steps
           WHERE ($run IS NULL OR run_id = $run) AND ($it IS NULL OR iteration = $it)
             AND ($grp IS NULL OR group_id = $grp) AND ($trajs IS NULL OR list_contains($trajs, traj_id))
           ORDER BY run_id, iteration, group_id, traj_id, step_idx""",
        {"run": run_id, "it": iteration, "grp": group_id, "trajs": list(traj_ids) if traj_ids is not None else None},
    )


def trajectories(
    store: Store,
    *,
    run_id: str,
    iteration: int | None = None,
    group_id: str | None = None,
    traj_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Trajectory rows (prompt, split, outcome, n_steps, meta) of a run, iteration, group or id list."""
    return store.query_df(
        """SELECT run_id, traj_id, iteration, group_id, prompt, split, outcome, n_steps, meta FROM trajectories
           WHERE run_id = $run AND ($it IS NULL OR iteration = $it) AND ($grp IS NULL OR group_id = $grp)
             AND ($trajs IS NULL OR list_contains($trajs, traj_id))
           ORDER BY iteration, group_id, traj_id""",
        {"run": run_id, "it": iteration, "grp": group_id, "trajs": list(traj_ids) if traj_ids is not None else None},
    )


def trajectory(store: Store, run_id: str, traj_id: str) -> tuple[pd.Series | None, pd.DataFrame]:
    """One trajectory's row (None if absent) and its steps with extras."""
    trajs = store.query_df(
        "SELECT * EXCLUDE (source_id) FROM trajectories WHERE run_id = ? AND traj_id = ?", [run_id, traj_id]
    )
    if trajs.empty:
        return None, pd.DataFrame(columns=[*STEP_COLUMN_NAMES, "extra"])
    return trajs.iloc[0], steps(store, run_id=run_id, traj_ids=[traj_id], with_extra=True)


def step_tokens(store: Store, run_id: str, traj_id: str) -> pd.DataFrame:
    """One trajectory's per-token arrays: a row per step (``step_idx``, then :data:`core.schema.TOKEN_COLUMN_NAMES`).

    Each array cell is a Python list (``tokens`` of str, the others of float) or None where the log did not
    carry it; the arrays of one step have one length. Steps are in order; an unknown trajectory gives no rows.
    """
    columns = ["step_idx", *TOKEN_COLUMN_NAMES]
    with store.reader() as cur:  # fetched as rows: DuckDB's DataFrame export turns lists into numpy arrays
        rows = cur.execute(
            f"SELECT {', '.join(columns)} FROM step_rows WHERE run_id = ? AND traj_id = ? ORDER BY step_idx",
            [run_id, traj_id],
        ).fetchall()
    return pd.DataFrame(rows, columns=columns, dtype="object").astype({"step_idx": "int64"})


def token_coverage(store: Store, run_id: str | None = None) -> pd.DataFrame:
    """Per run, how many steps carry each token array (0 everywhere: the log has no per-token data)."""
    counts = ", ".join(f"count({name}) AS {name}" for name in TOKEN_COLUMN_NAMES)
    return store.query_df(
        f"""SELECT run_id, count(*) AS steps, {counts} FROM step_rows
           WHERE $run IS NULL OR run_id = $run GROUP BY run_id ORDER BY run_id""",
        {"run": run_id},
    )


def column_coverage(store: Store) -> pd.DataFrame:
    """Per run, how many steps carry each nullable canonical column (what schemes can run on it)."""
    nullable = ["state", "reward", "node_id", "parent_id", "label", "valid", "prm", "value"]
    counts = ", ".join(f"count({c}) AS {c}" for c in nullable)
    return store.query_df(f"SELECT run_id, count(*) AS steps, {counts} FROM steps GROUP BY run_id ORDER BY run_id")
