"""A run's step rows in chunks of whole iterations, for whole-run work in bounded memory.

Reading a 10M-step run into one DataFrame takes tens of GB; every credit scheme but a few works
within one training batch (run, iteration), so whole-run Compare and export read it an iteration
range at a time (:mod:`core.credit.streaming`). Chunks come in the canonical order of
``core.store.queries.steps`` (iteration, group, trajectory, step), so their concatenation is exactly
the frame a single query would return.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from core.store.database import Store
from core.store.queries import steps

DEFAULT_CHUNK_STEPS = 100_000
"""Steps per chunk: large enough to amortise a query, small enough that a chunk with its text and every
scheme's arrays stays a few hundred MB (250,000 took 1.2 GB at the peak on the 10M-step benchmark run)."""


@dataclass(frozen=True)
class ChunkPlan:
    """Iteration ranges covering a run (or one iteration), each about ``DEFAULT_CHUNK_STEPS`` steps."""

    ranges: tuple[tuple[int, int], ...]
    """Inclusive (first, last) iteration of each chunk."""
    n_steps: int


def plan_chunks(
    store: Store, run_id: str, iteration: int | None = None, chunk_steps: int = DEFAULT_CHUNK_STEPS
) -> ChunkPlan:
    """Group consecutive iterations into chunks of about ``chunk_steps`` steps (one iteration never splits)."""
    sizes = store.query_df(
        """SELECT iteration, sum(n_steps)::BIGINT AS steps FROM trajectories
           WHERE run_id = $run AND ($it IS NULL OR iteration = $it) GROUP BY iteration ORDER BY iteration""",
        {"run": run_id, "it": iteration},
    )
    ranges: list[tuple[int, int]] = []
    start, filled = None, 0
    for it, n in zip(sizes["iteration"].tolist(), sizes["steps"].tolist(), strict=True):
        if start is not None and filled + n > chunk_steps:
            ranges.append((start, previous))  # noqa: F821 - set in the previous pass
            start, filled = None, 0
        start = it if start is None else start
        filled += n
        previous = it
    if start is not None:
        ranges.append((start, previous))
    return ChunkPlan(tuple(ranges), int(sizes["steps"].sum()) if len(sizes) else 0)


def iter_chunks(store: Store, run_id: str, plan: ChunkPlan) -> Iterator[pd.DataFrame]:
    """Step frames of each planned iteration range (``queries.steps`` with the token log-prob summaries)."""
    for first, last in plan.ranges:
        yield steps(store, run_id=run_id, iterations=(first, last), with_token_stats=True)
