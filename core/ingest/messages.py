"""Turns OpenAI-style chat messages into canonical steps: one step per assistant turn.

Shared by every adapter whose source carries message lists (verifiers, prime-rl, openai_messages,
Inspect, AReaL, rLLM, ...). The rules:

- Each assistant message is one step; its ``action`` is the message text followed by one line per
  tool call, rendered ``[tool_call] name(arguments-json)``.
- The first step's ``state`` is the prompt messages (``prompt_messages``, or, when None, the messages
  before the first assistant turn) rendered as text. Tool results and user/environment messages
  between two assistant turns become the NEXT step's ``state``: the observation the policy acted on,
  which is also what GiGPO uses as its anchor state.
- Nothing is dropped: raw tool calls, non-text assistant fields (``reasoning_content``, ``name``, ...),
  non-text fields of observation messages (``tool_call_id``, ...) and messages after the last
  assistant turn (e.g. a final "you won") are kept in the step's ``extra``.

Accepted tool-call shapes (log-formats.md B.12): OpenAI ``{id, type, function: {name, arguments}}``,
verifiers legacy ``{id, name, arguments}``, Inspect's dict ``arguments``, and tool calls serialised as
JSON strings (as some verifiers ``results.jsonl`` files hold them).
"""

from __future__ import annotations

import json
from typing import Any

ROLE_SEPARATOR = "\n\n"
"""Between rendered messages in a ``state``."""

_RENDERED_KEYS = frozenset({"role", "content"})
_ASSISTANT_RENDERED_KEYS = frozenset({"role", "content", "tool_calls"})


class MessageFormatError(ValueError):
    """A message list is malformed; ``field`` is the dotted path of the problem (e.g. ``[3].role``)."""

    def __init__(self, problem: str, field: str):
        self.problem = problem
        self.field = field
        super().__init__(f"{field}: {problem}")


def content_text(content: Any) -> str:
    """Render a message's ``content`` (string, None, or a list of typed parts) as plain text.

    Args:
        content: ``str``, ``None``, or a list of parts such as ``{"type": "text", "text": ...}``.

    Returns:
        The text; non-text parts appear as ``[image]``-style placeholders so their position is visible.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        rendered: list[str] = []
        for part in content:
            if isinstance(part, str):
                rendered.append(part)
            elif isinstance(part, dict):
                # OpenAI uses "text", Anthropic-style reasoning parts use "reasoning"/"thinking".
                text = part.get("text", part.get("reasoning", part.get("thinking")))
                rendered.append(text if isinstance(text, str) else f"[{part.get('type', 'part')}]")
            else:
                rendered.append(str(part))
        return "\n".join(rendered)
    return json.dumps(content, ensure_ascii=False)


def parse_tool_call(raw: Any, field: str) -> tuple[str, str]:
    """Return ``(name, arguments_json)`` for one tool call in any accepted shape.

    Args:
        raw: The tool call (dict, or a JSON string holding one).
        field: Dotted path of the call, used in error messages.

    Returns:
        The function name and its arguments as compact JSON text (a string argument that is not JSON
        is returned as is).

    Raises:
        MessageFormatError: The call is not an object or has no function name.
    """
    call = raw
    if isinstance(raw, str):
        try:
            call = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise MessageFormatError(f"tool call is a string that is not JSON ({exc.msg})", field) from exc
    if not isinstance(call, dict):
        raise MessageFormatError(f"expected a tool-call object, got {type(call).__name__}", field)
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise MessageFormatError("tool call has no function name", f"{field}.function.name")
    arguments = function.get("arguments", function.get("input", {}))
    if isinstance(arguments, str):
        return name, arguments.strip()
    return name, json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def _tool_calls_of(message: dict[str, Any], field: str) -> list[Any]:
    """The message's tool calls as a list (None and absent mean none)."""
    calls = message.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise MessageFormatError(f"expected a list, got {type(calls).__name__}", f"{field}.tool_calls")
    return calls


def render_message(message: dict[str, Any], field: str = "") -> str:
    """Render one message as ``role: text`` (tool results as ``tool (name): text``), tool calls on own lines.

    Args:
        message: A chat message dict.
        field: Dotted path of the message, used in error messages.

    Returns:
        The rendered text.
    """
    role = message.get("role", "?")
    label = f"{role} ({message['name']})" if role == "tool" and message.get("name") else str(role)
    lines = [f"{label}: {content_text(message.get('content'))}".rstrip()]
    for position, call in enumerate(_tool_calls_of(message, field)):
        name, arguments = parse_tool_call(call, f"{field}.tool_calls[{position}]")
        lines.append(f"[tool_call] {name}({arguments})")
    return "\n".join(lines)


def render_action(message: dict[str, Any], field: str = "") -> str:
    """Render an assistant message as an action: its text, then ``[tool_call] name(args)`` lines."""
    lines = [content_text(message.get("content"))] if content_text(message.get("content")) else []
    for position, call in enumerate(_tool_calls_of(message, field)):
        name, arguments = parse_tool_call(call, f"{field}.tool_calls[{position}]")
        lines.append(f"[tool_call] {name}({arguments})")
    return "\n".join(lines)


def _check_messages(messages: Any, prefix: str) -> list[dict[str, Any]]:
    """Validate that ``messages`` is a list of dicts with a string ``role``."""
    if not isinstance(messages, list):
        raise MessageFormatError(f"expected a list of messages, got {type(messages).__name__}", prefix or "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise MessageFormatError(f"expected a message object, got {type(message).__name__}", f"{prefix}[{index}]")
        if not isinstance(message.get("role"), str):
            raise MessageFormatError("message has no string 'role'", f"{prefix}[{index}].role")
    return messages


def _leftover_fields(message: dict[str, Any], rendered: frozenset[str]) -> dict[str, Any]:
    """Fields of ``message`` that the rendered text does not carry."""
    return {key: value for key, value in message.items() if key not in rendered and value is not None}


def messages_to_steps(
    messages: list[dict[str, Any]],
    prompt_messages: list[dict[str, Any]] | None = None,
    *,
    field_prefix: str = "",
) -> list[dict[str, Any]]:
    """Convert a conversation into one step per assistant turn.

    Args:
        messages: The conversation (or only the completion when ``prompt_messages`` is given).
        prompt_messages: Messages shown before ``messages``; when given, they alone form the first
            step's state. When None, messages before the first assistant turn form it.
        field_prefix: Dotted path of ``messages`` in the source record (e.g. ``"completion"``), so
            errors point at the right field.

    Returns:
        A list of ``{"state": str, "action": str, "extra": dict}``, one per assistant message, in order.
        Empty when there is no assistant message (the adapter decides whether that is an error).

    Raises:
        MessageFormatError: A message is not an object, lacks ``role``, or has a malformed tool call.
    """
    _check_messages(messages, field_prefix)
    pending: list[str] = []
    pending_fields: list[dict[str, Any]] = []
    if prompt_messages is not None:
        _check_messages(prompt_messages, "prompt")
        pending = [render_message(message, f"prompt[{i}]") for i, message in enumerate(prompt_messages)]
        pending_fields = [fields for m in prompt_messages if (fields := _leftover_fields(m, _RENDERED_KEYS))]
    steps: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        field = f"{field_prefix}[{index}]"
        if message["role"] != "assistant":
            pending.append(render_message(message, field))
            if fields := _leftover_fields(message, _RENDERED_KEYS):
                pending_fields.append(fields)
            continue
        extra: dict[str, Any] = {}
        raw_calls = _tool_calls_of(message, field)
        if raw_calls:
            # Decode string-serialised calls so extra holds structured data, not JSON inside JSON.
            extra["tool_calls"] = [json.loads(c) if isinstance(c, str) else c for c in raw_calls]
        if message_fields := _leftover_fields(message, _ASSISTANT_RENDERED_KEYS):
            extra["message_fields"] = message_fields
        if pending_fields:
            extra["state_message_fields"] = pending_fields
        steps.append({"state": ROLE_SEPARATOR.join(pending), "action": render_action(message, field), "extra": extra})
        pending, pending_fields = [], []
    trailing_start = len(messages)
    while trailing_start > 0 and messages[trailing_start - 1]["role"] != "assistant":
        trailing_start -= 1
    if steps and trailing_start < len(messages):
        steps[-1]["extra"]["trailing_messages"] = messages[trailing_start:]
    return steps
