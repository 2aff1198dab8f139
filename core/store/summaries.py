"""Summaries kept beside the canonical tables, so pages never aggregate millions of rows.

They are rebuilt for a source (one ingested file) every time its rows change: :func:`refresh_sources`
runs at the end of every load, inside the loading transaction, so they can never disagree with the
rows they summarise.

- ``group_stats``: one row per group (run, iteration, group_id) with its rollout count, outcome mean /
  std / extremes, successes and steps, computed from *all* its trajectories. ``group_sources``
  remembers which sources have rows in which groups, so a reload recomputes exactly the groups the
  source had before and has now (a group may span several files).
- ``source_coverage``: per source and run, how many steps carry each nullable column.
- ``group_prompts``: each group's distinct prompts, one row per group as a rule (a group's rollouts share
  their prompt), stored in iteration order. The Groups search matches prompts here: a group's prompt is
  read once instead of once per rollout, and indexing it would post each of its terms per group.
- ``search_postings`` + ``search_vocab``: which *pair terms* (two neighbouring words and the separators
  between them) occur in each group's step actions, per source (the index behind the Groups search; see
  :mod:`core.store.search`). ``search_unindexed`` lists the sources whose actions are long free text
  (:data:`LONG_ACTIONS`): they stay out of the index and the search reads their actions literally.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import duckdb

SEPARATORS = r"[\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"
"""Characters that split text into words for the search index: ASCII other than letters, digits and ``_``.

Everything else (accented letters, CJK, other scripts' punctuation) stays inside words; what matters
for exactness is only that indexed text and searched text are split alike (:mod:`core.store.search`).
"""

MARK = "\ue000"
"""Splits a text into its alternating words and separator runs (a private-use character; see :func:`terms_sql`)."""
MARK_STANDIN = "\ue001"
"""What :data:`MARK` is replaced by inside the indexed text, so the split never breaks a word or a run."""


def marked_sql(text: str) -> str:
    """SQL: the lower-cased text with :data:`MARK` on both sides of every separator run (see :func:`pieces_sql`)."""
    lowered = f"replace(lower({text}), '{MARK}', '{MARK_STANDIN}')"
    return f"regexp_replace({lowered}, '({SEPARATORS}+)', '{MARK}\\1{MARK}', 'g')"


def pieces_sql(text: str) -> str:
    """SQL: the lower-cased text as alternating words and separator runs, starting and ending with a word.

    ``'17 * 3'`` gives ``['17', ' * ', '3']``; a text starting or ending with a separator has an empty
    word there (``' a'`` gives ``['', ' ', 'a']``), so the list always has odd length.
    """
    return _split_marked(marked_sql(text))


def _split_marked(marked: str) -> str:
    return f"string_split({marked}, '{MARK}')"


def _pairs(pieces: str) -> str:
    pair = "lambda j: p[j - 1] || p[j] || p[j + 1]"
    return (
        f"list_transform([{pieces}], "
        f"lambda p: CASE WHEN len(p) = 1 THEN p ELSE list_transform(range(2, len(p), 2), {pair}) END)[1]"
    )


def terms_sql(text: str) -> str:
    """SQL for the search terms of a text: each separator run with the words on both sides of it.

    ``'17 * 3 = 51'`` gives ``['17 * 3', '3 = 51']``; a text without separators is its own single term.
    Every stretch of the lower-cased text that holds at most one separator run lies inside some term,
    which is what lets the search decide such needles from the index alone (:mod:`core.store.search`).
    The list may hold empty strings.
    """
    return _pairs(pieces_sql(text))


GROUP_STATS_SELECT = """
    SELECT run_id, iteration, group_id, count(*) AS n, avg(outcome) AS mean_outcome,
           coalesce(stddev_samp(outcome), 0) AS std_outcome, min(outcome) AS min_outcome,
           max(outcome) AS max_outcome, count(*) FILTER (WHERE outcome > 0) AS n_success,
           sum(n_steps)::BIGINT AS sum_steps, left(min(prompt), 160) AS prompt
    FROM trajectories {where} GROUP BY run_id, iteration, group_id ORDER BY run_id, iteration, group_id"""
"""Statistics of a group over every one of its trajectories, whichever file they came from. Stored in iteration
order, so a read of a few iterations skips the row groups of the others (pages ask by iteration)."""

COVERAGE_SELECT = """
    SELECT source_id, run_id, count(*) AS steps, count(state) AS state, count(reward) AS reward,
           count(node_id) AS node_id, count(parent_id) AS parent_id, count(label) AS label,
           count(valid) AS valid, count(prm_logged) AS prm_logged, count(value) AS value
    FROM step_rows WHERE {where} GROUP BY source_id, run_id"""


GROUP_PROMPTS_SELECT = """
    SELECT DISTINCT run_id, iteration, group_id, prompt FROM trajectories {where} WHERE prompt IS NOT NULL
    ORDER BY run_id, iteration, group_id"""
"""A group's distinct prompts, over all its trajectories whichever file they came from. In iteration order, so a
search of one iteration skips the others' row groups."""

_PER_GROUP = {"group_stats": GROUP_STATS_SELECT, "group_prompts": GROUP_PROMPTS_SELECT}
"""The summaries kept per group (over all of a group's files), with their selects (``{where}``: empty or a join)."""


LONG_ACTIONS = 256
"""Mean bytes per action above which a source's actions stay out of the term index (``search_unindexed``).

Free text posts about one pair term per word, nearly all distinct: indexing 100-word actions took 12x the time
and 5x the memory of loading them (``bench/ingest.py --free-text``). The search reads such actions literally,
as fast as a scan, while commands, tool calls and equations (tens of bytes) are indexed.
"""

REPEATED_ACTIONS = 4
"""Steps per distinct action from which the index splits each distinct action once (see :class:`_Terms`)."""


@dataclass(frozen=True)
class _Terms:
    """Which step rows to index (``where``) and how a posting names its source (a column, or ``$source``).

    Actions are split one of two ways, by how often they repeat (DuckDB's estimate of the distinct actions):
    - by action, where actions repeat across groups (tool calls, arithmetic, game commands): each distinct
      action is split once and its terms are joined to the groups holding it (a quarter less time at 5M steps
      of such actions);
    - by group, where they do not (free text): each group's distinct actions are split where they lie, which
      skips the join, twice as fast as splitting distinct actions and joining them back there.
    """

    where: str
    source: str = "source_id"

    @property
    def keys(self) -> str:
        """The columns a posting is distinct on; a constant source is added after DISTINCT, not hashed with it."""
        group = "run_id, iteration, group_id"
        return group if self.source.startswith("$") else f"source_id, {group}"

    @property
    def by_group(self) -> str:
        """Terms per group.

        Actions are marked (lower-cased, separator runs marked) before DISTINCT: DuckDB then marks each distinct
        text of a stored block once, 15-20 % less time than marking after.
        """
        return f"""
        SELECT {self.source} AS source_id, run_id, iteration, group_id, term FROM (
            SELECT DISTINCT {self.keys}, unnest({_pairs(_split_marked("marked"))}) AS term
            FROM (SELECT DISTINCT {self.keys}, {marked_sql("action")} AS marked FROM step_rows WHERE {self.where}))
        WHERE term <> ''"""

    @property
    def action_terms(self) -> str:
        """Terms per distinct action."""
        return f"""
        SELECT action, term FROM (
            SELECT action, unnest({_pairs(_split_marked(marked_sql("action")))}) AS term
            FROM (SELECT DISTINCT action FROM step_rows WHERE {self.where}))
        WHERE term <> ''"""

    @property
    def by_action(self) -> str:
        """Postings from each group's distinct actions joined to their actions' term ids (``cs_action_ids``)."""
        return f"""
        SELECT {self.source} AS source_id, run_id, iteration, group_id, term_id FROM (
            SELECT DISTINCT {self.keys}, unnest(ids) AS term_id
            FROM (SELECT DISTINCT {self.keys}, action FROM step_rows WHERE {self.where}) p
            JOIN cs_action_ids USING (action))"""


def refresh_source(cur: duckdb.DuckDBPyConnection, source_id: str) -> None:
    """Rebuild the summaries of one source from its rows (inside the loading transaction)."""
    refresh_sources(cur, [source_id])


def refresh_sources(cur: duckdb.DuckDBPyConnection, source_ids: list[str]) -> None:
    """Rebuild the summaries of several sources from their rows, in one pass (a load of many small files)."""
    params = {"sources": source_ids}
    mine = "source_id IN (SELECT unnest($sources))"
    # Groups the sources had rows in before this load (group_sources still says so) or have now.
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE cs_touched AS
           SELECT run_id, iteration, group_id FROM group_sources WHERE {mine}
           UNION SELECT run_id, iteration, group_id FROM trajectories WHERE {mine}""",
        params,
    )
    try:
        cur.execute(f"DELETE FROM group_sources WHERE {mine}", params)
        cur.execute(
            f"""INSERT INTO group_sources
               SELECT DISTINCT source_id, run_id, iteration, group_id FROM trajectories WHERE {mine}""",
            params,
        )
        for table, select in _PER_GROUP.items():
            cur.execute(
                f"""DELETE FROM {table} g USING cs_touched t
                    WHERE g.run_id = t.run_id AND g.iteration = t.iteration AND g.group_id = t.group_id"""
            )
            cur.execute(
                f"INSERT INTO {table} {select.format(where='SEMI JOIN cs_touched USING (run_id, iteration, group_id)')}"
            )
    finally:
        _drop(cur, "cs_touched")
    cur.execute(f"DELETE FROM source_coverage WHERE {mine}", params)
    cur.execute(f"INSERT INTO source_coverage {COVERAGE_SELECT.format(where=mine)}", params)
    cur.execute(f"DELETE FROM search_postings WHERE {mine}", params)
    cur.execute(f"DELETE FROM search_unindexed WHERE {mine}", params)
    left_out = _leave_out_long_actions(cur, mine, params)
    indexed = [source for source in source_ids if source not in left_out]
    if len(indexed) == 1:
        _index_terms(cur, _Terms("source_id = $source", source="$source"), {"source": indexed[0]})
    elif indexed:
        _index_terms(cur, _Terms(mine), {"sources": indexed})


def rebuild_all(cur: duckdb.DuckDBPyConnection) -> None:
    """Rebuild every summary from scratch."""
    rebuild_group_summaries(cur)
    rebuild_search(cur)


def rebuild_group_summaries(cur: duckdb.DuckDBPyConnection) -> None:
    """Rebuild the group statistics, the groups' sources and the column coverage from the rows."""
    for table in ("group_sources", "source_coverage"):
        cur.execute(f"DELETE FROM {table}")
    cur.execute("INSERT INTO group_sources SELECT DISTINCT source_id, run_id, iteration, group_id FROM trajectories")
    rebuild_group_stats(cur)
    cur.execute(f"INSERT INTO source_coverage {COVERAGE_SELECT.format(where='TRUE')}")


def rebuild_group_stats(cur: duckdb.DuckDBPyConnection) -> None:
    """Recompute every group's statistics from its trajectories (written in iteration order)."""
    _rebuild_per_group(cur, "group_stats")


def rebuild_search(cur: duckdb.DuckDBPyConnection) -> None:
    """Rebuild what the search reads, the groups' prompts and the term index of the actions, from the rows."""
    _rebuild_per_group(cur, "group_prompts")
    cur.execute("DELETE FROM search_postings")
    cur.execute("DELETE FROM search_vocab")
    cur.execute("DELETE FROM search_unindexed")
    _leave_out_long_actions(cur, "TRUE", {})
    _index_terms(cur, _Terms("source_id NOT IN (SELECT source_id FROM search_unindexed)"), {})


def _leave_out_long_actions(cur: duckdb.DuckDBPyConnection, where: str, params: dict) -> set[str]:
    """Record the sources (among ``where``'s rows) whose actions are long free text; return their ids."""
    rows = cur.execute(
        f"""INSERT INTO search_unindexed SELECT source_id FROM step_rows WHERE {where}
            GROUP BY source_id HAVING avg(strlen(action)) > {LONG_ACTIONS} RETURNING source_id""",
        params,
    ).fetchall()
    return {row[0] for row in rows}


def _rebuild_per_group(cur: duckdb.DuckDBPyConnection, table: str) -> None:
    cur.execute(f"DELETE FROM {table}")
    cur.execute(f"INSERT INTO {table} {_PER_GROUP[table].format(where='')}")


def _index_terms(cur: duckdb.DuckDBPyConnection, terms: _Terms, params: dict) -> None:
    """Add the terms new to the vocabulary, then the postings (one per group, source and term)."""
    row = cur.execute(f"SELECT count(*), approx_count_distinct(action) FROM step_rows WHERE {terms.where}", params)
    steps, actions = row.fetchone() or (0, 0)
    temporary = ("cs_action_terms", "cs_action_ids") if actions * REPEATED_ACTIONS <= steps else ("cs_words",)
    try:
        if temporary[0] == "cs_words":
            cur.execute(f"CREATE OR REPLACE TEMP TABLE cs_words AS {terms.by_group}", params)
            _add_to_vocab(cur, "cs_words")
            cur.execute(
                """INSERT INTO search_postings
                   SELECT w.source_id, w.run_id, w.iteration, w.group_id, v.term_id
                   FROM cs_words w JOIN search_vocab v USING (term)"""
            )
        else:
            cur.execute(f"CREATE OR REPLACE TEMP TABLE cs_action_terms AS {terms.action_terms}", params)
            _add_to_vocab(cur, "cs_action_terms")
            cur.execute(
                """CREATE OR REPLACE TEMP TABLE cs_action_ids AS
                   SELECT action, list(DISTINCT term_id) AS ids
                   FROM cs_action_terms JOIN search_vocab USING (term) GROUP BY action"""
            )
            cur.execute(f"INSERT INTO search_postings {terms.by_action}", params)
    finally:
        for table in temporary:
            _drop(cur, table)


def _add_to_vocab(cur: duckdb.DuckDBPyConnection, table: str) -> None:
    # Terms are never removed from the vocabulary: one no posting refers to any more just matches nothing.
    cur.execute(
        f"""INSERT INTO search_vocab
           SELECT (SELECT coalesce(max(term_id), 0) FROM search_vocab) + row_number() OVER (ORDER BY term), term
           FROM (SELECT DISTINCT term FROM {table}) w ANTI JOIN search_vocab v USING (term)"""
    )


def _drop(cur: duckdb.DuckDBPyConnection, table: str) -> None:
    # After a failed statement DuckDB accepts only ROLLBACK; that refusal must not hide the real error.
    with contextlib.suppress(duckdb.TransactionException):
        cur.execute(f"DROP TABLE IF EXISTS {table}")
