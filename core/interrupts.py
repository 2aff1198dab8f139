"""Ctrl-C in a command: noticed whatever exception it ends up as, and reported with the shell's exit status.

DuckDB catches SIGINT during a statement, cancels it and raises its own error ("Query interrupted"); a rollback
after that may fail with yet another error, and Ray Data re-raises a Ctrl-C from its threads wrapped in its own.
A command therefore decides "the user stopped me" from a flag its SIGINT handler sets, and from the exception's
chain when the handler could not be installed (not the main thread) or was replaced.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

INTERRUPTED = 130
"""Exit status of a command stopped by Ctrl-C before it finished (the shell convention, 128 + SIGINT)."""


def caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` or anything in its cause/context chain is a Ctrl-C, DuckDB's cancellation included."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KeyboardInterrupt) or type(current).__name__ == "InterruptException":
            return True
        if isinstance(current, RuntimeError) and str(current).strip() == "Query interrupted":
            return True
        cause = getattr(current, "cause", None)  # Ray keeps the remote or thread error here
        current = cause if isinstance(cause, BaseException) else (current.__cause__ or current.__context__)
    return False


@contextmanager
def noting_ctrl_c() -> Iterator[list[bool]]:
    """Note a Ctrl-C in ``seen[0]`` (then interrupt as usual): DuckDB may report it as an error of its own."""
    seen = [False]
    previous = signal.getsignal(signal.SIGINT)

    def note(signum: int, frame: object) -> None:
        seen[0] = True
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, note)
    except ValueError:  # not the main thread (a test calling main() from a worker): keep Python's handler
        yield seen
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)
