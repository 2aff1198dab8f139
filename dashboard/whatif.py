"""The Trajectory page's what-if panel: edit step texts, rescore with a PRM, see scores and PRM credit move.

Nothing here writes the run's step scores: :func:`core.prm.whatif.what_if` only adds the edited
contents to the content-addressed score cache, so ``steps.prm`` and every other page stay as logged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.prm.loading import build_spec, spec_is_prefix_causal
from core.prm.whatif import WhatIfResult, advantage_shift, what_if
from dashboard import resources as res
from dashboard.figures.prm import what_if_figure
from dashboard.formatting import md_escape
from dashboard.prm_panel import DEMO_FAMILY, DEMO_PRM, DEVICES, load_scorer, run_scorers

MAX_TEXT_AREAS = 40
"""Above this many steps one step is picked and edited at a time (a text area per step gets unwieldy)."""

RESULT_KEY = "whatif_result"


def scorer_options(path: str, run: str) -> list[tuple[str, str]]:
    """``(model, family)`` pairs to offer: the run's active scorer first, its other scorers, then the demo PRM."""
    scorers = run_scorers(path, run).sort_values("active", ascending=False, kind="stable")
    options = list(dict.fromkeys(zip(scorers["model"].astype(str), scorers["family"].astype(str), strict=True)))
    if (DEMO_PRM, DEMO_FAMILY) not in options:
        options.append((DEMO_PRM, DEMO_FAMILY))
    return options


def step_text(action: object) -> str:
    """A step's text as the PRM sees it (missing actions are empty, as in ``core.prm.rescore``)."""
    return "" if action is None or pd.isna(action) else str(action)


def what_if_panel(path: str, run: str, traj_id: str, steps: pd.DataFrame, group_steps: pd.DataFrame) -> None:
    """Edit steps of one trajectory, rescore it, and compare with the trajectory as logged.

    Args:
        path: Database path.
        run: Run id.
        traj_id: The trajectory shown on the page.
        steps: Its step rows (``step_idx``, ``action``).
        group_steps: Step rows of its whole group (for the credit shift).
    """
    with st.expander("What-if: edit steps and rescore with a PRM", expanded=False):
        options = scorer_options(path, run)
        cols = st.columns([5, 1, 1])
        model, family = cols[0].selectbox(
            "Scorer", options, key="whatif_scorer", format_func=lambda o: f"{o[1]} · {Path(o[0]).name} ({o[0]})"
        )
        device = cols[1].selectbox("Device", DEVICES, key="whatif_device")
        trust = cols[2].checkbox("trust_remote_code", value=False, key="whatif_trust")
        edits, submitted = _edit_form(traj_id, steps)
        if submitted and not edits:
            st.info("Change the text of at least one step, then rescore.")
        elif submitted:
            try:
                spec = build_spec(model, family)
                result = what_if(
                    res.store(),
                    run_id=run,
                    traj_id=traj_id,
                    edits=edits,
                    spec=spec,
                    get_scorer=lambda: load_scorer(model, family, device, trust),
                    prefix_only=spec_is_prefix_causal(spec),
                )
            except Exception as error:  # a model that cannot load offline, bad settings: show it, keep the page
                st.error(md_escape(f"What-if rescoring failed: {error}"))
                return
            st.session_state[RESULT_KEY] = (run, result)
            st.rerun()  # the step list above offers the what-if in its token view from the next run on
        stored = st.session_state.get(RESULT_KEY)
        if stored is not None and stored[0] == run and stored[1].traj_id == traj_id:
            show_result(stored[1], group_steps)


def _edit_form(traj_id: str, steps: pd.DataFrame) -> tuple[dict[int, str], bool]:
    """Text areas for the steps (or a picked step when there are many) inside one form; returns edits and submit."""
    originals = {int(s.step_idx): step_text(s.action) for s in steps.itertuples()}
    shown = list(originals)
    if len(shown) > MAX_TEXT_AREAS:
        shown = [st.selectbox("Step to edit", shown, key=f"whatif_pick_{traj_id}")]
    edits: dict[int, str] = {}
    with st.form(key="whatif_form"):
        for idx in shown:
            text = st.text_area(f"Step {idx}", value=originals[idx], height="content", key=f"whatif_{traj_id}_{idx}")
            if text != originals[idx]:
                edits[idx] = text
        submitted = st.form_submit_button("Rescore edited trajectory", key="whatif_run")
    return edits, submitted


def show_result(result: WhatIfResult, group_steps: pd.DataFrame) -> None:
    """Old vs new PRM score per step, and how the PRM-based schemes' credit moves within the group."""
    st.caption(
        f"{result.n_scored} steps went through the model, {result.n_from_cache} came from the score cache. "
        "The run's stored scores are unchanged."
    )
    for note in result.notes:
        st.warning(md_escape(note))
    comparison = result.comparison()
    st.dataframe(comparison, hide_index=True, key="whatif_scores")
    st.plotly_chart(what_if_figure(comparison), key="whatif_figure")
    shift, notes = advantage_shift(group_steps, result.traj_id, result.step_idx, result.old.scores, result.new.scores)
    st.markdown("**Credit of this trajectory's steps** (other trajectories of the group keep the `prm` shown)")
    st.dataframe(shift, hide_index=True, key="whatif_shift")
    for note in notes:
        st.caption(md_escape(note))
