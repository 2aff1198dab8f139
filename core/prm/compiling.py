"""When and how a scorer runs its networks under ``torch.compile``, and how it falls back.

Compiling fuses the elementwise work between matmuls (RMSNorm, rotary embeddings, SiLU·mul): on an
H100 a 1.5B PRM went from 31 % to 42 % of bf16 peak, after about 110 s of compilation
(bench/RESULTS.md). So it is a policy, not a default: ``"auto"`` compiles only on a GPU and only for
jobs large enough to repay the compilation. Compilation is an optimisation, so a failure (no Triton,
an unsupported GPU, a graph the compiler rejects) falls back to eager scoring instead of failing a job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

CompileMode = Literal["auto", "on", "off"]
COMPILE_MODES: tuple[CompileMode, ...] = ("auto", "on", "off")

AUTO_COMPILE_MIN_TOKENS = 50_000_000
"""From this many tokens in one job, ``compile="auto"`` compiles on a GPU. Measured on an H100 with a 1.5B
PRM: compiling costs ~110 s and saves ~2.3 µs per token, so it repays itself from ~47M tokens (earlier for
larger models, whose tokens cost more)."""

CompileBackend = str | Callable[..., Any]


def compile_mode(value: CompileMode | bool) -> CompileMode:
    """Normalise a compile setting: True → ``"on"``, False → ``"off"``; anything unknown is refused.

    Raises:
        ValueError: Not a bool and not one of :data:`COMPILE_MODES`.
    """
    if isinstance(value, bool):
        return "on" if value else "off"
    if value not in COMPILE_MODES:
        raise ValueError(f"compile must be 'auto', 'on' or 'off', got {value!r}")
    return value


def compile_networks(networks: Iterable[Any], backend: CompileBackend) -> None:
    """Compile each network's base model in place; heads stay eager (one small matmul at a few rows).

    ``dynamic=True`` because every batch has another shape: one graph with symbolic sizes instead of
    a recompilation per (batch size, width).
    """
    for network in networks:
        getattr(network, "base_model", network).compile(dynamic=True, backend=backend)


def uncompile_networks(networks: Iterable[Any]) -> None:
    """Undo :func:`compile_networks`: ``nn.Module.compile`` keeps the compiled callable in one attribute."""
    for network in networks:
        getattr(network, "base_model", network)._compiled_call_impl = None


def describe_failure(exc: BaseException) -> str:
    """One line naming a compilation failure and its root cause (TorchDynamo wraps the compiler's error)."""
    root = exc
    while (inner := getattr(root, "inner_exception", None) or root.__cause__) is not None:
        root = inner

    def first_line(error: BaseException) -> str:
        return next((line.strip() for line in str(error).splitlines() if line.strip()), "")[:300]

    text = f"{type(exc).__name__}: {first_line(exc)}"
    return text if root is exc else f"{text} {type(root).__name__}: {first_line(root)}"
