"""Turns Inspect AI ``Score`` values into numbers and picks the scorer that gives a sample's outcome.

Inspect scorers return letter grades, booleans, numbers, strings, lists or dicts. The mapping used
here (documented in FORMATS.md) follows Inspect's own grade letters:

- ``"C"`` (correct) -> 1.0, ``"P"`` (partial) -> 0.5, ``"I"`` (incorrect) -> 0.0, ``"N"`` (no answer) -> 0.0;
- booleans -> 1.0 / 0.0; ``"yes"``/``"true"``/``"correct"`` -> 1.0, ``"no"``/``"false"``/``"incorrect"`` -> 0.0
  (case-insensitive); numeric strings -> their value; other numbers as they are (NaN/inf are errors);
- a list or dict -> the mean of the entries that map to a number (dict entries are also kept one by
  one as ``scorer.key`` components); anything else -> no number (the raw value is still kept).
"""

from __future__ import annotations

import math
from typing import Any

from core.errors import IngestError

_GRADE_VALUES: dict[str, float] = {
    "C": 1.0,
    "P": 0.5,
    "I": 0.0,
    "N": 0.0,
}
_WORD_VALUES: dict[str, float] = {
    "yes": 1.0,
    "true": 1.0,
    "correct": 1.0,
    "no": 0.0,
    "false": 0.0,
    "incorrect": 0.0,
}


def score_value_to_number(value: Any, path: str, record: str, field: str) -> float | None:
    """Map one Inspect score value to a number (see the module docstring), or None when it has none.

    Raises:
        IngestError: The value is a NaN or infinite number.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise IngestError(path, f"score must be finite, got {value!r}", record, field)
        return number
    if isinstance(value, str):
        stripped = value.strip()
        if stripped in _GRADE_VALUES:
            return _GRADE_VALUES[stripped]
        if stripped.lower() in _WORD_VALUES:
            return _WORD_VALUES[stripped.lower()]
        try:
            number = float(stripped)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        numbers = [
            number
            for key, item in items
            if not isinstance(item, dict | list)
            and (number := score_value_to_number(item, path, record, f"{field}.{key}")) is not None
        ]
        return sum(numbers) / len(numbers) if numbers else None
    return None


def score_components(scores: dict[str, Any], path: str, record: str) -> dict[str, float | None]:
    """Return one number (or None) per scorer, plus ``scorer.key`` entries for dict-valued scores."""
    components: dict[str, float | None] = {}
    for scorer, score in scores.items():
        value = score.get("value") if isinstance(score, dict) else score
        field = f"scores.{scorer}.value"
        components[scorer] = score_value_to_number(value, path, record, field)
        if isinstance(value, dict):
            for key, item in value.items():
                components[f"{scorer}.{key}"] = score_value_to_number(item, path, record, f"{field}.{key}")
    return components


def choose_outcome_scorer(
    scores: dict[str, Any], header_scorers: list[str], requested: str | None, path: str, record: str
) -> str | None:
    """Pick the scorer whose value is the outcome.

    Args:
        scores: The sample's ``scores`` dict.
        header_scorers: Scorer names in the order the log header lists them.
        requested: ``options.extra["scorer"]``, or None for the default.
        path: Source file, for errors.
        record: Sample locator, for errors.

    Returns:
        The requested scorer; else the first header scorer the sample has; else the sample's first
        scorer; None when the sample has no scores at all.

    Raises:
        IngestError: A requested scorer is missing from a scored sample.
    """
    if not scores:
        return None
    if requested is not None:
        if requested not in scores:
            available = ", ".join(scores)
            raise IngestError(path, f"scorer {requested!r} not in this sample (has: {available})", record, "scores")
        return requested
    for name in header_scorers:
        if name in scores:
            return name
    return next(iter(scores))
