"""The Trajectory page's navigation and compact step list.

Steps, rollouts and groups are walked with buttons that also answer keys (J/K: next/previous step,
N/P: next/previous rollout). The buttons change the URL state in their callbacks, so one rerun shows the
new step or rollout and the URL (``step=``, ``traj=``) always says what is on screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.credit.filtering import below_threshold_per_group
from core.errors import MissingInput
from dashboard import resources as res
from dashboard.figures.steps_html import scroll_script, step_list_html
from dashboard.formatting import md_escape
from dashboard.widgets import prm_threshold_filter

EXPAND_KEY, JUMP_KEY = "traj_expand", "traj_jump"
SHORTCUTS = {"next step": "J", "previous step": "K", "next rollout": "N", "previous rollout": "P"}
KEYS_HINT = "keys: J / K next / previous step · N / P next / previous rollout"


@dataclass(frozen=True)
class Position:
    """Where the shown trajectory sits: its group's rollouts, the iteration's groups, the step indices."""

    run: str
    iteration: int
    group: str
    traj_id: str
    siblings: list[str]
    groups: list[str]
    steps: list[int]

    @property
    def rollout(self) -> int:
        return self.siblings.index(self.traj_id)


def parse_step(raw: str | None, steps: list[int]) -> tuple[int | None, str | None]:
    """The ``step=`` URL value as a step of this trajectory, or None and why it was not used."""
    if raw is None or raw == "":
        return None, None
    if not raw.isdigit():
        return None, f"Step {raw!r} in the URL is not a step number; showing the trajectory from the top."
    if int(raw) not in steps:
        last = steps[-1] if steps else -1
        return None, f"This trajectory has no step {raw} (steps 0 to {last}); showing the trajectory from the top."
    return int(raw), None


def _go_step(step: int) -> None:
    res.set_url_state(step=step)
    st.session_state[JUMP_KEY] = step
    if st.session_state.get(EXPAND_KEY) == "none":
        st.session_state[EXPAND_KEY] = "current"  # the step walked to opens, whatever "collapse all" said


def _go_trajectory(traj: str, group: str | None = None) -> None:
    values: dict[str, object] = {"traj": traj, "step": None}
    if group is not None:
        values["group"] = group
    res.set_url_state(**values)
    st.session_state.pop(JUMP_KEY, None)


def _jumped() -> None:
    value = st.session_state.get(JUMP_KEY)
    if value is not None:
        _go_step(int(value))


def _go_group(path: str, pos: Position, offset: int) -> None:
    group = pos.groups[pos.groups.index(pos.group) + offset]
    first = res.group_trajectories(path, pos.run, pos.iteration, group)["traj_id"].iloc[0]
    _go_trajectory(str(first), group)


def _set_expand(mode: str) -> None:
    st.session_state[EXPAND_KEY] = mode


def navigation(path: str, pos: Position, current: int | None) -> None:
    """Buttons for previous/next step, rollout and group (keys J/K, N/P), jump to step, expand/collapse all."""
    at = -1 if current is None else pos.steps.index(current)
    rollout, group, last_step, last_rollout = (
        pos.rollout,
        pos.groups.index(pos.group),
        len(pos.steps) - 1,
        len(pos.siblings) - 1,
    )
    previous_step, next_step = pos.steps[max(at - 1, 0)], pos.steps[min(at + 1, last_step)]
    previous_traj, next_traj = pos.siblings[max(rollout - 1, 0)], pos.siblings[min(rollout + 1, last_rollout)]
    buttons = [
        ("◀ step", "traj_prev_step", at <= 0, _go_step, (previous_step,), SHORTCUTS["previous step"]),
        ("step ▶", "traj_next_step", at >= last_step, _go_step, (next_step,), SHORTCUTS["next step"]),
        ("◀ rollout", "traj_prev", rollout == 0, _go_trajectory, (previous_traj,), SHORTCUTS["previous rollout"]),
        ("rollout ▶", "traj_next", rollout == last_rollout, _go_trajectory, (next_traj,), SHORTCUTS["next rollout"]),
        ("◀ group", "traj_prev_group", group == 0, _go_group, (path, pos, -1), None),
        ("group ▶", "traj_next_group", group == len(pos.groups) - 1, _go_group, (path, pos, 1), None),
    ]
    row = st.columns([1, 1, 1, 1, 1, 1, 1.4], vertical_alignment="bottom")
    for column, (label, key, disabled, action, args, keys) in zip(row, buttons, strict=False):
        column.button(label, key=key, disabled=disabled, on_click=action, args=args, shortcut=keys, width="stretch")
    if current is not None:
        st.session_state[JUMP_KEY] = current
    row[6].number_input(
        "Jump to step", min_value=pos.steps[0], max_value=pos.steps[-1], step=1, key=JUMP_KEY, on_change=_jumped
    )
    links = st.columns([1.8, 1, 1, 3.2], vertical_alignment="center")
    query = {"run": pos.run, "iteration": str(pos.iteration), "group": pos.group}
    links[0].page_link("app_pages/group.py", label="↑ this rollout's group", query_params=query)
    links[1].button("expand all", key="traj_expand_all", on_click=_set_expand, args=("all",))
    links[2].button("collapse all", key="traj_collapse_all", on_click=_set_expand, args=("none",))
    links[3].text(KEYS_HINT)


def step_list(
    steps: pd.DataFrame,
    credit: Mapping[int, float],
    *,
    scheme: str,
    limit: float,
    current: int | None,
    tokens: tuple[Mapping[int, str], Mapping[int, str]] | None = None,
) -> None:
    """The compact step list, the highlighted step open and scrolled to (plain text inside; see steps_html).

    ``tokens`` is the token view's (first line, whole action) markup per step, when it is on.
    """
    expand = st.session_state.get(EXPAND_KEY, "current")
    summaries, bodies = tokens if tokens is not None else (None, None)
    markup = step_list_html(
        steps,
        credit,
        scheme=scheme,
        limit=limit,
        current=current,
        expand=expand,
        action_html=bodies,
        summary_html=summaries,
    )
    st.html(markup)
    if current is not None:
        # Only our own script with a step number runs; the list above is inert markup.
        st.html(scroll_script(current), unsafe_allow_javascript=True)


def prm_filtered_steps(steps: pd.DataFrame, group_steps: pd.DataFrame) -> pd.DataFrame:
    """The steps to list: all of them, or with the PRM filter on only those scored below τ, with the counts."""
    tau = prm_threshold_filter("traj")
    if tau is None:
        return steps
    try:
        group = below_threshold_per_group(group_steps, tau).iloc[0]
    except MissingInput as exc:  # no step of the group has a PRM score: say how to get one
        st.info(md_escape(exc))
        return steps
    scores = pd.to_numeric(steps["prm"], errors="coerce")
    below = steps[(scores < tau).to_numpy()]
    st.caption(
        f"{len(below)} of {len(steps)} steps of this rollout have a PRM score below {tau:g} "
        f"({int(scores.isna().sum())} unscored); in its group: {int(group['n_below'])} of {int(group['n_steps'])} "
        f"({int(group['n_unscored'])} unscored)"
    )
    return below
