"""The prompt key that pairs groups across runs: the task's text, stripped of chat wrapping, whitespace-folded.

Trainers log one prompt in several shapes: plain text, a JSON list of chat messages (verifiers),
messages rendered as ``role: text`` blocks (this project's adapters for OpenAI-style files, TRL,
Inspect), or the string a chat template produced (verl's decoded ``input``: ChatML, Llama 3, Llama 2 /
Mistral ``[INST]``, Gemma, Phi-3 / Zephyr, DeepSeek). Two runs of one task set must pair whatever
their logging, and whatever system prompt they used, so :func:`normalise_prompt`:

1. reads the prompt as a list of ``(role, text)`` turns when it is one of those shapes;
2. keeps the text of the user turns (all turns when there is no user turn): system prompts,
   template markup, begin/end-of-sequence tokens and the empty assistant turn a generation prompt
   ends with do not take part;
3. folds every run of whitespace into one space and strips both ends. Case and punctuation count.

:func:`prompt_key` is the first 16 hex digits of the SHA-1 of that text. A prompt that is missing or
empty after normalising has no key and pairs with nothing.
"""

from __future__ import annotations

import hashlib
import json
import re

from core.ingest.messages import content_text

USER_ROLES = frozenset({"user", "human"})

# One alternation per template family; each match opens a turn, the named group gives its role.
_TURN_MARKERS = re.compile(
    r"<\|im_start\|>\s*(?P<chatml>[A-Za-z_]+)[^\S\n]*\n?"  # ChatML (Qwen, many others)
    r"|<\|start_header_id\|>(?P<llama3>[A-Za-z_]+)<\|end_header_id\|>"  # Llama 3
    r"|<start_of_turn>(?P<gemma>[A-Za-z_]+)[^\S\n]*\n?"  # Gemma
    r"|<\|(?P<phi>system|user|assistant)\|>"  # Phi-3, Zephyr, TinyLlama
    r"|<｜(?P<deepseek>User|Assistant)｜>"  # DeepSeek V3 / R1 (full-width bars)
    r"|(?P<inst_open>\[INST\])|(?P<inst_close>\[/INST\])"  # Llama 2, Mistral
    r"|(?P<sys_open><<SYS>>)|(?P<sys_close><</SYS>>)"  # Llama 2's system block inside [INST]
)
# Tokens that only delimit sequences or turns: removed wherever they appear.
_SEQUENCE_TOKENS = re.compile(
    r"<\|im_end\|>|<\|eot_id\|>|<\|begin_of_text\|>|<\|end_of_text\|>|<end_of_turn>|<\|end\|>|<\|endoftext\|>"
    r"|<｜begin▁of▁sentence｜>|<｜end▁of▁sentence｜>|<bos>|<eos>|<s>|</s>"
)
_ROLE_OF_GROUP = {"inst_open": "user", "inst_close": "assistant", "sys_open": "system", "sys_close": "user"}
# ``role: text`` blocks as core.ingest.messages.render_message writes them (tool results: ``tool (name): ``).
_RENDERED_TURN = re.compile(r"(?:^|\n\n)(system|developer|user|assistant|tool)(?: \([^)\n]*\))?: ")


def _json_turns(text: str) -> list[tuple[str, str]] | None:
    """Turns of a JSON list of ``{role, content}`` messages (or ``{"messages": [...]}``); None otherwise."""
    if not text.lstrip().startswith(("[", "{")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict):
        value = value.get("messages")
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value):
        return None
    return [(m["role"].lower(), content_text(m.get("content"))) for m in value]


def _template_turns(text: str) -> list[tuple[str, str]] | None:
    """Turns of a chat-template string; None when it carries no turn markers."""
    markers = list(_TURN_MARKERS.finditer(text))
    if not markers:
        return None
    turns = [("preamble", text[: markers[0].start()])]  # DeepSeek writes its system prompt here
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        group = marker.lastgroup or ""
        role = _ROLE_OF_GROUP.get(group) or (marker.group(group) or "").lower()
        turns.append((role, text[marker.end() : following.start() if following else len(text)]))
    return turns


def _rendered_turns(text: str) -> list[tuple[str, str]] | None:
    """Turns of messages rendered as ``role: text`` blocks separated by blank lines; None otherwise."""
    markers = list(_RENDERED_TURN.finditer(text))
    if not markers or markers[0].start() != 0:
        return None
    ends = [m.start() for m in markers[1:]] + [len(text)]
    return [(m.group(1), text[m.end() : end]) for m, end in zip(markers, ends, strict=True)]


_MARKUP = re.compile(r"[<\[{｜]|^(?:system|developer|user|assistant|tool)\b")
"""What any wrapping starts with; a prompt without it is plain text (most are: the fast path)."""


def normalise_prompt(prompt: str | None) -> str:
    """The text that identifies a prompt's task (see the module docstring); "" when there is none."""
    if prompt is None or not isinstance(prompt, str):
        return ""
    if _MARKUP.search(prompt) is None:
        return " ".join(prompt.split())
    turns = _json_turns(prompt) or _template_turns(prompt) or _rendered_turns(prompt)
    if turns is not None:
        texts = [_SEQUENCE_TOKENS.sub(" ", body) for _, body in turns]
        user = [t for (role, _), t in zip(turns, texts, strict=True) if role in USER_ROLES and t.strip()]
        text = " ".join(user or texts)
    else:
        text = _SEQUENCE_TOKENS.sub(" ", prompt)
    return " ".join(text.split())


def prompt_key(prompt: str | None) -> str | None:
    """16 hex digits of SHA-1 over :func:`normalise_prompt`; None for a missing or empty prompt."""
    return key_and_text(prompt)[0]


def key_and_text(prompt: str | None) -> tuple[str | None, str]:
    """:func:`prompt_key` and :func:`normalise_prompt` of one prompt, normalising it once."""
    text = normalise_prompt(prompt)
    return (hashlib.sha1(text.encode("utf-8")).hexdigest()[:16] if text else None), text
