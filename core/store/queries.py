"""Read queries the CLI and the dashboard need. SQL stays here, in the store package.

Every function takes a :class:`Store` and returns a pandas DataFrame; none keeps a cursor open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from core.schema import (
    LOGGED_PRM,
    OPTIONAL_STEP_INPUTS,
    PRM_SOURCE,
    STEP_COLUMN_NAMES,
    TOKEN_COLUMN_NAMES,
    TOKEN_STAT_INPUTS,
)
from core.store import search as search_index
from core.store.database import Store

SUMMARIES_VERSION = 5
"""Schema version that added the per-source summaries (:mod:`core.store.summaries`)."""
SEARCH_VERSION = 8
"""Schema version whose search reads ``group_prompts`` and the actions' pair-term index (:mod:`core.store.search`);
a database opened read-only before it is searched by reading its text."""
UNINDEXED_VERSION = 9
"""Schema version that lists the sources left out of the term index (``search_unindexed``)."""


_LEGACY_RUNS_SUMMARY = """
    SELECT r.run_id, r.source_format, r.source_path, r.ingested_at,
           count(DISTINCT t.iteration) AS iterations, count(DISTINCT (t.iteration, t.group_id)) AS groups,
           count(*) AS trajectories, sum(t.n_steps)::BIGINT AS steps, avg(t.outcome) AS mean_outcome
    FROM runs r JOIN trajectories t USING (run_id)
    GROUP BY ALL ORDER BY r.run_id"""
"""The summary straight from the trajectories, for a database opened read-only before it had summaries."""


def runs_summary(store: Store) -> pd.DataFrame:
    """One row per run: format, source, counts and when it was last ingested."""
    if store.schema_version < SUMMARIES_VERSION:
        return store.query_df(_LEGACY_RUNS_SUMMARY)
    return store.query_df(
        """SELECT r.run_id, r.source_format, r.source_path, r.ingested_at,
                  count(DISTINCT g.iteration) AS iterations, count(*) AS groups, sum(g.n)::BIGINT AS trajectories,
                  sum(g.sum_steps)::BIGINT AS steps, sum(g.n * g.mean_outcome) / sum(g.n) AS mean_outcome
           FROM runs r JOIN group_stats g USING (run_id)
           GROUP BY ALL ORDER BY r.run_id"""
    )


def iteration_curves(store: Store, run_ids: Sequence[str]) -> pd.DataFrame:
    """Per run and iteration: mean outcome, success rate, mean steps, share of zero-variance groups.

    Success means an outcome above 0 (a verifier's pass); a zero-variance group is one whose
    trajectories all share one outcome, so GRPO gives all of them zero advantage.
    """
    return store.query_df(
        """SELECT run_id, iteration, sum(n * mean_outcome) / sum(n) AS mean_outcome,
                  sum(n_success) / sum(n) AS success_rate, sum(sum_steps) / sum(n) AS mean_steps,
                  sum(n)::BIGINT AS trajectories, avg((min_outcome = max_outcome)::INT) AS zero_variance_share
           FROM group_stats WHERE run_id IN (SELECT unnest($runs))
           GROUP BY run_id, iteration ORDER BY run_id, iteration""",
        {"runs": list(run_ids)},
    )


def iterations(store: Store, run_id: str) -> list[int]:
    """Iterations present in a run, ascending."""
    frame = store.query_df("SELECT DISTINCT iteration FROM group_stats WHERE run_id = ? ORDER BY 1", [run_id])
    return [int(i) for i in frame["iteration"]]


GROUP_SORTS: dict[str, str] = {
    "iteration": "iteration, group_id",
    "group_id": "group_id, iteration",
    "n": "n",
    "mean_outcome": "mean_outcome",
    "std_outcome": "std_outcome",
    "zero_variance": "zero_variance",
    "mean_steps": "mean_steps",
}
"""Orders the Groups table can be sorted by (ties broken by iteration and group)."""

_GROUPS = """
    SELECT iteration, group_id, n, mean_outcome, std_outcome, min_outcome = max_outcome AS zero_variance,
           sum_steps / n AS mean_steps, prompt
    FROM group_stats {match}
    WHERE run_id = $run AND ($it IS NULL OR iteration = $it) {span}
    ORDER BY {order} LIMIT $limit OFFSET $offset"""


@dataclass(frozen=True)
class GroupsPage:
    """One page of a run's groups and how many there are in all."""

    frame: pd.DataFrame
    """``iteration, group_id, n, mean_outcome, std_outcome, zero_variance, mean_steps, prompt``, plus
    ``matched_in`` and ``match`` (where the search text was found) when searching."""
    total: int


def groups_page(
    store: Store,
    run_id: str,
    iteration: int | None = None,
    search: str = "",
    *,
    sort: str = "iteration",
    descending: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> GroupsPage:
    """Groups of a run (optionally one iteration), sorted and paged in DuckDB, from the group summaries.

    The statistics cover every rollout of a group. ``search`` keeps the groups whose prompt or any step
    action contains the text (literally, case-insensitively; see :mod:`core.store.search`), and then each
    listed group says where the text first occurs: ``matched_in`` is ``prompt`` or ``TRAJ step K``, and
    ``match`` the text around it.
    """
    if sort not in GROUP_SORTS:
        raise ValueError(f"cannot sort groups by {sort!r}; choose from {', '.join(GROUP_SORTS)}")
    direction = " DESC" if descending else ""
    order = ", ".join(f"{c}{direction}" for c in GROUP_SORTS[sort].split(", ")) + ", iteration, group_id"
    scope = {"run": run_id, "it": iteration}
    indexed = store.schema_version >= SEARCH_VERSION
    with store.reader() as cur:
        match, span, paging = "", "", {"limit": limit, "offset": offset}
        if search:
            # Matching groups once, for both the page and the count.
            needle = search_index.parse(cur, search)
            search_index.create_matches(
                cur, needle, scope, indexed=indexed, lists_unindexed=store.schema_version >= UNINDEXED_VERSION
            )
            match = f"SEMI JOIN {search_index.MATCHES} USING (iteration, group_id)"
            if sort == "iteration" and limit is not None:
                match, span = _page_of_matches(cur, direction, limit, offset)
                paging = {"limit": None, "offset": 0}
        frame = cur.execute(_GROUPS.format(match=match, order=order, span=span), {**scope, **paging}).df()
        total = len(frame)
        if limit is not None or offset:
            if search:  # the matches are distinct groups of the run and scope
                total = int(cur.execute(f"SELECT count(*) FROM {search_index.MATCHES}").fetchone()[0])  # type: ignore[index]
            else:
                count = "SELECT count(*) FROM group_stats WHERE run_id = $run AND ($it IS NULL OR iteration = $it)"
                total = int(cur.execute(count, scope).fetchone()[0])  # type: ignore[index]
        if search:
            frame = _with_match_locations(cur, frame, run_id, needle, indexed)
            cur.execute(f"DROP TABLE {search_index.MATCHES}")
            cur.execute(f"DROP TABLE IF EXISTS {_PAGE}")
    return GroupsPage(frame, total)


_PAGE = "cs_page"


def _page_of_matches(cur: duckdb.DuckDBPyConnection, direction: str, limit: int, offset: int) -> tuple[str, str]:
    """Pick a page of matches in iteration order from the matches alone; return the page query's join and filter.

    The groups' statistics are then read for those groups only, their iterations written in as constants, so
    DuckDB skips the row groups of ``group_stats`` (stored in iteration order) holding none of them.
    """
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_PAGE} AS SELECT iteration, group_id FROM {search_index.MATCHES}
            ORDER BY iteration{direction}, group_id{direction} LIMIT $limit OFFSET $offset""",
        {"limit": limit, "offset": offset},
    )
    low, high = cur.execute(f"SELECT min(iteration), max(iteration) FROM {_PAGE}").fetchone()  # type: ignore[misc]
    span = "AND FALSE" if low is None else f"AND iteration BETWEEN {int(low)} AND {int(high)}"
    return f"SEMI JOIN {_PAGE} USING (iteration, group_id)", span


def _with_match_locations(
    cur: duckdb.DuckDBPyConnection, frame: pd.DataFrame, run_id: str, needle: search_index.Needle, indexed: bool
) -> pd.DataFrame:
    """Add where each listed group first contains ``needle`` (reads only those groups' rows)."""
    if frame.empty:
        return frame.assign(matched_in=pd.Series(dtype=object), match=pd.Series(dtype=object))
    found = cur.execute(
        search_index.where_matched_sql(needle, indexed=indexed),
        {"run": run_id, "needle": needle.text, "its": frame["iteration"].tolist(), "gids": frame["group_id"].tolist()},
    ).df()
    return frame.merge(found, on=["iteration", "group_id"], how="left")


def spread_groups(store: Store, run_id: str, n: int) -> list[tuple[int, str]]:
    """About ``n`` groups spread evenly over a run, in (iteration, group) order (the same sample every time)."""
    frame = store.query_df(
        """WITH g AS (SELECT iteration, group_id, row_number() OVER (ORDER BY iteration, group_id) - 1 AS k,
                             count(*) OVER () AS total
                      FROM group_stats WHERE run_id = $run)
           SELECT iteration, group_id FROM g WHERE k % greatest(1, total // $n) = 0 ORDER BY k LIMIT $n""",
        {"run": run_id, "n": n},
    )
    return [(int(i), str(g)) for i, g in zip(frame["iteration"], frame["group_id"], strict=True)]


def groups(store: Store, run_id: str, iteration: int | None = None, search: str = "") -> pd.DataFrame:
    """All groups of a run (optionally one iteration) in (iteration, group) order; see :func:`groups_page`."""
    return groups_page(store, run_id, iteration, search).frame


def steps(
    store: Store,
    *,
    run_id: str | None = None,
    iteration: int | None = None,
    group_id: str | None = None,
    traj_ids: Sequence[str] | None = None,
    with_extra: bool = False,
    iterations: tuple[int, int] | None = None,
    with_token_stats: bool = False,
) -> pd.DataFrame:
    """Canonical step rows (the ``steps`` view), filtered, ordered by trajectory and step.

    ``iterations`` keeps an inclusive range of iterations (how :mod:`core.store.stream` reads a run in
    chunks). The optional credit inputs (:data:`core.schema.OPTIONAL_STEP_INPUTS`) come along as columns,
    read from ``extra`` (NULL where a log does not carry them). ``with_token_stats`` adds
    :data:`core.schema.TOKEN_STAT_INPUTS` (NULL where a step has no per-token log-probs), aggregated in DuckDB
    from the per-token arrays, which stay out of the view. ``prm_source`` says which scorer each ``prm``
    value is from (:data:`core.schema.PRM_SOURCE`).
    """
    optional = [f"TRY_CAST(v.extra->>'{k}' AS DOUBLE) AS {k}" for k in OPTIONAL_STEP_INPUTS]
    cols = ", ".join(
        [
            *(f"v.{c}" for c in STEP_COLUMN_NAMES),
            *optional,
            f"v.{PRM_SOURCE.name}",
            *(["v.extra"] if with_extra else []),
        ]
    )
    where = """($run IS NULL OR {t}run_id = $run) AND ($it IS NULL OR {t}iteration = $it)
             AND ($grp IS NULL OR {t}group_id = $grp) AND ($trajs IS NULL OR list_contains($trajs, {t}traj_id))
             AND {t}iteration BETWEEN $first AND $last"""
    join = ""
    if with_token_stats:
        mean_prob, mean_logprob = TOKEN_STAT_INPUTS
        cols += f", t.{mean_prob}, t.{mean_logprob}"
        # The arrays are read with the same filter as the steps: joined unfiltered, a one-iteration read of a
        # 10M-step run would take the whole step table into the join.
        join = f"""LEFT JOIN (
             SELECT run_id, traj_id, step_idx,
                    list_avg(list_transform(token_logprobs, lambda x: exp(x))) AS {mean_prob},
                    list_avg(token_logprobs) AS {mean_logprob}
             FROM step_rows WHERE {where.format(t="")}
           ) t ON t.run_id = v.run_id AND t.traj_id = v.traj_id AND t.step_idx = v.step_idx"""
    return store.query_df(
        f"""SELECT {cols} FROM steps v {join}
           WHERE {where.format(t="v.")}
           ORDER BY v.run_id, v.iteration, v.group_id, v.traj_id, v.step_idx""",
        {
            "run": run_id,
            "it": iteration,
            "grp": group_id,
            "trajs": list(traj_ids) if traj_ids is not None else None,
            "first": iterations[0] if iterations else -(2**63),
            "last": iterations[1] if iterations else 2**63 - 1,
        },
    )


def prm_below_counts(
    store: Store, run_id: str, iterations: Sequence[int], group_ids: Sequence[str], threshold: float
) -> pd.DataFrame:
    """Per listed group: how many steps ``steps.prm`` scores below ``threshold``, and how many have no score.

    Groups are ``(iterations[i], group_ids[i])``; columns ``iteration, group_id, prm_below, prm_unscored``.
    """
    return store.query_df(
        """SELECT iteration, group_id, count(*) FILTER (WHERE prm < $tau) AS prm_below,
                  count(*) FILTER (WHERE prm IS NULL) AS prm_unscored
           FROM steps JOIN (SELECT unnest($its) AS iteration, unnest($gids) AS group_id) USING (iteration, group_id)
           WHERE run_id = $run GROUP BY iteration, group_id""",
        {"run": run_id, "its": list(iterations), "gids": list(group_ids), "tau": threshold},
    )


def labelled_steps_sample(store: Store, run_id: str, max_trajectories: int) -> tuple[pd.DataFrame, int]:
    """Labelled steps (``run_id, traj_id, step_idx, label, prm, prm_source``) of at most ``max_trajectories``.

    The sample is the trajectories of whole iterations spread evenly over the run (so it spans training
    from start to end, and reading it skips the other iterations' rows), cut to ``max_trajectories`` by a
    hash of their ids when one iteration alone has more; the same on every call. The second value is
    how many trajectories the run has in all.
    """
    sizes = store.query_df(
        "SELECT iteration, sum(n)::BIGINT AS n FROM group_stats WHERE run_id = ? GROUP BY iteration ORDER BY 1",
        [run_id],
    )
    total = int(sizes["n"].sum())
    if total > max_trajectories:
        wanted = max(1, int(max_trajectories // max(sizes["n"].mean(), 1)))
        picks = sorted({round(i) for i in np.linspace(0, len(sizes) - 1, wanted)})
        chosen = sizes["iteration"].iloc[picks].tolist()
    else:
        chosen = sizes["iteration"].tolist()
    frame = store.query_df(
        """WITH pick AS (SELECT traj_id FROM trajectories WHERE run_id = $run AND list_contains($its, iteration)
                         ORDER BY hash(traj_id), traj_id LIMIT $n)
           SELECT run_id, traj_id, step_idx, label, prm, prm_source FROM steps SEMI JOIN pick USING (traj_id)
           WHERE run_id = $run AND iteration BETWEEN $first AND $last AND list_contains($its, iteration)
             AND label IS NOT NULL
           ORDER BY traj_id, step_idx""",
        {"run": run_id, "its": chosen, "n": max_trajectories, "first": min(chosen, default=0),
         "last": max(chosen, default=-1)},
    )  # fmt: skip
    return frame, total


def scope_counts(
    store: Store,
    run_id: str,
    *,
    iteration: int | None = None,
    group_id: str | None = None,
    traj_ids: Sequence[str] | None = None,
) -> tuple[int, int]:
    """Trajectories, and steps showing a logged PRM score, among a run's steps filtered as :func:`steps` filters.

    Counted in DuckDB: a whole-run scope of 10M steps never becomes a DataFrame.
    """
    frame = store.query_df(
        """SELECT count(DISTINCT traj_id) AS trajectories, count(*) FILTER (WHERE prm_source = $logged) AS logged
           FROM steps
           WHERE run_id = $run AND ($it IS NULL OR iteration = $it) AND ($grp IS NULL OR group_id = $grp)
             AND ($trajs IS NULL OR list_contains($trajs, traj_id))""",
        {"run": run_id, "it": iteration, "grp": group_id, "trajs": list(traj_ids) if traj_ids is not None else None,
         "logged": LOGGED_PRM},
    )  # fmt: skip
    return int(frame["trajectories"].iloc[0]), int(frame["logged"].iloc[0])


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
        return None, pd.DataFrame(columns=[*STEP_COLUMN_NAMES, PRM_SOURCE.name, "extra"])
    row = trajs.iloc[0]
    # The iteration lets DuckDB skip every row group of other iterations (zone maps), on a 10M-step run too.
    return row, steps(store, run_id=run_id, iteration=int(row["iteration"]), traj_ids=[traj_id], with_extra=True)


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
    """Per run, how many steps carry each nullable canonical column (what schemes can run on it).

    From the per-source coverage summaries; ``prm`` counts what ``steps.prm`` shows: the active
    scorer's scores on the steps it scored, the logged scores on the others (schema version 6). Only
    the active scorer's rows are joined with the steps, never the whole run.
    """
    nullable = ["state", "reward", "node_id", "parent_id", "label", "valid", "value"]
    sums = ", ".join(f"sum(c.{c})::BIGINT AS {c}" for c in nullable)
    return store.query_df(
        f"""SELECT c.run_id, sum(c.steps)::BIGINT AS steps, {sums},
                   (sum(c.prm_logged) - coalesce(any_value(scored.logged_replaced), 0)
                    + coalesce(any_value(scored.n), 0))::BIGINT AS prm
            FROM source_coverage c
            LEFT JOIN (SELECT a.run_id, count(p.score) AS n, count(s.prm_logged) AS logged_replaced
                       FROM prm_active a
                       JOIN prm_step_scores p ON p.run_id = a.run_id AND p.scorer_id = a.scorer_id
                       JOIN step_rows s ON s.run_id = p.run_id AND s.traj_id = p.traj_id AND s.step_idx = p.step_idx
                       GROUP BY a.run_id) scored USING (run_id)
            GROUP BY c.run_id ORDER BY c.run_id"""
    )[["run_id", "steps", "state", "reward", "node_id", "parent_id", "label", "valid", "prm", "value"]]
