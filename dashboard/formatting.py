"""Plain-text formatting for the pages: step facts, chat prompts, default selections (pure, testable)."""

from __future__ import annotations

import json
import math
import re

import pandas as pd


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


def _message_text(content: object) -> str:
    """A chat message's content as text: a string, or the text parts of a multi-part content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text", "") if isinstance(part, dict) else str(part) for part in content]
        return "\n".join(p for p in parts if p)
    return "" if content is None else json.dumps(content)


def prompt_text(prompt: object) -> str:
    """A logged prompt as readable plain text.

    Chat-format trainers (verifiers, OpenAI messages) log the prompt as a JSON list of
    ``{role, content}`` messages; shown raw that is a wall of escaped JSON, so each message becomes
    ``role: content`` with real line breaks. Any other prompt is returned unchanged.
    """
    if prompt is None or prompt is pd.NA or (isinstance(prompt, float) and math.isnan(prompt)) or prompt == "":
        return "(no prompt logged)"
    text = str(prompt)
    if not text.lstrip().startswith("["):
        return text
    try:
        messages = json.loads(text)
    except ValueError:
        return text
    if not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
        return text
    return "\n\n".join(f"{m['role']}: {_message_text(m.get('content')).strip()}" for m in messages)


RUN_TABLE_ORDER: tuple[str, ...] = (
    "run_id",
    "source_format",
    "iterations",
    "groups",
    "trajectories",
    "steps",
    "mean_outcome",
)
"""Runs table columns shown first: the counts a researcher scans for, before the long path and timestamp."""


def run_table_columns(columns: list[str]) -> list[str]:
    """Column order for the Runs table: :data:`RUN_TABLE_ORDER` first, then every other column as given."""
    first = [c for c in RUN_TABLE_ORDER if c in columns]
    return first + [c for c in columns if c not in first]


def default_plot_runs(summary: pd.DataFrame, limit: int = 3) -> list[str]:
    """Runs preselected for the training curves: those with the most iterations (ties by name).

    A single-iteration run (an eval log, a PRM data set) is one dot per panel, so plotting the first
    runs alphabetically often showed dots instead of curves.
    """
    ranked = summary.sort_values(["iterations", "run_id"], ascending=[False, True], kind="stable")
    return ranked["run_id"].head(limit).tolist()


_MARKDOWN_SPECIAL = re.compile(r"([!#$&()*+\-.:<=>@\[\\\]^_`{|}~])")
"""ASCII punctuation that Markdown, GFM autolinks, LaTeX or Streamlit directives can act on (not ' " , ; ? % /)."""


def md_escape(text: object) -> str:
    """``text`` made literal for Streamlit elements that render Markdown (alerts, captions, labels, metrics).

    Every ASCII punctuation character that can start markup gets a backslash (CommonMark's escape), so no
    emphasis, link, bare-URL autolink, image, HTML tag, ``$...$`` LaTeX, ``:emoji:`` / ``:material/icon:``
    shortcode or ``:colour[...]`` directive in a log, URL or error message is interpreted; the characters
    are shown as they are.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", "" if text is None else str(text))


def md_unescape(markdown: str) -> str:
    """The text a Markdown element shows for :func:`md_escape`'s output (tests read messages back with it)."""
    return re.sub(r"\\(.)", r"\1", markdown, flags=re.S)


def default_scheme(steps: pd.DataFrame) -> str:
    """The scheme a group opens with: one with step-level signal when the data supports it, GRPO otherwise.

    A logged tree (``node_id``) gives TreeRL; anchor states (a state after the first step that two or more
    trajectories reach, among states that change along a trajectory) give GiGPO. Anything else only has an
    outcome per trajectory, for which GRPO is the reference.
    """
    if "node_id" in steps and steps["node_id"].notna().any():
        return "treerl"
    if "state" in steps and steps["state"].notna().any():
        states = steps.loc[steps["state"].notna(), ["traj_id", "step_idx", "state"]]
        later = states[states["step_idx"] > 0]
        shared = later.groupby("state")["traj_id"].nunique()
        if states["state"].nunique() > 1 and bool((shared >= 2).any()):
            return "gigpo"
    return "grpo"


def parse_iteration(raw: str | None, iterations: list[int]) -> tuple[int | None, str | None]:
    """The ``iteration=`` URL value as one of the run's iterations, or None and what was wrong with it."""
    if raw is None or raw == "":
        return None, None
    try:
        value = int(raw)
    except ValueError:
        return None, f"Iteration {raw!r} in the URL is not a number"
    if value not in iterations:
        span = f"{iterations[0]} to {iterations[-1]}" if iterations else "none"
        return None, f"This run has no iteration {value} (its iterations: {span})"
    return value, None
