"""Extracts step texts from a tinker-cookbook ``*_logtree.json`` (the HTML report's node tree as JSON).

tinker's rollout summaries carry token lengths only; the text lives in the logtree, which covers the
first ``num_groups_to_log`` groups (default 4). Layout (tinker-cookbook @ 9dfcc3a2,
``utils/logtree.py`` ``Node.to_dict``, ``rl/rollouts.py``, ``rl/problem_env.py``): a ``Group Rollout``
section per logged group, in group order; inside it, problem environments log one ``Prompt`` /
``Policy Response`` / ``Reward`` section triple per env step, where conversation nodes carry
``data = {"type": "conversation", "messages": [...]}`` and the reward is a table row ``reward | 0.500``.

Rollouts of a group step concurrently, so triples appear in completion order, not by trajectory
index. :func:`assign_texts` therefore matches each step to the first unused triple with the same
reward (rounded as the table shows it); among equal rewards the order is a best guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.ingest.messages import ROLE_SEPARATOR, render_action, render_message

_HEADER_TAGS = frozenset({"h2", "h3", "h4", "h5", "h6"})
_REWARD_TOLERANCE = 5e-4  # the table prints rewards with three decimals


@dataclass
class LoggedStep:
    """One Prompt / Policy Response / Reward triple of a logged group."""

    state: str | None = None
    action: str | None = None
    reward: float | None = None
    used: bool = False


def _text_of(node: Any) -> str:
    """Concatenate the text children of a node, recursively."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        return "".join(_text_of(child) for child in node.get("children") or [])
    return ""


def _section_title(section: dict[str, Any]) -> str | None:
    """The header text of a ``section`` node, or None if it has no header child."""
    for child in section.get("children") or []:
        if isinstance(child, dict) and child.get("tag") in _HEADER_TAGS:
            return _text_of(child).strip()
    return None


def _walk(node: Any) -> list[dict[str, Any]]:
    """All dict nodes below ``node`` in document order (``node`` included)."""
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            found.append(current)
            stack.extend(reversed(current.get("children") or []))
    return found


def _conversation_messages(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Messages of every conversation data node inside ``section``."""
    messages: list[dict[str, Any]] = []
    for node in _walk(section):
        data = node.get("data")
        if isinstance(data, dict) and data.get("type") == "conversation":
            messages.extend(m for m in data.get("messages") or [] if isinstance(m, dict))
    return messages


def _reward_from_table(section: dict[str, Any]) -> float | None:
    """The value of the ``reward`` row of the first table inside ``section``."""
    for node in _walk(section):
        if node.get("tag") != "tr":
            continue
        cells = [_text_of(cell).strip() for cell in node.get("children") or [] if isinstance(cell, dict)]
        if len(cells) >= 2 and cells[0] == "reward":
            try:
                return float(cells[1])
            except ValueError:
                return None
    return None


def group_steps(logtree: dict[str, Any]) -> list[list[LoggedStep]]:
    """Return the logged steps of each ``Group Rollout`` section, in section (= group index) order."""
    groups: list[list[LoggedStep]] = []
    for node in _walk(logtree.get("root")):
        if node.get("tag") != "section" or _section_title(node) != "Group Rollout":
            continue
        steps: list[LoggedStep] = []
        for inner in _walk(node)[1:]:
            if inner.get("tag") != "section":
                continue
            title = _section_title(inner)
            if title == "Prompt":
                messages = _conversation_messages(inner)
                steps.append(LoggedStep(state=ROLE_SEPARATOR.join(render_message(m) for m in messages)))
            elif title == "Policy Response" and steps:
                steps[-1].action = "\n".join(render_action(m) for m in _conversation_messages(inner))
            elif title == "Reward" and steps:
                steps[-1].reward = _reward_from_table(inner)
        groups.append(steps)
    return groups


def assign_texts(logged: list[LoggedStep], step_rewards: list[float | None]) -> list[LoggedStep | None]:
    """Match a trajectory's steps to unused logged steps of its group by reward (see the module docstring).

    Args:
        logged: The group's logged steps; matched ones are marked ``used``.
        step_rewards: The trajectory's per-step rewards from the rollout summary.

    Returns:
        For each step, its logged text or None when nothing matches.
    """
    matched: list[LoggedStep | None] = []
    for reward in step_rewards:
        choice = next(
            (
                candidate
                for candidate in logged
                if not candidate.used
                and (candidate.reward is None or reward is None or abs(candidate.reward - reward) <= _REWARD_TOLERANCE)
            ),
            None,
        )
        if choice is not None:
            choice.used = True
        matched.append(choice)
    return matched
