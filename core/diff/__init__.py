"""Diff two runs, or two iteration ranges of one run, prompt by prompt.

Groups are paired by a normalised prompt key (:mod:`core.diff.prompts`: chat wrapping, system prompts
and whitespace do not count). :func:`sides` builds what every view aggregates; the queries themselves
(:mod:`core.store.diff_queries`) return the per-prompt table, the summary and histograms::

    from core.diff import Side, sides
    from core.store import diff_queries as dq

    both = sides(store, Side("grpo-run"), Side("gigpo-run"), scheme="grpo")
    table, matching = dq.pairs(store, both, prompt_keys(store), show="flipped")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.diff.pairing import (
        ENGINE_MAX_STEPS,
        Side,
        check_side,
        credit_for,
        describe_side,
        format_range,
        parse_range,
        prompt_keys,
        sides,
    )
    from core.diff.prompts import normalise_prompt, prompt_key
    from core.diff.rollouts import aligned_steps, best_and_worst

_HOME = {
    **dict.fromkeys(
        ("ENGINE_MAX_STEPS", "Side", "check_side", "credit_for", "describe_side", "format_range", "parse_range",
         "prompt_keys", "sides"),
        "core.diff.pairing",
    ),
    "normalise_prompt": "core.diff.prompts",
    "prompt_key": "core.diff.prompts",
    "aligned_steps": "core.diff.rollouts",
    "best_and_worst": "core.diff.rollouts",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    # Loaded on first use: `creditscope --help` and `creditscope ingest` register the diff subcommand through
    # core.diff.cli, and must not pay for pandas and the credit engine that pairing imports.
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENGINE_MAX_STEPS",
    "Side",
    "aligned_steps",
    "best_and_worst",
    "check_side",
    "credit_for",
    "describe_side",
    "format_range",
    "normalise_prompt",
    "parse_range",
    "prompt_key",
    "prompt_keys",
    "sides",
]
