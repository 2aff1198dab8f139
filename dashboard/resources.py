"""Streamlit glue: the one store per process, cached query results, and the URL state.

Pages stay thin: they ask these helpers for data and hand it to the pure figure builders.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import streamlit as st

from core.credit import SCHEMES, PreparedSteps, compute, prepare, rank_schemes
from core.credit.streaming import RunSummary, summarise_run
from core.store import queries
from core.store.database import Store
from core.store.stream import iter_chunks, plan_chunks
from dashboard.formatting import md_escape

DB_ENV = "CREDITSCOPE_DB"
URL_KEYS = ("run", "iteration", "group", "traj", "step")


def db_path() -> str:
    """The database this dashboard serves (``creditscope serve --db`` sets the environment variable)."""
    return os.environ.get(DB_ENV, "creditscope.duckdb")


@st.cache_resource(show_spinner=False)
def get_store(path: str) -> Store:
    """One read-write store per server process; every query takes its own cursor from it."""
    return Store.open(path)


def store() -> Store:
    """The store of the served database."""
    return get_store(db_path())


def clear_data_caches() -> None:
    """Forget cached query results after the database changed (ingest, rescore)."""
    st.cache_data.clear()
    scope_steps.clear()


@st.cache_data(show_spinner=False, max_entries=64)
def runs_summary(path: str) -> pd.DataFrame:
    return queries.runs_summary(get_store(path))


@st.cache_data(show_spinner=False, max_entries=8)
def coverage(path: str) -> pd.DataFrame:
    return queries.column_coverage(get_store(path))


@st.cache_data(show_spinner=False, max_entries=64)
def iteration_curves(path: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    return queries.iteration_curves(get_store(path), run_ids)


@st.cache_data(show_spinner=False, max_entries=64)
def iterations(path: str, run_id: str) -> list[int]:
    return queries.iterations(get_store(path), run_id)


@st.cache_data(show_spinner=False, max_entries=128)
def groups(path: str, run_id: str, iteration: int | None, search: str) -> pd.DataFrame:
    return queries.groups(get_store(path), run_id, iteration, search)


GROUPS_PAGE_SIZE = 500
"""Rows of the Groups table sent to the browser at once (a 10M-step run has hundreds of thousands of groups)."""


@st.cache_data(show_spinner=False, max_entries=128)
def groups_page(
    path: str, run_id: str, iteration: int | None, search: str, sort: str, descending: bool, page: int
) -> queries.GroupsPage:
    """Page ``page`` (from 1) of a run's groups, sorted in DuckDB (``queries.groups_page``)."""
    offset = (page - 1) * GROUPS_PAGE_SIZE
    return queries.groups_page(
        get_store(path), run_id, iteration, search, sort=sort, descending=descending, limit=GROUPS_PAGE_SIZE,
        offset=offset,
    )  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=128)
def group_steps(path: str, run_id: str, iteration: int, group_id: str) -> pd.DataFrame:
    return queries.steps(get_store(path), run_id=run_id, iteration=iteration, group_id=group_id, with_token_stats=True)


@st.cache_data(show_spinner=False, max_entries=128)
def prm_below_counts(
    path: str, run_id: str, iterations: tuple[int, ...], group_ids: tuple[str, ...], threshold: float
) -> pd.DataFrame:
    return queries.prm_below_counts(get_store(path), run_id, iterations, group_ids, threshold)


@st.cache_data(show_spinner=False, max_entries=128)
def group_trajectories(path: str, run_id: str, iteration: int, group_id: str) -> pd.DataFrame:
    return queries.trajectories(get_store(path), run_id=run_id, iteration=iteration, group_id=group_id)


@st.cache_data(show_spinner=False, max_entries=256)
def trajectory(path: str, run_id: str, traj_id: str) -> tuple[pd.Series | None, pd.DataFrame]:
    return queries.trajectory(get_store(path), run_id, traj_id)


@st.cache_data(show_spinner=False, max_entries=256)
def trajectory_tokens(path: str, run_id: str, traj_id: str) -> pd.DataFrame:
    """One trajectory's logged per-token arrays, a row per step (``core.store.queries.step_tokens``)."""
    return queries.step_tokens(get_store(path), run_id, traj_id)


@st.cache_data(show_spinner=False, max_entries=64)
def run_steps(path: str, run_id: str, iteration: int | None = None) -> pd.DataFrame:
    return queries.steps(get_store(path), run_id=run_id, iteration=iteration)


@st.cache_data(show_spinner=False, max_entries=256)
def group_credit(
    path: str, run_id: str, iteration: int, group_id: str, scheme: str, params: tuple[tuple[str, object], ...]
) -> pd.Series:
    """Per-step credit of ``scheme`` for one group, aligned with :func:`group_steps`.

    Keyed by the group and the parameters rather than by the step frame, so a rerun does not hash the
    whole frame just to find the cached result.
    """
    steps = group_steps(path, run_id, iteration, group_id)
    return pd.Series(compute(steps, scheme, **dict(params)), index=steps.index)


@st.cache_resource(show_spinner=False, max_entries=4)
def scope_steps(path: str, run_id: str, iteration: int | None) -> PreparedSteps:
    """Steps of a run (or one iteration), read and prepared once for both :func:`scope_credit` and :func:`ranking`.

    A resource rather than cached data: the frame (tens of MB on a 10M-step run's iteration) is shared as
    is, not pickled on every read. Callers must not modify it; :func:`clear_data_caches` forgets it.
    """
    steps = queries.steps(get_store(path), run_id=run_id, iteration=iteration, with_token_stats=True)
    return prepare(steps)


def scope_credit(
    path: str, run_id: str, iteration: int | None, slots: tuple[tuple[str, tuple[tuple[str, object], ...]], ...]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Steps of a run (or one iteration) and each chosen scheme's credit on them, keyed by slot label."""
    return scope_steps(path, run_id, iteration).frame, _scope_results(path, run_id, iteration, slots)


@st.cache_data(show_spinner=False, max_entries=64)
def _scope_results(
    path: str, run_id: str, iteration: int | None, slots: tuple[tuple[str, tuple[tuple[str, object], ...]], ...]
) -> dict[str, np.ndarray]:
    prepared = scope_steps(path, run_id, iteration)
    return {slot_label(name, dict(params)): compute(prepared, name, **dict(params)) for name, params in slots}


WHOLE_RUN_SAMPLE_GROUPS = 100
"""Groups kept for the whole-run heatmaps, scatter and download (ranking and agreement cover every step)."""


@st.cache_data(show_spinner=False, max_entries=8)
def whole_run(
    path: str,
    run_id: str,
    slots: tuple[tuple[str, tuple[tuple[str, object], ...]], ...],
    overrides: tuple[tuple[str, tuple], ...],
) -> RunSummary:
    """Ranking, agreement and a sample of groups over a whole run, streamed by iteration (bounded memory).

    The progress bar is drawn in here: a later run that finds the result cached replays the bar (finished
    and emptied) instead of updating an element of an earlier run, which Streamlit refuses.
    """
    bar = st.progress(0.0, text="Reading the run iteration by iteration…")

    def advance(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{done:,} / {total:,} steps through every scheme")

    store = get_store(path)
    plan = plan_chunks(store, run_id)
    sample = set(queries.spread_groups(store, run_id, WHOLE_RUN_SAMPLE_GROUPS))
    summary = summarise_run(
        iter_chunks(store, run_id, plan),
        {slot_label(name, dict(params)): (name, dict(params)) for name, params in slots},
        rank_params={name: dict(params) for name, params in overrides},
        total_steps=plan.n_steps,
        progress=advance,
        sample=sample,
    )
    bar.empty()
    return summary


@st.cache_data(show_spinner=False, max_entries=32)
def ranking(path: str, run_id: str, iteration: int | None, overrides: tuple[tuple[str, tuple], ...]) -> pd.DataFrame:
    """Every scheme scored against the step labels of a run or iteration (``core.credit.rank_schemes``)."""
    return rank_schemes(scope_steps(path, run_id, iteration), params={name: dict(params) for name, params in overrides})


def slot_label(name: str, params: dict[str, object]) -> str:
    """A short unique label for a scheme with its non-default parameters."""
    defaults = SCHEMES[name].defaults()
    changed = [f"{k}={v}" for k, v in params.items() if defaults.get(k) != v]
    return f"{name}({', '.join(changed)})" if changed else name


def url_state() -> dict[str, str]:
    """Run/iteration/group/trajectory from the URL, so a copied link reopens the same view.

    Sidebar navigation drops query parameters, so the last values seen are also kept in the
    session and used when the URL has none.
    """
    remembered: dict[str, str] = st.session_state.setdefault("_url_state", {})
    if any(k in st.query_params for k in URL_KEYS):
        remembered.clear()
        remembered.update({k: st.query_params[k] for k in URL_KEYS if k in st.query_params})
    elif remembered:
        for key, value in remembered.items():
            st.query_params[key] = value
    return dict(remembered)


def set_url_state(**values: object) -> None:
    """Write the given keys into the URL query string (and the session); None removes a key."""
    remembered: dict[str, str] = st.session_state.setdefault("_url_state", {})
    for key, value in values.items():
        if value is None:
            st.query_params.pop(key, None)
            remembered.pop(key, None)
        else:
            st.query_params[key] = str(value)
            remembered[key] = str(value)


def open_page(page: str, **values: object) -> None:
    """Switch to ``page`` with the given URL state (the rest of the state is kept)."""
    set_url_state(**values)
    st.switch_page(page, query_params=dict(st.session_state["_url_state"]))


def pick_run(runs: list[str], key: str = "run_select") -> str | None:
    """A run selector that follows and updates the URL's ``run``."""
    if not runs:
        st.info("No runs in this database yet. Load some on the Ingest page or with `creditscope ingest`.")
        return None
    current = url_state().get("run")
    if current is not None and current not in runs:
        st.warning(md_escape(f"No run {current!r} in this database; showing run {runs[0]!r} instead."))
    index = runs.index(current) if current in runs else 0
    run = st.selectbox("Run", runs, index=index, key=key)
    if run != current:
        set_url_state(run=run, iteration=None, group=None, traj=None, step=None)
    return run
