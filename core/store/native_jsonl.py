"""Fast path for native JSONL: DuckDB reads the file itself, with no Python per record.

``read_json`` auto-detects the record layout and refuses records with keys it did not see while
sampling, so nothing is dropped silently. Whenever the detected types are not what the native
format allows (or DuckDB refuses the file), :class:`FastPathUnavailable` tells the caller to fall
back to the Python reader, which validates every record and names the exact line and field.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from core.schema import TOKEN_COLUMN_NAMES
from core.store.load import TOKENS_OK, SourceInfo, delete_source, finish_source
from core.store.progress import tracking

TOP_KEYS = ("run", "iteration", "group", "trajectory", "prompt", "outcome", "split", "meta", "steps")
STEP_KEYS = ("state", "action", "reward", "label", "node", "parent", "valid", "prm", "value", *TOKEN_COLUMN_NAMES)

_INT = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
_NUM = _INT | {"DOUBLE", "FLOAT", "DECIMAL"}
_ID = _INT | {"VARCHAR"}
# What the native format allows for each field, as DuckDB type families.
_ALLOWED: dict[str, set[str]] = {
    "run": _ID, "iteration": _INT, "group": _ID, "trajectory": _ID, "prompt": {"VARCHAR"}, "outcome": _NUM,
    "split": {"VARCHAR"}, "state": {"VARCHAR"}, "action": {"VARCHAR"}, "reward": _NUM, "label": _NUM,
    "node": _ID, "parent": _ID, "valid": {"BOOLEAN"}, "prm": _NUM, "value": _NUM,
    "tokens": {"VARCHAR[]"}, **{name: {f"{t}[]" for t in _NUM} for name in TOKEN_COLUMN_NAMES if name != "tokens"},
}  # fmt: skip
_SQL_TYPE = {"iteration": "BIGINT", "outcome": "DOUBLE", "reward": "DOUBLE", "label": "DOUBLE", "prm": "DOUBLE",
             "value": "DOUBLE", "valid": "BOOLEAN", "tokens": "VARCHAR[]",
             **{name: "DOUBLE[]" for name in TOKEN_COLUMN_NAMES if name != "tokens"}}  # fmt: skip


class FastPathUnavailable(Exception):
    """The file needs the validating Python reader (odd types, unseen keys, or invalid JSON)."""


def _family(sql_type: str) -> str:
    return sql_type.split("(")[0].strip()


def _expr(cur: duckdb.DuckDBPyConnection, table: str, field: str, sql_type: str | None, source: str) -> str:
    """SQL expression casting a detected field to its canonical type, or raising FastPathUnavailable."""
    target = _SQL_TYPE.get(field, "VARCHAR")
    if sql_type is None:
        return f"NULL::{target}"
    family = _family(sql_type)
    if family in _ALLOWED[field]:
        return f"{source}::{target}"
    if family in {"JSON", "NULL"}:
        # A field that is null everywhere is detected as JSON; anything else there is mixed types.
        non_null = cur.execute(
            f"SELECT count(*) FROM {table} WHERE {source} IS NOT NULL AND json_type({source}::JSON) <> 'NULL'"
        ).fetchone()
        if non_null and non_null[0] == 0:
            return f"NULL::{target}"
    raise FastPathUnavailable(f"field {field!r} detected as {sql_type}")


STAGE = "cs_stage"
"""In-memory database attached to every store: staging there keeps a failed fast path from aborting
the writer's transaction (DuckDB aborts a transaction on any error inside it)."""


def stage_native_jsonl(
    stage: duckdb.DuckDBPyConnection, path: str, token: str, run_override: str | None, default_run: str
) -> None:
    """Parse ``path`` into staging: the raw records plus canonical trajectory and step views over them.

    The views are evaluated by the final INSERTs instead of being
    materialised here, and carries the trajectory-level columns itself instead of joining: at a
    million steps both a second copy of the text and a join on trajectory ids cost more than the
    unnest.

    Runs on its own autocommit cursor. Raises :class:`FastPathUnavailable` whenever the file needs
    the validating Python reader.
    """
    raw = f"{STAGE}.raw_{token}"
    # Row order inside the staging and step tables carries no meaning (every read orders explicitly;
    # step order comes from each record's list), and letting DuckDB drop it parallelises the load.
    stage.execute("SET preserve_insertion_order = false")
    try:
        # Keep read_json's default object-size limit: raising it to 256 MB made this load ~40 % slower.
        # Should DuckDB refuse an oversized record, the Python reader (no limit) takes the file.
        with tracking(stage, Path(path).name, "reading"):
            stage.execute(
                f"CREATE OR REPLACE TABLE {raw} AS SELECT * FROM read_json(?, format = 'newline_delimited')", [path]
            )
        _stage_canonical(stage, raw, token, run_override, default_run)
    except duckdb.Error as exc:
        drop_stage(stage, token)
        raise FastPathUnavailable(str(exc)) from exc
    except FastPathUnavailable:
        drop_stage(stage, token)
        raise


def drop_stage(cur: duckdb.DuckDBPyConnection, token: str) -> None:
    """Remove the staging tables of ``token``."""
    cur.execute(f"DROP VIEW IF EXISTS {STAGE}.s_{token}")
    cur.execute(f"DROP VIEW IF EXISTS {STAGE}.t_{token}")
    cur.execute(f"DROP TABLE IF EXISTS {STAGE}.raw_{token}")


def _stage_canonical(
    cur: duckdb.DuckDBPyConnection, raw: str, token: str, run_override: str | None, default_run: str
) -> None:
    top = {row[0]: row[1] for row in cur.execute(f"DESCRIBE {raw}").fetchall()}
    if "trajectory" not in top or "outcome" not in top or "steps" not in top or not top["steps"].endswith("[]"):
        raise FastPathUnavailable("required keys missing or steps not a list of objects")
    raw_steps = f"(SELECT unnest(steps) AS s FROM {raw})"
    step_types = dict(
        cur.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT s.* FROM {raw_steps})").fetchall()
    )
    if "action" not in step_types:
        raise FastPathUnavailable("steps lack 'action'")

    t = {k: _expr(cur, raw, k, top.get(k), f'"{k}"') for k in TOP_KEYS if k not in ("meta", "steps")}
    s = {k: _expr(cur, raw_steps, k, step_types.get(k), f's."{k}"') for k in STEP_KEYS}
    run = f"'{_quote(run_override)}'" if run_override else f"coalesce({t['run']}, '{_quote(default_run)}')"
    group = f"coalesce({t['group']}, {t['prompt']}, {t['trajectory']})"
    iteration = f"coalesce({t['iteration']}, 0)"
    # Most files name every group and iteration; then the step view need not carry the prompt text
    # through the unnest just to fall back on it (that copy is a measurable share of a 1M-step load).
    missing = cur.execute(
        f"SELECT count(*) FILTER ({t['group']} IS NULL), count(*) FILTER ({t['iteration']} IS NULL) FROM {raw}"
    ).fetchone()
    if missing and missing[0] == 0:
        group = t["group"]
    if missing and missing[1] == 0:
        iteration = t["iteration"]
    extra_top = [k for k in top if k not in TOP_KEYS]
    meta = "to_json(meta)" if "meta" in top else "NULL::JSON"
    if extra_top:
        packed = ", ".join(f'"{k}" := "{k}"' for k in extra_top)
        meta = f"json_merge_patch(coalesce({meta}, '{{}}'::JSON), to_json(struct_pack({packed})))"
    extra_step = [k for k in step_types if k not in STEP_KEYS]
    packed = "to_json(struct_pack(" + ", ".join(f'"{k}" := s."{k}"' for k in extra_step) + "))"
    # merge_patch into {} drops keys whose value is null, so a key only some steps carry stays off the
    # others; it costs a JSON rewrite per step, so it is used only when some step lacks an extra key.
    extra_sparse = f"nullif(json_merge_patch('{{}}'::JSON, {packed})::VARCHAR, '{{}}')::JSON"
    extra = extra_sparse if extra_step else "NULL::JSON"

    keys = f"{run} AS run_id, {iteration} AS iteration, {group} AS group_id, {t['trajectory']} AS traj_id"
    cur.execute(
        f"""CREATE OR REPLACE VIEW {STAGE}.t_{token} AS
        SELECT {keys}, {t["prompt"]} AS prompt, coalesce({t["split"]}, 'train') AS split,
               {t["outcome"]} AS outcome, len(steps)::INTEGER AS n_steps, {meta} AS meta
        FROM {raw}"""
    )

    tokens = ", ".join(f"{s[name]} AS {name}" for name in TOKEN_COLUMN_NAMES)

    def create_step_view(extra_expr: str) -> None:
        cur.execute(
            f"""CREATE OR REPLACE VIEW {STAGE}.s_{token} AS
            SELECT run_id, iteration, group_id, traj_id, step_idx::INTEGER AS step_idx,
                   {s["state"]} AS state, {s["action"]} AS action, {s["reward"]} AS reward, outcome,
                   {s["node"]} AS node_id, {s["parent"]} AS parent_id, {s["label"]} AS label,
                   {s["valid"]} AS valid, {s["prm"]} AS prm_logged, {s["value"]} AS value, {extra_expr} AS extra,
                   {tokens}
            FROM (SELECT {keys}, {t["outcome"]} AS outcome, generate_subscripts(steps, 1) - 1 AS step_idx,
                         unnest(steps) AS s
                  FROM {raw})"""
        )

    create_step_view(extra)
    # Anything the Python reader would reject sends the file there, so the user gets its exact message.
    # The same pass counts steps lacking an extra key (any such step keeps the null-dropping form).
    sparse = " OR ".join(f's."{k}" IS NULL' for k in extra_step) or "FALSE"
    bad, sparse_steps = cur.execute(
        f"""SELECT (SELECT count(*) FROM {STAGE}.t_{token}
                    WHERE traj_id IS NULL OR outcome IS NULL OR split NOT IN ('train', 'val') OR n_steps = 0)
                 + (SELECT count(*) FROM {STAGE}.t_{token} WHERE NOT isfinite(outcome))
                 + count(*) FILTER (action IS NULL OR NOT ({_FINITE}) OR NOT ({TOKENS_OK})),
                 count(*) FILTER ({sparse})
           FROM (SELECT {s["action"]} AS action, {s["reward"]} AS reward, {s["label"]} AS label,
                        {s["prm"]} AS prm_logged, {s["value"]} AS value, {tokens}, s
                 FROM (SELECT unnest(steps) AS s FROM {raw}))"""
    ).fetchone()  # type: ignore[misc]
    if bad:
        raise FastPathUnavailable("records need validation")
    if extra_step and not sparse_steps:
        create_step_view(packed)  # every step carries every extra key: no null to drop


_FINITE = " AND ".join(f"coalesce(isfinite({c}), TRUE)" for c in ("reward", "label", "prm_logged", "value"))


def load_staged(
    cur: duckdb.DuckDBPyConnection, src: SourceInfo, token: str, *, append: bool = False
) -> tuple[int, int]:
    """Inside the writer's transaction: replace the source's rows with staged ones (or add them, with ``append``).

    Returns the source's (trajectories, steps) after the load.
    """
    if not append:
        delete_source(cur, src.source_id)
    cur.execute("SET preserve_insertion_order = false")  # see stage_native_jsonl
    cur.execute(f"INSERT INTO trajectories BY NAME SELECT *, ? AS source_id FROM {STAGE}.t_{token}", [src.source_id])
    with tracking(cur, Path(src.path).name, "writing"):
        cur.execute(f"INSERT INTO step_rows BY NAME SELECT *, ? AS source_id FROM {STAGE}.s_{token}", [src.source_id])
    return finish_source(cur, src, {}, checked=True)


def _quote(text: str) -> str:
    return text.replace("'", "''")
