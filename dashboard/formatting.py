"""Plain-text formatting of step facts for the Trajectory page (pure, testable)."""

from __future__ import annotations

import math


def _num(value: object, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


def step_facts(reward: object, label: object, valid: object, prm: object, credit: float | None, scheme: str) -> str:
    """One caption line: reward, label, validity, PRM score and the scheme's credit for a step."""
    valid_text = "–" if valid is None or valid is getattr(valid, "NA", object()) else str(valid)
    try:
        valid_text = "–" if valid != valid else valid_text  # pandas NA / NaN compare unequal to themselves
    except TypeError:
        valid_text = "–"
    return " · ".join(
        [
            f"reward {_num(reward, 'g')}",
            f"label {_num(label, 'g')}",
            f"valid {valid_text}",
            f"prm {_num(prm, '.3f')}",
            f"{scheme} {_num(credit, '+.3f')}",
        ]
    )
