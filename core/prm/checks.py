"""Refusals before and right after a PRM loads: what does not fit is named in one line, and nothing is scored.

A PRM that does not fit its checkpoint would otherwise score with newly initialised weights and its
scores would become ``steps.prm`` (issue 11 item 2). Every check here raises :class:`PrmRefused`, a
:class:`~core.errors.CreditscopeError` (one line, exit status 2 on the CLI, ``st.error`` on the page)
that is also a ``ValueError`` for callers that caught the plain error before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.errors import CreditscopeError
from core.prm.types import FormatSettings, ScorerSpec, Trajectory

_SHOWN_KEYS = 3
PROBE = Trajectory("What is 12 + 30?", ("12 + 30 = 42", "The answer is 42."))
"""A tiny trajectory every family must be able to encode with the checkpoint's tokenizer."""


class PrmRefused(CreditscopeError, ValueError):
    """A PRM request that cannot be honoured; the message says what is missing or wrong, in one line."""


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (library errors often span many lines)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def check_positive(what: str, value: int | None) -> None:
    """Refuse a token budget or limit of zero or less (``None`` means the default and passes)."""
    if value is not None and value <= 0:
        raise PrmRefused(f"{what} must be a positive number of tokens, got {value}")


def check_settings(settings: FormatSettings) -> None:
    """Refuse formatter settings that would be silently ignored or break every input (``--max-length 0``)."""
    check_positive("--max-length", settings.max_length)


def check_device(device: str) -> None:
    """Refuse ``--device cuda`` (or ``cuda:N``) when torch sees no CUDA device, before anything loads."""
    if not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        built = "a CPU-only build of torch" if torch.version.cuda is None else "no visible CUDA device"
        raise PrmRefused(f"--device {device}: CUDA is not available here ({built}); use --device cpu or auto")
    index = device.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        raise PrmRefused(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def _describe_keys(keys: Iterable[str]) -> str:
    names = sorted(keys)
    shown = ", ".join(names[:_SHOWN_KEYS])
    return shown + (f" (+{len(names) - _SHOWN_KEYS} more)" if len(names) > _SHOWN_KEYS else "")


def check_loading_info(model: str, family: str, network: Any, info: dict[str, Any], *, allow_random_init: bool) -> None:
    """Refuse a checkpoint whose weights do not cover the network the family needs.

    ``from_pretrained`` fills weights it cannot find in the checkpoint with fresh random values
    (``missing_keys``) and does the same for tensors whose shape differs (``mismatched_keys``); both
    mean the scores would come from an untrained network: a bert config beside llama weights, or a
    token classifier loaded as the causal LM the ``shepherd`` family reads.

    Args:
        model: The checkpoint, for the message.
        family: The PRM family, for the message.
        network: The loaded network (its class is named in the message).
        info: ``from_pretrained(..., output_loading_info=True)``'s second value.
        allow_random_init: Benchmarks only: accept the random weights.
    """
    missing = set(info.get("missing_keys") or ())
    mismatched = {str(e[0]) if isinstance(e, tuple) else str(e) for e in info.get("mismatched_keys") or ()}
    if allow_random_init or not (missing or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} weights missing from the checkpoint ({_describe_keys(missing)})")
    if mismatched:
        parts.append(f"{len(mismatched)} with a different shape ({_describe_keys(mismatched)})")
    raise PrmRefused(
        f"{model} does not fit the {family} family as {type(network).__name__}: {'; '.join(parts)} would be "
        "randomly initialised, so its scores would mean nothing (check the config against the weights and the "
        "family; --allow-random-init is for benchmarks only)"
    )


def check_tokenizer_fits(spec: ScorerSpec, scorer: Any) -> None:
    """Encode a probe trajectory in the family's format and check the ids fit the model's vocabulary.

    Catches a family whose markers the tokenizer cannot express (no chat template for ``qwen`` or
    ``rlhflow``, a ``+``/``-`` token that encodes to nothing) and a tokenizer that emits ids beyond
    the embedding table (a tokenizer from another model), before a whole run goes through it.

    Args:
        spec: The scorer's identity (family and model, for the message).
        scorer: A constructed :class:`core.prm.scorer.Scorer`.
    """
    where = f"the {spec.family} family does not fit {spec.model}'s tokenizer"
    try:
        sequences = scorer.encode([PROBE])
    except (ValueError, KeyError, TypeError) as exc:
        raise PrmRefused(f"{where}: {one_line(exc)}") from exc
    reads = sorted(read.step for seq in sequences for read in seq.reads)
    if reads != list(range(len(PROBE.steps))):
        raise PrmRefused(f"{where}: the probe's {len(PROBE.steps)} steps gave score positions for steps {reads}")
    embeddings = scorer.model.get_input_embeddings() if hasattr(scorer.model, "get_input_embeddings") else None
    rows = getattr(getattr(embeddings, "weight", None), "shape", (None,))[0]
    largest = max((max(seq.input_ids) for seq in sequences if seq.input_ids), default=-1)
    if rows is not None and largest >= rows:
        raise PrmRefused(f"{where}: it produces token id {largest}, beyond the model's {rows}-row embedding table")
