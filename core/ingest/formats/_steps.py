"""Turning one rollout's text or chat messages into steps with states.

Three kinds of source meet here: a flat response to be split into reasoning steps
(:func:`split_response`), a flat tool-agent transcript whose role words survived decoding
(:func:`turns_or_split`), and a chat-message list with one step per assistant turn (:func:`chat_steps`).

Two state conventions exist, one per kind of source:

- trainer logs (:func:`prefix_states`): the state of step k is the exact text the model continued from,
  the prompt followed by the earlier steps, so identical prefixes in a group share a state (GiGPO-style
  anchors);
- labelled step datasets (:func:`reasoning_state`): the problem and the steps so far, one per line.

Private (leading underscore) so the registry does not mistake it for an adapter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.formats._frames import StepRow
from core.ingest.messages import MessageFormatError, content_text, messages_to_steps, render_message
from core.ingest.split import STEP_MARKER, resolve_splitter, split_steps, validate_splitter

_ROLE_TURN = re.compile(r"(?:^|\n)(user|tool)\n(.*?)\nassistant\n", re.DOTALL)
"""An environment turn inside a flat decoded response: a ``user``/``tool`` role line, its text, and
the ``assistant`` role line that hands control back (chat-template markers are stripped by
``skip_special_tokens=True`` but the role words survive)."""


def prefix_states(prompt: str, steps: Sequence[str]) -> list[str]:
    """States for steps split from one response: the prompt, then every earlier step, one per line.

    The prompt gets a newline unless it already ends in white space, because the response starts
    right after it.
    """
    lead = prompt if not prompt or prompt[-1].isspace() else prompt + "\n"
    return [lead + "\n".join(steps[:position]) for position in range(len(steps))]


def reasoning_state(prompt: str | None, previous_steps: Sequence[str]) -> str:
    """The state before a labelled reasoning step: the problem followed by the steps so far, one per line."""
    return "\n".join([prompt or "", *previous_steps]) if previous_steps else (prompt or "")


def split_response(
    prompt: str, response: str, splitter: str, path: Path, record: int | str, field: str
) -> tuple[list[StepRow], str]:
    """Split one flat response into steps whose states follow :func:`prefix_states`.

    Args:
        prompt: The prompt text (start of every state).
        response: The full response text.
        splitter: The user's splitter (``options.splitter``).
        path: Source file, for errors.
        record: Record locator, for errors.
        field: Field holding the response, for errors.

    Returns:
        The steps and the concrete splitter applied (``auto`` resolves per response).

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


def split_flat_turns(output: str) -> list[tuple[str, str]] | None:
    """Split a flat multi-turn response into ``(observation, action)`` pairs at surviving role words.

    Args:
        output: The decoded response of a tool/agent loop.

    Returns:
        One pair per assistant turn, the first with an empty observation; None when the text holds no
        environment turn (a single-turn response).
    """
    turns = list(_ROLE_TURN.finditer(output))
    if not turns:
        return None
    pairs: list[tuple[str, str]] = []
    observation = ""
    start = 0
    for turn in turns:
        pairs.append((observation, output[start : turn.start()]))
        observation = f"{turn.group(1)}: {turn.group(2)}"
        start = turn.end()
    pairs.append((observation, output[start:]))
    return pairs


def turns_or_split(
    prompt: str, output: str, splitter: str, path: Path, record: int | str, field: str
) -> tuple[list[StepRow], str]:
    """Steps of a flat response: one per assistant turn when role words survive, else :func:`split_response`.

    In turn mode the prompt is the first state and the tool/user text before a turn the state of that turn.

    Returns:
        The steps and how they were made: ``"turns"`` or the concrete splitter.
    """
    turns = split_flat_turns(output)
    if turns is None:
        return split_response(prompt, output, splitter, path, record, field)
    steps = [
        StepRow(action=action.strip(), state=prompt if position == 0 else observation)
        for position, (observation, action) in enumerate(turns)
    ]
    return steps, "turns"


def group_step_rules(outputs: Sequence[tuple[str, str]], splitter: str) -> dict[str, str]:
    """One step rule per group, chosen from all of the group's responses, so step indices compare within it.

    A group in which any response holds an environment turn (role words survived, see
    :func:`split_flat_turns`) is cut into assistant turns throughout: a response without one is a single
    turn, hence a single step. Otherwise every response of the group is split with one splitter: with
    ``auto``, ``step_k`` when any response of the group has a ``Step k`` marker, else ``blank_lines``.

    Args:
        outputs: ``(group id, response)`` for every rollout of the file.
        splitter: The user's splitter (``options.splitter``).

    Returns:
        Per group id, ``"turns"`` or a concrete splitter.

    Raises:
        ValueError: Unknown splitter or invalid regex.
    """
    validate_splitter(splitter)
    by_group: dict[str, list[str]] = {}
    for group, output in outputs:
        by_group.setdefault(group, []).append(output)
    rules: dict[str, str] = {}
    for group, texts in by_group.items():
        if any(_ROLE_TURN.search(text) for text in texts):
            rules[group] = "turns"
        elif splitter == "auto":
            rules[group] = "step_k" if any(STEP_MARKER.search(text) for text in texts) else "blank_lines"
        else:
            rules[group] = splitter
    return rules


def steps_by_rule(prompt: str, output: str, rule: str, path: Path, record: int | str, field: str) -> list[StepRow]:
    """Steps of one flat response under its group's rule (:func:`group_step_rules`)."""
    if rule != "turns":
        return split_response(prompt, output, rule, path, record, field)[0]
    turns = split_flat_turns(output) or [("", output)]
    return [
        StepRow(action=action.strip(), state=prompt if position == 0 else observation)
        for position, (observation, action) in enumerate(turns)
    ]


def tokens_per_step(response: str, step_texts: Sequence[str], tokens: Sequence[str]) -> list[range] | None:
    """Which of a response's tokens belong to each step split from it, by character offsets.

    Each step's text is found in the response in order; a token belongs to the step its first character
    falls in, and a token inside a separator (the blank line between two steps) to the step before it.

    Args:
        response: The whole response text.
        step_texts: The steps split from it (:func:`split_response`), stripped.
        tokens: The response's tokens as text, in order.

    Returns:
        One range of token indices per step; None when the tokens do not spell the response exactly (special
        tokens, byte-level pieces) or a step is not found, so no alignment is guessed.
    """
    if "".join(tokens) != response:
        return None
    starts: list[int] = []
    cursor = 0
    for text in step_texts:
        found = response.find(text, cursor)
        if found < 0:
            return None
        starts.append(found)
        cursor = found + len(text)
    owner: list[int] = []
    offset, step = 0, 0
    for token in tokens:
        while step + 1 < len(starts) and offset >= starts[step + 1]:
            step += 1
        owner.append(step)
        offset += len(token)
    return [
        range(owner.index(k), len(owner) - owner[::-1].index(k)) if k in owner else range(0) for k in range(len(starts))
    ]


def render_prompt(prompt: Any) -> str:
    """The prompt as text: a string as is, a message list rendered one ``role: text`` block per message."""
    if isinstance(prompt, list):
        return "\n\n".join(render_message(m) if isinstance(m, dict) else str(m) for m in prompt)
    return content_text(prompt)


def prompt_key(prompt: Any) -> str:
    """Canonical JSON of a prompt, so identical prompts compare equal regardless of key order."""
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str)


def chat_steps(
    prompt: Any, completion: Any, splitter: str, path: Path, line: int, field: str = "completion"
) -> tuple[list[StepRow], str]:
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
    if isinstance(completion, list):
        prompt_messages = prompt
        if prompt is not None and not isinstance(prompt, list):
            prompt_messages = [{"role": "user", "content": prompt}]
        try:
            converted = messages_to_steps(completion, prompt_messages, field_prefix=field)
        except MessageFormatError as exc:
            raise IngestError(str(path), exc.problem, line, exc.field) from exc
        if not converted:
            return [StepRow(action="", state=render_prompt(prompt), extra={"no_assistant_turn": True})], "messages"
        steps = [StepRow(action=step["action"], state=step["state"], extra=step["extra"]) for step in converted]
        return steps, "messages"
    if not isinstance(completion, str):
        raise IngestError(str(path), f"expected a message list or text, got {type(completion).__name__}", line, field)
    return split_response(render_prompt(prompt), completion, splitter, path, line, field)
