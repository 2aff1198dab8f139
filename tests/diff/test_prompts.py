"""The prompt key: chat wrapping, system prompts and whitespace do not count; the task's text does."""

from __future__ import annotations

import json

import pytest

from core.diff import normalise_prompt, prompt_key

TASK = "What is 2+2?"
WRAPPED = {
    "plain, extra whitespace": "  What   is\n2+2? \n",
    "ChatML with system prompt": (
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "Llama 3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "Llama 2 with <<SYS>>": "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2+2? [/INST]",
    "Mistral": "<s>[INST] What is 2+2? [/INST]",
    "Gemma": "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "Phi-3": "<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n",
    "Zephyr": "<|system|>\nBe nice.</s>\n<|user|>\nWhat is 2+2?</s>\n<|assistant|>\n",
    "DeepSeek R1": "<｜begin▁of▁sentence｜>You are a math expert.<｜User｜>What is 2+2?<｜Assistant｜><think>\n",
    "JSON messages, text parts": json.dumps(
        [{"role": "system", "content": "x"}, {"role": "user", "content": [{"type": "text", "text": TASK}]}]
    ),
    "JSON object with messages": json.dumps({"messages": [{"role": "user", "content": TASK}]}),
    "rendered role blocks": "system: Be brief.\n\nuser: What is 2+2?",
}


@pytest.mark.parametrize("name", list(WRAPPED))
def test_every_wrapping_of_one_task_gets_one_key(name: str) -> None:
    assert normalise_prompt(WRAPPED[name]) == TASK
    assert prompt_key(WRAPPED[name]) == prompt_key(TASK)


def test_the_task_text_still_counts() -> None:
    keys = {prompt_key(p) for p in (TASK, "What is 2+3?", "what is 2+2?", "What is 2+2")}
    assert len(keys) == 4  # a different number, case or punctuation is a different prompt
    chatml = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    assert prompt_key(chatml) != prompt_key(TASK)


def test_several_user_turns_all_count_and_a_turnless_template_keeps_its_text() -> None:
    two = json.dumps([{"role": "user", "content": "Solve:"}, {"role": "assistant", "content": "ok"},
                      {"role": "user", "content": "2+2"}])  # fmt: skip
    assert normalise_prompt(two) == "Solve: 2+2"
    assert normalise_prompt("<|im_start|>system\nonly a system prompt<|im_end|>") == "only a system prompt"
    assert normalise_prompt("<s>" + TASK + "</s>") == TASK  # sequence tokens alone are dropped


@pytest.mark.parametrize("prompt", [None, "", "   \n", "<|im_start|>user\n<|im_end|>", "<s></s>"])
def test_no_prompt_has_no_key(prompt: str | None) -> None:
    assert prompt_key(prompt) is None


def test_json_that_is_not_messages_is_plain_text() -> None:
    assert normalise_prompt('{"question": "2+2"}') == '{"question": "2+2"}'
    assert normalise_prompt("[1, 2, 3]") == "[1, 2, 3]"
