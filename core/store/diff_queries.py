"""SQL of the run diff (``core.diff``): two sides paired prompt by prompt, every aggregation in DuckDB.

A prompt appears in several groups of a run (one per iteration it was sampled in), so everything the
diff shows is an aggregate over groups. :func:`group_table` reads a run's trajectories once into one
row per group: its prompt key, sums (trajectories, outcome, successes, steps), a zero-variance flag,
the lists of its outcomes, lengths and advantages (for histograms), and the sums of its credit under
a scheme. Every page query then aggregates those ~n/8 rows, registered as an Arrow table, instead of
the trajectories (about 40× fewer rows and no text), and only what a page shows comes back: per-prompt
rows after filtering and a limit, a summary row per side, histogram bins.

Prompt keys come from ``core.diff.prompts`` (Python) as a frame ``(ph, prompt_key, preview)`` with
``ph`` = DuckDB's ``hash(prompt)``. Credit comes either from the outcome-level schemes of
:data:`SQL_SCHEMES`, computed here exactly as ``core.credit`` computes them (every step of a trajectory
gets its advantage, so a trajectory counts with its number of steps), or as per-step values from the
credit engine, registered as a frame ``(traj_id, adv)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from core.schema import OPTIONAL_STEP_INPUTS, STEP_COLUMN_NAMES
from core.store.database import Store

SQL_SCHEMES: frozenset[str] = frozenset({"grpo", "drgrpo", "rloo"})
"""Outcome-level schemes whose advantages are computed in DuckDB, at any scale."""
ZERO = 1e-12
"""An advantage within this of 0 counts as zero (no learning signal)."""
_RANGE = "($lo IS NULL OR iteration >= $lo) AND ($hi IS NULL OR iteration <= $hi)"


@dataclass(frozen=True)
class Credit:
    """The per-step credit a group table summarises.

    Attributes:
        scheme: One of :data:`SQL_SCHEMES` (computed here), or None when ``steps`` carries the values.
        params: The scheme's resolved parameters (``std``, ``eps``, ``stats_over`` as ``core.credit`` names them).
        steps: The credit engine's values, one row per step: ``(traj_id, adv)``.
    """

    scheme: str | None = None
    params: dict[str, object] = field(default_factory=dict)
    steps: pd.DataFrame | None = None


def _outcome_advantage(credit: Credit) -> tuple[str, str]:
    """Window statistics and the advantage expression of an outcome-level scheme, per trajectory row.

    core.credit's conventions: sample std (ddof 1); a group of one member keeps its raw outcome (scaled
    by ``1 / (1 + eps)`` under GRPO's division);
    ``stats_over='steps'`` makes every step row a member (verl-agent's variant).
    """
    if credit.scheme == "rloo":
        return "", "CASE WHEN n > 1 THEN outcome * n / (n - 1) - m * n / (n - 1) ELSE outcome END"
    over_steps = credit.params.get("stats_over", "trajectories") == "steps"
    count, mean, sd = ("ns", "mw", "sqrt(ssw / (ns - 1))") if over_steps else ("n", "m", "sd")
    divide = credit.scheme == "grpo" and bool(credit.params.get("std", True))
    # A lone member is centred on 0 with std 1, so GRPO still divides its raw outcome by 1 + eps.
    scale, alone = (f" / ({sd} + $eps)", " / (1 + $eps)") if divide else ("", "")
    weighted = ", sum(n_steps * (outcome - mw) ^ 2) OVER g AS ssw" if over_steps else ""
    return weighted, f"CASE WHEN {count} < 2 THEN outcome{alone} ELSE (outcome - {mean}){scale} END"


def group_table(
    store: Store,
    run: str,
    keys: pd.DataFrame,
    credit: Credit | None = None,
    lo: int | None = None,
    hi: int | None = None,
) -> pa.Table:
    """One row per group of ``run`` (iterations ``lo..hi``, None: open): what every diff query aggregates.

    Columns: ``iteration``, ``group_id``, ``prompt_key`` (NULL: no prompt), ``n``, ``s_out``, ``n_succ``
    (outcome > 0), ``s_steps``, ``zv`` (all outcomes equal); the group's distributions as ``[{v, w}]``
    lists (a value may appear more than once; its weights add up), ``outcome_h`` and ``length_h`` over
    trajectories and ``adv_h`` over steps; and the credit sums over steps ``c_abs``, ``c_zero``,
    ``c_pos``, ``c_s``, ``c_s2`` (NULL without credit).

    Trajectories of a group that share outcome, length and advantage are counted once first (``c``), so
    the lists stay a few entries per group and the second aggregation runs on far fewer rows.
    """
    params: dict[str, object] = {"run": run, "lo": lo, "hi": hi}
    # Only the columns used: carrying prompts and meta through the window sort makes it slower.
    base = f"""SELECT iteration, group_id, traj_id, hash(prompt) AS ph, outcome, n_steps FROM trajectories
               WHERE run_id = $run AND {_RANGE}"""
    c_names = ("c_abs", "c_zero", "c_pos", "c_s", "c_s2")
    step_terms = ("abs(adv)", f"(abs(adv) <= {ZERO})::INT", f"(adv > {ZERO})::INT", "adv", "adv * adv")
    if credit is not None and credit.scheme is None:  # the engine's per-step values, summed per trajectory
        rows = f"""ct AS (
                SELECT traj_id, {", ".join(f"sum({t}) AS {c}" for t, c in zip(step_terms, c_names, strict=True))},
                       list({{'v': round(adv, 9), 'w': 1.0}}) AS adv_h
                FROM cs_credit GROUP BY traj_id),
            counted AS (SELECT t.* EXCLUDE (traj_id), ct.* EXCLUDE (traj_id), 1 AS c
                        FROM ({base}) t LEFT JOIN ct USING (traj_id))"""
        sums = [f"sum({c})" for c in c_names]
        adv_h = "flatten(list(adv_h))"
    elif credit is not None:  # an outcome-level scheme: one advantage per trajectory, standing for its steps
        weighted, adv = _outcome_advantage(credit)
        over_steps = (
            ", sum(n_steps) OVER g AS ns, sum(outcome * n_steps) OVER g / sum(n_steps) OVER g AS mw" if weighted else ""
        )
        rows = f"""w AS (
                SELECT *, count(*) OVER g AS n, avg(outcome) OVER g AS m, stddev_samp(outcome) OVER g AS sd{over_steps}
                FROM ({base}) WINDOW g AS (PARTITION BY iteration, group_id)),
            counted AS (
                SELECT iteration, group_id, ph, outcome, n_steps, adv, count(*) AS c
                FROM (SELECT *, {adv} AS adv
                      FROM (SELECT *{weighted} FROM w WINDOW g AS (PARTITION BY iteration, group_id)))
                GROUP BY ALL)"""
        sums = [f"sum(c * n_steps * {t})" for t in step_terms]
        adv_h = "list({'v': round(adv, 9), 'w': (c * n_steps)::DOUBLE})"
        if credit.scheme == "grpo" and bool(credit.params.get("std", True)):
            params["eps"] = float(credit.params.get("eps", 1e-6))  # type: ignore[arg-type]
    else:
        rows = (
            f"counted AS (SELECT iteration, group_id, ph, outcome, n_steps, count(*) AS c FROM ({base}) GROUP BY ALL)"
        )
        sums, adv_h = ["NULL"] * 5, "NULL"
    sql = f"""WITH {rows}
        SELECT r.iteration, r.group_id, any_value(k.prompt_key) AS prompt_key, sum(r.c)::BIGINT AS n,
               sum(r.c * r.outcome) AS s_out, sum(r.c * (r.outcome > 0)::INT)::BIGINT AS n_succ,
               sum(r.c * r.n_steps)::BIGINT AS s_steps, max(r.outcome) = min(r.outcome) AS zv,
               list({{'v': round(r.outcome, 9), 'w': r.c::DOUBLE}}) AS outcome_h,
               list({{'v': r.n_steps::DOUBLE, 'w': r.c::DOUBLE}}) AS length_h,
               {adv_h}::STRUCT(v DOUBLE, w DOUBLE)[] AS adv_h,
               {", ".join(f"{e}::DOUBLE AS {c}" for e, c in zip(sums, c_names, strict=True))}
        FROM counted r LEFT JOIN (SELECT DISTINCT ph, prompt_key FROM cs_prompt_keys) k ON k.ph = r.ph
        GROUP BY r.iteration, r.group_id"""
    with store.reader() as cur:
        cur.register("cs_prompt_keys", keys)
        if credit is not None and credit.steps is not None:
            cur.register("cs_credit", credit.steps)
        return cur.sql(sql, params=params).to_arrow_table()


def prompt_table(store: Store, groups: pa.Table, lo: int | None = None, hi: int | None = None) -> pa.Table:
    """One row per prompt key of a group table cut to iterations ``lo..hi``: the sums every view divides.

    Columns: ``prompt_key``, ``groups``, ``zv_groups``, ``n``, ``s_out``, ``n_succ``, ``solved``,
    ``s_steps``, the credit sums ``c_*``, ``last_iteration`` and ``last_group`` (its latest group).
    """
    with store.reader() as cur:
        cur.register("cs_g", groups)
        return cur.sql(
            f"""SELECT prompt_key, count(*) AS groups, sum(zv::INT) AS zv_groups, sum(n)::BIGINT AS n,
                       sum(s_out) AS s_out, sum(n_succ)::BIGINT AS n_succ, bool_or(n_succ > 0) AS solved,
                       sum(s_steps)::BIGINT AS s_steps,
                       sum(c_abs) AS c_abs, sum(c_zero) AS c_zero, sum(c_pos) AS c_pos, sum(c_s) AS c_s,
                       sum(c_s2) AS c_s2, max(iteration) AS last_iteration,
                       arg_max(group_id, iteration) AS last_group
                FROM cs_g WHERE prompt_key IS NOT NULL AND {_RANGE} GROUP BY prompt_key""",
            params={"lo": lo, "hi": hi},
        ).to_arrow_table()


@dataclass(frozen=True)
class Sides:
    """Both sides of a diff: group tables, the iteration range each is cut to (None: open), prompt tables."""

    a: pa.Table
    b: pa.Table
    a_range: tuple[int | None, int | None]
    b_range: tuple[int | None, int | None]
    prompts_a: pa.Table
    prompts_b: pa.Table
    unkeyed: tuple[int, int] = (0, 0)
    """Trajectories of each side without a prompt key (they pair with nothing)."""

    def params(self) -> dict[str, object]:
        (lo_a, hi_a), (lo_b, hi_b) = self.a_range, self.b_range
        return {"lo_a": lo_a, "hi_a": hi_a, "lo_b": lo_b, "hi_b": hi_b}


def unkeyed_trajectories(store: Store, groups: pa.Table, lo: int | None = None, hi: int | None = None) -> int:
    """Trajectories of a group table cut to ``lo..hi`` whose group has no prompt key."""
    with store.reader() as cur:
        cur.register("cs_g", groups)
        row = cur.execute(
            f"SELECT coalesce(sum(n), 0) FROM cs_g WHERE prompt_key IS NULL AND {_RANGE}", {"lo": lo, "hi": hi}
        ).fetchone()
    return int(row[0]) if row else 0


_PER_PROMPT = """SELECT prompt_key, groups, zv_groups / groups AS zero_var, n AS trajectories, s_out / n AS outcome,
                        n_succ / n AS success, solved, s_steps / n AS steps, c_abs / s_steps AS credit,
                        last_iteration, last_group FROM cs_p{x}"""
_BOTH = "both_keys AS (SELECT prompt_key FROM cs_pa SEMI JOIN cs_pb USING (prompt_key))"


@contextmanager
def _cursor(store: Store, sides: Sides, keys: pd.DataFrame | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    with store.reader() as cur:
        for x in "ab":
            cur.register(f"cs_g{x}", getattr(sides, x))
            cur.register(f"cs_p{x}", getattr(sides, f"prompts_{x}"))
        if keys is not None:
            cur.register("cs_prompt_keys", keys)
        yield cur


SHOW = ("all", "in both", "flipped", "only in A", "only in B")
ORDER = ("outcome change", "length change", "credit change", "outcome A", "outcome B")
_WHERE = {
    "all": "true",
    "in both": "a.prompt_key IS NOT NULL AND b.prompt_key IS NOT NULL",
    "flipped": "a.solved <> b.solved",
    "only in A": "b.prompt_key IS NULL",
    "only in B": "a.prompt_key IS NULL",
}
_ORDER_BY = {
    "outcome change": "abs(d_outcome) DESC NULLS LAST",
    "length change": "abs(d_steps) DESC NULLS LAST",
    "credit change": "abs(d_credit) DESC NULLS LAST",
    "outcome A": "outcome_a DESC NULLS LAST",
    "outcome B": "outcome_b DESC NULLS LAST",
    "prompt key": "prompt_key",  # arbitrary but stable: a uniform sample when limited
}
PAIR_COLUMNS = ("outcome", "success", "solved", "steps", "zero_var", "credit", "trajectories", "groups")


def pairs(
    store: Store,
    sides: Sides,
    keys: pd.DataFrame,
    *,
    show: str = "all",
    order: str = "outcome change",
    limit: int | None = 500,
    prompt_key: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """The per-prompt table: both sides' statistics side by side, their changes and the flip, filtered and sorted.

    Returns:
        The first ``limit`` rows (None: all) and how many match before the limit. Columns: ``prompt_key``,
        ``prompt`` (the normalised text that pairs, first 200 characters), ``flip`` (``lost``: solved in A,
        not in B; ``gained``: the reverse; "" otherwise), ``d_outcome``/``d_steps``/``d_credit`` (B − A),
        an ``_a`` and a ``_b`` column for each of :data:`PAIR_COLUMNS`, and each side's latest iteration
        and group of the prompt (``last_iteration_a``, ``last_group_a``, ...), to open it.
    """
    if show not in _WHERE or order not in _ORDER_BY:
        raise ValueError(f"show must be one of {SHOW} and order one of {ORDER}")
    columns = (*PAIR_COLUMNS, "last_iteration", "last_group")
    sides_sql = ", ".join(f"{x}.{c} AS {c}_{x}" for c in columns for x in "ab")
    sql = f"""WITH joined AS (
            SELECT coalesce(a.prompt_key, b.prompt_key) AS prompt_key,
                   CASE WHEN a.solved AND NOT b.solved THEN 'lost' WHEN b.solved AND NOT a.solved THEN 'gained'
                        ELSE '' END AS flip,
                   b.outcome - a.outcome AS d_outcome, b.steps - a.steps AS d_steps, b.credit - a.credit AS d_credit,
                   {sides_sql}
            FROM ({_PER_PROMPT.format(x="a")}) a FULL JOIN ({_PER_PROMPT.format(x="b")}) b USING (prompt_key)
            WHERE {_WHERE[show]} AND ($key IS NULL OR coalesce(a.prompt_key, b.prompt_key) = $key)),
        page AS (SELECT *, count(*) OVER () AS matching FROM joined
                 ORDER BY {_ORDER_BY[order]}, prompt_key LIMIT coalesce($limit, 9223372036854775807))
        SELECT page.prompt_key, k.preview AS prompt, page.* EXCLUDE (prompt_key)
        FROM page LEFT JOIN (SELECT prompt_key, any_value(preview) AS preview FROM cs_prompt_keys GROUP BY 1) k
            USING (prompt_key)
        ORDER BY {_ORDER_BY[order]}, prompt_key"""
    with _cursor(store, sides, keys) as cur:
        frame = cur.execute(sql, {"limit": limit, "key": prompt_key}).df()
    matching = int(frame["matching"].iloc[0]) if len(frame) else 0
    return frame.drop(columns="matching"), matching


COUNTS = ("in_both", "only_a", "only_b", "lost", "gained")


def summary(store: Store, sides: Sides, *, scope: str = "in both") -> tuple[dict[str, int], pd.DataFrame]:
    """How the two sides pair, and each side's statistics over the prompts in both (or over all of its prompts).

    Returns:
        The counts of :data:`COUNTS` (``lost``: prompts solved in A and not in B, ``gained``: the reverse)
        plus ``unkeyed_a``/``unkeyed_b`` (trajectories without a prompt, which pair with nothing), and a
        frame with one row per side (``A``, ``B``): prompts, groups, trajectories, steps, mean outcome,
        success rate, mean steps per trajectory, zero-variance share of groups, and over steps the
        credit's mean |advantage|, share of zero and of positive advantages, and standard deviation.
    """
    if scope not in ("in both", "all"):
        raise ValueError("scope must be 'in both' or 'all'")
    keep = "prompt_key IN (SELECT prompt_key FROM both_keys)" if scope == "in both" else "true"
    per_side = " UNION ALL ".join(
        f"""SELECT '{x.upper()}' AS side, count(*) AS prompts, sum(groups) AS groups, sum(n) AS trajectories,
                   sum(s_steps) AS steps, sum(s_out) / sum(n) AS mean_outcome, sum(n_succ) / sum(n) AS success_rate,
                   sum(s_steps) / sum(n) AS mean_steps, sum(zv_groups) / sum(groups) AS zero_variance_share,
                   sum(c_abs) / sum(s_steps) AS credit_mean_abs, sum(c_zero) / sum(s_steps) AS credit_zero_share,
                   sum(c_pos) / sum(s_steps) AS credit_positive_share,
                   sqrt(greatest(sum(c_s2) / sum(s_steps) - (sum(c_s) / sum(s_steps)) ^ 2, 0)) AS credit_std
            FROM cs_p{x} WHERE {keep}"""
        for x in "ab"
    )
    sql = f"""WITH {_BOTH},
        counts AS (
            SELECT (SELECT count(*) FROM both_keys) AS in_both,
                   (SELECT count(*) FROM cs_pa ANTI JOIN cs_pb USING (prompt_key)) AS only_a,
                   (SELECT count(*) FROM cs_pb ANTI JOIN cs_pa USING (prompt_key)) AS only_b,
                   count(*) FILTER (WHERE a.solved AND NOT b.solved) AS lost,
                   count(*) FILTER (WHERE b.solved AND NOT a.solved) AS gained
            FROM cs_pa a JOIN cs_pb b USING (prompt_key))
        SELECT * FROM ({per_side}) sides, counts ORDER BY side"""
    with _cursor(store, sides) as cur:
        frame = cur.execute(sql).df()
    counts = {name: int(frame[name].iloc[0]) for name in COUNTS}
    counts["unkeyed_a"], counts["unkeyed_b"] = sides.unkeyed
    return counts, frame.drop(columns=list(COUNTS)).set_index("side")


HISTOGRAMS = ("outcome", "steps", "advantage")
_VALUES = {"outcome": "outcome_h", "steps": "length_h", "advantage": "adv_h"}


def histogram(store: Store, sides: Sides, what: str, *, scope: str = "in both", bins: int = 40) -> pd.DataFrame:
    """Binned distribution of one quantity on both sides, as shares of each side's total.

    ``outcome`` and ``steps`` count trajectories, ``advantage`` counts steps. A quantity with at most
    ``bins`` distinct values (to 9 decimals) gets one bin per value (``width`` 0); otherwise ``bins``
    equal bins spanning both sides. Columns: ``side`` (A/B), ``x0``, ``width``, ``count``, ``share``.
    """
    if what not in _VALUES:
        raise ValueError(f"what must be one of {HISTOGRAMS}")
    keep = "prompt_key IN (SELECT prompt_key FROM both_keys)" if scope == "in both" else "prompt_key IS NOT NULL"
    ranges = {x: _RANGE.replace("$lo", f"$lo_{x}").replace("$hi", f"$hi_{x}") for x in "ab"}
    values = " UNION ALL ".join(
        f"SELECT '{x.upper()}' AS side, unnest({_VALUES[what]}) AS e FROM cs_g{x} WHERE {keep} AND {ranges[x]}"
        for x in "ab"
    )
    sql = f"""WITH {_BOTH},
        vals AS (SELECT side, e.v AS v, sum(e.w) AS w FROM ({values}) WHERE e.v IS NOT NULL GROUP BY ALL),
        st AS (SELECT min(v) AS lo, max(v) AS hi, count(DISTINCT v) AS nd FROM vals),
        binned AS (
            SELECT side, CASE WHEN st.nd <= $bins OR st.hi = st.lo THEN v
                              ELSE st.lo + least(floor((v - st.lo) / ((st.hi - st.lo) / $bins)), $bins - 1)
                                   * ((st.hi - st.lo) / $bins) END AS x0,
                   CASE WHEN st.nd <= $bins OR st.hi = st.lo THEN 0 ELSE (st.hi - st.lo) / $bins END AS width, w
            FROM vals, st)
        SELECT side, x0, any_value(width) AS width, sum(w) AS count,
               sum(w) / sum(sum(w)) OVER (PARTITION BY side) AS share
        FROM binned GROUP BY side, x0 ORDER BY side, x0"""
    with _cursor(store, sides) as cur:
        return cur.execute(sql, {**sides.params(), "bins": bins}).df()


def prompt_groups(store: Store, table: pa.Table, prompt_key: str, lo: int | None, hi: int | None) -> pd.DataFrame:
    """The groups of one side whose prompt has ``prompt_key``: iteration, group_id, n, mean outcome (latest first)."""
    with store.reader() as cur:
        cur.register("cs_g", table)
        return cur.execute(
            f"""SELECT iteration, group_id, n, s_out / n AS mean_outcome FROM cs_g
                WHERE prompt_key = $key AND {_RANGE} ORDER BY iteration DESC, group_id""",
            {"key": prompt_key, "lo": lo, "hi": hi},
        ).df()


def run_version(store: Store, run: str) -> tuple[int, int, str]:
    """What changes when a run's rows change (trajectories, steps, time of its latest ingest): a cache key."""
    with store.reader() as cur:
        row = cur.execute(
            """SELECT count(*), coalesce(sum(n_steps), 0), (SELECT any_value(ingested_at)::VARCHAR FROM runs
                WHERE run_id = $run) FROM trajectories WHERE run_id = $run""",
            {"run": run},
        ).fetchone()
    return (int(row[0]), int(row[1]), str(row[2])) if row else (0, 0, "")


def range_size(store: Store, run: str, lo: int | None, hi: int | None) -> tuple[int, int]:
    """Trajectories and steps of a run within iterations ``lo..hi``."""
    with store.reader() as cur:
        row = cur.execute(
            f"SELECT count(*), coalesce(sum(n_steps), 0) FROM trajectories WHERE run_id = $run AND {_RANGE}",
            {"run": run, "lo": lo, "hi": hi},
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def iteration_span(store: Store, run: str) -> tuple[int | None, int | None]:
    """First and last iteration of a run (None, None when it has none)."""
    row = store.query_df("SELECT min(iteration) AS lo, max(iteration) AS hi FROM trajectories WHERE run_id = ?", [run])
    lo, hi = row["lo"].iloc[0], row["hi"].iloc[0]
    return (None, None) if pd.isna(lo) else (int(lo), int(hi))


def prompt_hashes(store: Store, run: str) -> np.ndarray:
    """DuckDB ``hash(prompt)`` of every distinct non-empty prompt of a run (to find prompts without a key)."""
    with store.reader() as cur:
        rows = cur.execute(
            "SELECT DISTINCT hash(prompt) AS ph FROM trajectories WHERE run_id = ? AND prompt IS NOT NULL", [run]
        ).fetchnumpy()
    return rows["ph"]


def prompts_for_hashes(store: Store, run: str, hashes: Sequence[int]) -> pd.DataFrame:
    """One prompt text per requested hash: ``(ph, prompt)``."""
    with store.reader() as cur:
        cur.register("cs_wanted", pd.DataFrame({"ph": np.asarray(hashes, dtype=np.uint64)}))
        return cur.execute(
            """SELECT hash(prompt) AS ph, any_value(prompt) AS prompt FROM trajectories
               WHERE run_id = ? AND hash(prompt) IN (SELECT ph FROM cs_wanted) GROUP BY 1""",
            [run],
        ).df()


def range_steps(store: Store, run: str, lo: int | None, hi: int | None) -> pd.DataFrame:
    """Canonical step rows of a run's iterations ``lo..hi`` for the credit engine (columns as ``queries.steps``)."""
    optional = [f"TRY_CAST(extra->>'{k}' AS DOUBLE) AS {k}" for k in OPTIONAL_STEP_INPUTS]
    return store.query_df(
        f"""SELECT {", ".join([*STEP_COLUMN_NAMES, *optional])} FROM steps WHERE run_id = $run AND {_RANGE}
            ORDER BY run_id, iteration, group_id, traj_id, step_idx""",
        {"run": run, "lo": lo, "hi": hi},
    )
