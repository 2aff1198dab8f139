"""Fast path for native JSONL: DuckDB reads the file itself, with no Python per record.

A file is loaded by two statements inside the writer's transaction, straight from the file: one reads
the records' top-level fields into ``trajectories`` (of the steps only their number), the other unnests
the steps into ``step_rows``. Nothing is staged, so the steps are decoded once and memory stays near that
of a bare ``read_json``.

DuckDB learns the layout from a sample of records (:data:`SAMPLE_RECORDS`). When the file holds no more
records than that, the sample saw everything and the step statement names its columns and types
outright. A longer file is read in DuckDB's detecting mode, which refuses a record with a key the sample
did not show, so no field is dropped silently; and when the sample wrote a canonical number field as
integers (``"label": 1``), the layout is detected over the whole file first, so a later ``0.5`` is read
as 0.5 rather than rounded to an integer type.

Whenever the layout does not fit the native format (:class:`FastPathUnavailable`, before anything is
written) or DuckDB refuses a record or a value fails a check (:class:`FastPathFailed`), the caller
falls back to the validating Python reader, which loads the file or names the exact line and field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.schema import TOKEN_COLUMN_NAMES
from core.store.checks import TOKENS_OK
from core.store.load import SourceInfo, delete_sources
from core.store.progress import tracking

SAMPLE_RECORDS = 4096
"""Records DuckDB's ``read_json`` samples to detect a layout. Smaller than DuckDB's default (20,480): the
sample is read once more by the step statement of a longer file, and a key the sample missed costs only
a retry with the layout detected over the whole file (see :class:`FastPathFailed`)."""

TOP_KEYS = ("run", "iteration", "group", "trajectory", "prompt", "outcome", "split", "meta", "steps")
STEP_KEYS = ("state", "action", "reward", "label", "node", "parent", "valid", "prm", "value", *TOKEN_COLUMN_NAMES)

_INT = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
_NUM = _INT | {"DOUBLE", "FLOAT", "DECIMAL"}
_ID = _INT | {"VARCHAR"}
_NUMBER_ARRAYS = tuple(name for name in TOKEN_COLUMN_NAMES if name != "tokens")
# What the native format allows for each step field, as DuckDB type families, and the type it is stored as.
_ALLOWED: dict[str, set[str]] = {
    "state": {"VARCHAR"}, "action": {"VARCHAR"}, "reward": _NUM, "label": _NUM, "node": _ID, "parent": _ID,
    "valid": {"BOOLEAN"}, "prm": _NUM, "value": _NUM, "tokens": {"VARCHAR[]"},
    **{name: {f"{t}[]" for t in _NUM} for name in _NUMBER_ARRAYS},
}  # fmt: skip
_SQL_TYPE = {"reward": "DOUBLE", "label": "DOUBLE", "prm": "DOUBLE", "value": "DOUBLE", "valid": "BOOLEAN",
             "tokens": "VARCHAR[]", **{name: "DOUBLE[]" for name in _NUMBER_ARRAYS}}  # fmt: skip
_DOUBLES = {"reward", "label", "prm", "value", *_NUMBER_ARRAYS}
"""Step fields stored as floating point: detected as integers from a sample, later decimals would be rounded."""


class FastPathUnavailable(Exception):
    """The file's layout needs the validating Python reader; nothing was written."""


class FastPathFailed(Exception):
    """DuckDB refused the file part-way, or a value needs the Python reader's check.

    Raised inside the writer's transaction: DuckDB has aborted it (or rows of the file were written), so
    the caller must roll back before reading the file another way: when ``refused`` (DuckDB's error, e.g.
    a key its sample did not show) and the layout came from a sample, with ``whole_file=True``; otherwise
    with the Python reader, which loads the file or names the bad line and field.
    """

    def __init__(self, problem: str, *, refused: bool):
        super().__init__(problem)
        self.refused = refused


@dataclass(frozen=True)
class _Layout:
    """What DuckDB detected: top-level keys and step keys with their types, and whether it saw every record."""

    top: dict[str, duckdb.DuckDBPyType]
    steps: dict[str, duckdb.DuckDBPyType]
    whole_file: bool


def _family(sql_type: object) -> str:
    return str(sql_type).split("(")[0].strip()


@dataclass(frozen=True)
class NativeFile:
    """One native JSONL file to load: its bookkeeping, the bytes to parse, and the run of records naming none."""

    src: SourceInfo
    read_from: str
    """The file to parse: the source itself or a snapshot of it."""
    default_run: str


@dataclass(frozen=True)
class _Input:
    """The files of one load as SQL: one ``read_json`` over all of them, each row tagged with its source.

    Many small files are read by one statement (a statement costs milliseconds whatever its size); their
    rows find their source through a small table of file names (``cs_files``).
    """

    files: Sequence[NativeFile]

    @property
    def many(self) -> bool:
        return len(self.files) > 1

    def reader(self, *, columns: dict[str, str] | None = None, whole_file: bool = False) -> str:
        """A ``read_json`` call: detecting from a sample, detecting over all records, or with named columns."""
        options = "format = 'newline_delimited'"
        if columns is not None:
            spec = ", ".join(f"'{_quote(name)}': '{_quote(sql_type)}'" for name, sql_type in columns.items())
            options += f", columns = {{{spec}}}"
        elif whole_file:
            options += ", sample_size = -1, maximum_sample_files = -1"
        else:
            options += f", sample_size = {SAMPLE_RECORDS}"
        if not self.many:
            return f"read_json('{_quote(self.files[0].read_from)}', {options})"
        paths = ", ".join(f"'{_quote(file.read_from)}'" for file in self.files)
        return f"read_json([{paths}], {options}, filename = true) JOIN cs_files USING (filename)"

    @property
    def source_id(self) -> str:
        return "source_id" if self.many else f"'{_quote(self.files[0].src.source_id)}'"

    @property
    def default_run(self) -> str:
        return "default_run" if self.many else f"'{_quote(self.files[0].default_run)}'"

    @property
    def run_override(self) -> str | None:
        return self.files[0].src.run_override  # one command, one --run

    @property
    def ids(self) -> list[str]:
        return [file.src.source_id for file in self.files]


def _detect(cur: duckdb.DuckDBPyConnection, data: _Input, *, whole_file: bool = False) -> _Layout:
    """Bind a detecting ``read_json`` and read the layout off its result types (nothing is executed)."""
    relation = cur.sql(f"SELECT * FROM {data.reader(whole_file=whole_file)}")
    top = {name: sql_type for name, sql_type in zip(relation.columns, relation.types, strict=True)}
    for added in ("filename", "source_id", "default_run") if data.many else ():
        top.pop(added, None)
    steps_type = top.get("steps")
    if "trajectory" not in top or "outcome" not in top or steps_type is None or steps_type.id != "list":
        raise FastPathUnavailable("required keys missing or steps not a list")
    element = steps_type.child
    if element.id != "struct":
        raise FastPathUnavailable("steps are not objects")
    steps = {str(name): child for name, child in element.children}
    if "action" not in steps:
        raise FastPathUnavailable("steps lack 'action'")
    # A sample may see a field only as null (JSON/NULL); over the whole file JSON means mixed types.
    unseen = {"NULL"} if whole_file else {"NULL", "JSON"}
    for name, sql_type in steps.items():
        if name in _ALLOWED and _family(sql_type) not in _ALLOWED[name] | unseen:
            raise FastPathUnavailable(f"step field {name!r} detected as {sql_type}")
    return _Layout(top, steps, whole_file)


def load_native_jsonl(
    cur: duckdb.DuckDBPyConnection,
    files: Sequence[NativeFile],
    *,
    split: str | None,
    append: bool = False,
    whole_file: bool = False,
) -> None:
    """Inside the writer's transaction: load native JSONL files as the rows of their sources (replacing theirs).

    Args:
        cur: The writer's cursor.
        files: The files, one or many (many small files load in the same few statements as one).
        split: Forced split of every trajectory, or None to keep the records'.
        append: Add the rows to the sources' stored ones instead of replacing them (one file, followed).
        whole_file: Detect the layout over every record rather than a sample (the retry after a refusal).

    The caller records the sources afterwards (:func:`core.store.load.finish_sources` with ``checked=True``:
    the per-step checks ran here).

    Raises:
        FastPathUnavailable: The layout needs the Python reader; nothing was written.
        FastPathFailed: DuckDB refused a file or a value needs checking; the transaction must roll back.
        KeyboardInterrupt: The user interrupted DuckDB.
    """
    data = _Input(files)
    try:
        if data.many:
            cur.execute(
                """CREATE OR REPLACE TEMP TABLE cs_files AS
                SELECT unnest($1) AS filename, unnest($2) AS source_id, unnest($3) AS default_run""",
                [[file.read_from for file in files], data.ids, [file.default_run for file in files]],
            )
        layout = _detect(cur, data, whole_file=whole_file)
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except duckdb.Error as exc:  # any error, even while binding, aborts the transaction
        raise FastPathFailed(str(exc), refused=True) from exc
    name = Path(files[0].src.path).name if not data.many else f"{len(files)} files"
    # Row order inside step_rows carries no meaning (every read orders explicitly; step order comes from each
    # record's list), and letting DuckDB drop it parallelises the write. The setting lives on this cursor only.
    cur.execute("SET preserve_insertion_order = false")
    try:
        if not append:
            delete_sources(cur, data.ids)
        with tracking(cur, name, "reading"):
            n_records = _insert_trajectories(cur, data, layout, split)
        # The sample saw every record: at most SAMPLE_RECORDS of them, from at most DuckDB's 32 sampled files.
        whole = layout.whole_file or (n_records <= SAMPLE_RECORDS and len(files) <= 32)
        detected = [layout.top.get("outcome"), *(layout.steps.get(field) for field in _DOUBLES)]
        if not whole and any(_family(sql_type).removesuffix("[]") in _INT for sql_type in detected):
            layout = _detect(cur, data, whole_file=True)  # see the module docstring
            whole = True
        run = data.run_override and f"'{_quote(data.run_override)}'"
        if not run:
            run = f"coalesce(run::VARCHAR, {data.default_run})" if "run" in layout.top else data.default_run
        with tracking(cur, name, "writing"):
            _insert_steps(cur, data, layout, run, whole_file=whole)
        _check_step_counts(cur, data.ids)
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except duckdb.Error as exc:
        raise FastPathFailed(str(exc), refused=_CHECK not in str(exc)) from exc
    finally:
        if data.many:
            with contextlib.suppress(duckdb.TransactionException):  # after a failure DuckDB accepts only ROLLBACK
                cur.execute("DROP TABLE IF EXISTS cs_files")


def _check_step_counts(cur: duckdb.DuckDBPyConnection, ids: list[str]) -> None:
    """Check that the two statements read the same files: each source's step rows number its steps counted.

    Both statements parse the whole file, so a file that changed between them (a trainer still writing)
    shows here, and the load is retried as :class:`FastPathFailed` says for a refusal.
    """
    mine = "source_id IN (SELECT unnest($1))"
    row = cur.execute(
        f"""SELECT count(*) FROM (SELECT source_id, count(*) AS n FROM step_rows WHERE {mine} GROUP BY ALL) s
            FULL JOIN (SELECT source_id, sum(n_steps) AS n FROM trajectories WHERE {mine} GROUP BY ALL) t
            USING (source_id) WHERE s.n IS DISTINCT FROM t.n""",
        [ids],
    ).fetchone()
    if row and row[0]:
        raise FastPathFailed("a file changed while it was read", refused=True)


_CHECK = "creditscope-check"
"""Marks the errors the load raises itself (``error()`` in SQL) for a value the Python reader must judge."""


def _guard(condition: str, value: str, what: str) -> str:
    """SQL that is ``value``, or fails the statement (and so the fast path) where ``condition`` holds.

    Checking inside the writing statement costs less than scanning the written rows again.
    """
    return f"CASE WHEN {condition} THEN error('{_CHECK}: {what}') ELSE {value} END"


def _json_value(name: str, kinds: tuple[str, ...]) -> tuple[str, str]:
    """SQL reading a JSON-typed field as text, and SQL that is true when its JSON type is not among ``kinds``.

    Top-level fields are read as JSON so their types are checked exactly (DuckDB would otherwise turn
    ``"iteration": 1.5`` into 2 and ``"trajectory": [1]`` into the text ``[1]``).
    """
    column = f'"{name}"'
    kind = f"json_type({column})"
    wrong = f"({column} IS NOT NULL AND {kind} <> 'NULL' AND {kind} NOT IN ({', '.join(map(repr, kinds))}))"
    return f"CASE WHEN {kind} = 'NULL' THEN NULL ELSE {column}->>'$' END", wrong


def _insert_trajectories(cur: duckdb.DuckDBPyConnection, data: _Input, layout: _Layout, split: str | None) -> int:
    """Insert a trajectory row per record from its top-level fields and its number of steps; returns the count."""
    # The steps are read as a list of SQL NULLs: DuckDB then only counts them (converting them would be a third
    # of this statement's cost). A step that is not an object is refused by the step statement.
    columns = {name: "JSON" for name in layout.top if name != "steps"} | {"steps": '"NULL"[]'}
    ids, integers, texts = ("VARCHAR", "BIGINT", "UBIGINT"), ("BIGINT", "UBIGINT"), ("VARCHAR",)
    kinds = {"run": ids, "iteration": integers, "group": ids, "trajectory": ids, "prompt": texts,
             "outcome": (*integers, "DOUBLE"), "split": texts}  # fmt: skip
    value: dict[str, str] = {}
    wrong: list[str] = []
    for field, allowed in kinds.items():
        if field in layout.top:
            value[field], bad = _json_value(field, allowed)
            wrong.append(bad)
        else:
            value[field] = "NULL"
    extra_top = [name for name in layout.top if name not in TOP_KEYS]
    meta = '"meta"' if "meta" in layout.top else "NULL::JSON"
    if extra_top:  # unknown top-level keys join `meta`, as the Python reader merges them
        packed = ", ".join(f"'{_quote(name)}', \"{_quote_identifier(name)}\"" for name in extra_top)
        meta = f"json_merge_patch(coalesce({meta}, '{{}}'::JSON), json_object({packed}))"
    override = data.run_override
    run = f"'{_quote(override)}'" if override else f"coalesce({value['run']}, {data.default_run})"
    # The inner query decodes each field once; the outer one checks and shapes them.
    bad = " OR ".join(
        [
            "wrong_type",
            "(iteration_text IS NOT NULL AND iteration IS NULL)",  # beyond a 64-bit integer
            "traj_id IS NULL OR traj_id = '' OR run_id = ''",
            "n_steps = 0",  # a record without steps
            "outcome IS NULL OR NOT isfinite(outcome)",
            "split NOT IN ('train', 'val')",
        ]
    )
    inserted = cur.execute(
        f"""INSERT INTO trajectories BY NAME
        SELECT run_id, {_guard(bad, "traj_id", "a record needs checking")} AS traj_id,
               coalesce(iteration, 0) AS iteration, coalesce(group_text, prompt, traj_id) AS group_id, prompt,
               {f"'{split}'" if split else "split"} AS split, outcome, n_steps, meta, source_id
        FROM (SELECT {data.source_id} AS source_id, {run} AS run_id, {value["trajectory"]} AS traj_id,
                     {value["iteration"]} AS iteration_text,
                     TRY_CAST(iteration_text AS BIGINT) AS iteration, {value["group"]} AS group_text,
                     {value["prompt"]} AS prompt, coalesce({value["split"]}, 'train') AS split,
                     TRY_CAST({value["outcome"]} AS DOUBLE) AS outcome,
                     coalesce(len(steps), 0)::INTEGER AS n_steps,
                     {meta} AS meta, {" OR ".join(wrong) or "FALSE"} AS wrong_type
              FROM {data.reader(columns=columns)})"""
    ).fetchall()
    return int(inserted[0][0])


def _insert_steps(cur: duckdb.DuckDBPyConnection, data: _Input, layout: _Layout, run: str, *, whole_file: bool) -> None:
    """Unnest every record's steps into ``step_rows``; trajectory-level columns come from the same record.

    With ``whole_file`` the layout covers every record, so the columns are named outright (no second
    detection pass); otherwise DuckDB detects again from its sample and refuses any key it did not see.
    """
    # The prompt is read only when a record may lack its group (the group then defaults to it).
    top = {name for name in ("run", "iteration", "group", "trajectory", "outcome", "prompt") if name in layout.top}
    columns = None
    if whole_file:
        columns = {
            name: "DOUBLE" if name == "outcome" else "BIGINT" if name == "iteration" else "VARCHAR" for name in top
        }
        fields = ", ".join(
            f'"{_quote_identifier(name)}" {_SQL_TYPE.get(name, "VARCHAR") if name in _ALLOWED else sql_type}'
            for name, sql_type in layout.steps.items()
        )
        columns["steps"] = f"STRUCT({fields})[]"
    s = {name: _step_value(name, layout.steps.get(name)) for name in STEP_KEYS}
    group = ", ".join(
        expr for key, expr in (("group", '"group"::VARCHAR'), ("prompt", "prompt::VARCHAR")) if key in top
    )
    group = f"coalesce({group}, trajectory::VARCHAR)" if group else "trajectory::VARCHAR"
    iteration = "coalesce(iteration::BIGINT, 0)" if "iteration" in layout.top else "0::BIGINT"
    extra_keys = [name for name in layout.steps if name not in STEP_KEYS]
    extra = "NULL::JSON"
    if extra_keys:
        packed = (
            "to_json(struct_pack("
            + ", ".join(f'"{_quote_identifier(k)}" := s."{_quote_identifier(k)}"' for k in extra_keys)
            + "))"
        )
        # A key a step lacks reads as null; dropping it (merge_patch into {} drops null members) rewrites the
        # JSON, so only steps with some but not all of the keys pay for it (records of another environment in
        # the same file usually have none of them).
        complete = " AND ".join(f's."{_quote_identifier(k)}" IS NOT NULL' for k in extra_keys)
        none = " AND ".join(f's."{_quote_identifier(k)}" IS NULL' for k in extra_keys)
        sparse = f"nullif(json_merge_patch('{{}}'::JSON, {packed})::VARCHAR, '{{}}')::JSON"
        extra = f"CASE WHEN {complete} THEN {packed} WHEN {none} THEN NULL::JSON ELSE {sparse} END"
    tokens = ", ".join(f"{s[name]} AS {name}" for name in TOKEN_COLUMN_NAMES)
    cur.execute(
        f"""INSERT INTO step_rows BY NAME
        SELECT * REPLACE ({_guard(f"NOT ({_STEP_OK})", "action", "a step needs checking")} AS action)
        FROM (SELECT run_id, iteration, group_id, traj_id, step_idx::INTEGER AS step_idx, {s["state"]} AS state,
                     {s["action"]} AS action, {s["reward"]} AS reward, outcome, {s["node"]} AS node_id,
                     {s["parent"]} AS parent_id, {s["label"]} AS label, {s["valid"]} AS valid,
                     {s["prm"]} AS prm_logged, {s["value"]} AS value, {extra} AS extra, {tokens}, source_id
              FROM (SELECT {data.source_id} AS source_id, {run} AS run_id, {iteration} AS iteration,
                           {group} AS group_id,
                           trajectory::VARCHAR AS traj_id, outcome::DOUBLE AS outcome,
                           unnest(range(len(steps))) AS step_idx, unnest(steps) AS s
                    FROM {data.reader(columns=columns)}))"""
    )


def _step_value(name: str, sql_type: duckdb.DuckDBPyType | None) -> str:
    """SQL for a step field in its canonical type; a field null in every sampled record stays null or fails."""
    target = _SQL_TYPE.get(name, "VARCHAR")
    if sql_type is None:
        return f"NULL::{target}"
    if _family(sql_type) in {"JSON", "NULL"}:  # never seen with a value: any value later needs the Python reader
        problem = f"step field {name} has values the sample did not show"
        return f"CASE WHEN s.\"{name}\" IS NULL THEN NULL::{target} ELSE error('{problem}') END"
    return f's."{name}"::{target}'


_STEP_OK = " AND ".join(
    ["action IS NOT NULL", *(f"coalesce(isfinite({c}), TRUE)" for c in ("reward", "label", "prm_logged", "value")),
     "coalesce(label BETWEEN 0 AND 1, TRUE)", f"({TOKENS_OK})"]
)  # fmt: skip
"""What a step must satisfy to be loaded without the Python reader's check (labels in [0, 1] included)."""


def _quote_identifier(name: str) -> str:
    return name.replace('"', '""')


def _quote(text: str) -> str:
    return text.replace("'", "''")
