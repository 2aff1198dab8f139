"""The one owner of a creditscope DuckDB file: opens it, migrates it, hands out cursors.

DuckDB allows one read-write process per file, and within that process one connection must not be
shared by threads (duckdb 2.0 refuses a busy connection). So a :class:`Store` keeps a single
connection and gives every caller its own ``cursor()``; writes go through :meth:`Store.writer`,
which serialises them with a lock and wraps them in one transaction (the datasette pattern:
many readers, one writer).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from core.errors import CreditscopeError, DatabaseLocked
from core.store.migrations import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    import pandas as pd

_LOCK_PID = re.compile(r"PID (\d+)")


class DatabaseUnusable(CreditscopeError):
    """The ``--db`` path cannot serve as a database: a folder, another kind of file, damaged, unwritable, missing."""


def _unusable_path(path: str, read_only: bool) -> str | None:
    """What is wrong with ``path`` before DuckDB tries it, or None."""
    if path == ":memory:":
        return None
    where = Path(path)
    if where.is_dir():
        return f"{path} is a folder; give --db the path of a database file, e.g. {where / 'runs.duckdb'}"
    if read_only and not where.exists():
        return f"no database at {path}; create one with `creditscope ingest LOGS --db {path}`"
    return None


def database_problem(path: str, exc: BaseException) -> str:
    """One line on why DuckDB could not use the database file at ``path`` (from its error)."""
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    lowered = text.lower()
    if "not a valid duckdb database" in lowered:
        return f"{path} is not a creditscope database (not a DuckDB file); give --db another path"
    if "permission denied" in lowered or "read-only file system" in lowered:
        return f"cannot write {path}: permission denied; open it read-only (e.g. `creditscope runs`) or copy it"
    if "no space left on device" in lowered:
        return f"not enough disk space for {path}: {first}; free some space or give --db a path on another disk"
    if "could not read enough bytes" in lowered or "corrupt" in lowered or "checksum" in lowered:
        return f"{path} is damaged (truncated or corrupted: {first}); restore it or ingest into a new --db"
    return f"cannot use the database {path}: {first}"


def remove_database(path: str) -> None:
    """Delete a database file and its write-ahead log (a database the failed command itself created)."""
    for leftover in (Path(path), Path(f"{path}.wal")):
        leftover.unlink(missing_ok=True)


class NewerSchema(CreditscopeError, RuntimeError):
    """The database was written by a newer creditscope; reading it with this one could misread it."""


class Store:
    """A creditscope database.

    Use :meth:`open`; read with :meth:`reader` (a fresh cursor per call, safe from any thread) and
    write with :meth:`writer` (one transaction under a process-wide lock).
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: str, read_only: bool):
        self._conn = conn
        self.path = path
        self.read_only = read_only
        self.schema_version = SCHEMA_VERSION
        """Schema version of the file; older than :data:`SCHEMA_VERSION` only when opened read-only."""
        self._write_lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path = ":memory:", *, read_only: bool = False) -> Store:
        """Open (creating and migrating if needed) the database at ``path``.

        Raises:
            DatabaseLocked: Another process holds the file. DuckDB allows a single read-write
                process and then no readers at all, so the message names that process and the
                ways around it.
            NewerSchema: A newer creditscope wrote the file (refused read-write and read-only alike).
        """
        path = str(path)
        problem = _unusable_path(path, read_only)
        if problem is not None:
            raise DatabaseUnusable(problem)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower():
                raise DatabaseUnusable(database_problem(path, exc)) from exc
            pid = _LOCK_PID.search(str(exc))
            holder = f"process {pid.group(1)}" if pid else "another process"
            raise DatabaseLocked(
                f"{path} is open in {holder} (for example `creditscope serve` or another ingest). DuckDB lets only "
                "one process use a database file at a time. Ingest from the dashboard's Ingest page while it runs, "
                "or stop that process and retry. Nothing was changed."
            ) from exc
        store = cls(conn, path, read_only)
        try:
            if read_only:
                store._schema_version()  # a read-only open cannot migrate, but must still refuse a newer schema
            else:
                store._migrate()
                store.schema_version = SCHEMA_VERSION
        except duckdb.Error as exc:
            conn.close()  # else the refused file stays open in this process
            raise DatabaseUnusable(database_problem(path, exc)) from exc
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        """Close the connection; cursors handed out become unusable."""
        self._conn.close()

    def _schema_version(self) -> int:
        """The database's schema version (0 for a new file).

        Raises:
            NewerSchema: A newer creditscope wrote the file.
        """
        with self.reader() as cur:
            found = cur.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_catalog = current_database() AND table_name = 'schema_version'"
            ).fetchone()
            row = cur.execute("SELECT max(version) FROM schema_version").fetchone() if found and found[0] else None
        current = int(row[0]) if row and row[0] is not None else 0
        self.schema_version = current
        if current > SCHEMA_VERSION:
            raise NewerSchema(
                f"{self.path} has schema version {current}, newer than this creditscope ({SCHEMA_VERSION}); "
                "upgrade creditscope to read it"
            )
        return current

    def _migrate(self) -> None:
        current = self._schema_version()
        if current == SCHEMA_VERSION:
            return
        cur = self._conn.cursor()
        # Every pending migration in one transaction: a file is never left between two versions, and a new
        # database costs one commit instead of one per migration.
        try:
            cur.execute("BEGIN")
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            for version in range(current, SCHEMA_VERSION):
                step = MIGRATIONS[version]
                step(cur) if callable(step) else cur.execute(step)
                cur.execute("INSERT INTO schema_version VALUES (?)", [version + 1])
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for the caller's thread, closed afterwards."""
        cur = self._conn.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the write lock across several steps (e.g. staging files, then one :meth:`writer` block)."""
        with self._write_lock:
            yield

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside one transaction; everything in the block lands, or nothing does."""
        if self.read_only:
            raise PermissionError(f"{self.path} was opened read-only")
        with self._write_lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                except BaseException:
                    # After a Ctrl-C DuckDB may refuse the rollback too; the first error is the one to report,
                    # and closing the cursor below ends the transaction either way.
                    with contextlib.suppress(duckdb.Error):
                        cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                cur.close()

    def query_df(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        """Run a read query on a fresh cursor and return a DataFrame (for store modules only)."""
        with self.reader() as cur:
            return cur.execute(sql, params or []).df()
