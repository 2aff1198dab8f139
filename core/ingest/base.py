"""The contract between format adapters and the store.

An adapter turns one source file into :class:`Rollouts`: canonical step and trajectory frames.
It never touches the database; :mod:`core.ingest` hands the frames to the store, which loads
them in bulk inside one transaction per ingest command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.schema import STEP_COLUMN_NAMES, TOKEN_COLUMN_NAMES

if TYPE_CHECKING:  # pandas costs ~0.5 s to import; a native JSONL load never needs it
    import pandas as pd

STEP_FRAME_COLUMNS: tuple[str, ...] = tuple(c for c in STEP_COLUMN_NAMES if c != "run_id") + ("extra",)
"""Columns an adapter's ``steps`` frame carries: the canonical ones (``run_id`` is assigned at
ingest) plus ``extra``, a JSON text per step holding every source field not mapped to a column
(token ids, logprobs, reward components, ...), or None."""

TOKEN_FRAME_COLUMNS: tuple[str, ...] = TOKEN_COLUMN_NAMES
"""Optional columns of an adapter's ``steps`` frame: per-token arrays of the step's action (``tokens`` as a
list of strings; ``token_logprobs``, ``token_ref_logprobs``, ``token_entropies``, ``token_advantages`` as
lists of floats), one list or None per row. A frame carries any subset of them (or none). Check each step
with :func:`core.tokens.token_arrays` (equal lengths, strings, finite numbers), or fill
:class:`core.ingest.formats._frames.StepRow`'s fields of the same names, and the store keeps them as LIST
columns (``core.store.queries.step_tokens``). Never put them in ``extra`` as JSON text."""

TRAJ_FRAME_COLUMNS: tuple[str, ...] = ("traj_id", "iteration", "group_id", "prompt", "split", "outcome", "meta")
"""Columns of an adapter's ``trajectories`` frame; ``meta`` is JSON text or None."""


PARTIAL_TAIL = "allow_partial_tail"
"""``AdapterOptions.extra`` key: a last record cut off mid-write is skipped with a note instead of refused
(a trainer may still be writing it). The follow layer sets it; it never changes the rows of complete records,
so it is not part of the options recorded with a source."""


@dataclass
class AdapterOptions:
    """Options shared by all adapters.

    Attributes:
        splitter: How single-response reasoning is split into steps: ``"auto"``, ``"blank_lines"``,
            ``"step_k"`` ("Step k:" markers), ``"lines"`` or ``"regex:<pattern>"``. Recorded in the
            run config so the split is reproducible.
        split: Force the train/val split of every trajectory ("train" or "val"), or None to infer.
        extra: Adapter-specific options (documented in each adapter's docstring).
    """

    splitter: str = "auto"
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rollouts:
    """One source's content in canonical form.

    Attributes:
        steps: One row per step, columns :data:`STEP_FRAME_COLUMNS`, plus any of :data:`TOKEN_FRAME_COLUMNS`.
        trajectories: One row per trajectory, columns :data:`TRAJ_FRAME_COLUMNS`.
        run_config: Run-level configuration found in the source (merged into ``runs.config``).
        default_run: Run name to use when the user gives none (e.g. the log folder's name).
        skipped: Human-readable notes on records skipped on purpose (e.g. a partial last line
            written while a trainer is still running), reported by the CLI.
    """

    steps: pd.DataFrame
    trajectories: pd.DataFrame
    run_config: dict[str, Any] = field(default_factory=dict)
    default_run: str | None = None
    skipped: list[str] = field(default_factory=list)


class Adapter(Protocol):
    """What every format module under ``core/ingest/`` provides (as module-level names)."""

    NAME: str
    """Format name used with ``--format``."""

    def detect(self, path: Path, head: bytes) -> str | None:
        """Return None when this adapter reads ``path``; otherwise a short reason why not.

        Args:
            path: The source file (adapters may look at its name and parent folders).
            head: The first 64 KiB of the file.
        """
        ...

    def read(self, path: Path, options: AdapterOptions) -> Rollouts:
        """Parse ``path`` into canonical frames, raising :class:`core.errors.IngestError` on bad input."""
        ...
