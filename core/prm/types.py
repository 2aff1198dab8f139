"""Plain data types shared by the PRM scorers, the score cache and ``rescore``.

Nothing here imports torch or transformers, so the dashboard and the store can use these types
without paying for a model stack.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

FAMILIES: tuple[str, ...] = ("qwen", "token-cls", "shepherd", "rlhflow", "seqcls", "implicit", "judge")
"""PRM families a scorer can be built for (see ``core/prm/formats.py`` for each input recipe)."""

ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)``: called after each batch with the number of steps scored so far (summed over
workers when several score in parallel), so callers can show steps/s and an ETA."""


@dataclass(frozen=True)
class Trajectory:
    """What a PRM sees of one rollout: the problem and the solution split into steps.

    Attributes:
        prompt: The problem / task text.
        steps: Step texts in order (one per canonical step row, from the ``action`` column).
    """

    prompt: str
    steps: tuple[str, ...]


@dataclass
class TrajectoryScores:
    """Per-step PRM scores of one trajectory, with an explicit truncation record.

    Attributes:
        scores: One score per step; NaN where the step lies past the model's max length.
        truncated: One flag per step, True where the step could not be scored because of the cut.
        n_tokens: Token count of the full formatted input (before truncation).
    """

    scores: list[float]
    truncated: list[bool]
    n_tokens: int

    @property
    def was_truncated(self) -> bool:
        """Whether any step of the trajectory fell past the cut."""
        return any(self.truncated)


@dataclass(frozen=True)
class FormatSettings:
    r"""Formatter settings that change what the model sees, hence part of the scorer's identity.

    Attributes:
        separator: Step separator for ``token-cls`` (TRL default ``"\\n"``) and the step joiner for ``seqcls``
            and ``implicit``.
        step_tag: Step tag for ``shepherd`` (Math-Shepherd's ``"ки"``) and the separator token of ``qwen``
            (``"<extra_0>"``); None picks the family default.
        good_token: Token read as "step is good" by the causal-LM families (``"+"``).
        bad_token: Token read as "step is bad" (``"-"``).
        system_prompt: System message for ``qwen`` (the model card's default when None).
        beta: Implicit-PRM coefficient β in β·log(π/π_ref) (EurusPRM card: 0.001).
        max_length: Token limit; None uses the model's ``max_position_embeddings`` (or the tokenizer's limit).
        judge_template: ``judge`` only: the question put to the judge, with the placeholders ``{problem}``,
            ``{steps}`` (steps 1..k as ``Step i: text`` lines), ``{step}`` (step k's text) and ``{k}`` (1-based).
            None picks :data:`JUDGE_TEMPLATE`.
        judge_prefill: ``judge`` only: text the judge's answer turn starts with before the Yes/No token (same
            placeholders; e.g. an empty think block for reasoning judges). None means ``""``.
        yes_token: ``judge`` only: the answer read as "step is correct" (must be one token; None = ``"Yes"``).
        no_token: ``judge`` only: the answer read as "step is wrong" (one token; None = ``"No"``).
    """

    separator: str = "\n"
    step_tag: str | None = None
    good_token: str = "+"
    bad_token: str = "-"
    system_prompt: str | None = None
    beta: float = 0.001
    max_length: int | None = None
    judge_template: str | None = None
    judge_prefill: str | None = None
    yes_token: str | None = None
    no_token: str | None = None


JUDGE_TEMPLATE = "{problem}\n\n{steps}\n\nIs step {k} correct? Answer Yes or No."
"""The ``judge`` family's default question (GenRM-style direct verification of step k)."""

JUDGE_FIELDS: tuple[str, ...] = ("judge_template", "judge_prefill", "yes_token", "no_token")
"""Settings only the ``judge`` family reads. Left out of a scorer's identity while unset, so adding them did
not change the ``scorer_id`` (and the cached scores) of any scorer of another family."""


@dataclass(frozen=True)
class ScorerSpec:
    """Everything that determines a scorer's output, hashed into its ``scorer_id`` (see there).

    Attributes:
        family: One of :data:`FAMILIES`.
        model: Hub id, or the local folder's absolute path (kept for display and reloading; a local
            folder's identity is its fingerprint).
        fingerprint: Hub commit sha, or a hash of the local folder's weight and tokenizer files.
        settings: Formatter settings.
        ref_model: Reference model (``implicit`` only), like ``model``.
        ref_fingerprint: Fingerprint of the reference model.
    """

    family: str
    model: str
    fingerprint: str
    settings: FormatSettings = field(default_factory=FormatSettings)
    ref_model: str | None = None
    ref_fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict (stored in ``prm_scorers.spec``)."""
        return asdict(self)

    @property
    def scorer_id(self) -> str:
        """A short stable id: the family plus a hash of the canonical JSON of the spec.

        A local folder is identified by its content fingerprint alone, not by how its path was
        written: ``./models/prm``, its absolute path and a copy elsewhere share one cache. A hub id
        stays in the hash, since its fingerprint is only a commit sha.
        """
        identity = self.to_json()
        for name in JUDGE_FIELDS:
            if identity["settings"][name] is None:
                del identity["settings"][name]
        if self.fingerprint.startswith("local:"):
            identity["model"] = None
        if self.ref_fingerprint and self.ref_fingerprint.startswith("local:"):
            identity["ref_model"] = None
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return f"{self.family}:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def step_content_hashes(trajectory: Trajectory, *, prefix_only: bool = True) -> list[str]:
    """Cache keys of each step: a hash of the prompt and the step texts the score can depend on.

    For causal models a step's score depends only on the prompt and the steps up to and including it,
    so editing step k leaves the keys of steps before k unchanged and only those steps hit the model
    again. Bidirectional encoders also see later steps, so for them every key covers the whole
    trajectory (``prefix_only=False``).

    Args:
        trajectory: The rollout.
        prefix_only: Whether the model is causal (keys cover prefixes) or not (keys cover everything).

    Returns:
        One hex digest per step.
    """
    hasher = hashlib.sha256()
    hasher.update(_length_prefixed(trajectory.prompt))
    prefix_digests = []
    for step in trajectory.steps:
        # Length-prefixing keeps ("ab", "c") and ("a", "bc") apart; copying the running hasher makes
        # the whole list linear in the text size instead of quadratic.
        hasher.update(_length_prefixed(step))
        prefix_digests.append(hasher.copy().hexdigest())
    if prefix_only:
        return prefix_digests
    whole = prefix_digests[-1] if prefix_digests else hasher.hexdigest()
    return [hashlib.sha256(f"{whole}:{k}".encode()).hexdigest() for k in range(len(trajectory.steps))]


def _length_prefixed(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(8, "little") + data


def nan_to_none(value: float) -> float | None:
    """NaN → None, so a missing score is stored as SQL NULL rather than a NaN that sorts oddly."""
    return None if value is None or math.isnan(value) else float(value)


def as_trajectories(prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[Trajectory]:
    """Zip prompts and step lists into :class:`Trajectory` objects."""
    return [Trajectory(prompt=p, steps=tuple(s)) for p, s in zip(prompts, steps, strict=True)]
