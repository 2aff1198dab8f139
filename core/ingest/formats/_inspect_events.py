"""What an Inspect sample's ``events`` add to its ``messages``: model details per step, and dropped tool calls.

Inspect's ``react()`` agent ends an episode with a ``submit`` tool call and then removes that call from
``sample.messages`` (the final assistant message keeps only its text). The call survives in
``sample.events``: the ``model`` event whose output message has the same id, and the ``tool`` event that
ran it. Without it the episode's last decision would be invisible and get no credit, so calls present in
a model event but missing from the matching message are put back, and the step records which ones
(``extra["restored_tool_calls"]``) and, for the episode's final call, ``extra["final_submit"]``.

Private (leading underscore) so the registry does not mistake it for an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EventDetails:
    """What the events say about the sample's assistant messages.

    Attributes:
        outputs: Per assistant message id, the ``usage``/``logprobs`` of the model call that produced it.
        calls: Per assistant message id, the tool calls the model made (as the model event logged them).
        messages: Per assistant message id, the message as the model event logged it.
        results: Per tool-call id, the ``tool`` event's result (and error, if any).
        last_message_id: Id of the message of the sample's last model call.
    """

    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_message_id: str | None = None


def read_events(events: Any) -> EventDetails:
    """Index the ``model`` and ``tool`` events of a sample (anything malformed is ignored, never guessed)."""
    details = EventDetails()
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict):
            continue
        if event.get("event") == "tool" and isinstance(event.get("id"), str):
            details.results[event["id"]] = {
                key: event[key] for key in ("function", "arguments", "result", "error") if event.get(key) is not None
            }
            continue
        if event.get("event") != "model" or not isinstance(event.get("output"), dict):
            continue
        output = event["output"]
        for choice in output.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict) or not isinstance(message.get("id"), str) or not message["id"]:
                continue
            found = {"usage": output.get("usage"), "logprobs": choice.get("logprobs")}
            details.outputs[message["id"]] = {key: value for key, value in found.items() if value is not None}
            calls = message.get("tool_calls")
            details.calls[message["id"]] = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
            details.messages[message["id"]] = message
            details.last_message_id = message["id"]
    return details


def _call_id(call: Any) -> Any:
    return call.get("id") if isinstance(call, dict) else None


def restore_dropped_calls(
    messages: list[Any], details: EventDetails
) -> tuple[list[Any], dict[str, list[dict[str, Any]]]]:
    """Put back tool calls that a model event made but the matching assistant message lacks.

    When the sample's last model call produced a message that is missing from ``messages`` altogether
    (and its calls appear in no message), that message is appended, so the final decision still becomes
    a step.

    Returns:
        The messages (copies where changed) and, per message id, the calls that were put back.
    """
    present_ids = {_call_id(call) for m in messages if isinstance(m, dict) for call in m.get("tool_calls") or []}
    restored: dict[str, list[dict[str, Any]]] = {}
    result: list[Any] = []
    for message in messages:
        message_id = message.get("id") if isinstance(message, dict) else None
        if not isinstance(message_id, str) or message.get("role") != "assistant" or message_id not in details.calls:
            result.append(message)
            continue
        missing = [c for c in details.calls[message_id] if _call_id(c) is None or _call_id(c) not in present_ids]
        if missing:
            own = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else []
            message = {**message, "tool_calls": [*own, *missing]}
            restored[message_id] = missing
        result.append(message)
    last = details.last_message_id
    message_ids = {m.get("id") for m in messages if isinstance(m, dict)}
    if last is not None and last not in message_ids:
        calls = [c for c in details.calls.get(last, []) if _call_id(c) not in present_ids]
        if calls:
            result.append({**details.messages[last], "role": "assistant"})
            restored[last] = calls
    return result, restored


def final_submit(message_id: str, details: EventDetails, restored: dict[str, list[dict[str, Any]]]) -> dict | None:
    """The episode's final tool call, when it was restored from the events for this message, with its result."""
    if message_id != details.last_message_id or not restored.get(message_id):
        return None
    call = restored[message_id][-1]
    outcome = details.results.get(_call_id(call) or "", {})
    return {
        "function": call.get("function"),
        "arguments": call.get("arguments"),
        **{key: outcome[key] for key in ("result", "error") if key in outcome},
        "source": "events",
    }
