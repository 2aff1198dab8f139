"""Helpers for adapters whose records hold chat-message lists (verifiers, openai_messages, prime_rl)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.formats._rollout_records import prefix_states
from core.ingest.messages import MessageFormatError, content_text, messages_to_steps, render_message
from core.ingest.split import resolve_splitter, split_steps


def render_prompt(prompt: Any) -> str:
    """The prompt as text: a string as is, a message list rendered one ``role: text`` block per message."""
    if isinstance(prompt, list):
        return "\n\n".join(render_message(m) if isinstance(m, dict) else str(m) for m in prompt)
    return content_text(prompt)


def chat_steps(
    prompt: Any, completion: Any, splitter: str, path: Path, line: int, field: str = "completion"
) -> tuple[list[dict[str, Any]], str]:
    """Steps of one rollout whose completion is a message list (one step per assistant turn) or text.

    Args:
        prompt: Prompt messages (list) or text; None when ``completion`` is the whole conversation, whose
            messages before the first assistant turn are then the prompt.
        completion: Completion messages (list) or text.
        splitter: Splitter for text completions.
        path: Source file, for errors.
        line: 1-based line, for errors.
        field: Name of the completion field in the record, for errors.

    Returns:
        The steps and how they were made: ``"messages"`` or the concrete splitter. A completion with no
        assistant turn gives one empty-action step so the rollout (and its reward) is not lost.

    Raises:
        IngestError: Malformed messages, naming the field (e.g. ``completion[2].tool_calls[0]``).
    """
    try:
        if isinstance(completion, list):
            if prompt is None or isinstance(prompt, list):
                prompt_messages = prompt
            else:
                prompt_messages = [{"role": "user", "content": prompt}]
            steps = messages_to_steps(completion, prompt_messages, field_prefix=field)
            if not steps:
                return [
                    {"state": render_prompt(prompt), "action": "", "extra": {"no_assistant_turn": True}}
                ], "messages"
            return steps, "messages"
    except MessageFormatError as exc:
        raise IngestError(str(path), exc.problem, line, exc.field) from exc
    if not isinstance(completion, str):
        raise IngestError(str(path), f"expected a message list or text, got {type(completion).__name__}", line, field)
    pieces = split_steps(completion, splitter)
    states = prefix_states(render_prompt(prompt), pieces)
    steps = [{"state": state, "action": piece} for state, piece in zip(states, pieces, strict=True)]
    return steps, resolve_splitter(completion, splitter)


def prompt_key(prompt: Any) -> str:
    """Canonical JSON of a prompt, so identical prompts compare equal regardless of key order."""
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str)
