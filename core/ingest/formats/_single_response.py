"""Steps for trainers that log one flat response per rollout (SkyRL, AReaL, ROLL RLVR).

The response is split with :func:`core.ingest.split.split_steps`; step k's state is the prompt plus
the steps before it (the convention all single-response adapters share), so a group's common
reasoning prefixes share states.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import IngestError
from core.ingest.formats._source_reading import prefix_states
from core.ingest.formats._trajectory_frames import StepRow
from core.ingest.split import resolve_splitter, split_steps


def response_steps(
    prompt: str, response: str, splitter: str, path: Path, record: int | str, field: str
) -> tuple[list[StepRow], str]:
    """Split ``response`` into step rows.

    Args:
        prompt: The prompt text (start of every state).
        response: The full response text.
        splitter: The user's splitter (``options.splitter``).
        path: Source file, for errors.
        record: Record locator, for errors.
        field: Field holding the response, for errors.

    Returns:
        The step rows and the concrete splitter applied (``auto`` resolves per response).

    Raises:
        IngestError: The splitter name or regex is invalid.
    """
    try:
        pieces = split_steps(response, splitter)
        concrete = resolve_splitter(response, splitter)
    except ValueError as exc:
        raise IngestError(str(path), str(exc), record, field) from exc
    states = prefix_states(prompt, pieces)
    return [StepRow(action=piece, state=state) for piece, state in zip(pieces, states, strict=True)], concrete


def require_text(value: object, path: Path, record: int | str, field: str) -> str:
    """Return ``value`` if it is a string, else raise an IngestError naming the field."""
    if not isinstance(value, str):
        raise IngestError(str(path), f"expected a string, got {type(value).__name__}", record, field)
    return value
