"""Groups search over prompts and step actions: prompts read per group, actions through a term index.

The search is a literal, case-insensitive substring match, as before the index existed: a group
matches when its prompt or any step's action contains the typed text. Prompts are matched in
``group_prompts``, one row per group as a rule (read once, not once per rollout). For actions, the term
index (``search_postings``) narrows the groups that can match, and decides alone wherever that is exact,
which is most searches:

- Text is indexed as *terms*: each run of separators (:data:`core.store.summaries.SEPARATORS`) with
  the words on both sides (``'17 * 3 = 51'`` has the terms ``17 * 3`` and ``3 = 51``). A needle holding
  at most one separator run (``garden``, ``17 * 3``, ``take key``, ``*``) occurs in a text exactly when it
  occurs inside one of the text's terms, so the groups with a term containing it are the answer: no
  text is read. Searched and indexed text are split by the same SQL, so both sides agree.
- A longer needle (``start with 16``) is cut at its separator runs into overlapping pieces of one run
  each; a group is a candidate when each piece is found in its terms, as a whole term where both its
  words are whole, as a term's start or end where one is. Candidates whose prompt did not match have
  their actions matched literally, in their iterations only.
- Files whose actions are long free text are left out of the index (``search_unindexed``, see
  :data:`core.store.summaries.LONG_ACTIONS`): the groups holding one are candidates for every needle, their
  actions matched literally.
- A needle holding the private-use characters that split text for indexing
  (:data:`core.store.summaries.MARK`, :data:`~core.store.summaries.MARK_STANDIN`) is looked up as if
  the first were the second, then always matched literally.

Text is matched with ``ILIKE`` and the needle inlined as a constant pattern: DuckDB then compares
case-insensitively in place, where ``contains(lower(x), needle)`` first writes a lower-cased copy of
every string read (a quarter less time over the actions of 10M steps). Both lower-case with the same
function, so they agree on every text (tested, accented and special-cased letters included). A needle
holding a LIKE wildcard (``%``, ``_``) would need an ``ESCAPE`` clause, which DuckDB runs about four
times slower than ``lower`` + ``contains``; such needles keep the latter.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from core.store.summaries import MARK, MARK_STANDIN, pieces_sql


@dataclass(frozen=True)
class Needle:
    """A search text as the index sees it."""

    text: str
    """The lower-cased text matched literally."""
    pieces: tuple[str, ...]
    """The text split as indexed text is (:func:`core.store.summaries.pieces_sql`): word, separator run,
    word, ..., with an empty word at an end that is a separator."""

    @property
    def runs(self) -> int:
        """How many separator runs the needle holds."""
        return (len(self.pieces) - 1) // 2

    @property
    def exact_by_index(self) -> bool:
        """Whether the term index alone decides (at most one separator run; see the module's note)."""
        return self.runs <= 1 and MARK not in self.text and MARK_STANDIN not in self.text


def parse(cur: duckdb.DuckDBPyConnection, needle: str) -> Needle:
    """Split ``needle`` exactly as indexed text is split (by DuckDB itself, so both sides agree)."""
    row = cur.execute(f"SELECT lower($n), {pieces_sql('$n')}", {"n": needle}).fetchone()
    assert row is not None
    return Needle(text=row[0], pieces=tuple(row[1]))


def _inlined(needle: Needle) -> bool:
    """Whether the needle is matched by an inlined ILIKE pattern (else by ``contains`` on ``$needle``)."""
    return not any(c in needle.text for c in "%_") and needle.text.isprintable()


def _contains_sql(column: str, needle: Needle) -> str:
    """SQL: ``column`` contains the needle's text, case-insensitively (see the module's note on ILIKE)."""
    if not _inlined(needle):
        return f"contains(lower({column}), $needle)"
    quoted = needle.text.replace("'", "''")
    return f"{column} ILIKE '%{quoted}%'"


def _term_conditions(needle: Needle) -> list[tuple[str, str]]:
    """SQL conditions on ``term`` a group's terms must meet, one per piece of the needle, with each piece."""
    p = needle.pieces
    if needle.runs <= 1:
        return [("contains(term, {})", "".join(p))]
    conditions = []
    for j in range(needle.runs):  # piece j: the separator run p[2j + 1] with the words beside it
        piece = p[2 * j] + p[2 * j + 1] + p[2 * j + 2]
        whole_left, whole_right = j > 0, j < needle.runs - 1  # a word between two runs is a whole word
        if whole_left and whole_right:
            sql = "term = {}"
        elif whole_left:
            sql = "starts_with(term, {})"
        else:
            sql = "suffix(term, {})"
        conditions.append((sql, piece))
    return conditions


MATCHES = "cs_match"
"""Temporary table :func:`create_matches` leaves the matching groups in: (iteration, group_id)."""

_LISTED_ITERATIONS = 1000
"""Up to this many candidate iterations are written into the confirming scans as constants, so DuckDB skips
the row groups of other iterations (rows are stored in load order, which is mostly iteration order)."""


def create_matches(
    cur: duckdb.DuckDBPyConnection,
    needle: Needle,
    scope: dict[str, object],
    *,
    indexed: bool = True,
    lists_unindexed: bool = True,
) -> None:
    """Leave the groups matching ``needle`` in temp table :data:`MATCHES` (replacing an earlier one).

    ``scope`` binds ``run`` (the run) and ``it`` (an iteration, or None for all). Without ``indexed`` (a
    database opened read-only before ``group_prompts`` and the actions' index existed) every group is a
    candidate and every prompt and action is matched literally. With ``lists_unindexed`` (the database has
    ``search_unindexed``), the groups holding a source left out of the index have their actions matched literally.
    """
    in_prompt, in_action = _contains_sql("prompt", needle), _contains_sql("s.action", needle)
    prompts = prompts_table(indexed)
    by_prompt = f"""SELECT DISTINCT iteration, group_id FROM {prompts}
                    WHERE run_id = $run AND ($it IS NULL OR iteration = $it) AND {in_prompt}"""
    if indexed:
        candidates, params = _candidates_sql(needle)
    else:
        candidates = (
            "SELECT iteration, group_id FROM group_stats WHERE run_id = $run AND ($it IS NULL OR iteration = $it)"
        )
        params = {}
    unindexed = _unindexed_groups(cur) if indexed and lists_unindexed else None
    if indexed and needle.exact_by_index:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {MATCHES} AS {by_prompt} UNION {candidates}",
            {**scope, **params, **_needle_param(needle)},
        )
        if unindexed is None:
            return
        to_confirm, params = unindexed, {}  # the index decided the rest
    else:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {MATCHES} AS {by_prompt}", {**scope, **_needle_param(needle)})
        to_confirm = candidates if unindexed is None else f"({candidates}) UNION ({unindexed})"
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE cs_candidates AS ({to_confirm}) EXCEPT (SELECT * FROM {MATCHES})",
        {**scope, **params},
    )
    try:
        listed = "SELECT coalesce(list(DISTINCT iteration ORDER BY iteration), []) FROM cs_candidates"
        its = [int(i) for i in cur.execute(listed).fetchone()[0]]  # type: ignore[index]
        # Only candidates no prompt matched have their actions read, in their iterations.
        cur.execute(
            f"""INSERT INTO {MATCHES}
                SELECT DISTINCT s.iteration, s.group_id
                FROM step_rows s SEMI JOIN cs_candidates USING (iteration, group_id)
                WHERE s.run_id = $run AND {_in_iterations("s", its)} AND {in_action}""",
            {"run": scope["run"], **_needle_param(needle)},
        )
    finally:
        cur.execute("DROP TABLE IF EXISTS cs_candidates")


def _unindexed_groups(cur: duckdb.DuckDBPyConnection) -> str | None:
    """SQL selecting the groups of ``$run`` (and ``$it``) holding a source left out of the index.

    None when no source is left out (the usual case; finding out is one lookup in a table of a few rows).
    """
    if not cur.execute("SELECT EXISTS (FROM search_unindexed)").fetchone()[0]:  # type: ignore[index]
        return None
    return """
        SELECT DISTINCT iteration, group_id FROM group_sources SEMI JOIN search_unindexed USING (source_id)
        WHERE run_id = $run AND ($it IS NULL OR iteration = $it)"""


def prompts_table(indexed: bool) -> str:
    """Where prompts are matched: each group's distinct prompts, or (a database from before them) every trajectory's."""
    return "group_prompts" if indexed else "trajectories"


def _in_iterations(alias: str, its: list[int]) -> str:
    """SQL keeping ``alias``'s rows of the candidates' iterations, as constants DuckDB prunes row groups by.

    Without candidates it is FALSE and no text is read (DuckDB would still scan every row against an empty join).
    """
    if not its:
        return "FALSE"
    if len(its) > _LISTED_ITERATIONS or its[-1] - its[0] + 1 == len(its):  # a range is cheaper per row than a list
        return f"{alias}.iteration BETWEEN {its[0]} AND {its[-1]}"
    return f"{alias}.iteration IN ({', '.join(map(str, its))})"


def _candidates_sql(needle: Needle) -> tuple[str, dict[str, object]]:
    """SQL selecting (iteration, group_id) of the groups whose terms can hold the needle, and its parameters."""
    pieces = _term_conditions(needle)
    conditions = [sql.format(f"$t{i}") for i, (sql, _) in enumerate(pieces)]
    params: dict[str, object] = {f"t{i}": piece for i, (_, piece) in enumerate(pieces)}
    if len(conditions) == 1:  # one piece: a filter on the postings (a fifth of the time of the general form)
        return (
            f"""
        SELECT DISTINCT iteration, group_id FROM search_postings
        WHERE run_id = $run AND ($it IS NULL OR iteration = $it)
          AND term_id IN (SELECT term_id FROM search_vocab WHERE {conditions[0]})""",
            params,
        )
    # Several pieces: every one must be met by some term of the group.
    hits = ", ".join(conditions)
    having = " AND ".join(f"bool_or(hits[{i + 1}])" for i in range(len(conditions)))
    return (
        f"""
        SELECT p.iteration, p.group_id
        FROM search_postings p
        JOIN (SELECT term_id, [{hits}] AS hits FROM search_vocab WHERE {" OR ".join(conditions)}) m USING (term_id)
        WHERE p.run_id = $run AND ($it IS NULL OR p.iteration = $it)
        GROUP BY p.iteration, p.group_id HAVING {having}""",
        params,
    )


def _needle_param(needle: Needle) -> dict[str, object]:
    # DuckDB refuses a parameter the statement does not use, and an inlined ILIKE pattern uses none.
    return {} if _inlined(needle) else {"needle": needle.text}


def where_matched_sql(needle: Needle, *, indexed: bool = True) -> str:
    """SQL locating the first match in each listed group: the prompt, else the first matching step.

    Parameters: ``$run``, ``$needle`` (lower-cased), ``$its`` and ``$gids`` (the groups, as two
    aligned lists). Returns ``iteration, group_id, matched_in, match``: ``matched_in`` is ``prompt``
    or ``TRAJ step K``, and ``match`` the text around the first occurrence (in the first matching prompt
    in text order where a group has several).
    """
    snippet = "substr({x}, greatest(1, instr(lower({x}), $needle) - 40), length($needle) + 80)"
    return f"""
        WITH page AS (SELECT unnest($its) AS iteration, unnest($gids) AS group_id),
        prompts AS (
            SELECT t.iteration, t.group_id, NULL::VARCHAR AS traj_id, NULL::INTEGER AS step_idx,
                   arg_min({snippet.format(x="t.prompt")}, t.prompt) AS snippet, 0 AS rank
            FROM {prompts_table(indexed)} t SEMI JOIN page USING (iteration, group_id)
            WHERE t.run_id = $run AND t.iteration BETWEEN list_min($its) AND list_max($its)
              AND {_contains_sql("t.prompt", needle)}
            GROUP BY ALL),
        actions AS (
            SELECT s.iteration, s.group_id, arg_min(s.traj_id, (s.traj_id, s.step_idx)) AS traj_id,
                   arg_min(s.step_idx, (s.traj_id, s.step_idx)) AS step_idx,
                   arg_min({snippet.format(x="s.action")}, (s.traj_id, s.step_idx)) AS snippet, 1 AS rank
            FROM step_rows s SEMI JOIN page USING (iteration, group_id)
            WHERE s.run_id = $run AND s.iteration BETWEEN list_min($its) AND list_max($its)
              AND {_contains_sql("s.action", needle)}
            GROUP BY ALL)
        SELECT iteration, group_id,
               CASE WHEN first.step_idx IS NULL THEN 'prompt' ELSE first.traj_id || ' step ' || first.step_idx END
                   AS matched_in,
               first.snippet AS match
        FROM (SELECT iteration, group_id,
                     arg_min({{'traj_id': traj_id, 'step_idx': step_idx, 'snippet': snippet}}, rank) AS first
              FROM (SELECT * FROM prompts UNION ALL SELECT * FROM actions)
              GROUP BY iteration, group_id)"""
