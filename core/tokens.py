"""Per-token arrays of a step: what they are called, and the one check every reader and writer applies.

A step may carry the tokens of its action and, aligned with them index by index, per-token numbers
(see :data:`core.schema.TOKEN_COLUMNS`). Any subset may be present; those present must have one length,
token texts must be strings and numbers finite. The native readers, :class:`core.writer.RolloutWriter`
and any adapter that fills the fields call :func:`token_arrays`, so a bad array reads the same way
everywhere (``steps[3].token_logprobs[7]: expected a finite number, got NaN``).

No pandas or DuckDB here: the writer runs inside training loops and imports this module.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from core.schema import TOKEN_COLUMN_NAMES

TOKEN_TEXT = "tokens"
"""The array of token strings; every other token array holds numbers."""

TOKEN_NUMBERS: tuple[str, ...] = tuple(name for name in TOKEN_COLUMN_NAMES if name != TOKEN_TEXT)


class TokenArrayError(ValueError):
    """A token array of one step is malformed.

    Attributes:
        field: Dotted path of the offending value relative to the step, e.g. ``token_logprobs[7]``.
        problem: What is wrong, in words.
    """

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def _as_list(value: Any, name: str) -> list[Any]:
    """A JSON list, tuple, numpy array or tensor as a Python list."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()  # numpy arrays and torch tensors, as training loops hold them
    if not isinstance(value, list | tuple):
        raise TokenArrayError(name, f"expected a list, got {type(value).__name__}")
    return list(value)


def _finite(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        shown = "null" if value is None else f"{type(value).__name__} {value!r:.40}"
        raise TokenArrayError(field, f"expected a finite number, got {shown}")
    number = float(value)
    if not math.isfinite(number):
        raise TokenArrayError(field, f"expected a finite number, got {number}")
    return number


def token_arrays(step: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Validate the token arrays ``step`` carries and return them as plain lists (absent or null ones left out).

    Args:
        step: One step's fields (a native JSONL step object, a writer's step mapping, an adapter's dict).

    Returns:
        ``{name: list}`` for each of :data:`core.schema.TOKEN_COLUMN_NAMES` present and not null:
        token texts as ``str``, numbers as ``float``.

    Raises:
        TokenArrayError: Not a list, a token that is not a string, a number that is not finite (null,
            NaN, infinite, a string), or arrays of different lengths within the step.
    """
    found: dict[str, list[Any]] = {}
    for name in TOKEN_COLUMN_NAMES:
        raw = step.get(name)
        if raw is None:
            continue
        items = _as_list(raw, name)
        if name == TOKEN_TEXT:
            for index, token in enumerate(items):
                if not isinstance(token, str):
                    raise TokenArrayError(
                        f"{name}[{index}]",
                        f"expected the token's text, got {type(token).__name__} {token!r:.40} "
                        "(token ids belong under another key, e.g. token_ids, which goes to extra)",
                    )
        else:
            items = [_finite(item, f"{name}[{index}]") for index, item in enumerate(items)]
        found[name] = items
    names = list(found)
    for name in names[1:]:
        if len(found[name]) != len(found[names[0]]):
            raise TokenArrayError(
                name,
                f"has {len(found[name])} entries but {names[0]} has {len(found[names[0]])} "
                "(a step's token arrays are aligned index by index)",
            )
    return found
