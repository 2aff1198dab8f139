"""Schema of the creditscope database, as an ordered list of migrations.

Each entry moves the schema from version ``i`` to ``i + 1``: SQL text, or a function of a cursor
where a migration must also fill what it creates from existing rows. Never edit a released migration:
append a new one and describe it in the README's "Schema changes" section. The ``steps`` view is
the public contract (``core.schema.STEP_COLUMNS``); physical tables may change behind it.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from core.schema import STEP_COLUMNS
from core.store.summaries import rebuild_group_stats, rebuild_group_summaries, rebuild_search

_STEP_PHYSICAL = ",\n    ".join(
    f"{c.name} {c.sql_type}{'' if c.nullable else ' NOT NULL'}" if c.name != "prm" else "prm_logged DOUBLE"
    for c in STEP_COLUMNS
)
_STEP_VIEW_COLUMNS = ",\n    ".join(
    "COALESCE(a.score, s.prm_logged) AS prm" if c.name == "prm" else f"s.{c.name}" for c in STEP_COLUMNS
)


def _summaries(cur: duckdb.DuckDBPyConnection) -> None:
    """Group statistics, column coverage and the search index's tables (core.store.summaries), for existing rows."""
    cur.execute(
        """
CREATE TABLE group_sources (
    source_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, iteration BIGINT NOT NULL, group_id VARCHAR NOT NULL
);
CREATE TABLE group_stats (
    run_id VARCHAR NOT NULL, iteration BIGINT NOT NULL, group_id VARCHAR NOT NULL, n BIGINT NOT NULL,
    mean_outcome DOUBLE NOT NULL, std_outcome DOUBLE NOT NULL, min_outcome DOUBLE NOT NULL,
    max_outcome DOUBLE NOT NULL, n_success BIGINT NOT NULL, sum_steps BIGINT NOT NULL, prompt VARCHAR
);
CREATE TABLE source_coverage (
    source_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, steps BIGINT NOT NULL, state BIGINT NOT NULL,
    reward BIGINT NOT NULL, node_id BIGINT NOT NULL, parent_id BIGINT NOT NULL, label BIGINT NOT NULL,
    valid BIGINT NOT NULL, prm_logged BIGINT NOT NULL, value BIGINT NOT NULL
);
CREATE TABLE search_vocab (term_id BIGINT NOT NULL, term VARCHAR NOT NULL);
CREATE TABLE search_postings (
    source_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, iteration BIGINT NOT NULL, group_id VARCHAR NOT NULL,
    term_id BIGINT NOT NULL
);
"""
    )
    # The search index is filled by the last migration that changed what it holds (9), which always runs too:
    # pending migrations run together, up to the current version.
    rebuild_group_summaries(cur)


def _pair_terms(cur: duckdb.DuckDBPyConnection) -> None:
    """Write group_stats in iteration order as loads now do (the index of pair terms is built by migration 9)."""
    rebuild_group_stats(cur)


def _group_prompts(cur: duckdb.DuckDBPyConnection) -> None:
    """Keep each group's distinct prompts for the search (filled, with the actions' index, by migration 9)."""
    cur.execute(
        """CREATE TABLE group_prompts (
               run_id VARCHAR NOT NULL, iteration BIGINT NOT NULL, group_id VARCHAR NOT NULL, prompt VARCHAR NOT NULL
           )"""
    )


def _unindexed_sources(cur: duckdb.DuckDBPyConnection) -> None:
    """List the sources whose actions are long free text, left out of the index, and rebuild what the search reads."""
    cur.execute("CREATE TABLE search_unindexed (source_id VARCHAR NOT NULL)")
    rebuild_search(cur)


Migration = str | Callable[[duckdb.DuckDBPyConnection], None]

MIGRATIONS: tuple[Migration, ...] = (
    # 1: canonical tables, source bookkeeping, PRM score cache, and the public `steps` view.
    f"""
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    source_format VARCHAR NOT NULL,
    source_path VARCHAR NOT NULL,
    ingested_at TIMESTAMP NOT NULL,
    config JSON
);
CREATE TABLE sources (
    source_id VARCHAR PRIMARY KEY,
    path VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    run_override VARCHAR,
    content_hash VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    mtime DOUBLE NOT NULL,
    n_trajectories BIGINT NOT NULL,
    n_steps BIGINT NOT NULL,
    ingested_at TIMESTAMP NOT NULL,
    options JSON
);
CREATE TABLE trajectories (
    run_id VARCHAR NOT NULL,
    traj_id VARCHAR NOT NULL,
    iteration BIGINT NOT NULL,
    group_id VARCHAR NOT NULL,
    prompt VARCHAR,
    split VARCHAR NOT NULL,
    outcome DOUBLE NOT NULL,
    n_steps INTEGER NOT NULL,
    meta JSON,
    source_id VARCHAR NOT NULL
);
CREATE TABLE step_rows (
    {_STEP_PHYSICAL},
    extra JSON,
    source_id VARCHAR NOT NULL
);
CREATE TABLE prm_scorers (scorer_id VARCHAR PRIMARY KEY, spec JSON, created_at TIMESTAMP);
CREATE TABLE prm_cache (
    scorer_id VARCHAR, content_hash VARCHAR, score DOUBLE, truncated BOOLEAN,
    PRIMARY KEY (scorer_id, content_hash)
);
CREATE TABLE prm_step_scores (
    run_id VARCHAR, traj_id VARCHAR, step_idx INTEGER, scorer_id VARCHAR, score DOUBLE, truncated BOOLEAN,
    PRIMARY KEY (run_id, traj_id, step_idx, scorer_id)
);
CREATE TABLE prm_active (run_id VARCHAR PRIMARY KEY, scorer_id VARCHAR);
CREATE VIEW steps AS
SELECT
    {_STEP_VIEW_COLUMNS},
    s.extra
FROM step_rows s
LEFT JOIN (
    SELECT p.run_id, p.traj_id, p.step_idx, p.score
    FROM prm_step_scores p JOIN prm_active USING (run_id, scorer_id)
) a ON a.run_id = s.run_id AND a.traj_id = s.traj_id AND a.step_idx = s.step_idx;
""",
    # 2: where an incremental (append-only) load of a line-oriented file stopped, and a fingerprint of
    # the bytes before that point, so a grown file is read from there on (core.ingest.runner).
    """
ALTER TABLE sources ADD COLUMN loaded_bytes BIGINT;
ALTER TABLE sources ADD COLUMN loaded_lines BIGINT;
ALTER TABLE sources ADD COLUMN prefix_hash VARCHAR;
""",
    # 3: a run with an active PRM scorer shows only that scorer's scores in steps.prm (NULL where it
    # did not score a step, e.g. truncated or outside the rescored scope) instead of falling back to
    # the logged score, so one column never mixes two scorers.
    """
CREATE OR REPLACE VIEW steps AS
SELECT
    s.run_id, s.iteration, s.group_id, s.traj_id, s.step_idx, s.state, s.action, s.reward, s.outcome,
    s.node_id, s.parent_id, s.label, s.valid,
    CASE WHEN act.scorer_id IS NULL THEN s.prm_logged ELSE p.score END AS prm,
    s.value, s.extra
FROM step_rows s
LEFT JOIN prm_active act ON act.run_id = s.run_id
LEFT JOIN prm_step_scores p
  ON p.run_id = s.run_id AND p.traj_id = s.traj_id AND p.step_idx = s.step_idx AND p.scorer_id = act.scorer_id;
""",
    # 4: optional per-token arrays of a step (tokens, log-probs, entropies, advantages) as LIST columns of
    # step_rows. They stay out of the `steps` view, so its scans never read them (DuckDB stores columns
    # apart); core.store.queries.step_tokens reads one trajectory's arrays.
    # Written out rather than derived from core.schema.TOKEN_COLUMNS: a released migration never changes.
    """
ALTER TABLE step_rows ADD COLUMN tokens VARCHAR[];
ALTER TABLE step_rows ADD COLUMN token_logprobs DOUBLE[];
ALTER TABLE step_rows ADD COLUMN token_ref_logprobs DOUBLE[];
ALTER TABLE step_rows ADD COLUMN token_entropies DOUBLE[];
ALTER TABLE step_rows ADD COLUMN token_advantages DOUBLE[];
""",
    # 5: group statistics, per-source column coverage and the search token index, kept by every load, so
    # pages read summaries instead of aggregating every trajectory and scanning every step's text.
    _summaries,
    # 6: where the active scorer has no row for a step (outside a partial rescore's scope), steps.prm falls
    # back to the logged score again, and the new prm_source column says which scorer each value is from
    # ('logged' for the log's own), so the column never mixes scorers without saying so.
    """
CREATE OR REPLACE VIEW steps AS
SELECT
    s.run_id, s.iteration, s.group_id, s.traj_id, s.step_idx, s.state, s.action, s.reward, s.outcome,
    s.node_id, s.parent_id, s.label, s.valid,
    CASE WHEN p.scorer_id IS NOT NULL THEN p.score ELSE s.prm_logged END AS prm,
    s.value,
    CASE WHEN p.scorer_id IS NOT NULL THEN p.scorer_id WHEN s.prm_logged IS NOT NULL THEN 'logged' END AS prm_source,
    s.extra
FROM step_rows s
LEFT JOIN prm_active act ON act.run_id = s.run_id
LEFT JOIN prm_step_scores p
  ON p.run_id = s.run_id AND p.traj_id = s.traj_id AND p.step_idx = s.step_idx AND p.scorer_id = act.scorer_id;
""",
    # 7: the search index holds pair terms (a separator run with the words beside it) instead of single words,
    # so a search with at most one separator run ("17 * 3", "take key") is decided without reading any text;
    # group_stats is stored in iteration order.
    _pair_terms,
    # 8: each group's distinct prompts in their own table (group_prompts), which the search matches directly; the
    # term index holds the actions' terms only (a prompt's terms were posted once per group: 40 % of the postings).
    _group_prompts,
    # 9: sources whose actions are long free text (core.store.summaries.LONG_ACTIONS) stay out of the term index,
    # listed in search_unindexed; the search reads their actions literally.
    _unindexed_sources,
)

SCHEMA_VERSION = len(MIGRATIONS)
