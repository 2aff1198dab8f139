"""Groups search over prompts and step actions through the token index (``search_postings``).

The search is a literal, case-insensitive substring match, as before the index existed: a group
matches when its prompt or any step's action contains the typed text. The index only narrows the
groups that can match, never decides alone, except where that is exact:

- Text is split into tokens at the same separators when indexed and when searched
  (:data:`core.store.summaries.SEPARATORS`). An occurrence of a needle without separators lies
  inside one token of the text, so such a needle matches exactly the groups with a token
  containing it: no text is read.
- A needle with separators ("17 * 3", "go garden") needs, for each of its tokens, a token of the
  group that equals it (between two separators), ends with it (first token) or starts with it
  (last token). Groups passing that test are candidates; their prompts and actions are then
  matched literally, in the candidates' iterations only. DuckDB applies that match inside its scan
  of those rows, so candidates spread over a whole run (needles of common words) cost about one
  scan of the text; rare words give few candidates in few iterations, and no candidate reads nothing.
- A needle of separators only ("*", " ") cannot use the index and is matched against every row.

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

from core.store.summaries import SEPARATORS, tokens_sql


@dataclass(frozen=True)
class Needle:
    """A search text as the index sees it."""

    text: str
    """The lower-cased text matched literally."""
    tokens: tuple[str, ...]
    bounded_left: tuple[bool, ...]
    """Per token: a separator precedes it in the needle, so a matching text token starts with it."""
    bounded_right: tuple[bool, ...]

    @property
    def exact_by_index(self) -> bool:
        """Whether the token index alone decides (one token, no separator anywhere)."""
        return len(self.tokens) == 1 and not self.bounded_left[0] and not self.bounded_right[0]


def parse(cur: duckdb.DuckDBPyConnection, needle: str) -> Needle:
    """Split ``needle`` exactly as indexed text is split (by DuckDB itself, so both sides agree)."""
    row = cur.execute(
        f"""SELECT lower($n), list_filter({tokens_sql("$n")}, lambda t: t <> ''),
                   regexp_matches(lower($n), '^{SEPARATORS}'), regexp_matches(lower($n), '{SEPARATORS}$')""",
        {"n": needle},
    ).fetchone()
    assert row is not None
    text, tokens, starts_with_sep, ends_with_sep = row
    n = len(tokens)
    return Needle(
        text=text,
        tokens=tuple(tokens),
        bounded_left=tuple(i > 0 or bool(starts_with_sep) for i in range(n)),
        bounded_right=tuple(i < n - 1 or bool(ends_with_sep) for i in range(n)),
    )


def _inlined(needle: Needle) -> bool:
    """Whether the needle is matched by an inlined ILIKE pattern (else by ``contains`` on ``$needle``)."""
    return not any(c in needle.text for c in "%_") and needle.text.isprintable()


def _contains_sql(column: str, needle: Needle) -> str:
    """SQL: ``column`` contains the needle's text, case-insensitively (see the module's note on ILIKE)."""
    if not _inlined(needle):
        return f"contains(lower({column}), $needle)"
    quoted = needle.text.replace("'", "''")
    return f"{column} ILIKE '%{quoted}%'"


def _term_condition(index: int, needle: Needle) -> str:
    """SQL condition on ``term`` for token ``index`` (parameter ``$t{index}``)."""
    left, right = needle.bounded_left[index], needle.bounded_right[index]
    if left and right:
        return f"term = $t{index}"
    if left:
        return f"starts_with(term, $t{index})"
    if right:
        return f"suffix(term, $t{index})"
    return f"contains(term, $t{index})"


MATCHES = "cs_match"
"""Temporary table :func:`create_matches` leaves the matching groups in: (iteration, group_id)."""

_LISTED_ITERATIONS = 1000
"""Up to this many candidate iterations are written into the confirming scans as constants, so DuckDB skips
the row groups of other iterations (rows are stored in load order, which is mostly iteration order)."""


def create_matches(cur: duckdb.DuckDBPyConnection, needle: Needle, scope: dict[str, object]) -> None:
    """Leave the groups matching ``needle`` in temp table :data:`MATCHES` (replacing an earlier one).

    ``scope`` binds ``run`` (the run) and ``it`` (an iteration, or None for all).
    """
    in_prompt, in_action = _contains_sql("t.prompt", needle), _contains_sql("s.action", needle)
    if not needle.tokens:  # separators only: nothing to look up
        literal = f"""
            SELECT t.iteration, t.group_id FROM trajectories t
            WHERE t.run_id = $run AND ($it IS NULL OR t.iteration = $it) AND {in_prompt}
            UNION
            SELECT s.iteration, s.group_id FROM step_rows s
            WHERE s.run_id = $run AND ($it IS NULL OR s.iteration = $it) AND {in_action}"""
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {MATCHES} AS {literal}", {**scope, **_needle_param(needle)})
        return
    candidates, params = _candidates_sql(needle)
    if needle.exact_by_index:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {MATCHES} AS {candidates}", {**scope, **params})
        return
    cur.execute(f"CREATE OR REPLACE TEMP TABLE cs_candidates AS {candidates}", {**scope, **params})
    try:
        listed = "SELECT coalesce(list(DISTINCT iteration ORDER BY iteration), []) FROM cs_candidates"
        its = [int(i) for i in cur.execute(listed).fetchone()[0]]  # type: ignore[index]
        # Prompts first (one per trajectory); only candidates no prompt confirmed have their actions read.
        verified = f"""
            WITH by_prompt AS MATERIALIZED (
                SELECT DISTINCT t.iteration, t.group_id
                FROM trajectories t SEMI JOIN cs_candidates USING (iteration, group_id)
                WHERE t.run_id = $run AND {_in_iterations("t", its)} AND {in_prompt}),
            rest AS (SELECT * FROM cs_candidates ANTI JOIN by_prompt USING (iteration, group_id))
            SELECT iteration, group_id FROM by_prompt
            UNION ALL
            SELECT DISTINCT s.iteration, s.group_id FROM step_rows s SEMI JOIN rest USING (iteration, group_id)
            WHERE s.run_id = $run AND {_in_iterations("s", its)} AND {in_action}"""
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {MATCHES} AS {verified}", {"run": scope["run"], **_needle_param(needle)}
        )
    finally:
        cur.execute("DROP TABLE IF EXISTS cs_candidates")


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
    """SQL selecting (iteration, group_id) of the groups whose words can hold the needle, and its parameters."""
    conditions = [_term_condition(i, needle) for i in range(len(needle.tokens))]
    params: dict[str, object] = {f"t{i}": token for i, token in enumerate(needle.tokens)}
    if len(conditions) == 1:  # one token: a filter on the postings (a fifth of the time of the general form)
        return (
            f"""
        SELECT DISTINCT iteration, group_id FROM search_postings
        WHERE run_id = $run AND ($it IS NULL OR iteration = $it)
          AND term_id IN (SELECT term_id FROM search_vocab WHERE {conditions[0]})""",
            params,
        )
    # Several tokens: every one must be matched by some term of the group.
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


def where_matched_sql(needle: Needle) -> str:
    """SQL locating the first match in each listed group: the prompt, else the first matching step.

    Parameters: ``$run``, ``$needle`` (lower-cased), ``$its`` and ``$gids`` (the groups, as two
    aligned lists). Returns ``iteration, group_id, matched_in, match``: ``matched_in`` is ``prompt``
    or ``TRAJ step K``, and ``match`` the text around the first occurrence.
    """
    snippet = "substr({x}, greatest(1, instr(lower({x}), $needle) - 40), length($needle) + 80)"
    return f"""
        WITH page AS (SELECT unnest($its) AS iteration, unnest($gids) AS group_id),
        prompts AS (
            SELECT t.iteration, t.group_id, arg_min(t.traj_id, t.traj_id) AS traj_id, NULL::INTEGER AS step_idx,
                   arg_min({snippet.format(x="t.prompt")}, t.traj_id) AS snippet, 0 AS rank
            FROM trajectories t SEMI JOIN page USING (iteration, group_id)
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
