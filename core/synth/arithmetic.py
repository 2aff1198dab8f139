"""Arithmetic chains: a reasoning environment with exact step-level ground truth.

A problem is a start value and a chain of operations. A solution writes one line per operation,
``17 * 3 = 51``. The scripted policy slips with a per-step error rate; a slip produces a wrong
result that the following lines then carry forward (they compute correctly from the wrong value),
so exactly the slipped lines are labelled bad while the outcome fails. This is the "first error"
setting ProcessBench and Math-Shepherd are built around.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

OPS: tuple[str, ...] = ("+", "-", "*")
_LINE = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")


def apply_op(value: int, op: str, operand: int) -> int:
    """Exact result of one operation."""
    if op == "+":
        return value + operand
    if op == "-":
        return value - operand
    return value * operand


@dataclass(frozen=True)
class Problem:
    """A start value and the operations to apply in order."""

    start: int
    ops: tuple[tuple[str, int], ...] = field(default_factory=tuple)

    @cached_property
    def text(self) -> str:
        """The prompt shown to the policy."""
        chain = " ".join(f"{op} {x}" for op, x in self.ops)
        return f"Start with {self.start}, then apply in order: {chain}. Write one line per operation."

    @property
    def answer(self) -> int:
        """The correct final value."""
        value = self.start
        for op, x in self.ops:
            value = apply_op(value, op, x)
        return value


def make_problem(rng: np.random.Generator, *, min_ops: int = 3, max_ops: int = 6) -> Problem:
    """Draw a problem; multiplications use small operands so values stay readable."""
    n_ops = int(rng.integers(min_ops, max_ops + 1))
    ops = []
    for _ in range(n_ops):
        op = OPS[int(rng.integers(0, len(OPS)))]
        operand = int(rng.integers(2, 6)) if op == "*" else int(rng.integers(2, 30))
        ops.append((op, operand))
    return Problem(start=int(rng.integers(2, 20)), ops=tuple(ops))


def parse_line(line: str) -> tuple[int, str, int, int] | None:
    """Parse ``a op b = c``; None when the line is malformed."""
    m = _LINE.match(line)
    if m is None:
        return None
    return int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))


def line_is_correct(prev_value: int, op: tuple[str, int], line: str) -> bool:
    """A line is correct when it applies ``op`` to ``prev_value`` and gets the exact result."""
    parsed = parse_line(line)
    if parsed is None:
        return False
    a, sym, b, c = parsed
    return a == prev_value and (sym, b) == op and c == apply_op(prev_value, sym, b)


def _value_after(problem: Problem, lines: list[str]) -> int:
    """The value a solution carries after ``lines`` (its own, possibly wrong, results)."""
    value = problem.start
    for line in lines:
        parsed = parse_line(line)
        if parsed is not None:
            value = parsed[3]
    return value


def policy_lines(
    problem: Problem, rng: np.random.Generator, error_rate: float, prefix: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """Continue a solution from ``prefix`` with the scripted policy and return the full list of lines.

    Each new line slips with probability ``error_rate``: mostly a wrong result (off by a small
    amount), sometimes a malformed line. Later lines start from whatever value the previous line wrote.
    """
    lines = list(prefix)
    value = _value_after(problem, lines)
    for op, x in problem.ops[len(lines) :]:
        result = apply_op(value, op, x)
        if rng.random() < error_rate:
            if rng.random() < 0.1:
                lines.append(f"{value} {op} {x} = ?")
                continue  # malformed: the value carried forward stays the last one written
            delta = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
            result += delta
        lines.append(f"{value} {op} {x} = {result}")
        value = result
    return lines


def step_checks(problem: Problem, lines: list[str]) -> list[tuple[bool, bool]]:
    """Per line, (its arithmetic is right given the value the previous line wrote, it parses); one parse each."""
    checks = []
    value = problem.start
    for (op, x), line in zip(problem.ops, lines, strict=False):
        parsed = parse_line(line)
        if parsed is None:
            checks.append((False, False))
            continue
        a, sym, b, c = parsed
        checks.append((a == value and (sym, b) == (op, x) and c == apply_op(value, op, x), True))
        value = c
    return checks


def step_labels(problem: Problem, lines: list[str]) -> list[bool]:
    """Per line, whether its arithmetic is right given the value the previous line wrote."""
    return [correct for correct, _ in step_checks(problem, lines)]


def outcome(problem: Problem, lines: list[str]) -> float:
    """1.0 when the solution is complete and its last line ends on the right answer, else 0.0."""
    if len(lines) != len(problem.ops):
        return 0.0
    parsed = parse_line(lines[-1])
    return 1.0 if parsed is not None and parsed[3] == problem.answer else 0.0
