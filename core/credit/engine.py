"""``compute``: validate, sort, run one scheme and return advantages in the caller's row order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.credit.prepared import PreparedSteps, prepare
from core.credit.registry import SCHEMES
from core.credit.spec import InvalidParameter, SchemeSpec


@dataclass
class CreditInfo:
    """What a computation did besides producing numbers.

    Attributes:
        scheme: Scheme name.
        params: Every parameter value used (defaults filled in).
        confidence: The spec's confidence rating of the scheme (H, M, L).
        notes: Messages for the user, e.g. "derived prefix tree ..." or where rewards came from.
    """

    scheme: str
    params: dict[str, Any]
    confidence: str
    notes: list[str] = field(default_factory=list)


def get_scheme(name: str) -> SchemeSpec:
    """Look up a scheme by name, raising :class:`InvalidParameter` listing the known names."""
    if name not in SCHEMES:
        raise InvalidParameter(f"unknown credit scheme {name!r}; known: {', '.join(SCHEMES)}")
    return SCHEMES[name]


def compute_with_info(steps: pd.DataFrame | PreparedSteps, scheme: str, **params: Any) -> tuple[np.ndarray, CreditInfo]:
    """Compute one scheme's per-step credit and report how it was obtained.

    Args:
        steps: Canonical step frame (any row order; many runs, iterations and groups), or the result of
            :func:`core.credit.prepare` to share sorting and tree building across schemes.
        scheme: A key of :data:`core.credit.SCHEMES`.
        **params: Scheme parameters; omitted ones take their defaults.

    Returns:
        ``(advantages, info)``: float64 array aligned with the rows of ``steps``, and a
        :class:`CreditInfo` with the parameters used and notes such as "derived prefix tree".

    Raises:
        InvalidParameter: Unknown scheme, unknown parameter or a bad value.
        MissingInput: A column the scheme needs is absent; the message says how to get it.
    """
    spec = get_scheme(scheme)
    resolved = spec.resolve(params)
    prep = prepare(steps)
    info = CreditInfo(scheme=scheme, params=resolved, confidence=spec.confidence)
    if prep.n == 0:
        return np.zeros(0), info
    sorted_result = spec.run(prep, info.notes, resolved)
    info.notes[:] = list(dict.fromkeys(info.notes))  # the same note can come from several helpers
    return prep.to_caller_order(np.asarray(sorted_result, dtype=np.float64)), info


def compute(steps: pd.DataFrame | PreparedSteps, scheme: str, **params: Any) -> np.ndarray:
    """Per-step credit (advantage) of ``scheme``, aligned with the rows of ``steps``.

    Example:
        ``adv = compute(steps, "gigpo", gamma=0.95, omega=1.0, mode="mean_norm")``

    Args:
        steps: Canonical step frame or prepared steps (see :func:`compute_with_info`).
        scheme: A key of :data:`core.credit.SCHEMES`.
        **params: Scheme parameters.

    Returns:
        float64 array, one value per row of ``steps``, independent of the row order.
    """
    return compute_with_info(steps, scheme, **params)[0]
