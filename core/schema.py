"""The canonical data model: the one place that names the columns everything else relies on.

The step table is the contract between ingest adapters, the credit engine, the tree builders,
the PRM scorers and the dashboard. Its column names and meanings are fixed; adding a column is a
schema migration (see ``core/store/migrations.py`` and the README's "Schema changes" section).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of a canonical table.

    Attributes:
        name: Column name, part of the public contract.
        sql_type: DuckDB type used in the store.
        nullable: Whether the column may hold NULL.
        doc: What the column means (shown in the README and the dashboard's help texts).
    """

    name: str
    sql_type: str
    nullable: bool
    doc: str


STEP_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "VARCHAR", False, "a training run (one log folder / one ingest name)"),
    Column("iteration", "BIGINT", False, "training step / policy version the rollout was sampled at (0 if unknown)"),
    Column("group_id", "VARCHAR", False, "rollouts of the same prompt/task in the same iteration (GRPO group)"),
    Column("traj_id", "VARCHAR", False, "one trajectory (unique within the run)"),
    Column("step_idx", "INTEGER", False, "0-based position of the step in its trajectory"),
    Column("state", "VARCHAR", True, "what the policy saw before acting; GiGPO's anchor state"),
    Column("action", "VARCHAR", False, "what the policy produced at this step"),
    Column("reward", "DOUBLE", True, "immediate reward of this step from the environment or verifier"),
    Column("outcome", "DOUBLE", False, "the trajectory's final reward, repeated on each of its rows"),
    Column("node_id", "VARCHAR", True, "id of this step's node in a rollout tree"),
    Column("parent_id", "VARCHAR", True, "node_id of the previous step (null at the first step)"),
    Column("label", "DOUBLE", True, "ground-truth quality of the step (1 good, 0 bad)"),
    Column("valid", "BOOLEAN", True, "the action was executable / well-formed"),
    Column("prm", "DOUBLE", True, "a process-reward score of the step (logged, or from the active scorer)"),
    Column("value", "DOUBLE", True, "a critic value V(s) logged by the trainer"),
)
"""Columns of the ``steps`` view, in order. Extra per-step data lives in ``extra`` (JSON)."""

STEP_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in STEP_COLUMNS)

LOGGED_PRM = "logged"
"""``prm_source`` of a step whose ``prm`` is the score its source log carried."""
PRM_SOURCE = Column(
    "prm_source",
    "VARCHAR",
    True,
    "where the step's prm comes from: the id of the run's active PRM scorer, 'logged' (the source's own score, "
    "also shown where the active scorer did not score the step), or NULL when it has none",
)
"""Provenance of ``prm``, in the ``steps`` view after the contract columns (schema version 6): a partial rescore
shows the scorer's scores and the logged ones side by side, and this column says which is which."""

OPTIONAL_STEP_INPUTS: tuple[str, ...] = ("logp_policy", "logp_ref", "n_tokens")
"""Per-step numbers some credit schemes use (implicit PRM, token-level whitening) when a log carries
them: kept in ``steps.extra`` under these keys, and exposed as columns by ``core.store.queries.steps``."""

TOKEN_COLUMNS: tuple[Column, ...] = (
    Column("tokens", "VARCHAR[]", True, "the action's tokens as text, in order"),
    Column("token_logprobs", "DOUBLE[]", True, "log-probability of each token under the sampling policy"),
    Column("token_ref_logprobs", "DOUBLE[]", True, "log-probability of each token under the reference model"),
    Column("token_entropies", "DOUBLE[]", True, "entropy of the policy's next-token distribution at each token"),
    Column("token_advantages", "DOUBLE[]", True, "per-token advantage the trainer used"),
)
"""Optional per-token arrays of a step, aligned index by index (any subset may be present; those present
have one length). Stored as LIST columns beside the step rows, not in the ``steps`` view: a scan of
``steps`` never reads them, and ``core.store.queries.step_tokens`` returns one trajectory's arrays."""

TOKEN_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in TOKEN_COLUMNS)

TOKEN_STAT_INPUTS: tuple[str, ...] = ("token_mean_prob", "token_mean_logprob")
"""Per-step summaries of ``token_logprobs`` (mean token probability, mean token log-probability) that
``core.store.queries.steps(with_token_stats=True)`` computes in DuckDB for credit schemes (``scope``)."""

TRAJECTORY_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "VARCHAR", False, "run the trajectory belongs to"),
    Column("traj_id", "VARCHAR", False, "trajectory id, unique within the run"),
    Column("iteration", "BIGINT", False, "training step the rollout was sampled at"),
    Column("group_id", "VARCHAR", False, "GRPO group (same prompt, same iteration)"),
    Column("prompt", "VARCHAR", True, "the task / prompt text"),
    Column("split", "VARCHAR", False, "'train' or 'val'"),
    Column("outcome", "DOUBLE", False, "final reward of the trajectory"),
    Column("n_steps", "INTEGER", False, "number of steps"),
    Column("meta", "JSON", True, "everything else the source carried about the trajectory"),
)

RUN_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "VARCHAR", False, "run name"),
    Column("source_format", "VARCHAR", False, "adapter that read it (native, verl, ...)"),
    Column("source_path", "VARCHAR", False, "file or folder it was first ingested from"),
    Column("ingested_at", "TIMESTAMP", False, "time of the latest ingest into the run"),
    Column("config", "JSON", True, "run configuration (adapter options, step splitter, trainer config)"),
)

SPLITS: tuple[str, ...] = ("train", "val")

LABEL_MAPPING_DOC = (
    "Step labels are stored as 1.0 (good) / 0.0 (bad). PRM800K ratings map +1 -> 1.0, -1 -> 0.0 and "
    "0 (neutral: 'reasonable but not progressing') -> 1.0, following the PRM800K paper's convention that "
    "a neutral step is not an error; Math-Shepherd '+' -> 1.0, '-' -> 0.0."
)
