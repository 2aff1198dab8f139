"""Splits one long single-response completion into reasoning steps.

Step-wise credit needs steps, but many trainers log a whole response as one string. The splitter is
chosen by the user (``--splitter``) and recorded in ``Rollouts.run_config["splitter"]`` so the same
split can be reproduced. Splitting never loses text except the separators themselves (blank lines,
line breaks, or what a ``regex:`` pattern matched) and surrounding whitespace of each step.

Splitters:

- ``"blank_lines"``: paragraphs separated by one or more blank lines.
- ``"step_k"``: at ``Step k:`` markers (also ``**Step k.**``, ``## Step k)``); the marker stays at
  the start of its step; text before the first marker, if any, is a step of its own.
- ``"lines"``: every non-blank line.
- ``"regex:<pattern>"``: ``<pattern>`` matches the separators between steps (as in :func:`re.split`,
  but capture groups are not inserted); use a lookahead such as ``regex:(?=Answer:)`` to keep markers.
- ``"none"``: the whole text is one step.
- ``"auto"``: ``step_k`` when the text has at least one ``Step k`` marker, else ``blank_lines``.

Every splitter returns at least one step, so a trajectory always has a row: text with nothing to
split (empty, or only separators) comes back as a single step holding the text unchanged.
"""

from __future__ import annotations

import re

SPLITTERS: tuple[str, ...] = ("auto", "blank_lines", "step_k", "lines", "regex:<pattern>", "none")
"""The accepted splitter names (``regex:`` takes a pattern after the colon)."""

STEP_MARKER = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?Step[ \t]*\d+[ \t]*(?:\*\*)?[ \t]*[:.)]", re.IGNORECASE | re.MULTILINE
)
"""A ``Step k:`` marker at the start of a line, optionally as a Markdown heading or in bold."""

_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def validate_splitter(splitter: str) -> None:
    """Raise ValueError when ``splitter`` is not a known splitter or its regex does not compile.

    Args:
        splitter: A splitter name, see :data:`SPLITTERS`.

    Raises:
        ValueError: Unknown name, or an invalid ``regex:`` pattern.
    """
    if splitter.startswith("regex:"):
        pattern = splitter.removeprefix("regex:")
        if not pattern:
            raise ValueError("splitter 'regex:' needs a pattern after the colon, e.g. 'regex:\\n---\\n'")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"splitter {splitter!r}: invalid regular expression ({exc})") from exc
        return
    if splitter not in SPLITTERS:
        raise ValueError(f"unknown splitter {splitter!r}; choose one of: {', '.join(SPLITTERS)}")


def resolve_splitter(text: str, splitter: str = "auto") -> str:
    """Return the concrete splitter that ``split_steps(text, splitter)`` applies.

    Args:
        text: The response text.
        splitter: A splitter name; only ``"auto"`` depends on the text.

    Returns:
        ``splitter`` itself, or for ``"auto"`` either ``"step_k"`` or ``"blank_lines"``.
    """
    validate_splitter(splitter)
    if splitter != "auto":
        return splitter
    return "step_k" if STEP_MARKER.search(text) else "blank_lines"


def _split_at_separators(text: str, separator: re.Pattern[str]) -> list[str]:
    """Cut ``text`` at every match of ``separator`` (matched text dropped), ignoring capture groups."""
    pieces: list[str] = []
    start = 0
    for match in separator.finditer(text):
        if match.end() == match.start() and match.start() in (0, len(text)):
            continue  # an empty match at an edge would only add an empty piece
        pieces.append(text[start : match.start()])
        start = match.end()
    pieces.append(text[start:])
    return pieces


def _split_at_markers(text: str) -> list[str]:
    """Cut ``text`` just before each ``Step k`` marker, keeping the markers."""
    starts = [match.start() for match in STEP_MARKER.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return [text[begin:end] for begin, end in zip(starts, starts[1:] + [len(text)], strict=True)]


def split_steps(text: str, splitter: str = "auto") -> list[str]:
    """Split a single response into steps.

    Args:
        text: The full response.
        splitter: ``"auto"``, ``"blank_lines"``, ``"step_k"``, ``"lines"``, ``"regex:<pattern>"`` or
            ``"none"`` (see the module docstring).

    Returns:
        The steps in order, each stripped of surrounding whitespace; never empty.

    Raises:
        ValueError: Unknown splitter or invalid regex.
    """
    concrete = resolve_splitter(text, splitter)
    if concrete == "none":
        return [text]
    if concrete == "blank_lines":
        pieces = _BLANK_LINES.split(text)
    elif concrete == "lines":
        pieces = text.splitlines()
    elif concrete == "step_k":
        pieces = _split_at_markers(text)
    else:
        pieces = _split_at_separators(text, re.compile(concrete.removeprefix("regex:")))
    steps = [piece.strip() for piece in pieces if piece.strip()]
    # Keep the trajectory representable: text with no content between separators is one step.
    return steps or [text]
