import json

import pytest

from core.ingest.messages import MessageFormatError, content_text, messages_to_steps, parse_tool_call

PROMPT = [
    {"role": "system", "content": "Use tools."},
    {"role": "user", "content": "What is 6*7?"},
]


def test_one_step_per_assistant_turn_with_observations_in_next_state():
    completion = [
        {
            "role": "assistant",
            "content": "Let me compute.",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": '{"x": "6*7"}'}}],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "calc", "content": "42"},
        {"role": "assistant", "content": "The answer is 42."},
    ]
    steps = messages_to_steps(completion, PROMPT)
    assert [s["state"] for s in steps] == ["system: Use tools.\n\nuser: What is 6*7?", "tool (calc): 42"]
    assert steps[0]["action"] == 'Let me compute.\n[tool_call] calc({"x": "6*7"})'
    assert steps[1]["action"] == "The answer is 42."
    assert steps[0]["extra"]["tool_calls"][0]["id"] == "c1"
    # the tool result's id is not in the rendered state, so it must be kept in extra
    assert steps[1]["extra"]["state_message_fields"] == [{"tool_call_id": "c1", "name": "calc"}]


def test_without_prompt_messages_the_leading_messages_form_the_first_state():
    steps = messages_to_steps(PROMPT + [{"role": "assistant", "content": "42"}])
    assert len(steps) == 1
    assert steps[0]["state"].startswith("system: Use tools.")
    assert steps[0]["action"] == "42"


def test_consecutive_assistant_turns_get_empty_state_and_trailing_messages_are_kept():
    completion = [
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b", "reasoning_content": "hmm"},
        {"role": "user", "content": "You won!"},
    ]
    steps = messages_to_steps(completion, PROMPT)
    assert steps[1]["state"] == ""
    assert steps[1]["extra"]["message_fields"] == {"reasoning_content": "hmm"}
    assert steps[1]["extra"]["trailing_messages"] == [{"role": "user", "content": "You won!"}]


def test_string_serialised_and_flat_tool_calls():
    as_string = json.dumps({"id": "c9", "function": {"name": "python", "arguments": '{"code": "1+1"}'}})
    flat = {"id": "c2", "name": "search", "arguments": {"q": "utsuro bune"}}
    steps = messages_to_steps([{"role": "assistant", "content": "", "tool_calls": [as_string, flat]}], PROMPT)
    assert steps[0]["action"] == '[tool_call] python({"code": "1+1"})\n[tool_call] search({"q":"utsuro bune"})'
    assert steps[0]["extra"]["tool_calls"][0]["id"] == "c9"  # decoded, not JSON text


def test_content_parts_render_text_and_placeholders():
    parts = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}]
    assert content_text(parts) == "look\n[image_url]"
    assert content_text(None) == ""


def test_no_assistant_message_gives_no_steps():
    assert messages_to_steps([{"role": "user", "content": "hi"}]) == []


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([{"content": "no role"}], "completion[0].role"),
        (["just text"], "completion[0]"),
        (
            [{"role": "assistant", "tool_calls": [{"id": "x", "function": {"arguments": "{}"}}]}],
            "completion[0].tool_calls[0].function.name",
        ),
        ([{"role": "assistant", "tool_calls": "calc()"}], "completion[0].tool_calls"),
    ],
)
def test_malformed_messages_name_the_field(messages, field):
    with pytest.raises(MessageFormatError) as caught:
        messages_to_steps(messages, PROMPT, field_prefix="completion")
    assert caught.value.field == field


def test_parse_tool_call_rejects_non_json_string():
    with pytest.raises(MessageFormatError):
        parse_tool_call("calc(1)", "x")
