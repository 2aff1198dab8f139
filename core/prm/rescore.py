"""``rescore``: score a run's steps with a PRM, incrementally, and make that scorer the run's ``prm`` column.

The step texts come from the ``action`` column and the problem from the trajectory's ``prompt``
(falling back to the first step's ``state`` when the source logged no prompt).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.errors import CreditscopeError
from core.prm.cache import score_with_cache
from core.prm.checks import PrmRefused, check_device, check_positive
from core.prm.compiling import CompileMode
from core.prm.loading import build_spec, spec_is_prefix_causal
from core.prm.ray_engine import RayOptions
from core.prm.scorer import Scorer
from core.prm.types import FormatSettings, ProgressCallback, Trajectory
from core.store import prm_cache

SCOPE_KINDS: tuple[str, ...] = ("run", "iteration", "group", "trajectory")
ENGINES: tuple[str, ...] = ("local", "ray")
"""``local``: this process scores; ``ray``: an actor pool on a Ray cluster does (see ``core.prm.ray_engine``)."""


@dataclass(frozen=True)
class Scope:
    """Which part of a run to rescore.

    Attributes:
        kind: ``"run"``, ``"iteration"``, ``"group"`` or ``"trajectory"``.
        value: The iteration number, group id or trajectory id (None for a whole run).
        iteration: For a group scope, the iteration the group belongs to (group ids may repeat
            across iterations); None means the group id in every iteration.
    """

    kind: str = "run"
    value: str | int | None = None
    iteration: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCOPE_KINDS:
            raise PrmRefused(f"--scope must be one of {', '.join(SCOPE_KINDS)}, got {self.kind!r}")
        if (self.kind == "run") != (self.value is None):
            raise PrmRefused("--scope run takes no value; iteration, group and trajectory scopes need one")
        if self.kind == "iteration" and not _is_int(self.value):
            raise PrmRefused(f"--scope iteration needs an integer, got {self.value!r}")

    def step_filters(self) -> dict[str, Any]:
        """Keyword filters selecting this scope, for :func:`core.store.queries.steps` and ``trajectories``."""
        if self.kind == "iteration":
            return {"iteration": int(self.value)}  # type: ignore[arg-type]
        if self.kind == "group":
            return {"group_id": str(self.value), "iteration": self.iteration}
        if self.kind == "trajectory":
            return {"traj_ids": [str(self.value)]}
        return {}


def _is_int(value: object) -> bool:
    try:
        int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
    return True


@dataclass
class RescoreReport:
    """What a rescore did.

    Attributes:
        run_id: The run.
        scorer_id: The scorer's id (active for the run afterwards unless ``activate=False``).
        n_trajectories: Trajectories in scope.
        n_steps: Steps in scope.
        n_from_cache: Steps answered by the score cache.
        n_scored: Steps whose content was new and went through the model.
        n_truncated_steps: Steps past the model's max length (score NULL, ``truncated`` true).
        truncated_trajectories: Ids of trajectories with at least one truncated step.
        model_loaded: Whether the model had to be loaded at all.
        load_seconds: Time to load the model.
        score_seconds: Time spent scoring (forward passes and formatting).
        total_seconds: Wall time of the whole call.
        tokens: Real tokens fed to the model in this call.
        forward_passes: Batches run in this call.
        compile_error: Why ``torch.compile`` was abandoned for eager scoring, if it was.
        engine: ``"local"`` or ``"ray"``.
        workers: Ray actors that returned scores (``host:pid``); empty for the local engine.
        n_trajectories_sent: Trajectories that went to the model (those with an uncached step).
    """

    run_id: str
    scorer_id: str
    n_trajectories: int = 0
    n_steps: int = 0
    n_from_cache: int = 0
    n_scored: int = 0
    n_truncated_steps: int = 0
    truncated_trajectories: list[str] = field(default_factory=list)
    model_loaded: bool = False
    load_seconds: float = 0.0
    score_seconds: float = 0.0
    total_seconds: float = 0.0
    tokens: int = 0
    forward_passes: int = 0
    compile_error: str | None = None
    engine: str = "local"
    workers: list[str] = field(default_factory=list)
    n_trajectories_sent: int = 0

    def summary(self) -> str:
        """One paragraph for the CLI and the dashboard."""
        rate = self.tokens / self.score_seconds if self.score_seconds > 0 else 0.0
        where = f" on Ray ({len(self.workers)} workers returned scores)" if self.engine == "ray" else ""
        text = (
            f"{self.run_id}: {self.n_steps} steps in {self.n_trajectories} trajectories with {self.scorer_id}{where}; "
            f"{self.n_scored} scored by the model, {self.n_from_cache} from cache; "
            f"{self.n_truncated_steps} truncated steps in {len(self.truncated_trajectories)} trajectories; "
            f"load {self.load_seconds:.1f}s, scoring {self.score_seconds:.1f}s ({rate:,.0f} tokens/s), "
            f"total {self.total_seconds:.1f}s"
        )
        if self.compile_error:
            text += f"; torch.compile failed, scored eagerly ({self.compile_error})"
        return text


def load_trajectories(
    store: Any, run_id: str, scope: Scope, *, traj_ids: list[str] | None = None
) -> tuple[pd.DataFrame, list[str], list[Trajectory]]:
    """Read the steps of ``scope`` (or of the listed trajectories) and turn them into PRM inputs.

    Args:
        store: The store.
        run_id: The run.
        scope: Part of the run.
        traj_ids: Read only these trajectories instead (a page of the scope, see ``core.prm.ray_engine``).

    Returns:
        ``(steps, traj_ids, trajectories)``: the scoped step rows sorted by trajectory and step, and
        one :class:`Trajectory` per trajectory id, in the same order.
    """
    from core.store import queries

    filters = scope.step_filters() if traj_ids is None else {"traj_ids": traj_ids}
    steps = queries.steps(store, run_id=run_id, **filters)
    steps = steps.sort_values(["traj_id", "step_idx"], kind="stable")
    scoped = queries.trajectories(store, run_id=run_id, **filters)  # only the prompts in scope
    prompts = scoped.set_index("traj_id")["prompt"].to_dict()
    traj_ids: list[str] = []
    trajectories: list[Trajectory] = []
    for traj_id, rows in steps.groupby("traj_id", sort=False):
        prompt = prompts.get(traj_id)
        if prompt is None or pd.isna(prompt):
            first_state = rows["state"].iloc[0]
            prompt = "" if first_state is None or pd.isna(first_state) else str(first_state)
        texts = tuple("" if a is None or pd.isna(a) else str(a) for a in rows["action"])
        traj_ids.append(str(traj_id))
        trajectories.append(Trajectory(prompt=str(prompt), steps=texts))
    return steps, traj_ids, trajectories


def rescore(
    store: Any,
    *,
    run_id: str,
    model: str | None = None,
    family: str | None = None,
    device: str = "auto",
    batch_tokens: int | None = None,
    scope: Scope | None = None,
    trust_remote_code: bool = False,
    progress: ProgressCallback | None = None,
    revision: str | None = None,
    settings: FormatSettings | None = None,
    ref_model: str | None = None,
    scorer: Scorer | None = None,
    load: Callable[[], Scorer] | None = None,
    activate: bool = True,
    compile: CompileMode | bool = "auto",
    ref_revision: str | None = None,
    allow_random_init: bool = False,
    engine: str = "local",
    ray_options: RayOptions | None = None,
) -> RescoreReport:
    """Score the steps of a run (or part of it) with a PRM and store the scores.

    Steps whose (prompt, steps up to it) content was already scored by the same scorer come from the
    cache; if everything is cached the model is never loaded. Afterwards the scores sit in
    ``prm_step_scores`` and, with ``activate``, the run's ``steps.prm`` shows them.

    Args:
        store: An open, writable ``core.store.Store``.
        run_id: The run.
        model: Local folder or hub id (ignored when ``scorer`` is given).
        family: PRM family (ignored when ``scorer`` is given).
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        batch_tokens: Padded-token budget per forward pass; None = the scorer's default for its device.
        scope: Part of the run; the whole run when None.
        trust_remote_code: Allow the checkpoint's own code to run; never switched on implicitly.
        progress: ``progress(done, total)`` in trajectories sent to the model.
        revision: Hub revision of the model.
        settings: Formatter settings (family defaults when None).
        ref_model: Reference model for the ``implicit`` family.
        scorer: An already loaded scorer; skips loading.
        load: How to get the scorer if anything is not cached (e.g. the dashboard's cached loader);
            called at most once, and not at all when every step is cached. Defaults to ``Scorer.load``.
        activate: Make this scorer the run's active one.
        compile: ``torch.compile`` policy of a model loaded here: ``"auto"`` compiles on a GPU for jobs
            large enough to repay the compilation (see :class:`Scorer`).
        ref_revision: Hub revision of the reference model.
        allow_random_init: Accept a checkpoint whose weights do not cover the family's network (benchmarks).
        engine: ``"local"`` scores in this process; ``"ray"`` on a Ray actor pool (same scorer, same cache rows).
        ray_options: Cluster and pool settings of the ``ray`` engine (defaults: a local Ray instance).

    Returns:
        A :class:`RescoreReport`.

    Raises:
        PrmRefused: Bad settings, a device that is not there, or a model that does not fit (nothing is written).
    """
    started = time.perf_counter()
    scope = scope or Scope()
    check_positive("--batch-tokens", batch_tokens)
    if engine not in ENGINES:
        raise PrmRefused(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "ray" and scorer is not None:
        raise PrmRefused("the ray engine loads the model on its workers: give model and family, not a loaded scorer")
    if scorer is None and load is None and engine == "local":
        check_device(device)  # before reading anything, not after the steps are hashed (Ray workers check their own)
    if scorer is not None:
        spec = scorer.spec
    elif model is None or family is None:
        raise ValueError("rescore needs model and family, or a loaded scorer")
    else:
        spec = build_spec(
            model, family, settings=settings, revision=revision, ref_model=ref_model, ref_revision=ref_revision
        )
    steps, traj_ids, trajectories = load_trajectories(store, run_id, scope)
    if not trajectories:
        # A typo in the run or scope would otherwise "succeed" with 0 steps (and could mark a scorer active).
        where = f"run {run_id!r}" if scope.kind == "run" else f"{scope.kind} {scope.value!r} of run {run_id!r}"
        raise CreditscopeError(f"no steps to rescore: {where} has none (see `creditscope runs`)")
    report = RescoreReport(run_id=run_id, scorer_id=spec.scorer_id, n_trajectories=len(trajectories))
    report.n_steps = len(steps)
    loaded: dict[str, Scorer] = {}

    def get_scorer() -> Scorer:
        if scorer is not None:
            return scorer
        load_started = time.perf_counter()
        if load is not None:
            loaded["scorer"] = load()
        else:
            loaded["scorer"] = Scorer.load(
                spec.model,
                spec.family,
                device=device,
                trust_remote_code=trust_remote_code,
                revision=revision,
                ref_model=spec.ref_model,
                spec=spec,
                compile=compile,
                ref_revision=ref_revision,
                allow_random_init=allow_random_init,
            )
        report.model_loaded = True
        report.load_seconds = time.perf_counter() - load_started
        return loaded["scorer"]

    prefix_only = spec_is_prefix_causal(spec, revision)
    fill = None
    if engine == "ray":
        from core.prm.ray_engine import RayOptions as _Options
        from core.prm.ray_engine import fill_cache

        load_options = {
            "trust_remote_code": trust_remote_code,
            "revision": revision,
            "compile": compile,
            "ref_revision": ref_revision,
            "allow_random_init": allow_random_init,
        }
        fill = fill_cache(
            store,
            spec,
            run_id,
            scope,
            prefix_only=prefix_only,
            options=ray_options or _Options(),
            device=device,
            load_options=load_options,
            batch_tokens=batch_tokens,
            progress=progress,
        )
        # Every step is cached now: the pass below only places the scores on the steps, as for a cache hit.
        get_scorer = _nothing_left_to_load
    before = _stats_snapshot(scorer)
    score_started = time.perf_counter()
    outcome = score_with_cache(
        store,
        spec,
        trajectories,
        get_scorer=get_scorer,
        prefix_only=prefix_only,
        batch_tokens=batch_tokens,
        progress=progress,
    )
    report.score_seconds = time.perf_counter() - score_started - report.load_seconds
    report.n_from_cache, report.n_scored = outcome.n_from_cache, outcome.n_scored
    report.n_trajectories_sent = outcome.n_trajectories_scored
    if outcome.scorer is not None:
        after = _stats_snapshot(outcome.scorer)
        report.tokens, report.forward_passes = after[0] - before[0], after[1] - before[1]
        report.compile_error = outcome.scorer.compile_error
    if fill is not None:
        report.engine, report.workers = "ray", sorted(fill.workers)
        report.n_scored, report.n_from_cache = fill.n_new_steps, report.n_steps - fill.n_new_steps
        report.n_trajectories_sent, report.tokens = fill.n_trajectories_sent, fill.tokens
        report.model_loaded, report.load_seconds = fill.n_trajectories_sent > 0, fill.startup_seconds
        report.score_seconds = fill.seconds

    rows = []
    for traj_id, scores in zip(traj_ids, outcome.results, strict=True):
        for k, (score, truncated) in enumerate(zip(scores.scores, scores.truncated, strict=True)):
            rows.append((run_id, traj_id, k, score, truncated))
        if scores.was_truncated:
            report.truncated_trajectories.append(traj_id)
            report.n_truncated_steps += sum(scores.truncated)
    frame = pd.DataFrame(rows, columns=list(prm_cache.STEP_SCORE_COLUMNS)).astype(
        {"run_id": "string", "traj_id": "string", "step_idx": "int32", "score": "float64", "truncated": "bool"}
    )
    # Step rows are renumbered 0..n-1 per trajectory above; map back to the stored step_idx values.
    frame["step_idx"] = steps["step_idx"].to_numpy(dtype="int32")
    with store.writer() as cur:
        prm_cache.register_scorer(cur, spec.scorer_id, spec.to_json())
        prm_cache.upsert_step_scores(cur, spec.scorer_id, frame)
        if activate:
            prm_cache.set_active(cur, run_id, spec.scorer_id)
    report.total_seconds = time.perf_counter() - started
    return report


def _nothing_left_to_load() -> Scorer:
    raise RuntimeError("the Ray job returned without caching every step in scope")


def _stats_snapshot(scorer: Scorer | None) -> tuple[int, int]:
    return (scorer.stats.tokens, scorer.stats.forward_passes) if scorer is not None else (0, 0)
