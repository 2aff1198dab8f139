"""The Rescore page's panels: run a PRM over a run, pick which scorer ``steps.prm`` shows, judge it against labels.

The loaded model is a process-wide ``st.cache_resource`` shared by every session (see
``shared/specs/streamlit-duckdb.md`` §2.2 and pitfall 6); rescoring runs in the script thread from a
button, so its progress callback may draw with ``st.*`` directly (pitfall 13).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import CreditscopeError
from core.prm.batching import DEFAULT_BATCH_TOKENS, GPU_BATCH_TOKENS
from core.prm.compiling import COMPILE_MODES, CompileMode
from core.prm.evaluate import PrmEvaluation, SourceCoverage, coverage_from_counts, evaluate_prm, steps_of_source
from core.prm.ray_engine import DEFAULT_CPU_WORKERS, DEFAULT_CPUS_PER_WORKER, RayOptions
from core.prm.rescore import ENGINES, SCOPE_KINDS, RescoreReport, Scope, rescore
from core.prm.scorer import Scorer
from core.prm.types import FAMILIES
from core.schema import LOGGED_PRM
from core.serving import ServeAccess
from core.store import prm_cache, queries
from dashboard import resources as res
from dashboard.figures.prm import reliability_figure
from dashboard.formatting import md_escape
from dashboard.prm_notes import coverage_note, partial_scope_note

DEMO_PRM = str(Path(__file__).resolve().parents[1] / "sample_data" / "models" / "demo-prm")
DEMO_FAMILY = "token-cls"
DEVICES: tuple[str, ...] = ("auto", "cuda", "cpu")
REPORT_KEY = "prm_last_report"
ACTIVE_CHOICE_LABEL = "`steps.prm` shows"
LOGGED = "(logged)"
"""Chooser value for "the scores the source logged" (a string, since a None option reads as "nothing chosen")."""

# st.cache_resource already builds each key once, but two different keys could still load two
# multi-GB checkpoints at the same time; one lock keeps loads (and GPU memory spikes) one at a time.
_LOAD_LOCK = threading.Lock()


@st.cache_resource(show_spinner=False, max_entries=4)
def load_scorer(model: str, family: str, device: str, trust_remote_code: bool) -> Scorer:
    """The PRM for these settings, loaded once per server process (torch is imported only here).

    Scoring on the shared object is serialised by the scorer's own lock, so sessions can share it.
    The compile policy is not part of the key: it is set on the shared scorer per rescore
    (:meth:`Scorer.set_compile_mode`), so changing it never loads a second copy of the model.
    """
    with _LOAD_LOCK:
        return Scorer.load(model, family, device=device, trust_remote_code=trust_remote_code)


def scorer_for(settings: RescoreSettings) -> Scorer:
    """The shared scorer for ``settings``, with their compile policy applied."""
    scorer = load_scorer(settings.model, settings.family, settings.device, settings.trust_remote_code)
    scorer.set_compile_mode(settings.compile)
    return scorer


@st.cache_data(show_spinner=False, max_entries=32)
def run_scorers(path: str, run_id: str) -> pd.DataFrame:
    """Scorers with scores on the run (``prm_cache.list_scorers``)."""
    with res.get_store(path).reader() as cur:
        return prm_cache.list_scorers(cur, run_id)


@st.cache_data(show_spinner=False, max_entries=32)
def logged_count(path: str, run_id: str) -> int:
    """Steps of the run that carry a PRM score from the source log."""
    with res.get_store(path).reader() as cur:
        return prm_cache.logged_score_count(cur, run_id)


EVALUATION_TRAJECTORIES = 20_000
"""Trajectories the evaluation reads at most; a larger run is judged on a fixed sample of them (and says so)."""


@st.cache_data(show_spinner=False, max_entries=16)
def run_evaluation(path: str, run_id: str, source: str) -> tuple[PrmEvaluation | None, SourceCoverage]:
    """The steps whose ``prm`` comes from ``source`` judged against their labels, and how much of the run it covers.

    The steps are the run's, or a fixed sample of its trajectories; the evaluation is None when none is labelled.
    """
    frame, _ = queries.labelled_steps_sample(res.get_store(path), run_id, EVALUATION_TRAJECTORIES)
    scored, _ = steps_of_source(frame, source)
    with res.get_store(path).reader() as cur:
        coverage = coverage_from_counts(prm_cache.source_counts(cur, run_id), source)
    return (evaluate_prm(scored) if len(scored) else None), coverage


@st.cache_data(show_spinner=False, max_entries=64)
def scope_sizes(path: str, run_id: str, scope: Scope) -> tuple[int, int, int]:
    """Trajectories in ``scope``, in the run, and logged PRM scores on the run's steps outside the scope.

    Read from the scope's own rows and the run's summaries, never from all of the run's steps.
    """
    store = res.get_store(path)
    with store.reader() as cur:
        n_run, logged = prm_cache.run_trajectories_and_logged(cur, run_id)
    if scope.kind == "run":  # the whole run: its summaries say it all (a 10M-step run is not read)
        return n_run, n_run, 0
    n_in_scope, n_logged_inside = queries.scope_counts(store, run_id, **scope.step_filters())
    return n_in_scope, n_run, max(0, logged - n_logged_inside)


def progress_text(done: int, total: int, elapsed: float) -> str:
    """``"30 / 100 steps · 15 steps/s · 2 s elapsed · about 5 s left"`` (no rate or estimate before the first batch).

    The counts are steps over every worker, so on Ray the rate is the pool's, not one actor's.
    """
    text = f"{done:,} / {total:,} steps"
    if done > 0 and elapsed > 0:
        text += f" · {done / elapsed:,.0f} steps/s"
    text += f" · {elapsed:.0f} s elapsed"
    if 0 < done < total:
        text += f" · about {elapsed / done * (total - done):.0f} s left"
    return text


def engine_picker() -> tuple[str, RayOptions | None]:
    """Local or Ray, and for Ray where and with how many actors (the CLI's --engine, --address, --workers...)."""
    engine = st.radio(
        "Engine",
        ENGINES,
        horizontal=True,
        key="prm_engine",
        help="ray: an actor pool on a Ray cluster scores (same scores and cache); needs `pip install -e .[ray]`.",
    )
    if engine != "ray":
        return engine, None
    cols = st.columns([3, 1, 1, 1])
    address = cols[0].text_input(
        "Ray address", value="", placeholder="empty: a local Ray instance; auto or HOST:PORT joins", key="prm_address"
    )
    workers = cols[1].number_input("Workers", min_value=1, value=DEFAULT_CPU_WORKERS, step=1, key="prm_workers")
    gpus = cols[2].number_input("GPUs / worker", min_value=0.0, value=0.0, step=1.0, key="prm_gpus")
    cpus = cols[3].number_input(
        "CPUs / worker",
        min_value=0.1,
        value=DEFAULT_CPUS_PER_WORKER,
        step=0.5,
        key="prm_cpus",
        help="Fractional by default: whole CPUs for every actor starve Ray Data's own tasks on a small node.",
    )
    options = RayOptions(
        address=address.strip() or None, workers=int(workers), gpus_per_worker=float(gpus), cpus_per_worker=float(cpus)
    )
    return engine, options


def scope_picker(path: str, run: str) -> Scope:
    """Scope kind plus the pickers it needs (iteration, group, trajectory)."""
    kind = st.radio("Scope", SCOPE_KINDS, horizontal=True, key="prm_scope")
    if kind == "run":
        return Scope()
    cols = st.columns(3)
    iteration = cols[0].selectbox("Iteration", res.iterations(path, run), key="prm_scope_iteration")
    if kind == "iteration":
        return Scope("iteration", int(iteration))
    groups = res.groups(path, run, int(iteration), "")["group_id"].tolist()
    group = cols[1].selectbox("Group", groups, key="prm_scope_group")
    if kind == "group":
        return Scope("group", group, iteration=int(iteration))
    trajs = res.group_trajectories(path, run, int(iteration), group)["traj_id"].tolist()
    return Scope("trajectory", cols[2].selectbox("Trajectory", trajs, key="prm_scope_traj"))


def rescore_form(path: str, run: str) -> None:
    """Model, family, device, scope and batch settings, and the button that rescores."""
    top = st.columns([4, 2, 1])
    model = top[0].text_input("Model (local folder or hub id)", value=DEMO_PRM, key="prm_model")
    family = top[1].selectbox("Family", FAMILIES, index=FAMILIES.index(DEMO_FAMILY), key="prm_family")
    device = top[2].selectbox("Device", DEVICES, key="prm_device")
    scope = scope_picker(path, run)
    note = partial_scope_note(scope.kind, *scope_sizes(path, run, scope))
    if note:
        st.info(note)
    engine, ray_options = engine_picker()
    low = st.columns([2, 2, 2, 2])
    batch_tokens = low[0].number_input(
        "Batch tokens",
        min_value=256,
        value=None,
        step=1024,
        placeholder=f"auto: {GPU_BATCH_TOKENS:,} GPU / {DEFAULT_BATCH_TOKENS:,} CPU",
        key="prm_batch_tokens",
    )
    trust = low[1].checkbox(
        "trust_remote_code", value=False, key="prm_trust", help="Run the checkpoint's own Python code (Qwen PRMs)."
    )
    compile_model = low[2].selectbox(
        "torch.compile",
        COMPILE_MODES,
        key="prm_compile",
        help="About 1.35x the tokens/s on a GPU after ~2 minutes of compiling. auto: only for jobs of 50M+ tokens.",
    )
    if low[3].button("Rescore", type="primary", key="prm_rescore"):
        address = ray_options.address if ray_options else None
        settings = RescoreSettings(
            model.strip(), family, device, trust, compile_model, batch_tokens and int(batch_tokens), engine, ray_options
        )
        try:  # a dashboard served to others loads only models under --data-root (core.serving)
            ServeAccess.from_env().check_rescore(settings.model, trust, address, shipped=(DEMO_PRM,))
        except CreditscopeError as error:
            st.error(md_escape(error))
        else:
            outcome = run_rescore(path, run, settings, scope)
            if outcome is not None:
                st.session_state[REPORT_KEY] = outcome
    last = st.session_state.get(REPORT_KEY)
    if last is not None and last[0].run_id == run:
        show_report(*last)


@dataclass(frozen=True)
class RescoreSettings:
    """What the rescore form asks for (``batch_tokens`` None: the scorer's default for its device)."""

    model: str
    family: str
    device: str
    trust_remote_code: bool
    compile: CompileMode
    batch_tokens: int | None
    engine: str = "local"
    ray_options: RayOptions | None = None


def run_rescore(path: str, run: str, settings: RescoreSettings, scope: Scope) -> tuple[RescoreReport, float] | None:
    """Rescore with live progress, then drop cached query results so every page shows the new ``prm``.

    Returns:
        The report and the seconds spent loading the model (about 0 when it was already loaded), or
        None when loading or scoring failed (the error is shown).
    """
    model, family, device, trust = settings.model, settings.family, settings.device, settings.trust_remote_code
    with st.status(f"Rescoring {run} ({scope.kind}) with {Path(model).name or model}…", expanded=True) as status:
        bar = st.progress(0.0, text="loading the model")
        started = time.perf_counter()
        try:

            def on_progress(done: int, total: int) -> None:
                elapsed = time.perf_counter() - started
                bar.progress(done / total if total else 1.0, text=progress_text(done, total, elapsed))

            # The model loads only if some step is not cached yet (then once per process, see load_scorer).
            report = rescore(
                res.store(),
                run_id=run,
                model=model,
                family=family,
                device=device,
                trust_remote_code=trust,
                scope=scope,
                batch_tokens=settings.batch_tokens,
                # The Ray engine loads the model on its workers; the page's shared copy is for the local one.
                load=None if settings.engine == "ray" else lambda: scorer_for(settings),
                progress=on_progress,
                engine=settings.engine,
                ray_options=settings.ray_options,
            )
            load_seconds = report.load_seconds
        except CreditscopeError as error:  # a mistyped folder, an empty scope: the message says it all
            status.update(label="Rescoring failed", state="error", expanded=True)
            st.error(md_escape(error))
            return None
        except Exception as error:  # a missing hub id offline, out of memory: show it, keep the page
            status.update(label=md_escape(f"Rescoring failed: {error}"), state="error", expanded=True)
            st.exception(error)
            return None
        bar.progress(1.0, text=f"{report.n_steps} steps done")
        status.update(label=f"Rescored {report.n_steps} steps", state="complete", expanded=False)
    res.clear_data_caches()
    return report, load_seconds


def show_report(report: RescoreReport, load_seconds: float) -> None:
    """The last rescore's counts and timings (the model is loaded outside ``rescore``, hence its own figure)."""
    cols = st.columns(5)
    cols[0].metric("Steps scored by the model", report.n_scored)
    cols[1].metric("Steps from cache", report.n_from_cache)
    cols[2].metric("Truncated steps", report.n_truncated_steps)
    cols[3].metric("Model load (s)", f"{load_seconds:.1f}")
    cols[4].metric("Rescore (s)", f"{report.total_seconds:.1f}")
    st.caption(report.summary())
    if report.truncated_trajectories:
        st.warning(
            "Truncated (past the model's max length): " + md_escape(", ".join(report.truncated_trajectories[:20]))
        )


def scorer_chooser(path: str, run: str) -> None:
    """The run's scorers, and which of them (or the logged scores) ``steps.prm`` shows."""
    scorers = run_scorers(path, run)
    n_logged = logged_count(path, run)
    if scorers.empty:
        st.info("No scorer has scored this run yet; `steps.prm` shows the logged scores.")
    else:
        st.dataframe(scorers, hide_index=True, key="prm_scorers")
    options = [LOGGED, *scorers["scorer_id"].tolist()]
    active = scorers.loc[scorers["active"], "scorer_id"].tolist()
    current = active[0] if active else LOGGED
    logged = f"logged scores ({n_logged} steps)" if n_logged else "logged scores (none: prm stays empty)"
    cols = st.columns([4, 1])
    # Keyed by the stored choice: a rescore (or another session) that changes it resets the widget to it,
    # instead of the widget keeping a stale value that "Apply" would write back.
    choice = cols[0].selectbox(
        ACTIVE_CHOICE_LABEL,
        options,
        index=options.index(current),
        key=f"prm_active_choice_{run}_{current}",
        format_func=lambda s: logged if s == LOGGED else _scorer_name(scorers, s),
    )
    if cols[1].button("Apply", disabled=choice == current, key="prm_set_active"):
        with res.store().writer() as cur:
            prm_cache.set_active(cur, run, None if choice == LOGGED else choice)
        res.clear_data_caches()
        st.rerun()


def _scorer_name(scorers: pd.DataFrame, scorer_id: str) -> str:
    row = scorers.set_index("scorer_id").loc[scorer_id]
    return f"{row['family']} · {Path(str(row['model'])).name} · {scorer_id}"


def evaluation_panel(path: str, run: str, has_labels: bool) -> None:
    """ROC-AUC, first-error F1 (fixed and tuned threshold) and the reliability diagram of ``steps.prm``."""
    if not has_labels:
        st.info("This run has no step labels, so its PRM scores cannot be judged against ground truth.")
        return
    scorers = run_scorers(path, run)
    active = scorers.loc[scorers["active"], "scorer_id"].tolist()
    source = active[0] if active else LOGGED_PRM
    result, coverage = run_evaluation(path, run, source)
    name = "the logged scores" if source == LOGGED_PRM else _scorer_name(scorers, source)
    note = coverage_note(coverage, name)
    if note:
        st.info(note)
    total = coverage.n_run_trajectories
    if total > EVALUATION_TRAJECTORIES and result is not None:
        st.caption(
            f"Judged on a fixed sample: the {result.n_trajectories:,} labelled trajectories of iterations spread over "
            f"the run (at most {EVALUATION_TRAJECTORIES:,} of its {total:,} trajectories)."
        )
    if result is None or result.n_steps == 0:
        st.info("No labelled step has a PRM score yet: rescore the run (or choose a scorer) first.")
        return
    cols = st.columns(4)
    cols[0].metric("ROC-AUC", f"{result.auc:.3f}")
    cols[1].metric("First-error F1 @ 0.5", f"{result.at_default.f1:.3f}")
    cols[2].metric("Best threshold (tuning half)", f"{result.best_threshold:.3f}")
    cols[3].metric(
        "F1 held-out @ best",
        f"{result.held_out.f1:.3f}",
        delta=f"{result.held_out.f1 - result.held_out_at_default.f1:+.3f} vs 0.5",
        help="Threshold chosen on half of the trajectories (split by a hash of the id), F1 on the other half.",
    )
    st.caption(
        f"{result.n_steps} labelled steps in {result.n_trajectories} trajectories · "
        f"{result.at_default.n_erroneous} with an error, {result.at_default.n_correct} without · "
        f"tuning-half F1 {result.tuned.f1:.3f} · expected calibration error {result.calibration_error:.3f}"
    )
    st.plotly_chart(reliability_figure(result.calibration), key="prm_reliability")
