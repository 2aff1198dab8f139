"""Truncation and token-budget batching of encoded sequences (pure Python, no torch).

Sequences are sorted by length and cut into batches whose padded size (longest × count) stays
under ``batch_tokens``. Sorting keeps padding small; a budget in tokens rather than a fixed batch
size keeps memory flat whether trajectories are short or long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.prm.formats import EncodedSequence, StepRead

DEFAULT_BATCH_TOKENS = 16384
GPU_BATCH_TOKENS = 65536
"""On an H100, a 1.5B PRM scores 1.4x the tokens/s at 65,536 tokens per batch as at 16,384 (bench/RESULTS.md);
on CPU larger batches only add padding."""


@dataclass
class PreparedSequence:
    """A sequence cut to the model's limit, with the reads that survive the cut.

    Attributes:
        traj_index: Trajectory the sequence belongs to.
        input_ids: Token ids, at most ``max_length`` long.
        reads: Steps whose score can still be read after the cut.
        truncated_steps: Steps lost to the cut (scored NaN and flagged).
        full_length: Length before the cut.
    """

    traj_index: int
    input_ids: list[int]
    reads: list[StepRead]
    truncated_steps: list[int]
    full_length: int


def truncate(sequence: EncodedSequence, max_length: int) -> PreparedSequence:
    """Cut a sequence at ``max_length`` and split its reads into kept and truncated.

    A step is kept only if every token its score needs lies before the cut; a sequence-level read
    (``seqcls``) needs the whole sequence, so a too-long prefix is not run at all rather than cut.
    """
    kept = [r for r in sequence.reads if r.last_needed < max_length]
    lost = [r.step for r in sequence.reads if r.last_needed >= max_length]
    if not kept:
        cut = 0
    elif all(r.position >= 0 for r in kept):
        cut = min(len(sequence.input_ids), max_length)
    else:
        cut = len(sequence.input_ids)
    return PreparedSequence(sequence.traj_index, sequence.input_ids[:cut], kept, lost, len(sequence.input_ids))


def token_budget_batches(sequences: Sequence[PreparedSequence], batch_tokens: int) -> list[list[PreparedSequence]]:
    """Group sequences into length-sorted batches whose padded size stays within ``batch_tokens``.

    A single sequence longer than the budget still gets a batch of its own (the budget bounds
    padding waste, not what the model can take). Sequences with nothing to score are skipped.

    Args:
        sequences: Prepared sequences.
        batch_tokens: Padded-token budget per forward pass (longest length × batch size).

    Returns:
        Batches, longest first so an out-of-memory error shows up on the first batch, not the last.
    """
    runnable = sorted((s for s in sequences if s.reads), key=lambda s: len(s.input_ids), reverse=True)
    batches: list[list[PreparedSequence]] = []
    current: list[PreparedSequence] = []
    for seq in runnable:
        # Sorted descending, so the first sequence of a batch is its longest and sets the padded width.
        width = len(current[0].input_ids) if current else len(seq.input_ids)
        if current and width * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(seq)
    if current:
        batches.append(current)
    return batches


def default_batch_tokens(device: str) -> int:
    """The padded-token budget per forward pass used when none is given: larger on GPUs."""
    return GPU_BATCH_TOKENS if device.startswith("cuda") else DEFAULT_BATCH_TOKENS
