"""The Diff pages' glue: both sides in the URL, cached diff queries, and the panels (kept out of the page scripts).

Every number comes from ``core.store.diff_queries`` (aggregated in DuckDB); results are cached per
sides, scheme and view, and the per-run group tables behind them are kept by ``core.diff``.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from core.diff import Side, check_side, format_range, parse_range, prompt_keys, sides
from core.errors import CreditscopeError
from core.store import diff_queries as dq
from dashboard import resources as res
from dashboard.figures.diff import TABLE_COLUMNS, histogram_figure, outcome_scatter, summary_frame
from dashboard.formatting import default_plot_runs, md_escape

DIFF_KEYS = ("a", "a_it", "b", "b_it", "scheme", "prompt", "ga", "gb")
"""What the URL of a Diff or Diff pair page holds, so a link reopens the same diff."""
SCATTER_POINTS = 3000
PAIR_PAGE = "app_pages/diff_pair.py"
SideKey = tuple[str, int | None, int | None]
Params = tuple[tuple[str, object], ...]


def diff_state() -> dict[str, str]:
    """Both sides (and the open pair) from the URL; kept in the session because sidebar links drop the query."""
    remembered: dict[str, str] = st.session_state.setdefault("_diff_state", {})
    if any(k in st.query_params for k in DIFF_KEYS):
        remembered.clear()
        remembered.update({k: st.query_params[k] for k in DIFF_KEYS if k in st.query_params})
    for key, value in remembered.items():
        st.query_params[key] = value
    return dict(remembered)


def set_diff_state(**values: object) -> None:
    """Write keys into the URL and the session (None removes one)."""
    remembered: dict[str, str] = st.session_state.setdefault("_diff_state", {})
    for key, value in values.items():
        if value is None or value == "":
            st.query_params.pop(key, None)
            remembered.pop(key, None)
        else:
            st.query_params[key] = remembered[key] = str(value)


def side_pickers(summary: pd.DataFrame) -> tuple[Side, Side]:
    """Run and iteration range of A and of B, from and into the URL.

    Without a URL both sides are the run with the most iterations, A its first half and B its second
    (early against late), which pairs whenever the run revisits its prompts.
    """
    runs = summary["run_id"].tolist()
    state = diff_state()
    default = default_plot_runs(summary, limit=1)[0]
    iterations = res.iterations(res.db_path(), default)
    middle = iterations[len(iterations) // 2] if len(iterations) > 1 else None
    halves = (f":{middle - 1}", f"{middle}:") if middle is not None and middle > iterations[0] else ("", "")
    chosen = []
    for column, x, half in zip(st.columns(2), "ab", halves, strict=True):
        with column:
            if state.get(x) and state[x] not in runs:
                st.warning(
                    md_escape(f"No run {state[x]!r} in this database; showing {default!r} as {x.upper()} instead.")
                )
            run = state.get(x) if state.get(x) in runs else default
            text = state.get(f"{x}_it", half if x not in state else "")
            run = st.selectbox(f"Run {x.upper()}", runs, index=runs.index(run), key=f"diff_run_{x}")
            text = st.text_input(f"Iterations of {x.upper()}", value=text, key=f"diff_it_{x}",
                                 placeholder="all (or FIRST:LAST, either end open)")  # fmt: skip
            try:
                lo, hi = parse_range(text)
            except CreditscopeError as exc:
                st.error(md_escape(exc))
                st.stop()
            set_diff_state(**{x: run, f"{x}_it": format_range(lo, hi) or None})
            chosen.append(Side(run, lo, hi))
    return chosen[0], chosen[1]


@st.cache_data(show_spinner=False, max_entries=64)
def check_sides(path: str, a: SideKey, b: SideKey) -> None:
    """Raise a one-line error for an unknown run or a range with no iterations (cached: it does not change)."""
    for side in (a, b):
        check_side(res.get_store(path), Side(*side))


def _sides(path: str, a: SideKey, b: SideKey, scheme: str | None, params: Params) -> dq.Sides:
    return sides(res.get_store(path), Side(*a), Side(*b), scheme, dict(params))


@st.cache_data(show_spinner="Pairing prompts…", max_entries=32)
def summary(path: str, a: SideKey, b: SideKey, scheme: str | None, params: Params, scope: str):
    return dq.summary(res.get_store(path), _sides(path, a, b, scheme, params), scope=scope)


@st.cache_data(show_spinner=False, max_entries=64)
def pairs(
    path: str, a: SideKey, b: SideKey, scheme: str | None, params: Params, show: str, order: str, limit: int | None,
    prompt_key: str | None = None,
) -> tuple[pd.DataFrame, int]:  # fmt: skip
    both = _sides(path, a, b, scheme, params)
    store = res.get_store(path)
    return dq.pairs(store, both, prompt_keys(store), show=show, order=order, limit=limit, prompt_key=prompt_key)


@st.cache_data(show_spinner=False, max_entries=64)
def histogram(path: str, a: SideKey, b: SideKey, scheme: str | None, params: Params, what: str, scope: str):
    return dq.histogram(res.get_store(path), _sides(path, a, b, scheme, params), what, scope=scope)


@st.cache_data(show_spinner=False, max_entries=64)
def prompt_groups(path: str, side: SideKey, scheme: str | None, params: Params, prompt_key: str) -> pd.DataFrame:
    both = _sides(path, side, side, scheme, params)
    return dq.prompt_groups(res.get_store(path), both.a, prompt_key, side[1], side[2])


def open_pair(prompt_key: str) -> None:
    """Open the Diff pair page on one prompt, both sides and the scheme carried in the URL."""
    set_diff_state(prompt=prompt_key, ga=None, gb=None)
    st.switch_page(PAIR_PAGE, query_params=dict(st.session_state["_diff_state"]))


def show_summary(counts: dict[str, int], stats: pd.DataFrame, scope: str) -> None:
    """How the sides pair, the flips, and the per-side statistics (with B − A)."""
    cols = st.columns(5)
    cols[0].metric("Prompts in both", f"{counts['in_both']:,}")
    cols[1].metric("Only in A", f"{counts['only_a']:,}")
    cols[2].metric("Only in B", f"{counts['only_b']:,}")
    cols[3].metric("Solved → unsolved", f"{counts['lost']:,}", help="solved in A (some rollout succeeded), not in B")
    cols[4].metric("Unsolved → solved", f"{counts['gained']:,}", help="not solved in A, solved in B")
    for x in "ab":
        if counts[f"unkeyed_{x}"]:
            st.caption(f"{counts[f'unkeyed_{x}']:,} trajectories of {x.upper()} have no prompt and pair with nothing.")
    st.caption("Over the prompts in both sides." if scope == "in both" else "Over all prompts of each side.")
    st.dataframe(summary_frame(stats), hide_index=True, key="diff_summary", column_config=_NUMBER_FORMAT)


_NUMBER_FORMAT = {c: st.column_config.NumberColumn(format="%.4g") for c in ("A", "B", "B − A")}


def prompt_table(path: str, a: SideKey, b: SideKey, scheme: str | None, params: Params) -> None:
    """The per-prompt table, filtered and sorted in DuckDB; selecting a row opens the pair."""
    left, right = st.columns(2)
    show = left.selectbox("Show", dq.SHOW, key="diff_show")
    order = right.selectbox("Sort by (biggest first)", dq.ORDER, key="diff_order")
    table, matching = pairs(path, a, b, scheme, params, show, order, 500)
    more = f"; the first {len(table):,} are shown" if matching > len(table) else ""
    st.caption(f"{matching:,} prompts match{more}. Select a row to open the pair.")
    shown = table[[c for c in TABLE_COLUMNS if c in table.columns]]
    event = st.dataframe(
        shown, hide_index=True, key="diff_table", on_select="rerun", selection_mode="single-row",
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in shown.columns if c != "prompt"},
    )  # fmt: skip
    rows = event["selection"]["rows"] if event else []
    if rows and rows[0] < len(table):
        open_pair(str(table["prompt_key"].iloc[rows[0]]))


def scatter(path: str, a: SideKey, b: SideKey, scheme: str | None, params: Params) -> None:
    """Per-prompt mean outcome in A against B; clicking a point opens that pair."""
    table, matching = pairs(path, a, b, scheme, params, "in both", "prompt key", SCATTER_POINTS)
    if matching > len(table):
        st.caption(f"A uniform sample of {len(table):,} of the {matching:,} prompts in both (by prompt key).")
    event = st.plotly_chart(outcome_scatter(table), key="diff_scatter", on_select="rerun", selection_mode="points")
    points = event.get("selection", {}).get("points", []) if isinstance(event, Mapping) else []
    keys = [p["customdata"][0] for p in points if isinstance(p.get("customdata"), list | tuple) and p["customdata"]]
    if keys:
        open_pair(str(keys[0]))


def histograms(path: str, a: SideKey, b: SideKey, scheme: str | None, params: Params, scope: str) -> None:
    """Outcome, steps per trajectory and advantage (under the scheme), A and B overlaid."""
    titles = {"outcome": ("Outcome", "outcome"), "steps": ("Steps per trajectory", "steps"),
              "advantage": (f"Advantage under {scheme} (per step)", "advantage")}  # fmt: skip
    for column, what in zip(st.columns(3), dq.HISTOGRAMS, strict=True):
        if what == "advantage" and scheme is None:
            column.caption("No advantage histogram: the credit scheme could not be computed (see above).")
            continue
        bins = histogram(path, a, b, scheme, params, what, scope)
        column.plotly_chart(histogram_figure(bins, *titles[what]), key=f"diff_hist_{what}")


def state_sides(state: dict[str, str]) -> tuple[Side, Side]:
    """Both sides as the URL names them (the Diff pair page has no pickers of its own)."""
    try:
        return Side(state["a"], *parse_range(state.get("a_it"))), Side(state["b"], *parse_range(state.get("b_it")))
    except CreditscopeError as exc:
        st.error(md_escape(exc))
        st.stop()
        raise  # unreachable: st.stop ends the run


def group_choice(path: str, x: str, side: Side, scheme: str | None, params: Params, key: str) -> tuple[int, str] | None:
    """A selectbox of the side's groups of this prompt (latest first; the URL's ``ga``/``gb`` if given)."""
    groups = prompt_groups(path, tuple(side), scheme, params, key)
    if groups.empty:
        st.info(f"This prompt does not occur in {x.upper()}.")
        return None
    options = [f"{int(r.iteration)}:{r.group_id}" for r in groups.itertuples()]
    labels = {o: f"iteration {o.split(':', 1)[0]} · {r.group_id} · n={r.n} · mean {r.mean_outcome:.3f}"
              for o, r in zip(options, groups.itertuples(), strict=True)}  # fmt: skip
    wanted = diff_state().get(f"g{x}")
    chosen = st.selectbox(
        f"Group in {x.upper()} ({len(options)} with this prompt)", options, format_func=lambda o: labels.get(o, o),
        index=options.index(wanted) if wanted in options else 0, key=f"pair_group_{x}",
    )  # fmt: skip
    set_diff_state(**{f"g{x}": chosen})
    iteration, group = chosen.split(":", 1)
    return int(iteration), group


def side_by_side(path: str, runs: tuple[str, str], groups: list[tuple[int, str] | None], scheme: str, params: Params):
    """Both groups' credit heatmaps on one colour scale (a cell opens its step), then best and worst rollouts aligned.

    The shared scale is the robust limit over both groups' credit unless one is set by hand.
    """
    from core.diff import aligned_steps, best_and_worst
    from dashboard.drill import clicked_step, open_trajectory
    from dashboard.figures.diff import aligned_styler
    from dashboard.figures.heatmap import heatmap_figure, robust_limit
    from dashboard.widgets import colour_limit_input

    present = [(x, run, g) for x, run, g in zip("ab", runs, groups, strict=True) if g is not None]
    data = {}
    for x, run, (iteration, group) in present:
        steps = res.group_steps(path, run, iteration, group)
        try:
            credit = res.group_credit(path, run, iteration, group, scheme, params).to_numpy()
        except CreditscopeError as exc:  # a scheme missing its inputs says how to get them
            st.warning(md_escape(f"{x.upper()}: {exc}"))
            credit = None
        data[x] = (run, iteration, group, steps, credit, res.group_trajectories(path, run, iteration, group))
    limit = colour_limit_input("pair_heat_limit") or robust_limit(*(d[4] for d in data.values() if d[4] is not None))
    for column, (x, (run, iteration, _, steps, credit, _)) in zip(st.columns(2), data.items(), strict=False):
        if credit is not None:
            title = f"{x.upper()} · {run} · iteration {iteration} · {scheme}"  # the builder escapes it
            event = column.plotly_chart(heatmap_figure(steps, credit, title=title, limit=limit), key=f"pair_heat_{x}",
                                        on_select="rerun", selection_mode="points")  # fmt: skip
            clicked = clicked_step(event)
            if clicked is not None:
                open_trajectory(*clicked, run=run)
    if len(data) < 2:
        return
    picks = {x: best_and_worst(d[5]) for x, d in data.items()}
    for which, index in (("Best", 0), ("Worst", 1)):
        st.subheader(f"{which} rollout of each side, step by step")
        ta, tb = picks["a"][index], picks["b"][index]
        aligned = aligned_steps(data["a"][3], ta, data["b"][3], tb, data["a"][4], data["b"][4])
        st.text(f"A: {ta}   B: {tb}   highlighted: the two actions differ ({int(aligned['differs'].sum())} steps)")
        st.dataframe(aligned_styler(aligned, "A", "B"), hide_index=True, key=f"pair_{which.lower()}")
