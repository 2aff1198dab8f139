"""Widgets generated from declarative specs (credit schemes' parameters), shared by several pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from core.credit import SCHEMES
from dashboard import resources as res
from dashboard.formatting import md_escape, parse_iteration


def scheme_picker(key: str, default: str = "grpo", label: str = "Scheme") -> tuple[str, dict[str, object]]:
    """A scheme selectbox plus one widget per parameter, built from ``core.credit.SCHEMES``.

    Returns:
        The scheme name and the chosen parameters (only those differing from the defaults are
        worth showing, but all are returned so results are reproducible).
    """
    names = list(SCHEMES)
    name = st.selectbox(
        label,
        names,
        index=names.index(default) if default in names else 0,
        key=f"{key}_scheme",
        format_func=lambda n: f"{n} — {SCHEMES[n].title}",
    )
    spec = SCHEMES[name]
    help_text = spec.description + (" Reconstructed from the paper (confidence L)." if spec.confidence == "L" else "")
    st.caption(f"{spec.citation} · confidence {spec.confidence}", help=help_text)
    params: dict[str, object] = {}
    if spec.params:
        with st.expander("Parameters", expanded=False):
            for p in spec.params:
                wkey = f"{key}_{name}_{p.name}"
                if p.type is bool:
                    params[p.name] = st.checkbox(p.name, value=bool(p.default), help=p.help, key=wkey)
                elif p.choices:
                    choices = list(p.choices)
                    params[p.name] = st.selectbox(
                        p.name, choices, index=choices.index(p.default), help=p.help, key=wkey
                    )
                elif p.type is int:
                    params[p.name] = int(
                        st.number_input(
                            p.name,
                            value=int(p.default),
                            step=1,
                            help=p.help,
                            key=wkey,
                            min_value=None if p.low is None else int(p.low),
                            max_value=None if p.high is None else int(p.high),
                        )
                    )
                else:
                    params[p.name] = float(
                        st.number_input(
                            p.name,
                            value=float(p.default),
                            help=p.help,
                            key=wkey,
                            min_value=p.low,
                            max_value=p.high,
                            format="%.6g",
                        )
                    )
    return name, params


LIMIT_HELP = "Credit where the colours saturate (±). Empty: the 99th percentile of |credit|; cells beyond are marked ◆."


def colour_limit_input(key: str) -> float | None:
    """A heatmap's colour limit: None (empty, the default) means the robust automatic limit."""
    limit = st.number_input(
        "Colour limit", min_value=0.0, value=kept(key, None), placeholder="auto: p99 of |credit|", key=key,
        help=LIMIT_HELP,
    )  # fmt: skip
    keep(key, limit)
    return float(limit) if limit else None


_KEPT = "_kept_widget_values"


def kept(key: str, default: Any) -> Any:  # noqa: ANN401 - any widget's value
    """The value to draw widget ``key`` with: its last value when a lazy tab left it out of the previous run.

    Streamlit forgets the state of a widget that a run does not draw (a tab that skips its hidden content),
    so without this a choice made there would be lost on every tab switch. Pair with :func:`keep`.
    """
    if key in st.session_state:
        return default  # the widget is live: its own state wins, the default is ignored
    return st.session_state.get(_KEPT, {}).get(key, default)


def keep(key: str, value: Any) -> Any:  # noqa: ANN401
    """Remember what widget ``key`` shows now (for :func:`kept`); returns ``value``."""
    st.session_state.setdefault(_KEPT, {})[key] = value
    return value


def kept_index(key: str, options: Sequence[object], default: int = 0) -> int:
    """:func:`kept` for a selectbox or radio: the index of its last choice, if still an option, else ``default``."""
    last = kept(key, None)
    return list(options).index(last) if last is not None and last in options else default


def kept_choice(
    widget: Callable[..., Any], label: str, options: Sequence[Any], key: str, default: int = 0, **kwargs: Any
) -> Any:  # noqa: ANN401 - any widget's value
    """``widget`` (``st.selectbox``, ``st.radio`` or a column's) drawn with its kept choice, which it then keeps."""
    return keep(key, widget(label, options, index=kept_index(key, options, default), key=key, **kwargs))


def iteration_from_url(raw: str | None, iterations: list[int], instead: str) -> int | None:
    """The URL's iteration if the run has it; otherwise None, with a warning saying what is shown ``instead``."""
    value, problem = parse_iteration(raw, iterations)
    if problem:
        st.warning(md_escape(f"{problem}; showing {instead} instead."))
        res.set_url_state(iteration=None)  # the bad value leaves the URL, so a copied link shows what is on screen
    return value


def prm_threshold_filter(key: str) -> float | None:
    """The "steps with PRM score below τ" filter (WebSTAR/StepRM step filtering): τ when switched on, else None."""
    cols = st.columns([2, 1])
    on = cols[0].toggle("Steps with PRM score below τ", key=f"{key}_prm_filter")
    tau = cols[1].number_input("τ", value=0.5, step=0.05, format="%.2f", key=f"{key}_prm_tau", disabled=not on)
    return float(tau) if on else None
