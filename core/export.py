"""``creditscope advantages``: one scheme's per-step credit for a run, streamed to Parquet or CSV.

The run is read and computed a few iterations at a time (:mod:`core.credit.streaming`), and each chunk
is appended to the output as it is done, so memory stays that of one chunk whatever the run's size. The
file is written under a temporary name beside the target and renamed at the end: a failed export
leaves no half-written file. Schemes that need the whole run at once (``spa``, ``whiten_over='all'``)
are computed on the whole run in memory, and the report says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.credit import compute
from core.credit.filtering import prm_filter
from core.credit.streaming import needs_whole_run, stream_scheme
from core.errors import CreditscopeError, MissingInput
from core.store import queries
from core.store.database import Store
from core.store.stream import iter_chunks, plan_chunks

KEY_COLUMNS = ["run_id", "iteration", "group_id", "traj_id", "step_idx"]
WRITERS = {".csv": "CSV", ".parquet": "Parquet"}


def check_output(out: str) -> str:
    """The format to write ``out`` in, or a one-line refusal (unknown extension, missing folder).

    Raises:
        CreditscopeError: The extension is neither ``.csv`` nor ``.parquet``, or the folder does not exist.
    """
    path = Path(out)
    kind = WRITERS.get(path.suffix.lower())
    if kind is None:
        raise CreditscopeError(f"--out {out}: cannot write {path.suffix or 'a file without an extension'}; "
                               "name a .csv or .parquet file")  # fmt: skip
    folder = path.parent
    if not folder.is_dir():
        raise CreditscopeError(f"--out {out}: folder {folder} does not exist")
    return kind


@dataclass
class ExportReport:
    """What an export wrote."""

    n_steps: int = 0
    in_memory: str | None = None
    """Why the scheme was computed on the whole run in memory (None: streamed)."""
    filter_lines: list[str] = field(default_factory=list)


def export_advantages(
    store: Store,
    run_id: str,
    scheme: str,
    params: dict[str, Any],
    out: str,
    *,
    filter_prm_below: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Write ``scheme``'s advantage of every step of ``run_id`` to ``out`` (.csv or .parquet).

    Raises:
        CreditscopeError: Bad ``out``, unknown run, a scheme missing its inputs, no PRM scores to filter by.
    """
    kind = check_output(out)
    plan = plan_chunks(store, run_id)
    if plan.n_steps == 0:
        raise CreditscopeError(f"run {run_id!r} not found in {store.path} (see `creditscope runs --db {store.path}`)")
    report = ExportReport()
    report.in_memory = needs_whole_run(scheme, params)
    if report.in_memory is None:
        chunks: Iterator[tuple[pd.DataFrame, np.ndarray]] = iter(
            stream_scheme(iter_chunks(store, run_id, plan), scheme, params)
        )
    else:
        whole = queries.steps(store, run_id=run_id, with_token_stats=True)
        chunks = iter([(whole, compute(whole, scheme, **params))])
    target = Path(out)
    partial = target.with_name(f".{target.name}.partial")
    writer = _ParquetSink(partial) if kind == "Parquet" else _CsvSink(partial)
    below = unscored = kept = 0
    try:
        for frame, credit in chunks:
            table = frame[KEY_COLUMNS].assign(advantage=credit)
            if filter_prm_below is not None:
                keep, n_below, n_unscored = _keep(frame, filter_prm_below)
                table, below, unscored = table[keep], below + n_below, unscored + n_unscored
            writer.write(table)
            kept += len(table)
            report.n_steps += len(frame)
            if progress is not None:
                progress(report.n_steps, plan.n_steps)
        if filter_prm_below is not None and unscored == report.n_steps:
            prm_filter(pd.DataFrame({"prm": []}), filter_prm_below)  # no score anywhere: the usual refusal
        writer.close()
        os.replace(partial, target)
    finally:
        writer.close()
        partial.unlink(missing_ok=True)
    if filter_prm_below is not None:
        report.filter_lines.append(
            f"kept {kept} of {report.n_steps} steps: {below} with PRM score below {filter_prm_below:g} dropped, "
            f"{unscored} without a score kept"
        )
    return report


def _keep(frame: pd.DataFrame, threshold: float) -> tuple[np.ndarray, int, int]:
    """Rows a PRM threshold keeps in one chunk (a chunk without any score keeps every row, unscored)."""
    try:
        kept = prm_filter(frame, threshold)
    except MissingInput:
        return np.ones(len(frame), dtype=bool), 0, len(frame)
    return kept.keep, kept.n_below, kept.n_unscored


class _ParquetSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = None

    def write(self, table: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        batch = pa.Table.from_pandas(table, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, batch.schema)
        self._writer.write_table(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _CsvSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._header = True

    def write(self, table: pd.DataFrame) -> None:
        table.to_csv(self.path, index=False, header=self._header, mode="w" if self._header else "a")
        self._header = False

    def close(self) -> None:
        pass
