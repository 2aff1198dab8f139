"""Typed descriptions of schemes and their parameters, and parameter validation.

The dashboard builds its widgets from these descriptions, so each parameter carries its type,
default, range or choices and a help text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.credit.prepared import PreparedSteps
from core.errors import CreditscopeError

SchemeFunction = Callable[..., np.ndarray]
"""``f(prep, notes, **params) -> advantages in prep's sorted row order``."""


class InvalidParameter(CreditscopeError, ValueError):
    """An unknown scheme, an unknown parameter name, or a value of the wrong type or out of range."""


@dataclass(frozen=True)
class ParamSpec:
    """One tunable parameter of a scheme.

    Attributes:
        name: Keyword accepted by ``compute``.
        type: ``float``, ``int``, ``bool`` or ``str``.
        default: Value used when the caller does not pass one.
        help: What the parameter does (and where the default comes from).
        choices: Allowed values for string parameters.
        low: Smallest allowed value (inclusive) for numbers, or None.
        high: Largest allowed value (inclusive) for numbers, or None.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None

    def check(self, scheme: str, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`InvalidParameter`."""
        where = f"{scheme}: parameter '{self.name}'"
        if self.type is bool:
            if not isinstance(value, bool | np.bool_):
                raise InvalidParameter(f"{where} must be True or False, got {value!r}")
            return bool(value)
        if self.type is str:
            if self.choices is not None and value not in self.choices:
                raise InvalidParameter(f"{where} must be one of {', '.join(self.choices)}; got {value!r}")
            return str(value)
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise InvalidParameter(f"{where} must be a number, got {value!r}")
        if self.type is int and float(value) != int(value):
            raise InvalidParameter(f"{where} must be an integer, got {value!r}")
        number = self.type(value)
        if not np.isfinite(number):
            raise InvalidParameter(f"{where} must be finite, got {value!r}")
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise InvalidParameter(f"{where} must lie in [{self.low}, {self.high}], got {value!r}")
        return number


@dataclass(frozen=True)
class SchemeSpec:
    """Everything the engine and the dashboard need to know about one scheme.

    Attributes:
        name: Registry key, part of the public contract.
        title: Human-readable name.
        citation: One-line reference (paper and, where read, the official function).
        confidence: ``"H"``, ``"M"`` or ``"L"`` as rated in the spec (L = reconstructed from the abstract).
        required: Columns beyond the key columns that must be present and non-empty.
        optional: Columns used when present.
        params: Tunable parameters, in display order.
        function: The implementation.
        description: What the scheme computes, including code-vs-paper choices.
        score_kind: ``"advantage"`` (signed, 0 = neutral) or ``"probability"`` (in [0, 1], 0.5 = neutral).
    """

    name: str
    title: str
    citation: str
    confidence: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    params: tuple[ParamSpec, ...]
    function: SchemeFunction
    description: str
    score_kind: str = "advantage"
    score_kind_for: Callable[[dict[str, Any]], str] | None = None
    """When the kind depends on parameters (``prm`` with ``dense="score"`` returns probabilities)."""

    @property
    def default_threshold(self) -> float:
        """Threshold below which a step counts as predicted bad (used by the first-error F1)."""
        return 0.5 if self.score_kind == "probability" else 0.0

    def threshold_for(self, params: dict[str, Any] | None = None) -> float:
        """First-error threshold for these parameters: 0.5 for probabilities, 0 for signed advantages."""
        if self.score_kind_for is None:
            return self.default_threshold
        return 0.5 if self.score_kind_for(self.resolve(dict(params or {}))) == "probability" else 0.0

    def defaults(self) -> dict[str, Any]:
        """Default value of every parameter."""
        return {p.name: p.default for p in self.params}

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """Merge ``given`` into the defaults after validating names, types and ranges.

        Raises:
            InvalidParameter: An unknown name or a bad value; the message lists the valid names.
        """
        by_name = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(by_name))
        if unknown:
            valid = ", ".join(by_name) or "none"
            raise InvalidParameter(f"{self.name}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}")
        resolved = self.defaults()
        for name, value in given.items():
            resolved[name] = by_name[name].check(self.name, value)
        return resolved

    def run(self, prep: PreparedSteps, notes: list[str], params: dict[str, Any]) -> np.ndarray:
        """Check required columns and run the scheme on sorted rows."""
        for column in self.required:
            prep.require(column, self.name)
        return self.function(prep, notes, **params)


def gamma_param(default: float, help_text: str) -> ParamSpec:
    """The discount factor parameter most schemes share."""
    return ParamSpec("gamma", float, default, help_text, low=0.0, high=1.0)
